"""Rows waiting in the encoder: each decoded batch beside its rows already encoded, per format.

The encoder encodes a batch as soon as it arrives, while its columns are still in cache (the
decoder has just written them; encoding them ~10k rows later read them back from memory, ~10%
more CPU per poll), but sends rows only in payloads of ``max_batch_rows`` or at a poll's end. A
pending batch keeps its columns too: if the poll turns out incomplete before its rows are sent,
they are encoded again with ``poll_dump_interrupted`` set (rare; see Encoder._emit).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol, TypeVar

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
            head[fmt], tail[fmt] = _split_at(parts, k, lambda p, j: (p.slice(0, j), p.slice(j, p.n)))
        return (PendingBatch(self.batch.slice(0, k), head),
                PendingBatch(self.batch.slice(k, self.batch.n), tail))


class _Rows(Protocol):
    @property
    def n(self) -> int: ...


R = TypeVar("R", bound=_Rows)


def _split_at(items: list[R], k: int, cut: Callable[[R, int], tuple[R, R]]) -> tuple[list[R], list[R]]:
    """The first ``k`` rows of ``items`` and the rest; the item on the line is cut in two."""
    for i, x in enumerate(items):
        if k >= x.n:
            k -= x.n
            continue
        if not k:
            return items[:i], items[i:]
        first, rest = cut(x, k)
        return [*items[:i], first], [rest, *items[i + 1:]]
    return list(items), []


def split_pending(batches: list[PendingBatch], cut: int) -> tuple[list[PendingBatch], list[PendingBatch]]:
    """The first ``cut`` rows of ``batches`` and the rest; a batch on the line is split in two."""
    return _split_at(batches, cut, PendingBatch.split)


__all__ = ["PendingBatch", "split_pending"]
