"""The scalar walk of :mod:`xtcp_async.netlink.walk`, done for whole runs of messages with numpy.

Why: the scalar walk costs 2-4 µs per socket in Python, most of a poll's budget at 120k
sockets. But a dump is repetitive: consecutive messages mostly have the same length, and
messages of one length mostly have the same attribute layout (same types and lengths in the
same order). So:

1. Message boundaries: from each chunk's current message, guess that the following ones have
   its length, check every guess at once, keep the run up to the first miss, repeat from
   there (all chunks in the same numpy round).
2. Headers of all messages are classified at once (socket reply, request, DONE, ERROR, …).
3. Socket messages are grouped by length; the first of a group is walked in Python (the
   *template*), and every other message of the group whose attribute header words are equal
   at the template's header positions gets the template's offsets shifted to its own start.
   Those that differ get the next template.

Whatever does not fit (a bad or truncated length, trailing bytes, odd layouts beyond a few
templates) goes back to the scalar walk, which stays the specification: the tests check that
both give the same batch, problems, errors and flags.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from xtcp_async.netlink import constants as c
from xtcp_async.netlink import walk as sw
from xtcp_async.netlink.fields import GROUP_BY_ATTR, KNOWN_UNDECODED_ATTRS

I64 = npt.NDArray[np.int64]

#: Speculation rounds before the rest of a chunk's boundaries are found one message at a time.
_MAX_ROUNDS = 128
#: Templates tried per message length before the rest of that length is walked one by one.
_MAX_TEMPLATES = 8


@dataclass
class ArrayWalk:
    """Where each socket and each decoded attribute sits in the joined buffer.

    Rows are in stream order. ``attrs[t]`` holds (row, payload offset, payload length) arrays
    of attribute type ``t``; a row may appear more than once (the last one wins, as in the
    kernel's nla_parse), in the order the attributes appear in its message.
    """

    msg_offs: I64
    row_chunk: I64
    attrs: dict[int, tuple[I64, I64, I64]]

    @staticmethod
    def from_scalar(w: sw.ScalarWalk) -> ArrayWalk:
        """The scalar walk's lists as arrays."""
        attrs = {
            a: (np.array(w.attr_rows[a], dtype=np.int64), np.array(w.attr_offs[a], dtype=np.int64),
                np.array(w.attr_lens[a], dtype=np.int64))
            for a in GROUP_BY_ATTR
        }
        return ArrayWalk(np.array(w.msg_offs, dtype=np.int64), np.array(w.row_chunk, dtype=np.int64), attrs)


@dataclass
class _Template:
    """One message's attribute walk, relative to its nlmsghdr."""

    #: (byte offset, u32 header word) of every attribute header the walk read.
    reads: list[tuple[int, int]] = field(default_factory=list)
    #: (attribute type, payload offset, payload length) of every decoded attribute.
    entries: list[tuple[int, int, int]] = field(default_factory=list)
    problems: Counter[str] = field(default_factory=Counter)


def _walk_attrs(words: memoryview, msg: int, nl_len: int) -> _Template:
    """The attribute loop of ``walk.walk_chunk`` for the message at byte ``msg``."""
    t = _Template()
    a = c.NLMSG_HDRLEN + c.INET_DIAG_MSG_LEN
    while a + c.NLA_HDRLEN <= nl_len:
        word = words[(msg + a) >> 2]
        t.reads.append((a, word))
        a_len, a_type = word & 0xFFFF, word >> 16
        if a_len < c.NLA_HDRLEN:
            t.problems[sw.BAD_ATTRIBUTE_LENGTH] += 1
            break
        if a + a_len > nl_len:
            t.problems[sw.ATTRIBUTE_OVERRUN] += 1
            break
        a_type &= c.NLA_TYPE_MASK
        if a_type in GROUP_BY_ATTR:
            t.entries.append((a_type, a + c.NLA_HDRLEN, a_len - c.NLA_HDRLEN))
        elif a_type not in KNOWN_UNDECODED_ATTRS:
            t.problems[sw.UNKNOWN_ATTRIBUTE] += 1
        a += (a_len + 3) & ~3
    return t


def _boundaries(u32: npt.NDArray[np.uint32], words: memoryview, bases: I64, ends: I64,
                ) -> tuple[I64, npt.NDArray[np.bool_]]:
    """Message starts of every chunk, and which chunks must go through the scalar walk.

    A chunk goes scalar when its framing is anything but clean (a length below the header,
    a message past the chunk's end, trailing bytes): the scalar walk counts those.
    """
    n_chunks = len(bases)
    scalar = np.zeros(n_chunks, dtype=bool)
    found: list[I64] = []
    cid = np.arange(n_chunks, dtype=np.int64)
    off = bases.copy()
    # Guesses per chunk and round: unlimited at first (a uniform chunk is done in one round),
    # then twice the last run, so chunks of mixed lengths do not re-guess their whole rest.
    cap = np.full(n_chunks, 1 << 40, dtype=np.int64)
    for _ in range(_MAX_ROUNDS):
        live = off + c.NLMSG_HDRLEN <= ends[cid]
        # A chunk that stopped short of its end has trailing bytes: the scalar walk's call.
        stopped = cid[~live]
        scalar[stopped[off[~live] < ends[stopped]]] = True
        cid, off, cap = cid[live], off[live], cap[live]
        if not cid.size:
            break
        end = ends[cid]
        length = u32[off >> 2].astype(np.int64)
        bad = (length < c.NLMSG_HDRLEN) | (off + length > end)
        if bad.any():
            scalar[cid[bad]] = True
            cid, off, end, length, cap = cid[~bad], off[~bad], end[~bad], length[~bad], cap[~bad]
        stride = (length + 3) & ~3
        # Guesses: this message and the following ones of the same length that start in the chunk.
        k = np.minimum((end - off - c.NLMSG_HDRLEN) // stride + 1, cap)
        first = np.zeros(len(k) + 1, dtype=np.int64)
        np.cumsum(k, out=first[1:])
        owner = np.repeat(np.arange(len(k)), k)
        step = np.arange(int(first[-1]), dtype=np.int64) - first[owner]
        pos = off[owner] + step * stride[owner]
        ok = (u32[pos >> 2] == length[owner]) & (pos + length[owner] <= end[owner])
        # Keep each chunk's run up to its first miss.
        miss = np.minimum.reduceat(np.where(ok, k[owner], step), first[:-1]) if len(k) else k
        keep = step < miss[owner]
        found.append(pos[keep])
        off = off + miss * stride
        cap = np.maximum(4, 2 * miss)
    else:
        # Still going after many rounds (a huge chunk of mixed lengths): finish one by one.
        for ci, o in zip(cid.tolist(), off.tolist(), strict=True):
            rest, ok_chunk = _boundaries_one(words, o, int(ends[ci]))
            if ok_chunk:
                found.append(np.array(rest, dtype=np.int64))
            else:
                scalar[ci] = True
    starts = np.sort(np.concatenate(found)) if found else np.zeros(0, dtype=np.int64)
    if scalar.any():
        chunk_of = np.searchsorted(bases, starts, side="right") - 1
        starts = starts[~scalar[chunk_of]]
    return starts, scalar


def _boundaries_one(words: memoryview, off: int, end: int) -> tuple[list[int], bool]:
    """The rest of one chunk's message starts; False when its framing is not clean."""
    out: list[int] = []
    while off + c.NLMSG_HDRLEN <= end:
        nl_len = words[off >> 2]
        if nl_len < c.NLMSG_HDRLEN or off + nl_len > end:
            return out, False
        out.append(off)
        off += (nl_len + 3) & ~3
    return out, off >= end


def fast_walk(joined: npt.NDArray[np.uint8], chunk_lens: list[int], bases: list[int], res: sw.DecodeResult,
              ) -> ArrayWalk:
    """Walk every chunk (laid out in ``joined`` at ``bases``) into an :class:`ArrayWalk`.

    Updates ``res`` exactly as ``walk.walk_chunk`` over every chunk in order would.
    """
    u32 = np.frombuffer(joined, dtype=np.uint32)
    u16 = np.frombuffer(joined, dtype=np.uint16)
    words = joined.data.cast("I")
    base_arr = np.array(bases, dtype=np.int64)
    end_arr = base_arr + np.array(chunk_lens, dtype=np.int64)
    starts, scalar = _boundaries(u32, words, base_arr, end_arr)

    # -- headers ---------------------------------------------------------------------------------
    nl_len = u32[starts >> 2].astype(np.int64)
    nl_type = u16[(starts >> 1) + 2]
    nl_flags = u16[(starts >> 1) + 3]
    res.messages += len(starts)
    if (nl_flags & c.NLM_F_DUMP_INTR).any():
        res.dump_interrupted = True
    reply = (nl_flags & c.NLM_F_REQUEST) == 0
    problems = res.problems
    _count(problems, sw.REQUEST_MESSAGE, len(starts) - int(reply.sum()))
    sock = reply & (nl_type == c.SOCK_DIAG_BY_FAMILY)
    short = sock & (nl_len < c.NLMSG_HDRLEN + c.INET_DIAG_MSG_LEN)
    _count(problems, sw.SHORT_INET_DIAG_MSG, int(short.sum()))
    sock &= ~short
    if (reply & (nl_type == c.NLMSG_DONE)).any():
        res.done = True
    other = reply & (nl_type != c.SOCK_DIAG_BY_FAMILY) & (nl_type != c.NLMSG_DONE)
    _count(problems, sw.UNKNOWN_MESSAGE_TYPE,
           int((other & (nl_type != c.NLMSG_ERROR) & (nl_type != c.NLMSG_NOOP)).sum()))
    chunk_of_start = np.searchsorted(base_arr, starts, side="right") - 1
    # (chunk, position) keys keep NLMSG_ERROR errnos in stream order across both walks.
    errors: list[tuple[int, int, int]] = []
    for s, ln in zip(starts[other & (nl_type == c.NLMSG_ERROR)].tolist(),
                     nl_len[other & (nl_type == c.NLMSG_ERROR)].tolist(), strict=True):
        errno = -sw.ERRNO.unpack_from(joined.data, s + c.NLMSG_HDRLEN)[0] if ln >= 20 else 0
        if errno:
            errors.append((int(np.searchsorted(base_arr, s, side="right")) - 1, s, errno))

    # -- attributes, one template per layout -------------------------------------------------------
    msg = starts[sock]
    lens = nl_len[sock]
    rows = np.arange(len(msg), dtype=np.int64)
    parts: dict[int, list[tuple[I64, I64, I64]]] = {a: [] for a in GROUP_BY_ATTR}
    for length in np.unique(lens).tolist():
        group = rows[lens == length]
        for _ in range(_MAX_TEMPLATES):
            if not group.size:
                break
            t = _walk_attrs(words, int(msg[group[0]]), length)
            match = np.ones(len(group), dtype=bool)
            gpos = msg[group]
            for rel, word in t.reads:
                match &= u32[(gpos + rel) >> 2] == word
            _apply(t, group[match], msg, parts, problems)
            group = group[~match]
        for r in group.tolist():  # layouts beyond the template budget
            _apply(_walk_attrs(words, int(msg[r]), length), np.array([r], dtype=np.int64), msg, parts,
                   problems)

    fast = ArrayWalk(msg + c.NLMSG_HDRLEN, chunk_of_start[sock], _join(parts))
    if not scalar.any():
        res.errors.extend(e for _, _, e in errors)
        return fast

    # -- chunks the scalar walk owns ----------------------------------------------------------------
    w = sw.ScalarWalk()
    for i in np.nonzero(scalar)[0].tolist():
        sub = sw.DecodeResult(batch=res.batch)
        sw.walk_chunk(joined[bases[i]:bases[i] + chunk_lens[i]].tobytes(), bases[i], i, w, sub)
        res.messages += sub.messages
        res.problems.update(sub.problems)
        res.done = res.done or sub.done
        res.dump_interrupted = res.dump_interrupted or sub.dump_interrupted
        errors.extend((i, k, e) for k, e in enumerate(sub.errors))
    errors.sort()
    res.errors.extend(e for _, _, e in errors)
    return _merge(fast, ArrayWalk.from_scalar(w))


def _count(problems: Counter[str], kind: str, n: int) -> None:
    # Counter keeps zero counts when added to; the scalar walk never creates them.
    if n:
        problems[kind] += n


def _apply(t: _Template, group: I64, msg: I64, parts: dict[int, list[tuple[I64, I64, I64]]],
           problems: Counter[str]) -> None:
    """Record template ``t`` for the socket rows ``group``."""
    if not group.size:
        return
    for kind, n in t.problems.items():
        problems[kind] += n * len(group)
    pos = msg[group]
    for a_type, rel, ln in t.entries:
        parts[a_type].append((group, pos + rel,
                              np.full(len(group), ln, dtype=np.int64)))


def _join(parts: dict[int, list[tuple[I64, I64, I64]]]) -> dict[int, tuple[I64, I64, I64]]:
    out: dict[int, tuple[I64, I64, I64]] = {}
    empty = np.zeros(0, dtype=np.int64)
    for a, lst in parts.items():
        if not lst:
            out[a] = (empty, empty, empty)
        elif len(lst) == 1:
            out[a] = lst[0]
        else:
            out[a] = (np.concatenate([p[0] for p in lst]), np.concatenate([p[1] for p in lst]),
                      np.concatenate([p[2] for p in lst]))
    return out


def _merge(a: ArrayWalk, b: ArrayWalk) -> ArrayWalk:
    """Both walks' rows in stream order (by message offset)."""
    offs = np.concatenate([a.msg_offs, b.msg_offs])
    order = np.argsort(offs, kind="stable")
    rank = np.empty(len(offs), dtype=np.int64)
    rank[order] = np.arange(len(offs), dtype=np.int64)
    ra, rb = rank[:len(a.msg_offs)], rank[len(a.msg_offs):]
    attrs: dict[int, tuple[I64, I64, I64]] = {}
    for t in a.attrs:
        (r1, o1, l1), (r2, o2, l2) = a.attrs[t], b.attrs[t]
        attrs[t] = (np.concatenate([ra[r1], rb[r2]]), np.concatenate([o1, o2]), np.concatenate([l1, l2]))
    return ArrayWalk(offs[order], np.concatenate([a.row_chunk, b.row_chunk])[order], attrs)


__all__ = ["ArrayWalk", "fast_walk"]
