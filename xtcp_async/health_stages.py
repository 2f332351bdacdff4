"""The column stages between the decoder and the encoder, as the pipeline sees them (issue 12).

Each batch goes through enrichment (remote ASN and prefix); at the end of a poll, the sockets seen
in it are summarised once (aggregate records for the sinks that want them, the TCP-health series
for /metrics). The stages themselves are pure functions in :mod:`xtcp_async.enrich` and
:mod:`xtcp_async.aggregate`; this object only holds their state between batches and polls.
Everything off costs one attribute test per batch.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

from xtcp_async.aggregate.poll import PollAggregator, PollSummary
from xtcp_async.aggregate.records import AggregateSettings
from xtcp_async.config import Config
from xtcp_async.enrich.stage import DEFAULT_PREFIX_LENS, Enricher
from xtcp_async.netlink.batch import PollMeta, SocketBatch


class HealthStages:
    """Enrichment per batch; per poll, the summary and (with --aggregate) the aggregate records."""

    def __init__(self, enricher: Enricher, aggregate: AggregateSettings | None = None,
                 meta: PollMeta | None = None, *, summarize: bool = False) -> None:
        self.enricher = enricher
        self.meta = meta or PollMeta()
        #: Called with each poll's summary (the TCP-health metrics register here).
        self.summary_listeners: list[Callable[[PollSummary], None]] = []
        self._aggregator = PollAggregator(aggregate) if aggregate is not None or summarize else None

    @staticmethod
    def from_config(cfg: Config) -> HealthStages:
        """Build (and load the ASN database); a database that cannot be read is a ConfigError."""
        s = cfg.settings
        prefix_lens = s.prefix_len
        if prefix_lens is None and s.aggregate and "prefix" in s.aggregate_by:
            prefix_lens = DEFAULT_PREFIX_LENS
        aggregate = AggregateSettings(tuple(dict.fromkeys(s.aggregate_by)), s.aggregate_max_groups) \
            if s.aggregate else None
        meta = PollMeta(hostname=s.hostname, location=s.location, label=s.label, tag=s.tag,
                        daemon_version=cfg.daemon_version)
        # The TCP-health series need the per-poll summary whenever /metrics is served; under
        # --emit changed the encoder sees only changed rows, so there is no whole poll to summarise.
        return HealthStages(Enricher.load(s.asn_db, prefix_lens), aggregate, meta,
                            summarize=bool(s.metrics_listen) and s.emit != "changed")

    @property
    def summarizing(self) -> bool:
        """Whether polls are summarised at all (metrics on, or --aggregate)."""
        return self._aggregator is not None

    def batch(self, batch: SocketBatch) -> SocketBatch:
        """One decoded batch, enriched (and remembered for the poll's summary)."""
        if self.enricher.active:
            batch = self.enricher(batch)
        if self._aggregator is not None:
            self._aggregator.add(batch)
        return batch

    def poll_end(self, poll_id: int, timestamp_ns: int) -> list[dict[str, Any]]:
        """Summarise the poll that just ended; its aggregate records (none without --aggregate)."""
        if self._aggregator is None:
            return []
        meta = replace(self.meta, poll_id=poll_id, timestamp_ns=timestamp_ns)
        records = self._aggregator.end(meta)
        if self._aggregator.last is not None:
            for fn in self.summary_listeners:
                fn(self._aggregator.last)
        return records

    def reload(self) -> None:
        """SIGHUP: reload what is loaded from files (the ASN database, in a worker thread)."""
        self.enricher.start_reload()
