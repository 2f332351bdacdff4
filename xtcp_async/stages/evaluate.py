"""The filter tree evaluated on a batch's columns (vectorised), with the kernel's semantics.

Used by per-class sampling (``--sample 'dport = :443'=0.01``), which runs after decode, so it
must pick the same rows the kernel's program would (net/ipv4/inet_diag.c, inet_diag_bc_run):
a host condition of family AF_INET also matches an IPv6 socket's v4-mapped address; AF_UNSPEC
matches any family; a port of -1 any port. The tests run both on one live scene.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from xtcp_async.netlink import constants as c
from xtcp_async.netlink import filter_ast as fa
from xtcp_async.netlink.batch import DESTINATION, SOURCE, SocketBatch

BoolArray = npt.NDArray[np.bool_]
_V4MAPPED = np.array([0] * 10 + [0xFF, 0xFF], dtype=np.uint8)
_PORT_COL = {"src": "inet_diag_msg_socket_source_port", "dst": "inet_diag_msg_socket_destination_port"}
_ADDR_COL = {"src": SOURCE, "dst": DESTINATION}


class NotEvaluable(ValueError):
    """The condition needs a fact the records do not carry (``autobound``: the socket's userlocks)."""


def check_evaluable(e: fa.Expr) -> None:
    """Raise NotEvaluable when ``e`` cannot be evaluated on columns."""
    if isinstance(e, fa.AutoBound):
        raise NotEvaluable("'autobound' is kernel-only: records do not carry the socket's bind locks")
    if isinstance(e, fa.Not):
        check_evaluable(e.expr)
    elif isinstance(e, fa.And | fa.Or):
        check_evaluable(e.left)
        check_evaluable(e.right)


def evaluate(e: fa.Expr, batch: SocketBatch) -> BoolArray:
    """Which rows of ``batch`` the kernel's program for ``e`` would accept."""
    if isinstance(e, fa.And):
        return evaluate(e.left, batch) & evaluate(e.right, batch)
    if isinstance(e, fa.Or):
        return evaluate(e.left, batch) | evaluate(e.right, batch)
    if isinstance(e, fa.Not):
        return ~evaluate(e.expr, batch)
    if isinstance(e, fa.PortCmp):
        col = batch.columns[_PORT_COL[e.side]]
        if e.op == "eq":
            return np.asarray(col == e.port)
        return np.asarray(col >= e.port) if e.op == "ge" else np.asarray(col <= e.port)
    if isinstance(e, fa.HostCond):
        return _host(e, batch)
    if isinstance(e, fa.DevCond):
        return np.asarray(batch.columns["inet_diag_msg_socket_interface"] == e.ifindex)
    if isinstance(e, fa.MarkCond):
        # No mark attribute (no CAP_NET_ADMIN): the column is 0, as the kernel's entry would not be.
        mark = batch.columns["socket_mark"].astype(np.uint32)
        return np.asarray((mark & np.uint32(e.mask)) == np.uint32(e.mark))
    if isinstance(e, fa.CgroupCond):
        return np.asarray(batch.columns["c_group"] == np.uint64(e.cgroup_id))
    raise NotEvaluable(f"cannot evaluate {e!r} on columns")


def _prefix_match(addr: npt.NDArray[np.uint8], want: bytes, bits: int) -> BoolArray:
    """Rows whose first ``bits`` bits of ``addr`` equal those of ``want``."""
    ok = np.ones(len(addr), dtype=bool)
    whole, rest = divmod(bits, 8)
    if whole:
        ok &= (addr[:, :whole] == np.frombuffer(want[:whole], dtype=np.uint8)).all(axis=1)
    if rest:
        mask = np.uint8((0xFF << (8 - rest)) & 0xFF)
        ok &= (addr[:, whole] & mask) == (want[whole] & mask)
    return ok


def _host(e: fa.HostCond, batch: SocketBatch) -> BoolArray:
    n = batch.n
    ok = np.ones(n, dtype=bool)
    if e.port != -1:
        ok &= np.asarray(batch.columns[_PORT_COL[e.side]] == e.port)
    if e.family == 0:
        return ok
    fam: Any = batch.columns["inet_diag_msg_family"]
    addr = batch.columns[_ADDR_COL[e.side]].astype(np.uint8, copy=False)
    if e.family == fa.AF_INET6:
        return np.asarray(ok & (fam == c.AF_INET6) & _prefix_match(addr, e.addr, e.prefix_len))
    assert e.family == fa.AF_INET
    v4 = (fam == c.AF_INET) & _prefix_match(addr[:, :4], e.addr, e.prefix_len)
    mapped = (fam == c.AF_INET6) & (addr[:, :12] == _V4MAPPED).all(axis=1)
    mapped &= _prefix_match(np.ascontiguousarray(addr[:, 12:16]), e.addr, e.prefix_len)
    return np.asarray(ok & (v4 | mapped))
