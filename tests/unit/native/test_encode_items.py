"""The compiled encoder's items write exactly the bytes of a plain Python specification, at every edge."""

from __future__ import annotations

import random
import socket
from typing import Any

import numpy as np

from tests.support.paths import require_native
from xtcp_async import native

_VARINT, _VARINT_IF, _DEC, _SDEC, _ADDR = 1, 4, 5, 6, 7


def _varint(v: int) -> bytes:
    out = bytearray()
    while v >= 0x80:
        out.append(v & 0x7F | 0x80)
        v >>= 7
    out.append(v)
    return bytes(out)


def _boundaries(bits: int) -> list[int]:
    """0, 1, and each side of every varint length step (2^7k) and decimal length step (10^k)."""
    top = (1 << bits) - 1
    edges = {0, 1, top, top - 1}
    for k in range(1, bits):
        edges |= {(1 << k) - 1, 1 << k, (1 << k) + 1}
    p = 1
    while p <= top:
        edges |= {p - 1, p, min(p + 1, top)}
        p *= 10
    return sorted(e for e in edges if 0 <= e <= top)


def _encode(items: list[tuple[Any, ...]], n: int) -> tuple[bytes, np.ndarray]:
    offsets = np.zeros(n + 1, dtype=np.int64)
    assert native.CORE is not None
    data = native.CORE.encode(items, n, b"", offsets)
    return data, offsets


def _rows(data: bytes, offsets: np.ndarray) -> list[bytes]:
    return [data[offsets[i]:offsets[i + 1]] for i in range(len(offsets) - 1)]


def test_varints_at_every_length_boundary_with_and_without_presence() -> None:
    """u32 and u64 varint columns: zero omitted, every length right, absent rows omitted, each row as specified."""
    require_native()
    for bits, dtype in ((32, np.uint32), (64, np.uint64)):
        values = _boundaries(bits)
        n = len(values) * 2
        col = np.array(values + values[::-1], dtype=dtype)
        lens = np.array([(i * 7) % 3 for i in range(n)], dtype=np.int32)  # present where lens >= 1
        tag_a, tag_b = b"\x08", b"\xd0\xbb\x01"
        items = [(_VARINT, tag_a, col, col.itemsize), (_VARINT_IF, tag_b, col, col.itemsize, lens, 1),
                 (_VARINT_IF, tag_a, col[::-1].copy(), col.itemsize, lens, 2)]
        data, offsets = _encode(items, n)
        rev = col[::-1]
        for r, got in enumerate(_rows(data, offsets)):
            want = b""
            for tag, v, present in ((tag_a, int(col[r]), True), (tag_b, int(col[r]), lens[r] >= 1),
                                    (tag_a, int(rev[r]), lens[r] >= 2)):
                if v and present:
                    want += tag + _varint(v)
            assert got == want, (bits, r)


def test_decimals_at_every_length_boundary_with_and_without_presence() -> None:
    """Unsigned u32/u64 and signed int64 decimals are the digits Python prints, absent rows left out."""
    require_native()
    for bits, dtype in ((32, np.uint32), (64, np.uint64)):
        values = _boundaries(bits)
        n = len(values)
        col = np.array(values, dtype=dtype)
        lens = np.array([i % 2 for i in range(n)], dtype=np.int32)
        key = b',"a_rather_long_key_name_over_32_bytes":'
        items = [(_DEC, b',"x":', col, col.itemsize, None, 0), (_DEC, key, col, col.itemsize, lens, 1)]
        data, offsets = _encode(items, n)
        for r, got in enumerate(_rows(data, offsets)):
            want = b',"x":%d' % values[r] + (key + b"%d" % values[r] if lens[r] else b"")
            assert got == want, (bits, r)
    signed = sorted({v for b in _boundaries(63) for v in (b, -b)} | {-(1 << 63), (1 << 63) - 1})
    scol = np.array(signed, dtype=np.int64)
    data, offsets = _encode([(_SDEC, b',"s":', scol, 8)], len(signed))
    assert _rows(data, offsets) == [b',"s":%d' % v for v in signed]


def _edge_addresses() -> tuple[list[bytes], list[bytes]]:
    v4 = [bytes([a, b, c, d]) for a, b, c, d in
          [(0, 0, 0, 0), (255, 255, 255, 255), (1, 2, 3, 4), (10, 0, 0, 1), (9, 99, 100, 199),
           (200, 250, 255, 0), (127, 0, 0, 1)]]
    v4 += [bytes([x, y, x, y]) for x in (0, 9, 10, 99, 100, 255) for y in (0, 1, 10, 100, 255)]
    v6 = [bytes(16), bytes(15) + b"\x01", bytes(15) + b"\x02", bytes(10) + b"\xff\xff" + bytes([192, 0, 2, 1]),
          bytes(10) + b"\xff\xff" + bytes(4), bytes(12) + bytes([1, 2, 3, 4]), b"\x20\x01\x0d\xb8" + bytes(12),
          b"\xfe\x80" + bytes(6) + b"\x02\x00\x00\xff\xfe\x00\x00\x01", b"\x00\x01" + bytes(14),
          b"\x00\x01\x00\x00\x00\x01" + bytes(10), bytes(2) + b"\x00\x01" + bytes(4) + b"\x00\x01" + bytes(6),
          b"\xff" * 16, bytes(8) + b"\x00\x00\xff\xff" + bytes([1, 2, 3, 4])]
    return v4, v6


def test_addresses_are_written_as_inet_ntop_writes_them() -> None:
    """Random and edge IPv4 and IPv6 addresses (v4-mapped, zero runs) are socket.inet_ntop's text, quoted."""
    require_native()
    rng = random.Random(5952)
    v4, v6 = _edge_addresses()
    v4 += [rng.randbytes(4) for _ in range(3000)]
    v6 += [rng.randbytes(16) for _ in range(1000)]
    # IPv6 with zero words here and there, so every run length and position occurs.
    for _ in range(3000):
        words = [rng.choice([0, 0, 0, 1, 0xFFFF, rng.randrange(0x10000)]) for _ in range(8)]
        v6.append(b"".join(w.to_bytes(2, "big") for w in words))
    raw = np.zeros((len(v4) + len(v6), 16), dtype=np.uint8)
    fam = np.zeros(len(v4) + len(v6), dtype=np.uint32)
    for i, a in enumerate(v4):
        raw[i, :4] = np.frombuffer(a, dtype=np.uint8)
        raw[i, 4:] = 0xAB  # bytes past an IPv4 address do not show
        fam[i] = socket.AF_INET
    for i, a in enumerate(v6, start=len(v4)):
        raw[i] = np.frombuffer(a, dtype=np.uint8)
        fam[i] = socket.AF_INET6
    data, offsets = _encode([(_ADDR, b',"src":', raw, 16, fam, 4), (0, b"}")], len(fam))
    want = [b',"src":"' + socket.inet_ntop(socket.AF_INET, a).encode() + b'"}' for a in v4]
    want += [b',"src":"' + socket.inet_ntop(socket.AF_INET6, a).encode() + b'"}' for a in v6]
    assert _rows(data, offsets) == want
