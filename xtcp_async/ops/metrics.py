"""Prometheus metrics: a custom Collector that reads the service's counters at scrape time.

Why a Collector and not prometheus-client Counters updated by the pipeline: the pipeline
already keeps every count in :class:`~xtcp_async.stats.Stats` and each runner's
:class:`~xtcp_async.sinks.base.SinkStats` for the exit report and --stats-json; mirroring them
into a second set of objects would be double bookkeeping that can drift. The one thing Stats
cannot answer at scrape time is a distribution, so the poll-duration histogram is fed by the
``stats.dump_listeners`` hook.

Label values are bounded by the configuration, never by traffic: ``family`` (inet, inet6),
``sink`` (the runner name, one per configured sink), ``reason`` (the runner's drop reasons),
``kind`` (the decoder's fixed problem kinds), ``queue`` (two pipeline queues). Nothing is
labelled by socket, address or port.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, InfoMetricFamily, Metric
from prometheus_client.gc_collector import GCCollector
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector
from prometheus_client.registry import Collector

from xtcp_async import __version__, native
from xtcp_async.buildinfo import git_commit
from xtcp_async.ops.tcp_health import TcpHealth, TcpHealthCollector

if TYPE_CHECKING:
    from xtcp_async.service import Service

PREFIX = "xtcp"

#: Poll (dump) duration buckets in seconds: the kernel floor at 120k sockets is ~0.1 s and the
#: default --poll-timeout is 5 s, so the interesting range is 1 ms … 10 s.
POLL_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class ServiceCollector(Collector):
    """Everything the service counts, read from Stats and the sink runners on each scrape."""

    def __init__(self, service: Service) -> None:
        self.service = service

    def collect(self) -> Iterator[Metric]:
        s = self.service.stats
        yield InfoMetricFamily(f"{PREFIX}_build", "Version of xtcp_async and the git commit it was built from.",
                               value={"version": __version__, "commit": git_commit()})
        # issue 13: which decode/encode path runs (c: the compiled core; numpy: it is not built).
        yield InfoMetricFamily(f"{PREFIX}_codec_path", "Decoder and encoder in use (c or numpy).",
                               value={"path": native.PATH})

        def counter(name: str, doc: str, value: float) -> CounterMetricFamily:
            return CounterMetricFamily(f"{PREFIX}_{name}", doc, value=value)

        def gauge(name: str, doc: str, value: float) -> GaugeMetricFamily:
            return GaugeMetricFamily(f"{PREFIX}_{name}", doc, value=value)

        # -- polling and netlink ----------------------------------------------------------
        yield counter("polls", "Polls run (one dump per address family each).", s.polls)
        yield counter("polls_failed", "Polls in which at least one dump failed.", s.polls_failed)
        yield counter("polls_incomplete", "Polls whose rows are not every socket (a dump failed, timed "
                      "out, was cut by shutdown or interrupted); their records carry poll_dump_interrupted.",
                      s.polls_incomplete)
        yield counter("poll_timeouts", "Dumps abandoned after --poll-timeout.", s.poll_timeouts)
        yield counter("netlink_errors", "Dumps that ended in a netlink error.", s.netlink_errors)
        yield counter("dumps_interrupted", "Dumps the kernel flagged NLM_F_DUMP_INTR (socket table "
                      "changed during the dump; rows may be missing or repeated).", s.dumps_interrupted)
        yield counter("netlink_stale_messages", "Replies of an earlier, abandoned dump that were skipped.",
                      s.stale_messages)
        yield counter("netlink_read_bytes", "Bytes read from the netlink socket.", s.bytes_read)
        yield counter("netlink_recvs", "recv() calls on the netlink socket.", s.recvs)
        yield counter("sockets", "Socket rows decoded, over all polls.", s.sockets)
        yield gauge("poll_sockets", "Socket rows in the last completed poll.", s.last_poll_sockets)
        yield gauge("last_poll_duration_seconds", "Wall time of the last poll (all families).",
                    s.last_poll_duration_s)
        yield gauge("last_poll_ok", "1 if the last poll succeeded, 0 if it failed, -1 before the first.",
                    -1 if s.last_poll_ok is None else int(s.last_poll_ok))
        # -- issue 10: network namespaces (totals only: series must not grow with pods) ------------
        yield gauge("netns_polled", "Network namespaces dumped in the last poll.", s.netns_polled)
        yield gauge("netns_unenterable", "Namespaces seen at the last rescan that could not be entered "
                    "(no CAP_SYS_ADMIN).", s.netns_unenterable)
        yield counter("netns_enter_failures", "Failed attempts to enter a network namespace.",
                      s.netns_enter_failures)
        yield counter("netns_vanished", "Namespaces that went away between discovery and their dump, or "
                      "during it (counted, not a failed poll).", s.netns_vanished)
        yield gauge("netns_unreadable_processes", "Processes whose namespace could not be read at the last "
                    "rescan (no CAP_SYS_PTRACE).", s.netns_unreadable_processes)
        yield counter("netns_rescans", "Namespace rediscoveries.", s.netns_rescans)
        yield counter("netns_rescan_failures", "Rediscoveries that failed (known namespaces still polled).",
                      s.netns_rescan_failures)
        # The configured cadence (issue 14), so alert rules compare durations with the service's
        # own settings instead of a threshold hard-coded in the rule.
        yield gauge("poll_interval_seconds", "Configured seconds between polls (--interval).",
                    self.service.cfg.poll.interval_s)
        yield gauge("poll_timeout_seconds", "Configured seconds a dump may take (--poll-timeout, effective).",
                    self.service.cfg.poll.poll_timeout_s)
        problems = CounterMetricFamily(f"{PREFIX}_decode_problems", "Malformed or unexpected netlink "
                                       "data found by the decoder, by kind.", labels=["kind"])
        for kind, n in sorted(s.decode_problems.items()):
            problems.add_metric([kind], n)
        yield problems

        # -- encoding ---------------------------------------------------------------------
        yield counter("batches_encoded", "Socket batches encoded.", s.batches_encoded)
        yield counter("payloads_encoded", "Payloads built (per sink, so a batch for two sinks counts "
                      "twice).", s.payloads_encoded)
        yield counter("encoded_bytes", "Bytes of payloads built.", s.bytes_encoded)
        yield counter("records_too_large", "Single records larger than a sink's payload cap (dropped).",
                      s.records_too_large)
        # -- column stages: --sample and --emit changed ----------------------------------------
        yield counter("rows_sampled_out", "Socket rows left out by --sample before encoding.", s.rows_sampled_out)
        yield counter("rows_unchanged", "Socket rows not sent by --emit changed (nothing compared changed).",
                      s.rows_unchanged)
        yield counter("rows_closed", "Final 'closed' records sent by --emit changed.", s.rows_closed)
        yield gauge("sockets_tracked", "Sockets --emit changed holds previous values for.", s.sockets_tracked)

        # -- sinks ------------------------------------------------------------------------
        yield from self._sinks()

        # -- the event loop and queues ----------------------------------------------------
        depth = GaugeMetricFamily(f"{PREFIX}_queue_depth", "Items waiting in a pipeline queue.",
                                  labels=["queue"])
        capacity = GaugeMetricFamily(f"{PREFIX}_queue_capacity", "Size bound of a pipeline queue.",
                                     labels=["queue"])
        for name, q in (("chunks", self.service.chunk_q), ("batches", self.service.batch_q)):
            depth.add_metric([name], q.qsize())
            capacity.add_metric([name], q.maxsize)
        yield depth
        yield capacity
        yield gauge("event_loop_stall_max_seconds", "Longest time the event loop was blocked since start.",
                    s.max_loop_stall_s)
        yield gauge("netlink_reader_callback_max_seconds", "Longest single netlink reader callback "
                    "since start.", s.max_reader_callback_s)

    def _sinks(self) -> Iterable[Metric]:
        labels = ["sink"]
        fams: dict[str, CounterMetricFamily | GaugeMetricFamily] = {
            "delivered": CounterMetricFamily(f"{PREFIX}_sink_payloads_delivered",
                                             "Payloads the sink acknowledged.", labels=labels),
            "bytes": CounterMetricFamily(f"{PREFIX}_sink_delivered_bytes", "Bytes of payloads the sink "
                                         "acknowledged.", labels=labels),
            "errors": CounterMetricFamily(f"{PREFIX}_sink_delivery_errors", "Failed delivery attempts "
                                          "(each retry counts).", labels=labels),
            "buffer_bytes": GaugeMetricFamily(f"{PREFIX}_sink_buffer_bytes", "Bytes buffered for the sink "
                                              "(including those in flight).", labels=labels),
            "buffer_limit": GaugeMetricFamily(f"{PREFIX}_sink_buffer_limit_bytes", "The sink's buffer "
                                              "bound; beyond it the oldest payloads are dropped.",
                                              labels=labels),
            "buffer_payloads": GaugeMetricFamily(f"{PREFIX}_sink_buffer_payloads", "Payloads buffered "
                                                 "for the sink (including those in flight and waiting for "
                                                 "room).", labels=labels),
            "waiting_bytes": GaugeMetricFamily(f"{PREFIX}_sink_waiting_bytes", "Bytes of payloads waiting "
                                               "for room in the full buffer, within their poll's wait "
                                               "budget.", labels=labels),
            "connected": GaugeMetricFamily(f"{PREFIX}_sink_connected", "1 while the sink can deliver and "
                                           "its last delivery succeeded.", labels=labels),
        }
        dropped = CounterMetricFamily(f"{PREFIX}_sink_dropped_payloads", "Payloads given up, by reason "
                                      "(buffer_full, rejected, record_too_large, shutdown, ...).",
                                      labels=["sink", "reason"])
        for r in self.service.runners:
            st = r.stats
            fams["delivered"].add_metric([r.name], st.payloads_delivered)
            fams["bytes"].add_metric([r.name], st.bytes_delivered)
            fams["errors"].add_metric([r.name], st.delivery_errors)
            fams["buffer_bytes"].add_metric([r.name], r.buffered_bytes)
            fams["buffer_limit"].add_metric([r.name], r.settings.buffer_bytes)
            fams["buffer_payloads"].add_metric([r.name], r.buffered_payloads)
            fams["waiting_bytes"].add_metric([r.name], r.waiting_bytes)
            fams["connected"].add_metric([r.name], int(r.sink.connected and r.last_error is None))
            for reason, n in sorted(st.dropped.items()):
                dropped.add_metric([r.name, reason], n)
        yield from fams.values()
        yield dropped


def build_registry(service: Service) -> CollectorRegistry:
    """A registry of the service's metrics plus the client's process, platform and GC collectors.

    A registry of its own (not the global REGISTRY) so two services in one process — tests —
    never collide, and nothing imported by accident shows up on /metrics.
    """
    registry = CollectorRegistry(auto_describe=True)
    registry.register(ServiceCollector(service))
    ProcessCollector(registry=registry)  # process_cpu_seconds_total, process_resident_memory_bytes, fds
    PlatformCollector(registry=registry)
    GCCollector(registry=registry)
    poll_seconds = Histogram(f"{PREFIX}_poll_duration_seconds", "Time to dump one address family "
                             "(request to NLMSG_DONE, or to the failure).", ["family"],
                             buckets=POLL_BUCKETS, registry=registry)

    def observe(family: str, seconds: float, bytes_read: int) -> None:
        del bytes_read
        poll_seconds.labels(family).observe(seconds)

    service.stats.dump_listeners.append(observe)
    # TCP health (issue 12): low-cardinality series from each poll's summary.
    health = TcpHealth(max_ports=service.cfg.settings.metrics_ports)
    registry.register(TcpHealthCollector(health))
    service.stages.summary_listeners.append(health.observe)
    return registry
