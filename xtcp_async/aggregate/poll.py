"""One poll's summary: the columns of all its sockets, their deltas, and (with --aggregate) its
aggregate records. Fed batch by batch; summarised once when the poll ends.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from xtcp_async.aggregate.columns import ColumnBuffer, PollColumns
from xtcp_async.aggregate.compute import group_stats
from xtcp_async.aggregate.deltas import Deltas, DeltaState, poll_deltas
from xtcp_async.aggregate.groups import group
from xtcp_async.aggregate.records import AggregateSettings, aggregate_records
from xtcp_async.netlink.batch import PollMeta, SocketBatch


@dataclass(frozen=True)
class PollSummary:
    """What the health metrics and the on-box view read: every socket's columns and deltas."""

    cols: PollColumns
    deltas: Deltas


def summarize(cols: PollColumns, prev: DeltaState) -> tuple[PollSummary, DeltaState]:
    """The poll's deltas against the previous poll's state (pure)."""
    has = cols.has("bytes_received")
    deltas, state = poll_deltas(prev, cols.cookie, cols.bytes_acked, cols.bytes_received, has)
    return PollSummary(cols, deltas), state


def records_of(summary: PollSummary, meta: PollMeta, settings: AggregateSettings) -> list[dict[str, Any]]:
    """The poll's aggregate records (pure)."""
    groups = group(summary.cols, settings.keys, settings.max_groups)
    stats = group_stats(summary.cols, groups, summary.deltas)
    return aggregate_records(summary.cols, groups, stats, meta, settings)


class PollAggregator:
    """Holds a poll's columns until it ends, and the cookie state from one poll to the next."""

    def __init__(self, settings: AggregateSettings | None) -> None:
        self.settings = settings
        self._buffer = ColumnBuffer()
        self._state = DeltaState.empty()
        self.last: PollSummary | None = None

    def add(self, batch: SocketBatch) -> None:
        self._buffer.add(PollColumns.of(batch))

    def end(self, meta: PollMeta) -> list[dict[str, Any]]:
        """Summarise the poll; its aggregate records (none without --aggregate)."""
        cols = self._buffer.take()  # views: everything below reads them before the next poll's add
        self.last, self._state = summarize(cols, self._state)
        if self.settings is None:
            return []
        return records_of(self.last, meta, self.settings)
