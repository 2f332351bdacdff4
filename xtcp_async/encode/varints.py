"""Vectorised protobuf varint primitives for the columnar wire encoder (numpy, no per-row Python).

Split out of wire.py: these are pure functions of values and tag lengths; wire.py decides which
fields go where.
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np
import numpy.typing as npt

from xtcp_async.encode.framing import varint

U64 = npt.NDArray[np.uint64]
IntArray = npt.NDArray[Any]

_M64 = (1 << 64) - 1


@functools.cache
@functools.cache
def tag(number: int, wire_type: int) -> bytes:
    # Cached: the item list asks for every field's tag on every encode call (~130 per batch).
    return varint((number << 3) | wire_type)


def field_bytes(number: int, value: int | str | bytes | bool) -> bytes:
    """One field as the protobuf library writes it in proto3 (b'' when the value is the default)."""
    if isinstance(value, str):
        value = value.encode("utf-8")
    if isinstance(value, bytes):
        return tag(number, 2) + varint(len(value)) + value if value else b""
    v = int(value) & _M64  # int64 negatives are 10-byte two's complement varints
    return tag(number, 0) + varint(v) if v else b""


def le_words(raw: bytes, count: int) -> list[int]:
    """``raw`` zero-padded to ``count`` little-endian 64-bit words."""
    raw = raw.ljust(8 * count, b"\0")
    return [int.from_bytes(raw[8 * j:8 * j + 8], "little") for j in range(count)]


# --- varint tables, indexed by bit length (0..64) or by encoded length -----------------------------

def varint_len(bitlen: int) -> int:
    return max(1, (bitlen + 6) // 7)


@functools.cache
def len_table(tag_len: int) -> npt.NDArray[np.uint8]:
    """Encoded field length (tag + varint) by the value's bit length; 0 (omitted) for value 0."""
    return np.array([0] + [tag_len + varint_len(b) for b in range(1, 65)], dtype=np.uint8)


@functools.cache
def cont_tables(tag_len: int) -> tuple[U64, U64]:
    """Continuation bits (0x80 on every varint byte but the last) by encoded field length.

    Two words: varint bytes 0-7 and 8-9. Lengths that cannot occur map to 0.
    """
    lo = np.zeros(tag_len + 11, dtype=np.uint64)
    hi = np.zeros(tag_len + 11, dtype=np.uint64)
    for vlen in range(1, 11):
        bits = int.from_bytes(b"\x80" * (vlen - 1) + b"\0", "little")
        lo[tag_len + vlen] = bits & _M64
        hi[tag_len + vlen] = bits >> 64
    return lo, hi


# Masks of the bits above each 7-bit group once the groups below it sit one per byte.
SPREAD = [np.uint64(_M64 & ~((1 << (8 * k + 7)) - 1)) for k in range(7)]
LOW56 = np.uint64((1 << 56) - 1)
LOW32 = np.uint64(0xFFFFFFFF)


def bitlen(v: IntArray) -> npt.NDArray[np.int32]:
    """Bit length of each unsigned value (0 for 0)."""
    if v.dtype.itemsize <= 4:
        # float64 holds every u32 exactly, and frexp's exponent is the bit length.
        return np.frexp(v.astype(np.float64))[1]
    v64 = v.astype(np.uint64, copy=False)
    e_hi = np.frexp((v64 >> np.uint64(32)).astype(np.float64))[1]
    e_lo = np.frexp((v64 & LOW32).astype(np.float64))[1]
    return np.where(e_hi > 0, e_hi + 32, e_lo)


def spread(v: IntArray, groups: int) -> U64:
    """The low ``groups`` 7-bit groups of ``v`` one per byte (no continuation bits yet)."""
    x = v.astype(np.uint64)
    if groups > 5:
        x &= LOW56
    t = np.empty_like(x)
    for k in range(groups - 1):
        np.bitwise_and(x, SPREAD[k], out=t)
        x += t
    return x
