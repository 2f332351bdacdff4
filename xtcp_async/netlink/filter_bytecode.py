"""Filter syntax tree → INET_DIAG_REQ_BYTECODE (pure).

The kernel's program (net/ipv4/inet_diag.c, inet_diag_bc_run) is a list of ops
``struct inet_diag_bc_op { u8 code; u8 yes; u16 no; }``, some followed by an operand. Each op
tests the socket; true moves ``yes`` bytes on, false moves ``no`` bytes on. The socket is
accepted when the walk lands exactly on the end of the program, rejected when it lands past it.

So every fragment here has one shape: true falls through to its own end, false jumps to four
bytes past its end. Putting fragments together then needs only these rules:

- ``A and B`` = ``A B``, with A's jumps to "A's end + 4" moved on by len(B) (to B's end + 4);
- ``A or B``  = ``A JMP(no: len(B)+4) B``: A true reaches the JMP, which always takes ``no``
  and lands on B's end (true); A false lands 4 past A's end, which is B's start;
- ``not A``   = ``A JMP(no: 8)``: A true reaches the JMP and jumps to the end + 4 (false);
  A false lands on the end (true).

The kernel's audit (inet_diag_bc_audit) walks the ``yes`` chain only, so every ``yes`` is the
op's own length, and each ``no`` lands on an op boundary, on the end, or on end + 4: the shapes
above give nothing else.
"""

from __future__ import annotations

import struct
from collections.abc import Callable

from xtcp_async.netlink.filter_ast import (
    AF_INET6,
    And,
    AutoBound,
    CgroupCond,
    DevCond,
    Expr,
    HostCond,
    MarkCond,
    Not,
    Or,
    PortCmp,
)

# enum in include/uapi/linux/inet_diag.h
BC_NOP = 0
BC_JMP = 1
BC_S_GE = 2
BC_S_LE = 3
BC_D_GE = 4
BC_D_LE = 5
BC_AUTO = 6
BC_S_COND = 7
BC_D_COND = 8
BC_DEV_COND = 9
BC_MARK_COND = 10
BC_S_EQ = 11
BC_D_EQ = 12
BC_CGROUP_COND = 13

#: Request attribute type of the program (enum inet_diag_req_attrs).
INET_DIAG_REQ_BYTECODE = 1

_OP = struct.Struct("<BBH")
#: struct inet_diag_hostcond { u8 family; u8 prefix_len; int port; __be32 addr[]; } (8 bytes + addr)
_HOSTCOND = struct.Struct("<BBxxi")
_PORT_OPS = {("src", "ge"): BC_S_GE, ("src", "le"): BC_S_LE, ("src", "eq"): BC_S_EQ,
             ("dst", "ge"): BC_D_GE, ("dst", "le"): BC_D_LE, ("dst", "eq"): BC_D_EQ}
#: The nla_len of an nlattr is a u16: the whole program must fit one attribute.
MAX_PROGRAM_BYTES = 0xFFFF - 4


class ProgramTooLarge(ValueError):
    """The compiled program does not fit one netlink attribute."""


def _leaf(code: int, operand: bytes = b"") -> bytearray:
    """One test op: true → next op (its own length), false → 4 past the end."""
    n = 4 + len(operand)
    return bytearray(_OP.pack(code, n, n + 4) + operand)


def _fragment(e: Expr) -> bytearray:
    if isinstance(e, PortCmp):
        # The port is carried in the ``no`` field of a second op (kernel: op[1].no).
        return _leaf(_PORT_OPS[(e.side, e.op)], _OP.pack(0, 0, e.port))
    if isinstance(e, HostCond):
        code = BC_S_COND if e.side == "src" else BC_D_COND
        # An AF_UNSPEC condition still carries 4 address bytes, as ss sends it; the kernel reads none.
        addr = e.addr if e.addr else b"\0\0\0\0"
        if e.family == AF_INET6:
            assert len(addr) == 16
        return _leaf(code, _HOSTCOND.pack(e.family, e.prefix_len, e.port) + addr)
    if isinstance(e, DevCond):
        return _leaf(BC_DEV_COND, struct.pack("<I", e.ifindex))
    if isinstance(e, MarkCond):
        return _leaf(BC_MARK_COND, struct.pack("<II", e.mark, e.mask))
    if isinstance(e, CgroupCond):
        return _leaf(BC_CGROUP_COND, struct.pack("<Q", e.cgroup_id))
    if isinstance(e, AutoBound):
        return _leaf(BC_AUTO)
    if isinstance(e, Not):
        a = _fragment(e.expr)
        return a + _OP.pack(BC_JMP, 4, 8)
    if isinstance(e, And):
        a = _fragment(e.left)
        b = _fragment(e.right)
        _retarget_false(a, len(b))
        return a + b
    if isinstance(e, Or):
        a = _fragment(e.left)
        b = _fragment(e.right)
        return a + _OP.pack(BC_JMP, 4, len(b) + 4) + b
    raise TypeError(f"not a filter node: {e!r}")


def _retarget_false(frag: bytearray, extra: int) -> None:
    """Move every jump to ``frag``'s end + 4 (its false exit) ``extra`` bytes further."""
    pos, total = 0, len(frag)
    while pos < total:
        code, yes, no = _OP.unpack_from(frag, pos)
        if code != BC_NOP and pos + no == total + 4:
            if no + extra > 0xFFFF:
                raise ProgramTooLarge("filter program too large: a jump exceeds 65535 bytes")
            _OP.pack_into(frag, pos, code, yes, no + extra)
        pos += yes


def compile_filter(e: Expr) -> bytes:
    """The bytecode of ``e``: accepted sockets end the walk exactly at the end of the program."""
    prog = bytes(_fragment(e))
    if len(prog) > MAX_PROGRAM_BYTES:
        raise ProgramTooLarge(f"filter program is {len(prog)} bytes; a netlink attribute holds at most "
                              f"{MAX_PROGRAM_BYTES}")
    return prog


def bytecode_attribute(prog: bytes) -> bytes:
    """The program as the INET_DIAG_REQ_BYTECODE attribute that follows inet_diag_req_v2."""
    if not prog:
        return b""
    return struct.pack("<HH", 4 + len(prog), INET_DIAG_REQ_BYTECODE) + prog


def run_program(prog: bytes, test: Callable[[int, bytes], bool]) -> bool:
    """Walk ``prog`` the way the kernel does, asking ``test(code, operand)`` for each op.

    For unit tests of the jump layout (any tree against its Python truth value); the real
    check is the kernel's, in the live ss-equivalence tests.
    """
    pos, n = 0, len(prog)
    while pos < n:
        code, yes, no = _OP.unpack_from(prog, pos)
        if code == BC_NOP:
            ok = True
        elif code == BC_JMP:
            ok = False
        else:
            ok = test(code, prog[pos + 4:pos + yes])
        pos += yes if ok else no
    return pos == n

