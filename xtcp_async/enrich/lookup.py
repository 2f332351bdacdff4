"""Columnar lookups on a batch's remote addresses: ASN by longest prefix match, and the remote prefix.

One vectorised search per batch and family, no per-socket Python. IPv4-mapped IPv6 addresses
(``::ffff:a.b.c.d``, an IPv4 peer of a dual-stack socket) are looked up in the IPv4 table.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from xtcp_async.enrich.asndb import AsnTable, Ranges
from xtcp_async.netlink import constants as c

U8 = npt.NDArray[np.uint8]
U32 = npt.NDArray[np.uint32]
U64 = npt.NDArray[np.uint64]
IntArray = npt.NDArray[np.integer[Any]]

_MAPPED = np.uint64(0xFFFF_0000_0000)


def _words(addr: IntArray) -> tuple[U64, U64]:
    """The 16 address bytes of each row as two big-endian 64-bit words (numeric order)."""
    raw = np.ascontiguousarray(addr, dtype=np.uint8)
    hi = np.ascontiguousarray(raw[:, :8]).view(">u8").reshape(-1).astype(np.uint64)
    lo = np.ascontiguousarray(raw[:, 8:]).view(">u8").reshape(-1).astype(np.uint64)
    return hi, lo


def _v4_keys(family: IntArray, hi: U64, lo: U64) -> tuple[npt.NDArray[np.bool_], npt.NDArray[np.bool_], U64]:
    """Which rows are IPv4 (native or mapped), which are mapped, and their 32-bit address."""
    native = family == c.AF_INET
    mapped = (family == c.AF_INET6) & (hi == 0) & ((lo & ~np.uint64(0xFFFF_FFFF)) == _MAPPED)
    # IPv4 sits in the first 4 bytes of a native row, in the last 4 of a mapped one.
    key = np.where(native, hi >> np.uint64(32), lo & np.uint64(0xFFFF_FFFF))
    return native | mapped, mapped, key


def _find(r: Ranges, q_hi: U64, q_lo: U64) -> U32:
    """ASN of the range holding each (q_hi, q_lo), 0 where none does."""
    n = len(q_lo)
    if not len(r) or not n:
        return np.zeros(n, dtype=np.uint32)
    # Ranges whose start shares the query's high word lie in [left, right); find the last of them
    # starting at or below the query's low word by a vectorised binary search (a handful of rounds:
    # few ranges share a high word). With none there, the answer is the last range before `left`.
    left = np.searchsorted(r.start_hi, q_hi, side="left")
    right = np.searchsorted(r.start_hi, q_hi, side="right")
    while True:
        open_ = left < right
        if not open_.any():
            break
        mid = (left + right) // 2
        below = np.zeros(n, dtype=bool)
        idx = np.nonzero(open_)[0]
        below[idx] = r.start_lo[mid[idx]] <= q_lo[idx]
        left = np.where(open_ & below, mid + 1, left)
        right = np.where(open_ & ~below, mid, right)
    i = left - 1
    ok = i >= 0
    j = np.where(ok, i, 0)
    e_hi = r.end_hi[j]
    ok &= (q_hi < e_hi) | ((q_hi == e_hi) & (q_lo <= r.end_lo[j]))
    return np.where(ok, r.asn[j], np.uint32(0)).astype(np.uint32)


def lookup_asn(table: AsnTable, family: IntArray, addr: IntArray) -> U32:
    """The origin ASN of each row's address (0: not in the table)."""
    n = len(family)
    out = np.zeros(n, dtype=np.uint32)
    if not n:
        return out
    hi, lo = _words(addr)
    is4, _, key4 = _v4_keys(family, hi, lo)
    r4 = np.nonzero(is4)[0]
    if r4.size:
        out[r4] = _find(table.v4, np.zeros(r4.size, dtype=np.uint64), key4[r4])
    r6 = np.nonzero((family == c.AF_INET6) & ~is4)[0]
    if r6.size:
        out[r6] = _find(table.v6, hi[r6], lo[r6])
    return out


def _mask(bits: int) -> U8:
    """16 mask bytes with the first ``bits`` bits set."""
    m = np.zeros(16, dtype=np.uint8)
    full, rest = divmod(bits, 8)
    m[:full] = 0xFF
    if rest:
        m[full] = (0xFF << (8 - rest)) & 0xFF
    return m


def remote_prefix(family: IntArray, addr: IntArray, v4_len: int, v6_len: int) -> tuple[U8, U32]:
    """Each address cut to its family's prefix length, and that length.

    An IPv4-mapped IPv6 address keeps its ``::ffff:`` head and is cut to ``96 + v4_len`` bits, so
    its prefix covers the same IPv4 network as a native IPv4 peer's does.
    """
    n = len(family)
    if not n:
        return np.zeros((0, 16), dtype=np.uint8), np.zeros(0, dtype=np.uint32)
    hi, lo = _words(addr)
    is4, mapped, _ = _v4_keys(family, hi, lo)
    native4 = is4 & ~mapped
    masks = np.stack([_mask(v4_len), _mask(96 + v4_len), _mask(v6_len)])
    kind = np.where(native4, 0, np.where(mapped, 1, 2))
    prefix = np.asarray(addr, dtype=np.uint8) & masks[kind]
    lengths = np.array([v4_len, 96 + v4_len, v6_len], dtype=np.uint32)[kind]
    return prefix, lengths
