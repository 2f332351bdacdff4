"""The column stages between the decoder and the encoder, as the pipeline sees them (issue 12).

Each batch goes through enrichment (remote ASN and prefix); at the end of a poll, the sockets seen
in it are summarised once (aggregate records for the sinks that want them, the TCP-health series
for /metrics). The stages themselves are pure functions in :mod:`xtcp_async.enrich` and
:mod:`xtcp_async.aggregate`; this object only holds their state between batches and polls.
Everything off costs one attribute test per batch.
"""

from __future__ import annotations

from xtcp_async.config import Config
from xtcp_async.enrich.stage import DEFAULT_PREFIX_LENS, Enricher
from xtcp_async.netlink.batch import SocketBatch


class ColumnStages:
    """Enrichment per batch; the per-poll summaries are added by :meth:`poll_end`."""

    def __init__(self, enricher: Enricher) -> None:
        self.enricher = enricher

    @staticmethod
    def from_config(cfg: Config) -> ColumnStages:
        """Build (and load the ASN database); a database that cannot be read is a ConfigError."""
        s = cfg.settings
        prefix_lens = s.prefix_len
        if prefix_lens is None and s.aggregate and "prefix" in s.aggregate_by:
            prefix_lens = DEFAULT_PREFIX_LENS
        return ColumnStages(Enricher.load(s.asn_db, prefix_lens))

    def batch(self, batch: SocketBatch) -> SocketBatch:
        """One decoded batch, enriched."""
        if self.enricher.active:
            batch = self.enricher(batch)
        return batch

    def reload(self) -> None:
        """SIGHUP: reload what is loaded from files (the ASN database, in a worker thread)."""
        self.enricher.start_reload()
