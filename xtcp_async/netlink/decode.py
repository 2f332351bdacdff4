"""Netlink sock_diag replies → SocketBatch. Pure: bytes in, batch out, no I/O.

Two steps. The *walk* validates every netlink header and attribute header and records where
each attribute's payload sits. The *gather* (numpy) reads each field for all rows at once from
those offsets. Bad input is skipped and counted by kind; it never raises and never loses the
messages around it.

The walk here (:func:`_walk_chunk`, Python, per message) is the specification.
:mod:`xtcp_async.netlink.fastwalk` does the same walk for runs of same-layout messages with
numpy and hands everything unusual back to it; ``decode_messages(..., fast=False)`` uses only
this one (the tests compare the two).
"""

from __future__ import annotations

import struct
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from xtcp_async.netlink import constants as c
from xtcp_async.netlink.batch import DESTINATION, SOURCE, SocketBatch, field_dtype
from xtcp_async.netlink.distinct import small_codes
from xtcp_async.netlink.fields import (
    FIELDS,
    GROUP_BY_ATTR,
    GROUPS,
    KERNEL_INT_FIELDS,
    KNOWN_UNDECODED_ATTRS,
    Field,
)

if TYPE_CHECKING:
    from xtcp_async.netlink.fastwalk import ArrayWalk

_NLMSGHDR = struct.Struct("<IHHII")
_NLA = struct.Struct("<HH")
_ERRNO = struct.Struct("<i")

# Problem kinds (the keys of DecodeResult.problems).
BAD_MESSAGE_LENGTH = "bad_message_length"
TRUNCATED_MESSAGE = "truncated_message"
SHORT_INET_DIAG_MSG = "short_inet_diag_msg"
BAD_ATTRIBUTE_LENGTH = "bad_attribute_length"
ATTRIBUTE_OVERRUN = "attribute_overrun"
UNKNOWN_ATTRIBUTE = "unknown_attribute"
UNKNOWN_MESSAGE_TYPE = "unknown_message_type"
TRAILING_BYTES = "trailing_bytes"
REQUEST_MESSAGE = "request_message"


def longer_than_known(group: str) -> str:
    """Problem kind for an attribute longer than the struct we know (decoded as far as known)."""
    return f"{group}_longer_than_known"


@dataclass
class DecodeResult:
    """A decoded batch plus everything the walk noticed about the stream."""

    batch: SocketBatch
    problems: Counter[str] = field(default_factory=Counter)
    #: NLMSG_DONE was seen.
    done: bool = False
    #: errno values of NLMSG_ERROR messages (positive; 0 is an ACK and not recorded).
    errors: list[int] = field(default_factory=list)
    #: Some message carried NLM_F_DUMP_INTR: the dump is not a consistent snapshot.
    dump_interrupted: bool = False
    messages: int = 0
    #: Per row, the index of the chunk it came from (issue 10 stamps namespaces per chunk).
    row_chunk: npt.NDArray[np.int64] = field(default_factory=lambda: np.zeros(0, dtype=np.int64))


class _Walk:
    """Offsets collected by the walk, before the gather."""

    __slots__ = ("attr_lens", "attr_offs", "attr_rows", "msg_offs", "row_chunk")

    def __init__(self) -> None:
        self.msg_offs: list[int] = []
        self.row_chunk: list[int] = []
        self.attr_rows: dict[int, list[int]] = {a: [] for a in GROUP_BY_ATTR}
        self.attr_offs: dict[int, list[int]] = {a: [] for a in GROUP_BY_ATTR}
        self.attr_lens: dict[int, list[int]] = {a: [] for a in GROUP_BY_ATTR}


def _walk_chunk(chunk: bytes, base: int, chunk_index: int, w: _Walk, res: DecodeResult) -> None:
    """Walk one recv's worth of messages; record sockets and attributes into ``w``."""
    end = len(chunk)
    off = 0
    problems = res.problems
    msg_offs, row_chunk = w.msg_offs, w.row_chunk
    attr_rows, attr_offs, attr_lens = w.attr_rows, w.attr_offs, w.attr_lens
    unpack_hdr, unpack_nla = _NLMSGHDR.unpack_from, _NLA.unpack_from
    while off + c.NLMSG_HDRLEN <= end:
        nl_len, nl_type, nl_flags, _seq, _pid = unpack_hdr(chunk, off)
        if nl_len < c.NLMSG_HDRLEN:
            # A zero or tiny length gives no way to find the next message in this chunk.
            problems[BAD_MESSAGE_LENGTH] += 1
            return
        if off + nl_len > end:
            problems[TRUNCATED_MESSAGE] += 1
            return
        res.messages += 1
        if nl_flags & c.NLM_F_DUMP_INTR:
            res.dump_interrupted = True
        if nl_flags & c.NLM_F_REQUEST:
            # A request (captures hold both directions); the kernel never sets this on replies.
            problems[REQUEST_MESSAGE] += 1
        elif nl_type == c.SOCK_DIAG_BY_FAMILY:
            if nl_len < c.NLMSG_HDRLEN + c.INET_DIAG_MSG_LEN:
                problems[SHORT_INET_DIAG_MSG] += 1
            else:
                row = len(msg_offs)
                msg_offs.append(base + off + c.NLMSG_HDRLEN)
                row_chunk.append(chunk_index)
                a = off + c.NLMSG_HDRLEN + c.INET_DIAG_MSG_LEN
                mend = off + nl_len
                while a + c.NLA_HDRLEN <= mend:
                    a_len, a_type = unpack_nla(chunk, a)
                    if a_len < c.NLA_HDRLEN:
                        problems[BAD_ATTRIBUTE_LENGTH] += 1
                        break
                    if a + a_len > mend:
                        problems[ATTRIBUTE_OVERRUN] += 1
                        break
                    a_type &= c.NLA_TYPE_MASK
                    rows = attr_rows.get(a_type)
                    if rows is not None:
                        rows.append(row)
                        attr_offs[a_type].append(base + a + c.NLA_HDRLEN)
                        attr_lens[a_type].append(a_len - c.NLA_HDRLEN)
                    elif a_type not in KNOWN_UNDECODED_ATTRS:
                        problems[UNKNOWN_ATTRIBUTE] += 1
                    a += (a_len + 3) & ~3
        elif nl_type == c.NLMSG_DONE:
            res.done = True
        elif nl_type == c.NLMSG_ERROR:
            errno = -_ERRNO.unpack_from(chunk, off + c.NLMSG_HDRLEN)[0] if nl_len >= 20 else 0
            if errno:
                res.errors.append(errno)
        elif nl_type != c.NLMSG_NOOP:
            problems[UNKNOWN_MESSAGE_TYPE] += 1
        off += (nl_len + 3) & ~3
    if off < end:
        problems[TRAILING_BYTES] += 1


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


def decode_messages(chunks: Iterable[bytes], read_ns: Sequence[int] | None = None, *,
                    fast: bool = True) -> DecodeResult:
    """Decode every socket in ``chunks`` (each one or more whole netlink messages).

    ``read_ns[i]`` is when chunk ``i`` was read; it becomes each of its sockets'
    ``socket_read_timestamp_ns``. ``fast=False`` uses only the scalar walk (the
    specification the fast walk is tested against).
    """
    chunk_list = [bytes(ch) for ch in chunks]
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
    res = DecodeResult(batch=SocketBatch(0, {}, {}, np.zeros(0, "S16"), np.zeros(0, np.int64)))
    # The fast walk builds on this module's scalar walk (imported here to avoid a cycle).
    from xtcp_async.netlink.fastwalk import ArrayWalk, fast_walk

    if fast:
        aw = fast_walk(joined, [len(ch) for ch in chunk_list], bases, res)
    else:
        w = _Walk()
        for i, ch in enumerate(chunk_list):
            _walk_chunk(ch, bases[i], i, w, res)
        aw = ArrayWalk.from_scalar(w)
    res.batch = _gather(joined, aw, read_ns, res)
    res.row_chunk = aw.row_chunk
    return res


def _gather(joined: npt.NDArray[np.uint8], w: ArrayWalk, read_ns: Sequence[int] | None,
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


__all__ = ["GROUPS", "DecodeResult", "decode_messages"]
