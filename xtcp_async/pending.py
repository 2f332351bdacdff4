"""Rows waiting in the encoder: each decoded batch beside its rows already encoded, per format.

The encoder encodes a batch as soon as it arrives, while its columns are still in cache (the
decoder has just written them; encoding them ~10k rows later read them back from memory, ~10%
more CPU per poll), but sends rows only in payloads of ``max_batch_rows`` or at a poll's end. A
pending batch keeps its columns too: if the poll turns out incomplete before its rows are sent,
they are encoded again with ``poll_dump_interrupted`` set (rare; see Encoder._emit).
"""

from __future__ import annotations

from dataclasses import dataclass

from xtcp_async.encode import EncodedRows
from xtcp_async.netlink.batch import SocketBatch


@dataclass
class PendingBatch:
    """A batch and its encoded rows: ``parts[fmt]`` covers exactly the batch's rows, in order."""

    batch: SocketBatch
    parts: dict[str, list[EncodedRows]]

    @property
    def n(self) -> int:
        return self.batch.n

    def split(self, k: int) -> tuple[PendingBatch, PendingBatch]:
        """The first ``k`` rows and the rest (views of the same columns and bytes)."""
        head: dict[str, list[EncodedRows]] = {}
        tail: dict[str, list[EncodedRows]] = {}
        for fmt, parts in self.parts.items():
            head[fmt], tail[fmt] = _split_parts(parts, k)
        return (PendingBatch(self.batch.slice(0, k), head),
                PendingBatch(self.batch.slice(k, self.batch.n), tail))


def _split_parts(parts: list[EncodedRows], k: int) -> tuple[list[EncodedRows], list[EncodedRows]]:
    for i, p in enumerate(parts):
        if k >= p.n:
            k -= p.n
            continue
        head = [*parts[:i], p.slice(0, k)] if k else parts[:i]
        return head, [p.slice(k, p.n), *parts[i + 1:]]
    return list(parts), []


def split_pending(batches: list[PendingBatch], cut: int) -> tuple[list[PendingBatch], list[PendingBatch]]:
    """The first ``cut`` rows of ``batches`` and the rest; a batch on the line is split in two."""
    head: list[PendingBatch] = []
    for i, b in enumerate(batches):
        if cut >= b.n:
            head.append(b)
            cut -= b.n
            continue
        if not cut:
            return head, batches[i:]
        first, rest = b.split(cut)
        return [*head, first], [rest, *batches[i + 1:]]
    return head, []


__all__ = ["PendingBatch", "split_pending"]
