"""A prefix → ASN table, loaded from a MaxMind ASN database (.mmdb) or routeviews' pfx2as text.

Both are turned into the same shape: per family, sorted, disjoint address ranges
``[start, end]`` with one ASN each, where every address maps to its *longest* matching prefix
(pfx2as lists more-specific prefixes beside the ones covering them; an .mmdb's tree is disjoint
already). A lookup is then one ``searchsorted`` per batch (see :mod:`xtcp_async.enrich.lookup`).

Loading is per-prefix Python (≈1 M prefixes in a full table): it runs at start-up and, on
SIGHUP, in a worker thread, never on the per-poll path.
"""

from __future__ import annotations

import gzip
import socket
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from xtcp_async.errors import ConfigError

U32 = npt.NDArray[np.uint32]
U64 = npt.NDArray[np.uint64]
_M64 = (1 << 64) - 1


class AsnDbError(ConfigError):
    """The ASN database cannot be read (missing, unreadable, or not in a known format)."""


@dataclass(frozen=True)
class Ranges:
    """Disjoint ranges of one family, sorted by start; 128-bit addresses split in two words."""

    start_hi: U64
    start_lo: U64
    end_hi: U64
    end_lo: U64
    asn: U32

    def __len__(self) -> int:
        return len(self.asn)


@dataclass(frozen=True)
class AsnTable:
    """The IPv4 and IPv6 ranges of one database, and where it came from."""

    v4: Ranges
    v6: Ranges
    source: str
    #: Prefixes read from the file (before flattening into ranges).
    prefixes: int

    @staticmethod
    def empty(source: str = "") -> AsnTable:
        return AsnTable(_ranges([], 32), _ranges([], 128), source, 0)


def load_asn_db(path: str | Path) -> AsnTable:
    """Read ``path`` (.mmdb by its magic bytes, else pfx2as text, gzip or not)."""
    p = Path(path)
    try:
        head = _head(p)
    except OSError as exc:
        raise AsnDbError(f"config: --asn-db: cannot read {p}: {exc.strerror}") from None
    if p.suffix == ".mmdb" or _is_mmdb(p):
        v4, v6 = _read_mmdb(p)
    elif head == b"\x1f\x8b":
        v4, v6 = _read_pfx2as(p, gzipped=True)
    else:
        v4, v6 = _read_pfx2as(p, gzipped=False)
    if not v4 and not v6:
        raise AsnDbError(f"config: --asn-db: {p} holds no prefix → ASN entries")
    return AsnTable(_ranges(v4, 32), _ranges(v6, 128), str(p), len(v4) + len(v6))


def _head(p: Path) -> bytes:
    with p.open("rb") as fh:
        return fh.read(2)


#: Every .mmdb file ends with its metadata, introduced by this marker (MaxMind DB spec §"Metadata").
_MMDB_MARKER = b"\xab\xcd\xefMaxMind.com"


def _is_mmdb(p: Path) -> bool:
    with p.open("rb") as fh:
        fh.seek(max(0, p.stat().st_size - 128 * 1024))
        return _MMDB_MARKER in fh.read()


Prefix = tuple[int, int, int]  # (network address as int, prefix length, asn)


def _read_pfx2as(p: Path, *, gzipped: bool) -> tuple[list[Prefix], list[Prefix]]:
    """routeviews pfx2as: ``address<TAB>length<TAB>asn`` per line; the ASN of a prefix announced by
    several origins is ``a_b`` (multi-origin) or ``a,b`` (AS set): the first one is kept."""
    v4s: list[Prefix] = []
    v6s: list[Prefix] = []
    try:
        with (gzip.open(p, "rt", encoding="ascii") if gzipped else p.open(encoding="ascii")) as fh:
            for lineno, line in enumerate(fh, 1):
                if not line.strip() or line.startswith("#"):
                    continue
                parts = line.split()
                try:
                    # inet_pton, not ipaddress: ~4× faster over a whole file, and a full table has ~1M lines.
                    v6 = ":" in parts[0]
                    addr = int.from_bytes(socket.inet_pton(socket.AF_INET6 if v6 else socket.AF_INET, parts[0]))
                    length = int(parts[1])
                    asn = int(parts[2].replace(",", "_").split("_")[0])
                    bits = 128 if v6 else 32
                    if not 0 <= length <= bits:
                        raise ValueError(length)
                except (ValueError, IndexError, OSError):
                    raise AsnDbError(f"config: --asn-db: {p} line {lineno}: expected 'address length asn', "
                                     f"got {line.strip()[:60]!r}") from None
                net = addr & ~((1 << (bits - length)) - 1)
                (v6s if v6 else v4s).append((net, length, asn))
    except (OSError, EOFError, UnicodeDecodeError, gzip.BadGzipFile) as exc:
        raise AsnDbError(f"config: --asn-db: cannot read {p}: {exc}") from None
    return v4s, v6s


def _read_mmdb(p: Path) -> tuple[list[Prefix], list[Prefix]]:
    """Every network of a MaxMind ASN database with its ``autonomous_system_number``."""
    import maxminddb
    from maxminddb.errors import InvalidDatabaseError

    v4: list[Prefix] = []
    v6: list[Prefix] = []
    try:
        with maxminddb.open_database(str(p)) as reader:
            for net, rec in reader:
                asn = rec.get("autonomous_system_number") if isinstance(rec, dict) else None
                if not isinstance(asn, int):
                    continue
                # The reader yields an IPv6 database's IPv4 subtree (::/96) as IPv4 networks, and
                # skips its aliases (::ffff:0:0/96); IPv4-mapped peers are looked up as IPv4 anyway.
                (v4 if net.version == 4 else v6).append((int(net.network_address), net.prefixlen, asn))
    except (OSError, InvalidDatabaseError, ValueError) as exc:
        raise AsnDbError(f"config: --asn-db: {p} is not a readable MaxMind DB: {exc}") from None
    return v4, v6


def _ranges(prefixes: list[Prefix], bits: int) -> Ranges:
    """Flatten possibly nested prefixes into disjoint ranges, each address to its longest match.

    Sorted by (start, shorter first), nested prefixes come right after the one covering them, so
    a stack of open prefixes gives, between consecutive boundaries, the innermost one.
    """
    spans = sorted(((a, a + (1 << (bits - length)) - 1, asn) for a, length, asn in prefixes),
                   key=lambda s: (s[0], -s[1]))
    out: list[tuple[int, int, int]] = []
    stack: list[tuple[int, int, int]] = []
    pos = 0  # first address not yet emitted

    def emit(until: int) -> None:
        """Cover [pos, until] with the innermost open prefix, closing the ones that end."""
        nonlocal pos
        while stack and pos <= until:
            _, e, asn = stack[-1]
            if e < pos:
                stack.pop()
                continue
            stop = min(e, until)
            if out and out[-1][1] == pos - 1 and out[-1][2] == asn:
                out[-1] = (out[-1][0], stop, asn)  # same ASN on both sides: one range
            else:
                out.append((pos, stop, asn))
            pos = stop + 1
            if e == stop:
                stack.pop()

    for s, e, asn in spans:
        emit(s - 1)
        pos = max(pos, s)
        if stack and stack[-1][0] == s and stack[-1][1] == e:
            stack[-1] = (s, e, asn)  # the same prefix listed twice: the last one wins
        else:
            stack.append((s, e, asn))
    emit((1 << bits) - 1)
    n = len(out)
    arr = np.array(out, dtype=object).reshape(n, 3) if n else np.zeros((0, 3), dtype=object)
    starts = arr[:, 0]
    ends = arr[:, 1]
    return Ranges(
        start_hi=np.array([x >> 64 for x in starts], dtype=np.uint64),
        start_lo=np.array([x & _M64 for x in starts], dtype=np.uint64),
        end_hi=np.array([x >> 64 for x in ends], dtype=np.uint64),
        end_lo=np.array([x & _M64 for x in ends], dtype=np.uint64),
        asn=np.array(arr[:, 2].tolist(), dtype=np.uint32),
    )
