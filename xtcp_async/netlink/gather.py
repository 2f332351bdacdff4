"""The numpy gather: every field of every socket read at once from the walk's offsets.

A walk (:mod:`~xtcp_async.netlink.walk` or :mod:`~xtcp_async.netlink.fastwalk`) has recorded where
each socket and each attribute payload sits in one joined buffer; here each field is read for all
rows with numpy, by the layout in netlink/fields.py. Pure: arrays in, SocketBatch out.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from xtcp_async.netlink.batch import DESTINATION, SOURCE, SocketBatch, field_dtype
from xtcp_async.netlink.distinct import small_codes
from xtcp_async.netlink.fastwalk import ArrayWalk
from xtcp_async.netlink.fields import FIELDS, GROUP_BY_ATTR, GROUPS, KERNEL_INT_FIELDS, Field
from xtcp_async.netlink.walk import DecodeResult, longer_than_known


def _gather_int(u8: npt.NDArray[np.uint8], u32: npt.NDArray[np.uint32], pos: npt.NDArray[np.int64],
                size: int, big_endian: bool) -> npt.NDArray[Any]:
    """Read one integer of ``size`` bytes at every byte position in ``pos``."""
    if size == 1:
        return u8[pos].astype(np.uint32)
    if size == 2:
        lo = u8[pos].astype(np.uint32)
        hi = u8[pos + 1].astype(np.uint32)
        return (lo << 8) | hi if big_endian else lo | (hi << 8)
    if size == 4:
        if not (pos & 3).any():  # netlink keeps attributes 4-aligned: one gather of words
            words: npt.NDArray[np.uint32] = u32[pos >> 2]
            return words
        b = [u8[pos + k].astype(np.uint32) for k in range(4)]
        return b[0] | (b[1] << 8) | (b[2] << 16) | (b[3] << 24)
    lo64 = _gather_int(u8, u32, pos, 4, False).astype(np.uint64)
    hi64 = _gather_int(u8, u32, pos + 4, 4, False).astype(np.uint64)
    return lo64 | (hi64 << np.uint64(32))


_FIELDS_BY_GROUP: dict[str, list[Field]] = {}
for _f in KERNEL_INT_FIELDS:
    _FIELDS_BY_GROUP.setdefault(_f.group, []).append(_f)
for _f in FIELDS:
    if _f.name in (SOURCE, DESTINATION):
        _FIELDS_BY_GROUP["inet_diag_msg"].append(_f)
del _f
_SLACK = (max(g.size for g in GROUPS) + 8 + 3) & ~3
#: Per name length 0..16: the 16 bytes of a cc name that length keeps, as four 32-bit words.
_NAME_MASKS = np.frombuffer(b"".join(b"\xff" * k + b"\0" * (16 - k) for k in range(17)),
                            dtype=np.uint32).reshape(17, 4)
#: Rows per block of the word gather: a block's attribute bytes stay in L2 while every word is read.
_GATHER_BLOCK = 1024


def _words_of(f: Field) -> range:
    """The 32-bit words (index from the group start) that hold field ``f``."""
    return range(f.offset // 4, (f.end + 3) // 4)


def _gather_words(u32: npt.NDArray[np.uint32], word_base: npt.NDArray[np.int64], wanted: list[int],
                  ) -> npt.NDArray[np.uint32]:
    """``u32[word_base + w]`` for every ``w`` in ``wanted``: one row per word, one column per socket.

    Row blocks: reading every wanted word of a few hundred sockets at a time keeps their bytes
    in cache, instead of one pass over the whole dump per field.
    """
    n = len(word_base)
    out = np.empty((len(wanted), n), dtype=np.uint32)
    rel = np.array(wanted, dtype=np.int64)[:, None]
    for b0 in range(0, n, _GATHER_BLOCK):
        b1 = min(n, b0 + _GATHER_BLOCK)
        out[:, b0:b1] = u32[word_base[None, b0:b1] + rel]
    return out


def _from_words(words: dict[int, npt.NDArray[np.uint32]], f: Field) -> npt.NDArray[Any] | None:
    """Field ``f`` from its group's gathered words (None: a layout this does not cover)."""
    w, shift = divmod(f.offset, 4)
    if f.size == 4 and not shift:
        return words[w]
    if f.size == 8 and not shift:
        return words[w].astype(np.uint64) | (words[w + 1].astype(np.uint64) << np.uint64(32))
    if f.size == 1:
        return (words[w] >> np.uint32(8 * shift)) & np.uint32(0xFF)
    if f.size == 2 and shift in (0, 2):
        v = (words[w] >> np.uint32(8 * shift)) & np.uint32(0xFFFF)
        return ((v & np.uint32(0xFF)) << np.uint32(8)) | (v >> np.uint32(8)) if f.big_endian else v
    return None



def join_chunks(chunk_list: list[bytes]) -> tuple[npt.NDArray[np.uint8], list[int]]:
    """All chunks in one buffer, each 4-aligned, plus slack; and where each chunk starts."""
    # One numpy buffer (numpy asks for huge pages on big arrays: a 60 MB dump costs ~4x fewer
    # page faults than bytes.join). Each chunk starts 4-aligned so every message and attribute
    # stays word-aligned.
    bases: list[int] = []
    total = 0
    for ch in chunk_list:
        bases.append(total)
        total += (len(ch) + 3) & ~3
    # Slack: a 64-bit read at the very end, and a whole group's words read from any attribute
    # start (the gather reads them before masking what the attribute did not carry), stay in bounds.
    joined = np.empty(total + _SLACK, dtype=np.uint8)
    for base, ch in zip(bases, chunk_list, strict=True):
        end = base + len(ch)
        joined[base:end] = np.frombuffer(ch, dtype=np.uint8)
        joined[end:(end + 3) & ~3] = 0
    joined[total:] = 0
    return joined, bases


def gather(joined: npt.NDArray[np.uint8], w: ArrayWalk, read_ns: Sequence[int] | None,
            res: DecodeResult) -> SocketBatch:
    n = len(w.msg_offs)
    u8 = np.frombuffer(joined, dtype=np.uint8)
    u32 = np.frombuffer(joined, dtype=np.uint32, count=len(joined) // 4)
    group_pos: dict[str, npt.NDArray[np.int64]] = {"inet_diag_msg": w.msg_offs}
    lengths: dict[str, npt.NDArray[Any]] = {}
    for attr, g in GROUP_BY_ATTR.items():
        rows, offs, alens = w.attrs[attr]
        pos = np.zeros(n, dtype=np.int64)
        lens = np.zeros(n, dtype=np.int32)
        if rows.size:
            # A repeated attribute in one message: the last one wins, as in the kernel's nla_parse.
            pos[rows] = offs
            lens[rows] = alens
            too_long = int((lens > g.size).sum()) if g.name != "congestion" else 0
            if too_long:
                res.problems[longer_than_known(g.name)] += too_long
        group_pos[g.name] = pos
        lengths[g.name] = lens
    lengths["inet_diag_msg"] = np.full(n, 72, dtype=np.int32)

    columns: dict[str, npt.NDArray[Any]] = {}
    # Decide per group, not per field and row: most groups are in every row or in none.
    extremes = {g: (int(v.min()), int(v.max())) if n else (0, 0) for g, v in lengths.items()}
    words_of: dict[str, dict[int, npt.NDArray[np.uint32]]] = {}
    for gname, gfields in _FIELDS_BY_GROUP.items():
        gpos = group_pos[gname]
        hi = extremes[gname][1]
        wanted = sorted({w for f in gfields if hi >= f.end for w in _words_of(f)})
        if n and wanted and len(wanted) >= 3 and not (gpos & 3).any():
            words_of[gname] = dict(zip(wanted, _gather_words(u32, gpos >> 2, wanted), strict=True))
    for f in KERNEL_INT_FIELDS:
        lo, hi = extremes[f.group]
        dtype = field_dtype(f)
        if hi < f.end:
            columns[f.name] = np.zeros(n, dtype=dtype)
            continue
        partial = lo < f.end
        words = words_of.get(f.group)
        vals = _from_words(words, f) if words is not None else None
        if vals is None:
            pos = group_pos[f.group] + f.offset
            if partial:
                # Rows without the field read offset 0 (always in bounds) and are zeroed below.
                pos = np.where(lengths[f.group] >= f.end, pos, 0)
            vals = _gather_int(u8, u32, pos, f.size, f.big_endian)
        if f.bits is not None:
            shift, width = f.bits
            vals = (vals >> shift) & ((1 << width) - 1)
        if partial:
            vals = np.where(lengths[f.group] >= f.end, vals, vals.dtype.type(0))
        columns[f.name] = vals.astype(dtype, copy=False)
    msg_pos = group_pos["inet_diag_msg"]
    for name in (SOURCE, DESTINATION):
        off = next(f.offset for f in FIELDS if f.name == name)
        msg_words = words_of.get("inet_diag_msg")
        if msg_words is not None:
            # The address words were gathered with the header's other words.
            rows4 = np.stack([msg_words[off // 4 + k] for k in range(4)], axis=1)
            columns[name] = rows4.view(np.uint8).reshape(n, 16)
        else:
            idx = (msg_pos + off)[:, None] + np.arange(16, dtype=np.int64)[None, :]
            columns[name] = u8[idx] if n else np.zeros((0, 16), dtype=np.uint8)

    cong_len = lengths["congestion"]
    cong = np.zeros(n, dtype="S16")
    has = np.nonzero(cong_len > 0)[0]
    if has.size:
        cpos = group_pos["congestion"][has]
        if not (cpos & 3).any():
            # Four word reads per name (the slack keeps them in bounds), bytes past its length cut.
            mat = u32[(cpos >> 2)[:, None] + np.arange(4, dtype=np.int64)[None, :]]
            mat &= _NAME_MASKS[np.minimum(cong_len[has], 16)]
        else:
            idx = cpos[:, None] + np.arange(16, dtype=np.int64)[None, :]
            mat = np.where(np.arange(16)[None, :] < cong_len[has][:, None], u8[idx], 0).astype(np.uint8)
        # 'S16' drops trailing NULs; bytes after an inner NUL are cut below on the few unique names.
        codes, uniq = small_codes(np.ascontiguousarray(mat).view(np.uint64).reshape(-1, 2))
        clean = np.array([u.tobytes().split(b"\0", 1)[0] for u in uniq], dtype="S16")
        cong[has] = clean[codes]

    row_chunk = w.row_chunk
    if read_ns is not None and len(read_ns):
        read = np.asarray(read_ns, dtype=np.int64)[row_chunk]
    else:
        read = np.zeros(n, dtype=np.int64)
    return SocketBatch(n=n, columns=columns, lengths=lengths, congestion=cong, read_ns=read)



__all__ = ["gather", "join_chunks"]
