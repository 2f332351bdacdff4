"""Protobuf wire bytes for a SocketBatch, written column by column with numpy.

Why not one message object per socket: the generated classes cost ~19 µs per record, seconds
per poll at 120k sockets (see DESIGN.md). Here every field is an *item* (a varint column, a
per-batch constant, or a per-row pick from a small table of encoded strings) and the whole
batch is written item by item, ascending by field number like the protobuf library does, so
the bytes normally equal :mod:`xtcp_async.encode.reference` (the tests check the parsed
records always do).

How the bytes get placed, in two sweeps:

1. Every item's encoded length per row (0 where proto3 omits the field: absent or zero).
   Their sum per row gives each row's length and so each row's start.
2. Per item, its tag and value as little-endian 64-bit *words* (tag + varint fit one word
   for 32-bit fields, two for 64-bit ones), stored with one numpy fancy assignment into an
   unaligned, byte-strided uint64 view of the output at each row's running write position.
   A word store writes 8 bytes even when the field is shorter (or omitted): the surplus lands
   where a later item of the same row is written afterwards, so it is overwritten. Only a
   row's last store can reach past the row, into the next row's head; rows are therefore
   written in two passes (even rows, then odd rows) and the even rows' heads, saved in
   between, are put back at the end. Within one assignment the rows' stores never overlap
   (rows are at least one store's reach long, else the reference encoder does the batch), so
   numpy's element order there does not matter; between assignments it is program order.
   Runs of short varints (flags, states: their longest rows fit one word together) are
   shifted into one word and stored once; rows go in blocks so one pass stays in cache.

The varint arithmetic: a value's bit length (exact from float64's exponent for values below
2**53, split in halves above) gives the varint length from a table; the 7-bit groups are
spread into bytes by adding ``x & ~mask`` (a left shift of the bits above the mask by one)
once per group, then the continuation bits come from a table by length.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from xtcp_async.encode import reference
from xtcp_async.encode.framing import EncodedRows
from xtcp_async.encode.items import Address, Const, Item, Table, Varint, items
from xtcp_async.encode.varints import (
    bitlen,
    cont_tables,
    field_bytes,
    le_words,
    len_table,
    spread,
)
from xtcp_async.netlink.batch import SocketBatch

U64 = npt.NDArray[np.uint64]
IntArray = npt.NDArray[Any]

#: Envelope ``row = 10``, length-delimited: the tag byte of a protobuf-list row.
ROW_TAG = b"\x52"
#: Rows written per block (see _encode).
_BLOCK_ROWS = 32768


# --- the two sweeps ----------------------------------------------------------------------------------

@dataclass
class _Plan:
    """Per item: encoded length per row and how many words its stores write."""

    item: Item
    lens: npt.NDArray[np.uint8] | int
    n_words: int
    #: The longest encoded length in any row (varints).
    longest: int = 0
    # Varint: tables by encoded length; Table: entry words and lengths.
    tables: tuple[Any, ...] = ()


def _plan(item: Item) -> _Plan:
    if isinstance(item, Const):
        return _Plan(item, len(item.raw), (len(item.raw) + 7) // 8)
    if isinstance(item, Address):
        return _Plan(item, len(item.tag) + 1 + 16, 3)
    if isinstance(item, Table):
        n_words = max(1, max((len(e) + 7) // 8 for e in item.entries))
        words = np.array([le_words(e, n_words) for e in item.entries], dtype=np.uint64).reshape(-1, n_words)
        lens = np.array([len(e) for e in item.entries], dtype=np.uint8)
        if max(len(e) for e in item.entries) > 255:
            raise _Unsupported("table entry longer than 255 bytes")
        return _Plan(item, lens[item.codes], n_words, tables=(words,))
    tl = len(item.tag)
    lens = len_table(tl)[bitlen(item.values)]
    longest = int(lens.max()) if lens.size else 0
    if not item.wide and tl + 5 > 8:
        raise _Unsupported("tag too long for one word")
    # 0 words: omitted in every row, nothing to store.
    return _Plan(item, lens, (longest + 7) // 8, longest, cont_tables(tl))


class _Unsupported(Exception):
    """The batch has a shape the word stores do not handle; the reference encoder does it."""


def _store_item(view: U64, pos: npt.NDArray[np.int64], p: _Plan, rows: slice) -> None:
    """Write item ``p`` of the rows ``rows`` at byte positions ``pos``."""
    item = p.item
    if isinstance(item, Const):
        for j, w in enumerate(le_words(item.raw, p.n_words)):
            view[pos + 8 * j if j else pos] = np.uint64(w)
        return
    if isinstance(item, Table):
        (table_words,) = p.tables
        picked = table_words[item.codes[rows]]
        for j in range(p.n_words):
            view[pos + 8 * j if j else pos] = picked[:, j]
        return
    if isinstance(item, Address):
        addr = item.raw[rows]
        block = np.zeros((len(addr), 24), dtype=np.uint8)
        block[:, :len(item.tag)] = np.frombuffer(item.tag, dtype=np.uint8)
        block[:, len(item.tag)] = 16
        block[:, len(item.tag) + 1:len(item.tag) + 17] = addr
        w3 = block.view(np.uint64)
        for j in range(3):
            view[pos + 8 * j if j else pos] = w3[:, j]
        return
    w0, w1 = _varint_words(p, rows)
    view[pos] = w0
    if p.n_words > 1:
        view[pos + 8] = w1


def _varint_words(p: _Plan, rows: slice) -> tuple[U64, U64]:
    """Tag and varint of a :class:`Varint` item as two little-endian words (bytes 0-7, 8-15)."""
    item = p.item
    assert isinstance(item, Varint) and not isinstance(p.lens, int)
    cont_lo, cont_hi = p.tables
    tl = len(item.tag)
    tag = np.uint64(int.from_bytes(item.tag, "little"))
    lens_r = p.lens[rows]
    v = item.values[rows]
    if not item.wide:
        x = spread(v, 5)
        x |= cont_lo[lens_r]
        x <<= np.uint64(8 * tl)
        x |= tag
        return x, x
    v64 = v.astype(np.uint64, copy=False)
    lo = spread(v64, 8)
    lo |= cont_lo[lens_r]
    shift = np.uint64(8 * tl)
    w0 = (lo << shift) | tag
    if p.n_words < 2:
        return w0, w0
    # Varint bytes 8 and 9 carry value bits 56-62 and 63.
    hi = ((v64 >> np.uint64(56)) & np.uint64(0x7F)) | ((v64 >> np.uint64(63)) << np.uint64(8))
    hi |= cont_hi[lens_r]
    w1 = (lo >> np.uint64(64 - 8 * tl)) | (hi << shift)
    return w0, w1


#: Low ``k`` bytes set, for k = 0..8.
_LEN_MASK = np.array([(1 << (8 * k)) - 1 for k in range(9)], dtype=np.uint64)


def _masked_word(p: _Plan, rows: slice) -> U64:
    """A one-word varint item with the bytes past its length (in each row) zeroed."""
    assert not isinstance(p.lens, int)
    word, _ = _varint_words(p, rows)
    word &= _LEN_MASK[p.lens[rows]]
    return word


def _units(plans: list[_Plan]) -> list[list[_Plan]]:
    """Plans grouped into stores: runs of one-word varints whose longest rows fit one word together.

    Each store costs several times the shifts and ORs that merging costs (numpy's unaligned
    fancy assignment is ~5 ns an element), and small fields (flags, states, scales) come in runs.
    """
    units: list[list[_Plan]] = []
    used = 8
    for p in plans:
        if not p.n_words:
            continue
        if isinstance(p.item, Varint) and p.n_words == 1:
            if used + p.longest <= 8:
                units[-1].append(p)
                used += p.longest
                continue
            units.append([p])
            used = p.longest
        else:
            units.append([p])
            used = 8
    return units


def _row_header(rec_len: IntArray) -> Varint:
    return Varint(ROW_TAG, rec_len.astype(np.uint64), True)


def encode_rows(batch: SocketBatch, *, list_entries: bool) -> EncodedRows:
    """Serialized XtcpFlatRecords; ``list_entries`` frames each as an Envelope ``row``."""
    n = batch.n
    if n == 0:
        return EncodedRows(b"", np.zeros(1, dtype=np.int64))
    try:
        return _encode(batch, list_entries)
    except _Unsupported:
        return EncodedRows.from_list(reference.encode_rows(batch, list_entries=list_entries))


def _encode(batch: SocketBatch, list_entries: bool) -> EncodedRows:
    n = batch.n
    plans = [_plan(it) for it in items(batch)]
    rec_len = np.zeros(n, dtype=np.int64)
    for p in plans:
        rec_len += p.lens
    if list_entries:
        plans.insert(0, _plan(_row_header(rec_len)))
        row_len = rec_len + plans[0].lens
    else:
        row_len = rec_len
    offsets = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(row_len, out=offsets[1:])
    total = int(offsets[-1])
    # The furthest any store reaches past its own row's end, rounded to whole words.
    spill = 8 * max(1, *(p.n_words for p in plans))
    if int(row_len.min()) < spill:
        raise _Unsupported("rows shorter than one store's reach")
    buf = np.zeros(total + spill, dtype=np.uint8)
    # Element i of this view is the 8 bytes starting at byte i (unaligned, overlapping).
    view: U64 = np.ndarray(shape=(len(buf) - 7,), dtype=np.uint64, buffer=buf, strides=(1,))
    starts = offsets[:-1]
    units = _units(plans)
    head = 8 * np.arange(spill // 8, dtype=np.int64)[None, :]
    # Blocks of rows keep one item pass's stores inside a few MB of output (cache), instead of
    # striding the whole dump's buffer once per item.
    for b0 in range(0, n, _BLOCK_ROWS):
        b1 = min(n, b0 + _BLOCK_ROWS)
        head_pos = starts[b0:b1:2, None] + head
        saved: U64 | None = None
        for parity in (0, 1):
            rows = slice(b0 + parity, b1, 2)
            pos = starts[rows].copy()
            for unit in units:
                if len(unit) == 1:
                    p = unit[0]
                    _store_item(view, pos, p, rows)
                    pos += p.lens[rows] if not isinstance(p.lens, int) else p.lens
                    continue
                # Several short varints: each cut to its length (an omitted one is all junk) and
                # shifted behind the previous ones; one store.
                word = _masked_word(unit[0], rows)
                filled = np.zeros(len(pos), dtype=np.uint64)
                for prev, p in itertools.pairwise(unit):
                    assert not isinstance(prev.lens, int)
                    filled += prev.lens[rows]
                    word |= _masked_word(p, rows) << (filled << np.uint64(3))
                view[pos] = word
                last = unit[-1].lens
                assert not isinstance(last, int)
                pos += filled.astype(np.int64)
                pos += last[rows]
            if parity == 0:
                saved = view[head_pos]
        assert saved is not None
        view[head_pos] = saved
    return EncodedRows(buf[:total].tobytes(), offsets)


__all__ = ["ROW_TAG", "encode_rows", "field_bytes"]
