"""Building sock_diag dump requests (pure)."""

from __future__ import annotations

import socket
import struct

from xtcp_async.netlink import constants as c
from xtcp_async.netlink.filter_bytecode import bytecode_attribute

_REQ = struct.Struct("<IHHII" "BBBBI" "48s")
REQUEST_LEN = _REQ.size  # 16-byte nlmsghdr + 56-byte inet_diag_req_v2 = 72


def dump_request(family: int, *, seq: int, states: int = c.ALL_STATES_MASK, ext: int = c.EXT_ALL,
                 protocol: int = socket.IPPROTO_TCP, bytecode: bytes = b"") -> bytes:
    """A SOCK_DIAG_BY_FAMILY dump request for every socket of ``family`` in ``states``.

    ``ext`` is the idiag_ext bitmask of extra attributes (see constants.EXT_ALL). The socket id
    is left zero: a dump ignores it except for exact port matches, which we do not use.
    ``bytecode`` is a compiled filter (netlink/filter_bytecode.py), sent as the
    INET_DIAG_REQ_BYTECODE attribute so the kernel skips the sockets it rejects.
    """
    attr = bytecode_attribute(bytecode)
    return _REQ.pack(REQUEST_LEN + len(attr), c.SOCK_DIAG_BY_FAMILY, c.NLM_F_REQUEST | c.NLM_F_DUMP, seq, 0,
                     family, protocol, ext, 0, states, b"\0" * 48) + attr


def _bit(name: str) -> int:
    return 1 << c.TCP_STATES[name]


#: ss's state groups (misc/ss.c): connected = all but listen, close, time-wait and syn-recv;
#: synchronized = connected but syn-sent; bucket = the mini-sockets; big = all but bucket.
STATE_GROUPS: dict[str, int] = {}


def _groups() -> None:
    syn_recv = _bit("syn-recv") | _bit("new-syn-recv")
    connected = c.ALL_STATES_MASK & ~(_bit("listen") | _bit("close") | _bit("time-wait") | syn_recv)
    bucket = syn_recv | _bit("time-wait")
    STATE_GROUPS.update(all=c.ALL_STATES_MASK, connected=connected,
                        synchronized=connected & ~_bit("syn-sent"), bucket=bucket,
                        big=c.ALL_STATES_MASK & ~bucket)


_groups()


def states_mask(names: list[str]) -> int:
    """Bitmask (1 << state) of TCP state names, ss's group words and ``-name`` exclusions.

    ``all`` is every state ss -a lists; ``all,-time-wait`` is all but TIME-WAIT; a list that
    only excludes (``-listen``) starts from ``all``. Items apply left to right.
    """
    mask = 0
    items = [n.strip().lower() for n in names if n.strip()]
    if items and all(i.startswith("-") for i in items):
        mask = c.ALL_STATES_MASK
    for key in items:
        drop = key.startswith("-")
        word = key.lstrip("-+")
        if word in STATE_GROUPS:
            bits = STATE_GROUPS[word]
        elif word in c.TCP_STATES:
            bits = _bit(word)
            if word == "syn-recv":
                bits |= _bit("new-syn-recv")
        else:
            raise ValueError(f"unknown TCP state {key!r}")
        mask = mask & ~bits if drop else mask | bits
    return mask
