"""JSON lines from the compiled core: the same text as encode/jsonl.py, written in C.

The keys and their order come from the field table here (a new kernel field is one more decimal
item, nothing to change in C); the core prints each row's integers, addresses (inet_ntop, as
``SocketBatch.addresses_text``) and the few per-batch strings picked from tables built in Python
with the reference's own functions (json.dumps, the family and congestion names). The tests hold
the bytes identical to encode/jsonl.py's.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np

from xtcp_async.encode.framing import EncodedRows
from xtcp_async.encode.jsonl import meta_head, origin_members
from xtcp_async.netlink import constants as c
from xtcp_async.netlink.batch import DEST_PREFIX, DESTINATION, SOURCE, SocketBatch
from xtcp_async.netlink.distinct import small_codes
from xtcp_async.netlink.fields import CONGESTION_ENUM, CONGESTION_ENUM_NAMES, FIELDS

_INT_FIELDS = [f for f in FIELDS if f.group not in ("meta", "stage") and f.size > 0 and f.proto_type != "bytes"]
_CONST, _TABLE, _DEC, _SDEC, _ADDR = 0, 2, 5, 6, 7


def _key(name: str) -> bytes:
    return f',"{name}":'.encode()




def _family_table(batch: SocketBatch) -> tuple[Any, ...]:
    codes, uniq = small_codes(batch.columns["inet_diag_msg_family"])
    entries = tuple(_key("inet_diag_msg_family_name") + f'"{c.FAMILY_NAMES.get(int(v), str(int(v)))}"'.encode()
                    for v in uniq)
    return (_TABLE, np.ascontiguousarray(codes, dtype=np.int64), entries)


def _congestion_table(batch: SocketBatch) -> tuple[Any, ...]:
    n = batch.n
    present = batch.lengths["congestion"] > 0
    raw = np.ascontiguousarray(batch.congestion).view(np.uint64).reshape(n, 2)
    codes, uniq = small_codes(raw)
    entries = []
    for u in uniq:
        name = np.asarray(u, dtype=np.uint64).tobytes().rstrip(b"\0").decode("ascii", "replace")
        enum = CONGESTION_ENUM_NAMES[CONGESTION_ENUM.get(name, 0)]
        entries.append(f',"congestion_algorithm_string":{json.dumps(name)},'
                       f'"congestion_algorithm_enum":"{enum}"'.encode())
    codes = np.where(present, codes, len(entries)).astype(np.int64)
    entries.append(b"")
    return (_TABLE, codes, tuple(entries))


def _column(values: Any) -> Any:
    arr = np.ascontiguousarray(values)
    return arr if arr.dtype.itemsize in (4, 8) else arr.astype(np.uint64)


def json_items(batch: SocketBatch) -> list[tuple[Any, ...]]:
    """The row program, in encode/jsonl.py's key order."""
    n = batch.n
    fam = _column(batch.columns["inet_diag_msg_family"])
    counter = np.arange(n, dtype=np.int64) + np.int64(batch.meta.record_counter_start)
    out: list[tuple[Any, ...]] = [
        (_CONST, meta_head(batch).encode()),
        (_SDEC, _key("record_counter"), counter, 8),
        (_SDEC, _key("socket_read_timestamp_ns"), np.ascontiguousarray(batch.read_ns, dtype=np.int64), 8),
        _family_table(batch),
        (_DEC, _key("tcp_info_length"), _column(batch.lengths["tcp_info"]), 4, None, 0),
        (_ADDR, _key(SOURCE), np.ascontiguousarray(batch.columns[SOURCE], dtype=np.uint8), 16, fam,
         fam.dtype.itemsize),
        (_ADDR, _key(DESTINATION), np.ascontiguousarray(batch.columns[DESTINATION], dtype=np.uint8), 16, fam,
         fam.dtype.itemsize),
        # The column stages' fields (netlink/fields.py group "stage"), as encode/jsonl.py writes them.
        (_DEC, _key("sample_rate_ppm"), _column(batch.stage_column("sample_rate_ppm")), 4, None, 0),
        (_TABLE, (batch.stage_column("closed") != 0).astype(np.int64), (b"", b',"closed":true')),
    ]
    if batch.origin_codes is not None:  # the row's namespace/container/pod, one text per namespace
        out.append((_TABLE, np.ascontiguousarray(batch.origin_codes, dtype=np.int64),
                    tuple(origin_members(o).encode() for o in batch.origins)))
    if DEST_PREFIX in batch.columns:  # the prefix enrichment stage ran
        out.append((_ADDR, _key(DEST_PREFIX), np.ascontiguousarray(batch.columns[DEST_PREFIX], dtype=np.uint8), 16,
                    fam, fam.dtype.itemsize))
    for f in _INT_FIELDS:
        lens = batch.lengths.get(f.group)
        if f.group == "inet_diag_msg":
            col = _column(batch.columns[f.name])
            out.append((_DEC, _key(f.name), col, col.dtype.itemsize, None, 0))
        elif lens is not None and n and int(lens.max()) >= f.end:
            # (enrichment fields have lengths, and so a column, only when their stage ran)
            col = _column(batch.columns[f.name])
            out.append((_DEC, _key(f.name), col, col.dtype.itemsize,
                        np.ascontiguousarray(lens, dtype=np.int32), f.end))
    out.append(_congestion_table(batch))
    out.append((_CONST, b"}\n"))
    return out


def encode_rows_native(core: Any, batch: SocketBatch) -> EncodedRows:
    """One newline-terminated JSON object per socket, back to back."""
    n = batch.n
    offsets = np.zeros(n + 1, dtype=np.int64)
    if n == 0:
        return EncodedRows(b"", offsets)
    return EncodedRows(core.encode(json_items(batch), n, b"", offsets), offsets)


__all__ = ["encode_rows_native", "json_items"]
