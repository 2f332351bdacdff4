"""The column stages in their fixed order (filter in the kernel → sample → change-only), as
one object the decoder calls per batch and at each poll's end."""

from __future__ import annotations

import numpy as np

from xtcp_async.netlink.batch import PollMeta, SocketBatch
from xtcp_async.netlink.fields import STAGE_DEFAULTS
from xtcp_async.stages.changes import ChangeTracker
from xtcp_async.stages.sample import Sampler
from xtcp_async.stages.spec import StageSettings


class StageChain:
    """Sample, then keep only changes; every batch out carries the stage columns."""

    def __init__(self, settings: StageSettings) -> None:
        self.sampler = Sampler(settings.samples) if settings.samples else None
        self.tracker = ChangeTracker(settings.emit_fields, settings.heartbeat) if settings.emit == "changed" else None
        self.rows_in = 0
        self.rows_sampled_out = 0
        self.rows_unchanged = 0
        self.rows_closed = 0

    def on_batch(self, batch: SocketBatch) -> SocketBatch:
        self.rows_in += batch.n
        if self.sampler is not None:
            n = batch.n
            batch = self.sampler(batch)
            self.rows_sampled_out += n - batch.n
        if self.tracker is not None:
            n = batch.n
            batch = self.tracker.on_batch(batch)
            self.rows_unchanged += n - batch.n
        return _stamped(batch)

    def on_poll_end(self, *, complete: bool, meta: PollMeta | None = None) -> SocketBatch | None:
        """Closed sockets' final records (change-only mode), stamped with ``meta``."""
        if self.tracker is None:
            return None
        closed = self.tracker.on_poll_end(complete=complete, meta=meta)
        if closed is None or not closed.n:
            return None
        self.rows_closed += closed.n
        return _stamped(closed)


def _stamped(batch: SocketBatch) -> SocketBatch:
    # Batches are concatenated before encoding, so all must have the same columns.
    for name, default in STAGE_DEFAULTS.items():
        if name not in batch.columns:
            batch.columns[name] = np.full(batch.n, default, dtype=np.uint32)
    return batch
