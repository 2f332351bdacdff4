"""A record's fields as *items*, ascending by field number: what every protobuf encoder writes.

An item is a varint column, a per-batch constant, a per-row pick from a small table of encoded
strings, or a fixed-width bytes column. The list is built from the field table
(netlink/fields.py): a field added there is a varint item of its column without any change here,
and so reaches both the numpy word encoder (encode/wire.py) and the compiled one (encode/cwire.py).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from xtcp_async.encode.varints import field_bytes, tag
from xtcp_async.netlink import constants as c
from xtcp_async.netlink.batch import DEST_PREFIX, DESTINATION, SOURCE, SocketBatch
from xtcp_async.netlink.distinct import small_codes
from xtcp_async.netlink.fields import CONGESTION_ENUM, FIELD_BY_NAME, FIELDS, Field
from xtcp_async.netlink.origin import ORIGIN_FIELDS

IntArray = npt.NDArray[Any]
_M64 = (1 << 64) - 1

@dataclass
class Varint:
    """A varint field read from a per-row column (0 where proto3 omits it)."""

    tag: bytes
    values: IntArray
    wide: bool  # 64-bit values: tag + varint can need two words
    #: (group lengths, end): rows whose length is below ``end`` omit the field whatever the value
    #: (only with ``items(..., masked=False)``; masked items have those values zeroed instead).
    present: tuple[IntArray, int] | None = None


@dataclass
class Const:
    """The same bytes in every row (per-batch metadata)."""

    raw: bytes


@dataclass
class Table:
    """Per row, one of a few encoded byte strings (``codes`` index ``entries``)."""

    codes: npt.NDArray[np.intp]
    entries: list[bytes]


@dataclass
class Address:
    """A 16-byte address column as a length-delimited bytes field (always present)."""

    tag: bytes
    raw: IntArray


Item = Varint | Const | Table | Address


def _family_name(fam: int) -> str:
    # Same text as the reference encoder and SocketBatch.to_records.
    return c.FAMILY_NAMES.get(fam, str(fam))


_BY_NUMBER = sorted(FIELDS, key=lambda f: f.number)


def items(batch: SocketBatch, *, masked: bool = True) -> list[Item]:
    """Every field of the record, ascending by field number, as items.

    ``masked=False``: a field some rows lack keeps its column and says which rows carry it
    (``Varint.present``) instead of a zeroed copy, for an encoder that checks per row.
    """
    m = batch.meta
    n = batch.n
    lengths = batch.lengths
    meta_values: dict[str, int | str | bool] = {
        "schema_version": m.schema_version, "daemon_version": m.daemon_version,
        "timestamp_ns": m.timestamp_ns, "hostname": m.hostname, "location": m.location,
        "label": m.label, "tag": m.tag, "poll_id": m.poll_id, "poll_dump_interrupted": m.dump_interrupted,
    }
    per_row: dict[str, Callable[[], Item | None]] = {
        "record_counter": lambda: Varint(
            tag(60, 0), np.arange(n, dtype=np.uint64) + np.uint64(m.record_counter_start & _M64), True),
        "socket_read_timestamp_ns": lambda: Varint(
            tag(3002, 0), batch.read_ns.astype(np.int64, copy=False).view(np.uint64), True),
        "tcp_info_length": lambda: Varint(tag(3004, 0), _group_lengths(batch, "tcp_info"), False),
        "inet_diag_msg_family_name": lambda: _family_table(batch),
        "congestion_algorithm_string": lambda: _congestion_table(batch),
        SOURCE: lambda: Address(tag(1007, 2), batch.columns[SOURCE]),
        DESTINATION: lambda: Address(tag(1008, 2), batch.columns[DESTINATION]),
        DEST_PREFIX: lambda: (Address(tag(3401, 2), batch.columns[DEST_PREFIX])
                              if DEST_PREFIX in batch.columns else None),
        "sample_rate_ppm": lambda: Varint(tag(3350, 0), batch.stage_column("sample_rate_ppm"), False),
        "closed": lambda: Varint(tag(3351, 0), batch.columns["closed"], False) if "closed" in batch.columns else None,
    }
    for name in ORIGIN_FIELDS:  # per row, one entry of the batch's namespace table
        per_row[name] = functools.partial(_origin_table, batch, name)
    # Group lengths' extremes once: most groups are fully present or fully absent in a batch.
    extremes: dict[str, tuple[int, int]] = {}
    for g, lens in lengths.items():
        extremes[g] = (int(lens.min()), int(lens.max())) if n else (0, 0)

    items: list[Item] = []
    pending_const = b""
    for f in _BY_NUMBER:
        if f.name in meta_values:
            pending_const += field_bytes(f.number, meta_values[f.name])
            continue
        if f.name == "congestion_algorithm_enum":
            continue  # part of the congestion table item (its number follows the string's)
        item = per_row[f.name]() if f.name in per_row else _kernel_varint(batch, f, extremes, masked)
        if item is None:
            continue
        if pending_const:
            items.append(Const(pending_const))
            pending_const = b""
        items.append(item)
    if pending_const:
        items.append(Const(pending_const))
    return items


def _group_lengths(batch: SocketBatch, group: str) -> IntArray:
    lens = batch.lengths.get(group)
    return np.zeros(batch.n, dtype=np.int32) if lens is None else lens


def _kernel_varint(batch: SocketBatch, f: Field, extremes: dict[str, tuple[int, int]],
                   masked: bool) -> Varint | None:
    lo = 0
    if f.group != "inet_diag_msg":
        lo, hi = extremes.get(f.group, (0, 0))
        if hi < f.end:
            return None  # no row carries it (or, for enrichment fields, the stage is off)
    col = batch.columns[f.name]
    if f.group != "inet_diag_msg" and lo < f.end:
        if not masked:
            return Varint(tag(f.number, 0), col, col.dtype.itemsize > 4, (batch.lengths[f.group], f.end))
        col = np.where(batch.lengths[f.group] >= f.end, col, col.dtype.type(0))
    return Varint(tag(f.number, 0), col, col.dtype.itemsize > 4)


def _origin_table(batch: SocketBatch, name: str) -> Table | None:
    if batch.origin_codes is None:
        return None
    number = FIELD_BY_NAME[name].number
    entries = [field_bytes(number, getattr(o, name)) for o in batch.origins]
    return Table(batch.origin_codes, entries) if any(entries) else None


def _family_table(batch: SocketBatch) -> Table:
    codes, uniq = small_codes(batch.columns["inet_diag_msg_family"])
    return Table(codes, [field_bytes(3003, _family_name(int(v))) for v in uniq])


def _congestion_table(batch: SocketBatch) -> Table | None:
    n = batch.n
    present = _group_lengths(batch, "congestion") > 0
    if not present.any():
        return None
    # S16 keeps trailing NULs as padding, so equal raw bytes are equal names.
    raw = np.ascontiguousarray(batch.congestion).view(np.uint64).reshape(n, 2)
    codes, uniq = small_codes(raw)
    entries = []
    for u in uniq:
        name = np.asarray(u, dtype=np.uint64).tobytes().rstrip(b"\0").decode("ascii", "replace")
        entries.append(field_bytes(1300, name) + field_bytes(1301, CONGESTION_ENUM.get(name, 0)))
    codes = np.where(present, codes, len(entries))
    entries.append(b"")
    return Table(codes, entries)


__all__ = ["Address", "Const", "Item", "Table", "Varint", "items"]
