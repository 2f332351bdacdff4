"""The scalar netlink walk: the specification every faster walk is tested against.

The walk validates every netlink header and attribute header and records where each socket
message and each decoded attribute's payload sits. Bad input is skipped and counted by kind
(:data:`PROBLEM_KINDS`); it never raises and never loses the messages around it. The walk knows
nothing of numpy or of the compiled core: :mod:`~xtcp_async.netlink.fastwalk` and
:mod:`~xtcp_async.netlink.cdecode` sit beside it, :mod:`~xtcp_async.netlink.decode` picks one.
"""

from __future__ import annotations

import struct
from collections import Counter
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from xtcp_async.netlink import constants as c
from xtcp_async.netlink.batch import SocketBatch
from xtcp_async.netlink.fields import GROUP_BY_ATTR, KNOWN_UNDECODED_ATTRS

NLMSGHDR = struct.Struct("<IHHII")
NLA = struct.Struct("<HH")
ERRNO = struct.Struct("<i")

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
#: Every fixed kind, in the order the compiled core returns its counts.
PROBLEM_KINDS = (BAD_MESSAGE_LENGTH, TRUNCATED_MESSAGE, SHORT_INET_DIAG_MSG, BAD_ATTRIBUTE_LENGTH,
                 ATTRIBUTE_OVERRUN, UNKNOWN_ATTRIBUTE, UNKNOWN_MESSAGE_TYPE, TRAILING_BYTES, REQUEST_MESSAGE)


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
    #: Per row, the index of the chunk it came from (the poller stamps namespaces per chunk).
    row_chunk: npt.NDArray[np.int64] = field(default_factory=lambda: np.zeros(0, dtype=np.int64))


class ScalarWalk:
    """Offsets collected by the walk, before the gather."""

    __slots__ = ("attr_lens", "attr_offs", "attr_rows", "msg_offs", "row_chunk")

    def __init__(self) -> None:
        self.msg_offs: list[int] = []
        self.row_chunk: list[int] = []
        self.attr_rows: dict[int, list[int]] = {a: [] for a in GROUP_BY_ATTR}
        self.attr_offs: dict[int, list[int]] = {a: [] for a in GROUP_BY_ATTR}
        self.attr_lens: dict[int, list[int]] = {a: [] for a in GROUP_BY_ATTR}


def walk_chunk(chunk: bytes, base: int, chunk_index: int, w: ScalarWalk, res: DecodeResult) -> None:
    """Walk one recv's worth of messages; record sockets and attributes into ``w``."""
    end = len(chunk)
    off = 0
    problems = res.problems
    msg_offs, row_chunk = w.msg_offs, w.row_chunk
    attr_rows, attr_offs, attr_lens = w.attr_rows, w.attr_offs, w.attr_lens
    unpack_hdr, unpack_nla = NLMSGHDR.unpack_from, NLA.unpack_from
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
            errno = -ERRNO.unpack_from(chunk, off + c.NLMSG_HDRLEN)[0] if nl_len >= 20 else 0
            if errno:
                res.errors.append(errno)
        elif nl_type != c.NLMSG_NOOP:
            problems[UNKNOWN_MESSAGE_TYPE] += 1
        off += (nl_len + 3) & ~3
    if off < end:
        problems[TRAILING_BYTES] += 1


__all__ = ["PROBLEM_KINDS", "DecodeResult", "ScalarWalk", "longer_than_known", "walk_chunk"]
