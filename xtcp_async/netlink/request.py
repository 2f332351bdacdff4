"""Building sock_diag dump requests (pure)."""

from __future__ import annotations

import socket
import struct

from xtcp_async.netlink import constants as c

_REQ = struct.Struct("<IHHII" "BBBBI" "48s")
REQUEST_LEN = _REQ.size  # 16-byte nlmsghdr + 56-byte inet_diag_req_v2 = 72


def dump_request(family: int, *, seq: int, states: int = c.ALL_STATES_MASK, ext: int = c.EXT_ALL,
                 protocol: int = socket.IPPROTO_TCP) -> bytes:
    """A SOCK_DIAG_BY_FAMILY dump request for every socket of ``family`` in ``states``.

    ``ext`` is the idiag_ext bitmask of extra attributes (see constants.EXT_ALL). The socket id
    is left zero: a dump ignores it except for exact port matches, which we do not use.
    """
    return _REQ.pack(REQUEST_LEN, c.SOCK_DIAG_BY_FAMILY, c.NLM_F_REQUEST | c.NLM_F_DUMP, seq, 0,
                     family, protocol, ext, 0, states, b"\0" * 48)


def states_mask(names: list[str]) -> int:
    """Bitmask (1 << state) of TCP state names; "all" is every state ss -a lists."""
    mask = 0
    for name in names:
        key = name.strip().lower()
        if key == "all":
            mask |= c.ALL_STATES_MASK
            continue
        if key not in c.TCP_STATES:
            raise ValueError(f"unknown TCP state {name!r}")
        mask |= 1 << c.TCP_STATES[key]
    return mask
