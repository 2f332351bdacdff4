"""Specifications for the Prometheus metrics read from the service's counters."""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from xtcp_async.buildinfo import git_commit
from xtcp_async.config import load_config
from xtcp_async.ops.metrics import build_registry
from xtcp_async.service import Service

#: Every label the service's own metrics may carry: all bounded by configuration, none by traffic.
BOUNDED_LABELS = {"family", "sink", "reason", "kind", "queue", "version", "commit", "le", "path"}


def scrape(service: Service) -> dict[str, dict[tuple[tuple[str, str], ...], float]]:
    """sample name → {sorted labels → value} from one exposition of the service's registry."""
    text = generate_latest(build_registry(service)).decode()
    out: dict[str, dict[tuple[tuple[str, str], ...], float]] = {}
    for fam in text_string_to_metric_families(text):
        for sample in fam.samples:
            out.setdefault(sample.name, {})[tuple(sorted(sample.labels.items()))] = sample.value
    return out


def test_counters_are_read_from_stats_at_scrape_time(make_service: Callable[..., Service]) -> None:
    """Each xtcp_* counter shows the Stats value as it is when scraped (no copy to drift)."""
    service = make_service()
    s = service.stats
    s.polls, s.poll_timeouts, s.netlink_errors, s.dumps_interrupted = 7, 1, 2, 3
    s.bytes_read, s.recvs, s.sockets, s.last_poll_sockets = 4096, 9, 1200, 100
    s.batches_encoded, s.payloads_encoded, s.bytes_encoded = 5, 6, 7000
    s.max_loop_stall_s = 0.25
    got = scrape(service)
    assert got["xtcp_polls_total"][()] == 7
    assert got["xtcp_poll_timeouts_total"][()] == 1
    assert got["xtcp_netlink_errors_total"][()] == 2
    assert got["xtcp_dumps_interrupted_total"][()] == 3
    assert got["xtcp_netlink_read_bytes_total"][()] == 4096
    assert got["xtcp_netlink_recvs_total"][()] == 9
    assert got["xtcp_sockets_total"][()] == 1200
    assert got["xtcp_poll_sockets"][()] == 100
    assert got["xtcp_batches_encoded_total"][()] == 5
    assert got["xtcp_payloads_encoded_total"][()] == 6
    assert got["xtcp_encoded_bytes_total"][()] == 7000
    assert got["xtcp_event_loop_stall_max_seconds"][()] == 0.25
    s.polls = 8
    assert scrape(service)["xtcp_polls_total"][()] == 8


def test_decode_problems_are_labelled_by_kind(make_service: Callable[..., Service]) -> None:
    """Decoder problems appear per kind."""
    service = make_service()
    service.stats.decode_problems.update({"truncated_message": 2, "tcp_info_longer_than_known": 5})
    got = scrape(service)["xtcp_decode_problems_total"]
    assert got == {(("kind", "truncated_message"),): 2, (("kind", "tcp_info_longer_than_known"),): 5}


def test_sink_metrics_are_labelled_by_runner_name(make_service: Callable[..., Service]) -> None:
    """Per sink: delivered payloads and bytes, errors, buffer, drops by reason, connected."""
    service = make_service("memory://", "null://")
    mem = service.runners[0]
    mem.stats.payloads_delivered, mem.stats.bytes_delivered, mem.stats.delivery_errors = 3, 300, 1
    mem.stats.drop("buffer_full", 4)
    mem.stats.drop("shutdown", 1)
    mem.put(b"x" * 10)
    got = scrape(service)
    sink0 = (("sink", "0:memory"),)
    assert got["xtcp_sink_payloads_delivered_total"] == {sink0: 3, (("sink", "1:null"),): 0}
    assert got["xtcp_sink_delivered_bytes_total"][sink0] == 300
    assert got["xtcp_sink_delivery_errors_total"][sink0] == 1
    assert got["xtcp_sink_buffer_bytes"][sink0] == 10
    assert got["xtcp_sink_buffer_payloads"][sink0] == 1
    assert got["xtcp_sink_buffer_limit_bytes"][sink0] == mem.settings.buffer_bytes
    assert got["xtcp_sink_connected"][sink0] == 1
    assert got["xtcp_sink_dropped_payloads_total"] == {
        (("reason", "buffer_full"), ("sink", "0:memory")): 4, (("reason", "shutdown"), ("sink", "0:memory")): 1}


def test_queue_depths_and_bounds_are_exposed(make_service: Callable[..., Service]) -> None:
    """Both pipeline queues show their depth and capacity."""
    service = make_service()
    service.batch_q.put_nowait(None)
    got = scrape(service)
    assert got["xtcp_queue_depth"] == {(("queue", "chunks"),): 0, (("queue", "batches"),): 1}
    assert got["xtcp_queue_capacity"][(("queue", "batches"),)] == service.batch_q.maxsize


def test_poll_duration_histogram_is_fed_by_the_dump_hook(make_service: Callable[..., Service]) -> None:
    """Each finished dump is observed in xtcp_poll_duration_seconds under its family."""
    service = make_service()
    registry = build_registry(service)
    service.stats.dump_finished("inet", 0.003, 12)
    service.stats.dump_finished("inet", 0.2, 12)
    service.stats.dump_finished("inet6", 0.0005, 1)
    samples = {(s.name, tuple(sorted(s.labels.items()))): s.value
               for fam in text_string_to_metric_families(generate_latest(registry).decode())
               for s in fam.samples}
    assert samples[("xtcp_poll_duration_seconds_count", (("family", "inet"),))] == 2
    assert samples[("xtcp_poll_duration_seconds_bucket", (("family", "inet"), ("le", "0.005")))] == 1
    assert samples[("xtcp_poll_duration_seconds_count", (("family", "inet6"),))] == 1


def test_process_cpu_and_memory_come_from_the_standard_collectors(make_service: Callable[..., Service]) -> None:
    """process_cpu_seconds_total and process_resident_memory_bytes are exposed (Linux /proc)."""
    got = scrape(make_service())
    assert got["process_cpu_seconds_total"][()] > 0
    assert got["process_resident_memory_bytes"][()] > 1_000_000
    assert "python_info" in got


def test_no_label_grows_with_traffic(make_service: Callable[..., Service]) -> None:
    """Every label of the service's metrics is from the bounded set, and the series count does
    not change with the number of sockets or polls."""
    service = make_service("memory://")
    before = scrape(service)
    service.stats.sockets += 120_000
    service.stats.polls += 1000
    after = scrape(service)
    ours = {n: series for n, series in after.items() if n.startswith("xtcp_")}
    for name, series in ours.items():
        for labels in series:
            assert {k for k, _ in labels} <= BOUNDED_LABELS, name
    assert {n: len(v) for n, v in ours.items()} == {n: len(v) for n, v in before.items() if n.startswith("xtcp_")}


def test_configured_interval_and_poll_timeout_are_gauges() -> None:
    """--interval and the effective --poll-timeout are exported, so a "slow polls" alert needs no
    threshold of its own."""
    service = Service(load_config({"sink": ["memory://"], "metrics_listen": "", "interval": 30,
                                   "poll_timeout": 7}))
    got = scrape(service)
    assert got["xtcp_poll_interval_seconds"][()] == 30
    assert got["xtcp_poll_timeout_seconds"][()] == 7
    short = scrape(Service(load_config({"sink": ["memory://"], "metrics_listen": "", "interval": 2})))
    assert short["xtcp_poll_timeout_seconds"][()] == 1.6  # the default 5 s capped at 80% of --interval


def test_build_info_names_the_version_and_the_commit(make_service: Callable[..., Service]) -> None:
    """xtcp_build_info carries the package version and the git commit --version prints."""
    ((labels, value),) = scrape(make_service())["xtcp_build_info"].items()
    assert value == 1
    assert dict(labels)["commit"] == git_commit() != "unknown"


def test_codec_path_says_which_decoder_and_encoder_run(make_service: Callable[..., Service]) -> None:
    """xtcp_codec_path_info carries path="c" where the compiled core is loaded, else path="numpy"."""
    from xtcp_async import native

    got = scrape(make_service())
    assert got["xtcp_codec_path_info"] == {(("path", native.PATH),): 1.0}
    assert ("c" if native.CORE is not None else "numpy") == native.PATH
