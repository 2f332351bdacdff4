"""Netlink sock_diag replies → SocketBatch. Pure: bytes in, batch out, no I/O.

This module only picks the path; each lives beside it:

- ``"c"``: :mod:`~xtcp_async.netlink.cdecode`, the compiled core's walk and gather in one pass
  (where it is built, see :mod:`xtcp_async.native`);
- ``"numpy"``: :mod:`~xtcp_async.netlink.fastwalk`'s array walk, then
  :mod:`~xtcp_async.netlink.gather`;
- ``"scalar"``: :mod:`~xtcp_async.netlink.walk`, the specification, then the same gather.

Bad input is skipped and counted by kind; it never raises and never loses the messages around it.
The tests hold the three paths to identical batches and problem counts.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from xtcp_async import native
from xtcp_async.netlink.batch import empty_batch
from xtcp_async.netlink.cdecode import decode_native
from xtcp_async.netlink.fastwalk import ArrayWalk, fast_walk
from xtcp_async.netlink.fields import GROUPS
from xtcp_async.netlink.gather import gather, join_chunks
from xtcp_async.netlink.walk import (
    ATTRIBUTE_OVERRUN,
    BAD_ATTRIBUTE_LENGTH,
    BAD_MESSAGE_LENGTH,
    REQUEST_MESSAGE,
    SHORT_INET_DIAG_MSG,
    TRAILING_BYTES,
    TRUNCATED_MESSAGE,
    UNKNOWN_ATTRIBUTE,
    UNKNOWN_MESSAGE_TYPE,
    DecodeResult,
    ScalarWalk,
    longer_than_known,
    walk_chunk,
)

#: The decode paths by name ("auto": the compiled one where built, else numpy).
PATHS = ("c", "numpy", "scalar")


def decode_messages(chunks: Iterable[bytes], read_ns: Sequence[int] | None = None, *,
                    fast: bool = True, path: str = "auto") -> DecodeResult:
    """Decode every socket in ``chunks`` (each one or more whole netlink messages).

    ``read_ns[i]`` is when chunk ``i`` was read; it becomes each of its sockets'
    ``socket_read_timestamp_ns``. ``fast=False`` is ``path="scalar"`` (the specification the
    other paths are tested against).
    """
    chunk_list = [bytes(ch) for ch in chunks]
    if not fast:
        path = "scalar"
    if path == "auto":
        path = "c" if native.CORE is not None else "numpy"
    if path == "c":
        if native.CORE is None:
            raise RuntimeError(f"the compiled decoder is not available: {native.WHY_NOT}")
        return decode_native(native.CORE, chunk_list, read_ns)
    if path not in PATHS:
        raise ValueError(f"unknown decode path {path!r} (allowed: auto, {', '.join(PATHS)})")
    joined, bases = join_chunks(chunk_list)
    res = DecodeResult(batch=empty_batch())
    if path == "numpy":
        aw = fast_walk(joined, [len(ch) for ch in chunk_list], bases, res)
    else:
        w = ScalarWalk()
        for i, ch in enumerate(chunk_list):
            walk_chunk(ch, bases[i], i, w, res)
        aw = ArrayWalk.from_scalar(w)
    res.batch = gather(joined, aw, read_ns, res)
    res.row_chunk = aw.row_chunk
    return res


__all__ = [
    "ATTRIBUTE_OVERRUN", "BAD_ATTRIBUTE_LENGTH", "BAD_MESSAGE_LENGTH", "GROUPS", "PATHS", "REQUEST_MESSAGE",
    "SHORT_INET_DIAG_MSG", "TRAILING_BYTES", "TRUNCATED_MESSAGE", "UNKNOWN_ATTRIBUTE", "UNKNOWN_MESSAGE_TYPE",
    "DecodeResult", "decode_messages", "longer_than_known",
]
