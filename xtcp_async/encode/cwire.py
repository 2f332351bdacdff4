"""Protobuf wire bytes for a SocketBatch from the compiled core (``xtcp_async._fastcore``).

The record's layout is not in C: :func:`~xtcp_async.encode.items.items` lists the fields from the
field table, ascending by number, exactly as the numpy word encoder gets them, and the core
writes each row item by item. A new field in netlink/fields.py is a varint item of its column
there and so is encoded here with no change to the C code. The tests hold this output
byte-identical to encode/wire.py's and to the protobuf library's.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from xtcp_async.encode.framing import EncodedRows
from xtcp_async.encode.items import Address, Const, Item, Table, Varint, items
from xtcp_async.netlink.batch import SocketBatch

#: Envelope ``row = 10``, length-delimited: the tag byte of a protobuf-list row.
ROW_TAG = b"\x52"


def _core_item(it: Item) -> tuple[Any, ...]:
    """One item in the core's tuple form (see fc_encode in _ext/fastcore.c)."""
    if isinstance(it, Const):
        return (0, it.raw)
    if isinstance(it, Varint):
        values = np.ascontiguousarray(it.values)
        if values.dtype.itemsize not in (4, 8):
            values = values.astype(np.uint64 if it.wide else np.uint32)
        if it.present is not None:
            lens, end = it.present
            return (4, it.tag, values, values.dtype.itemsize, np.ascontiguousarray(lens, dtype=np.int32), end)
        return (1, it.tag, values, values.dtype.itemsize)
    if isinstance(it, Table):
        return (2, np.ascontiguousarray(it.codes, dtype=np.int64), tuple(it.entries))
    assert isinstance(it, Address)
    raw = np.ascontiguousarray(it.raw, dtype=np.uint8)
    return (3, it.tag, raw, raw.shape[1])


def encode_rows_native(core: Any, batch: SocketBatch, *, list_entries: bool) -> EncodedRows:
    """Serialized XtcpFlatRecords; ``list_entries`` frames each as an Envelope ``row``."""
    n = batch.n
    offsets = np.zeros(n + 1, dtype=np.int64)
    if n == 0:
        return EncodedRows(b"", offsets)
    core_items = [_core_item(it) for it in items(batch, masked=False)]
    data = core.encode(core_items, n, ROW_TAG if list_entries else b"", offsets)
    return EncodedRows(data, offsets)


__all__ = ["encode_rows_native"]
