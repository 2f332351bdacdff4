"""--asn-db: both database formats load to the same table, and columnar lookups equal longest-prefix match."""

from __future__ import annotations

import ipaddress
import random
from pathlib import Path

import maxminddb
import numpy as np
import pytest

from tests.support.asn import PREFIXES, mmdb_prefixes, oracle_asn, write_mmdb, write_pfx2as
from xtcp_async.enrich.asndb import AsnDbError, AsnTable, load_asn_db
from xtcp_async.enrich.lookup import lookup_asn, remote_prefix
from xtcp_async.netlink import constants as c


def probe_addresses(seed: int = 7) -> list[str]:
    """Each prefix's first and last address, their neighbours outside, random inside; some mapped."""
    rnd = random.Random(seed)
    out: list[str] = []
    for net, _ in PREFIXES:
        n = ipaddress.ip_network(net)
        first, last = int(n.network_address), int(n.broadcast_address)
        top = (1 << n.max_prefixlen) - 1
        for v in (first, last, max(first - 1, 0), min(last + 1, top), rnd.randint(first, last)):
            a = ipaddress.ip_address(v) if n.version == 4 else ipaddress.IPv6Address(v)
            out.append(str(a))
            if n.version == 4:
                out.append(f"::ffff:{a}")
    out += ["0.0.0.0", "255.255.255.255", "::", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "10.0.0.1", "2001:db9::1"]
    out += [str(ipaddress.IPv4Address(rnd.getrandbits(32))) for _ in range(200)]
    out += [str(ipaddress.IPv6Address(rnd.getrandbits(128))) for _ in range(200)]
    return out


def as_columns(addrs: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Family and 16-byte address columns, laid out as the decoder lays them (IPv4 in the first 4)."""
    fam = np.zeros(len(addrs), dtype=np.uint32)
    raw = np.zeros((len(addrs), 16), dtype=np.uint8)
    for i, text in enumerate(addrs):
        a = ipaddress.ip_address(text)
        fam[i] = c.AF_INET if a.version == 4 else c.AF_INET6
        raw[i, :len(a.packed)] = np.frombuffer(a.packed, dtype=np.uint8)
    return fam, raw


@pytest.fixture(params=["pfx2as", "pfx2as.gz", "mmdb"])
def table(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[AsnTable, list[tuple[str, int]]]:
    """The test prefixes, loaded from each supported file format (and the prefixes it holds)."""
    kind = request.param
    if kind == "mmdb":
        return load_asn_db(write_mmdb(tmp_path / "asn.mmdb")), mmdb_prefixes()
    return load_asn_db(write_pfx2as(tmp_path / f"routeviews.{kind}", gz=kind.endswith("gz"))), PREFIXES


def test_lookup_equals_longest_prefix_match(table: tuple[AsnTable, list[tuple[str, int]]]) -> None:
    """Every probe address gets the ASN of its longest matching prefix, 0 where none matches."""
    addrs = probe_addresses()
    fam, raw = as_columns(addrs)
    got = lookup_asn(table[0], fam, raw).tolist()
    want = [oracle_asn(a, table[1]) for a in addrs]
    assert got == want
    assert len(set(want)) > 10  # the probes really hit many prefixes


def test_mmdb_lookup_equals_the_maxmind_reader(tmp_path: Path) -> None:
    """On an .mmdb, our range table answers exactly what the maxminddb reader answers per address."""
    path = write_mmdb(tmp_path / "asn.mmdb")
    addrs = probe_addresses(seed=11)
    fam, raw = as_columns(addrs)
    got = lookup_asn(load_asn_db(path), fam, raw).tolist()
    with maxminddb.open_database(str(path)) as reader:
        want = []
        for a in addrs:
            rec = reader.get(a)
            want.append(int(rec["autonomous_system_number"]) if isinstance(rec, dict) else 0)
    # The reader does not alias ::ffff:a.b.c.d to IPv4 in every database; compare native rows only there.
    for a, g, w in zip(addrs, got, want, strict=True):
        if not a.startswith("::ffff:"):
            assert g == w, a


def test_pfx2as_multi_origin_takes_the_first_asn(tmp_path: Path) -> None:
    """A multi-origin line ('a_b') maps its prefix to its first ASN."""
    table = load_asn_db(write_pfx2as(tmp_path / "p.txt"))
    fam, raw = as_columns(["198.51.100.1"])
    assert lookup_asn(table, fam, raw).tolist() == [64504]


@pytest.mark.parametrize(("content", "words"), [
    (None, "cannot read"),
    (b"", "no prefix"),
    (b"1.2.3.0\t24\t100\nnot a line\n", "line 2"),
    (b"\x1f\x8b\x08\x00garbage", "cannot read"),
    (b"xx\xab\xcd\xefMaxMind.com broken", "MaxMind DB"),
])
def test_bad_databases_raise_one_clear_error(tmp_path: Path, content: bytes | None, words: str) -> None:
    """Missing, empty, malformed text, broken gzip and broken .mmdb files each raise AsnDbError saying what."""
    path = tmp_path / "db"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(AsnDbError, match=words) as info:
        load_asn_db(path)
    assert "\n" not in str(info.value) and str(info.value).startswith("config: --asn-db")


def test_prefixes_are_cut_per_family() -> None:
    """IPv4 to /24, IPv6 to /48, and a v4-mapped address to 96+24 bits (same IPv4 network)."""
    fam, raw = as_columns(["198.51.100.77", "2001:db8:1:2::5", "::ffff:198.51.100.77"])
    prefix, lengths = remote_prefix(fam, raw, 24, 48)
    texts = []
    for f, p in zip(fam.tolist(), prefix, strict=True):
        b = p.tobytes()
        texts.append(str(ipaddress.IPv4Address(b[:4]) if f == c.AF_INET else ipaddress.IPv6Address(b)))
    assert texts == ["198.51.100.0", "2001:db8:1::", "::ffff:c633:6400"]
    assert lengths.tolist() == [24, 48, 120]
