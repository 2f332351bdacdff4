"""The compiled decode: walk and gather in one pass of C (``xtcp_async._fastcore``).

The core fills column matrices this module allocates (one uint32 and one uint64 matrix, a row
per field, so each column is a contiguous view) and returns what the walk noticed; this module
turns that into the same :class:`DecodeResult` the scalar and numpy paths give (the tests hold
all three to identical columns, lengths and problem counts).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from xtcp_async.native import ATTR_GROUPS, INT_LAYOUT, N_U32, N_U64, RAW_FIELDS
from xtcp_async.netlink.batch import SocketBatch
from xtcp_async.netlink.fields import GROUP_BY_NAME
from xtcp_async.netlink.walk import PROBLEM_KINDS, DecodeResult, longer_than_known

_MSG_LEN = GROUP_BY_NAME["inet_diag_msg"].size


def _alloc(n: int) -> tuple[Any, ...]:
    # Uninitialised: the core writes every cell of every row (zero where a row lacks the field);
    # zero-filling first was ~9% of a decode.
    return (np.empty((N_U32, n), dtype=np.uint32), np.empty((N_U64, n), dtype=np.uint64),
            np.empty((len(ATTR_GROUPS), n), dtype=np.int32),
            tuple(np.empty((n, f.size), dtype=np.uint8) for f in RAW_FIELDS),
            np.empty(n, dtype="S16"), np.empty(n, dtype=np.int64))


def decode_native(core: Any, chunks: Sequence[bytes], read_ns: Sequence[int] | None) -> DecodeResult:
    """Decode ``chunks`` with the compiled core (``core`` is xtcp_async.native.CORE)."""
    held: list[tuple[Any, ...]] = []

    def alloc(n: int) -> tuple[Any, ...]:
        held.append(_alloc(n))
        return held[0]

    n, counts, too_long, done, interrupted, messages, errors = core.decode(chunks, alloc)
    u32, u64, lens, raws, cong, row_chunk = held[0]
    columns: dict[str, npt.NDArray[Any]] = {}
    for f, wide, idx in INT_LAYOUT:
        columns[f.name] = u64[idx] if wide else u32[idx]
    for f, raw in zip(RAW_FIELDS, raws, strict=True):
        columns[f.name] = raw
    lengths: dict[str, npt.NDArray[Any]] = {g.name: lens[i] for i, g in enumerate(ATTR_GROUPS)}
    lengths["inet_diag_msg"] = np.full(n, _MSG_LEN, dtype=np.int32)
    problems: Counter[str] = Counter({k: v for k, v in zip(PROBLEM_KINDS, counts, strict=True) if v})
    for g, count in zip(ATTR_GROUPS, too_long, strict=True):
        if count:
            problems[longer_than_known(g.name)] += count
    if read_ns is not None and len(read_ns):
        read = np.asarray(read_ns, dtype=np.int64)[row_chunk]
    else:
        read = np.zeros(n, dtype=np.int64)
    batch = SocketBatch(n=n, columns=columns, lengths=lengths, congestion=cong, read_ns=read)
    return DecodeResult(batch=batch, problems=problems, done=bool(done), errors=list(errors),
                        dump_interrupted=bool(interrupted), messages=messages,
                        row_chunk=np.asarray(row_chunk[:n], dtype=np.int64))


__all__ = ["decode_native"]
