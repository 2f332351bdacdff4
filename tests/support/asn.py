"""Small ASN databases the tests write themselves (pfx2as text and MaxMind .mmdb), an oracle that
answers longest-prefix-match questions the slow obvious way, and the recorded 6.18 dump as a batch."""

from __future__ import annotations

import gzip
import importlib.util
import ipaddress
from pathlib import Path

from xtcp_async.netlink.batch import SocketBatch
from xtcp_async.netlink.decode import decode_messages

DATA = Path(__file__).resolve().parents[1] / "data"

#: Nested and disjoint prefixes of both families (documentation and loopback ranges).
PREFIXES: list[tuple[str, int]] = [
    ("127.0.0.0/8", 64500),
    ("127.0.0.0/24", 64501),       # inside the /8: longest match wins
    ("127.0.0.2/32", 64502),       # inside the /24
    ("192.0.2.0/24", 64503),
    ("198.51.100.0/22", 64504),
    ("198.51.100.128/25", 64505),
    ("203.0.113.0/24", 64506),
    ("::1/128", 64510),
    ("2001:db8::/32", 64511),
    ("2001:db8:1::/48", 64512),
    ("2001:db8:1:2::/64", 64513),
    ("2001:db8:ffff:ffff:ffff:ffff:ffff:fff0/124", 64514),
    ("fd00::/8", 64515),
]


def write_pfx2as(path: Path, prefixes: list[tuple[str, int]] = PREFIXES, *, gz: bool = False) -> Path:
    """routeviews pfx2as layout: address, length, ASN, tab-separated (one multi-origin 'a_b' line)."""
    lines = []
    for i, (net, asn) in enumerate(prefixes):
        n = ipaddress.ip_network(net)
        origin = f"{asn}_{asn + 1000}" if i == 3 else str(asn)
        lines.append(f"{n.network_address}\t{n.prefixlen}\t{origin}\n")
    data = "".join(lines).encode()
    path.write_bytes(gzip.compress(data) if gz else data)
    return path


def mmdb_prefixes(prefixes: list[tuple[str, int]] = PREFIXES) -> list[tuple[str, int]]:
    """The prefixes an IPv6 .mmdb can hold apart: its IPv4 tree *is* ::/96, so ::1 there reads as 0.0.0.1."""
    v4_space = ipaddress.ip_network("::/96")
    return [(net, asn) for net, asn in prefixes
            if not (ipaddress.ip_network(net).version == 6 and ipaddress.ip_network(net).subnet_of(v4_space))]


def write_mmdb(path: Path, prefixes: list[tuple[str, int]] = PREFIXES) -> Path:
    """A GeoLite2-ASN-shaped MaxMind DB (IPv6 tree with IPv4 in it), by the mmdb-writer package;
    prefixes inside ::/96 are left out (see mmdb_prefixes)."""
    prefixes = mmdb_prefixes(prefixes)
    from mmdb_writer import MMDBWriter
    from netaddr import IPSet

    w = MMDBWriter(ip_version=6, database_type="GeoLite2-ASN", ipv4_compatible=True)
    # Inserted shortest first: the writer lets a later, more specific network override.
    for net, asn in sorted(prefixes, key=lambda p: ipaddress.ip_network(p[0]).prefixlen):
        w.insert_network(IPSet([net]), {"autonomous_system_number": asn,
                                        "autonomous_system_organization": f"AS{asn} example"})
    w.to_db_file(str(path))
    return path


def oracle_asn(addr: str, prefixes: list[tuple[str, int]] = PREFIXES) -> int:
    """Longest-prefix match by trying every prefix (IPv4-mapped IPv6 as its IPv4 address)."""
    a = ipaddress.ip_address(addr)
    if isinstance(a, ipaddress.IPv6Address) and a.ipv4_mapped is not None:
        a = a.ipv4_mapped
    best, best_len = 0, -1
    for net, asn in prefixes:
        n = ipaddress.ip_network(net)
        if n.version == a.version and a in n and n.prefixlen > best_len:
            best, best_len = asn, n.prefixlen
    return best


def capture_batch() -> SocketBatch:
    """The 6.18 dump recorded in tests/data (27 sockets: IPv4, IPv6, v4-mapped; all states)."""
    spec = importlib.util.spec_from_file_location("record_capture", DATA / "record_capture.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return decode_messages(mod.read_chunks(DATA / "kernel_6_18_dump.bin")).batch
