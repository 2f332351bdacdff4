"""Builders of synthetic sock_diag reply messages for decoder tests."""

from __future__ import annotations

import struct

from xtcp_async.netlink import constants as c


def nla(attr_type: int, payload: bytes) -> bytes:
    """One netlink attribute, padded to 4 bytes."""
    raw = struct.pack("<HH", 4 + len(payload), attr_type) + payload
    return raw + b"\0" * ((-len(raw)) & 3)


def diag_msg(*, family: int = c.AF_INET, state: int = 1, sport: int = 1234, dport: int = 80,
             src: bytes = bytes([10, 0, 0, 1]) + bytes(12), dst: bytes = bytes([10, 0, 0, 2]) + bytes(12),
             inode: int = 4242, cookie: int = 0x1122334455667788, attrs: bytes = b"",
             seq: int = 1, flags: int = c.NLM_F_MULTI) -> bytes:
    """One SOCK_DIAG_BY_FAMILY reply message (nlmsghdr + inet_diag_msg + attributes)."""
    body = struct.pack("<BBBB", family, state, 0, 0)
    body += struct.pack(">HH", sport, dport) + src + dst
    body += struct.pack("<IQ", 0, cookie)
    body += struct.pack("<IIIII", 0, 0, 0, 1000, inode)
    assert len(body) == c.INET_DIAG_MSG_LEN
    payload = body + attrs
    return struct.pack("<IHHII", 16 + len(payload), c.SOCK_DIAG_BY_FAMILY, flags, seq, 0) + payload


def done_msg(seq: int = 1) -> bytes:
    return struct.pack("<IHHIIi", 20, c.NLMSG_DONE, c.NLM_F_MULTI, seq, 0, 0)


def error_msg(errno: int, seq: int = 1) -> bytes:
    return struct.pack("<IHHIIi", 36, c.NLMSG_ERROR, 0, seq, 0, -errno) + bytes(16)


def tcp_info(length: int, **values: int) -> bytes:
    """A tcp_info payload of ``length`` bytes: byte i = i & 0xff unless overridden via struct fields."""
    raw = bytearray((i * 7 + 3) & 0xFF for i in range(length))
    return bytes(raw)
