"""Readers for the external netlink test vectors in ../shared/fixtures.

The fixtures are other projects' captures (see ``PROVENANCE.md`` there): they are read in place and
never copied into this repository. Everything here is test-side code, independent of the package under
test, so that the decoder is checked against readers that do not share its bugs.
"""

from __future__ import annotations

import os
import re
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ENV_FIXTURES_DIR = "XTCP_FIXTURES_DIR"

# Repository root is two levels above this file (tests/support/fixtures.py); the shared folder sits
# beside the repository.
REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_FIXTURES_DIR = REPO_ROOT.parent / "shared" / "fixtures"

# libpcap global header magic, as read with each byte order; nanosecond variants use a1b23c4d.
_PCAP_MAGICS: dict[bytes, tuple[str, bool]] = {
    b"\xd4\xc3\xb2\xa1": ("<", False),
    b"\xa1\xb2\xc3\xd4": (">", False),
    b"\x4d\x3c\xb2\xa1": ("<", True),
    b"\xa1\xb2\x3c\x4d": (">", True),
}
_PCAP_GLOBAL_HEADER_LEN = 24
_PCAP_RECORD_HEADER_LEN = 16
LINKTYPE_NETLINK = 253
# LINKTYPE_NETLINK cooked header: pkttype, ARPHRD_NETLINK (0x0338), 4 reserved u16, protocol; all BE.
COOKED_HEADER_LEN = 16
ARPHRD_NETLINK = 0x0338
NETLINK_SOCK_DIAG = 4

NLMSG_HDR = struct.Struct("=IHHII")  # len, type, flags, seq, pid (host order; captures are x86-64)
NLMSG_HDRLEN = NLMSG_HDR.size
NLMSG_ERROR = 2
NLMSG_DONE = 3
SOCK_DIAG_BY_FAMILY = 20
NLM_F_REQUEST = 0x01
NLM_F_MULTI = 0x02
NLM_F_DUMP = 0x300  # NLM_F_ROOT | NLM_F_MATCH

INET_DIAG_MSG_LEN = 72
INET_DIAG_REQ_V2_LEN = 56
NLA_TYPE_MASK = 0x3FFF

AF_INET = 2
AF_INET6 = 10


class FixtureFormatError(ValueError):
    """A fixture file does not have the layout these readers expect."""


def fixtures_dir() -> Path:
    """Return where the shared fixtures live: $XTCP_FIXTURES_DIR, else ../shared/fixtures."""
    env = os.environ.get(ENV_FIXTURES_DIR)
    return Path(env) if env else DEFAULT_FIXTURES_DIR


def require_fixtures() -> Path:
    """Return the fixtures dir; skip the calling test when absent, but fail under CI."""
    path = fixtures_dir()
    if (path / "xtcp2").is_dir() and (path / "mlab").is_dir():
        return path
    reason = f"shared fixtures not found at {path} (set {ENV_FIXTURES_DIR} to their location)"
    if os.environ.get("CI"):
        pytest.fail(f"{reason}; CI must run the fixture tests", pytrace=False)
    pytest.skip(reason=reason)


# --- pcap -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PcapPacket:
    """One captured packet: its index, timestamp, cooked-header fields and raw netlink bytes."""

    index: int
    ts_sec: int
    ts_frac: int
    pkttype: int
    protocol: int
    data: bytes


def iter_pcap_packets(path: Path) -> Iterator[PcapPacket]:
    """Yield every packet of a classic libpcap LINKTYPE_NETLINK file, cooked header stripped."""
    raw = path.read_bytes()
    if len(raw) < _PCAP_GLOBAL_HEADER_LEN:
        raise FixtureFormatError(f"{path}: {len(raw)} bytes, shorter than the pcap global header")
    magic = raw[:4]
    if magic not in _PCAP_MAGICS:
        raise FixtureFormatError(f"{path}: not a classic pcap file (magic {magic.hex()})")
    order, _nanos = _PCAP_MAGICS[magic]
    _vmaj, _vmin, _tz, _sigfigs, _snaplen, linktype = struct.unpack_from(order + "HHiIII", raw, 4)
    if linktype != LINKTYPE_NETLINK:
        raise FixtureFormatError(f"{path}: link type {linktype}, expected {LINKTYPE_NETLINK} (netlink)")
    rec = struct.Struct(order + "IIII")
    off = _PCAP_GLOBAL_HEADER_LEN
    index = 0
    while off < len(raw):
        if off + _PCAP_RECORD_HEADER_LEN > len(raw):
            raise FixtureFormatError(
                f"{path}: packet {index} record header truncated at byte {off} "
                f"({len(raw) - off} of {_PCAP_RECORD_HEADER_LEN} bytes)"
            )
        ts_sec, ts_frac, incl_len, orig_len = rec.unpack_from(raw, off)
        off += _PCAP_RECORD_HEADER_LEN
        if off + incl_len > len(raw):
            raise FixtureFormatError(
                f"{path}: packet {index} truncated: record says {incl_len} bytes, "
                f"{len(raw) - off} left in the file"
            )
        if incl_len < orig_len:
            raise FixtureFormatError(f"{path}: packet {index} snapped ({incl_len} of {orig_len} bytes)")
        if incl_len < COOKED_HEADER_LEN:
            raise FixtureFormatError(f"{path}: packet {index} shorter than the cooked header")
        pkttype, arphrd = struct.unpack_from(">HH", raw, off)
        (protocol,) = struct.unpack_from(">H", raw, off + COOKED_HEADER_LEN - 2)
        if arphrd != ARPHRD_NETLINK:
            raise FixtureFormatError(f"{path}: packet {index} ARPHRD {arphrd:#x}, expected netlink")
        yield PcapPacket(
            index=index,
            ts_sec=ts_sec,
            ts_frac=ts_frac,
            pkttype=pkttype,
            protocol=protocol,
            data=raw[off + COOKED_HEADER_LEN : off + incl_len],
        )
        off += incl_len
        index += 1


def iter_pcap_netlink(path: Path, *, protocol: int | None = NETLINK_SOCK_DIAG) -> Iterator[bytes]:
    """Yield each packet's raw netlink bytes (one or more whole netlink messages per packet).

    Only packets of ``protocol`` (the cooked header's netlink family) are yielded: some captures also
    hold NETLINK_ROUTE (0) traffic of other processes, e.g. 5_15_164_tcp_10_sockets.pcap. Pass
    ``protocol=None`` for every packet.
    """
    for pkt in iter_pcap_packets(path):
        if protocol is None or pkt.protocol == protocol:
            yield pkt.data


# --- netlink messages ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class NlMsg:
    """One netlink message: its header fields and its payload (the bytes after the 16-byte header)."""

    type: int
    flags: int
    seq: int
    pid: int
    payload: bytes

    @property
    def is_request(self) -> bool:
        """True for a message userspace sent (NLM_F_REQUEST set); the kernel's replies never set it."""
        return bool(self.flags & NLM_F_REQUEST)

    @property
    def is_sock_reply(self) -> bool:
        """True for a SOCK_DIAG_BY_FAMILY reply that carries one socket (inet_diag_msg + attributes)."""
        return self.type == SOCK_DIAG_BY_FAMILY and not self.is_request

    @property
    def family(self) -> int:
        """Address family byte of a request (sdiag_family) or reply (idiag_family)."""
        return self.payload[0]


def iter_nlmsgs(data: bytes, *, where: str = "buffer") -> Iterator[NlMsg]:
    """Walk whole netlink messages by nlmsg_len (NLMSG_ALIGN'ed); raise on a header that lies."""
    off = 0
    while off + NLMSG_HDRLEN <= len(data):
        length, mtype, flags, seq, pid = NLMSG_HDR.unpack_from(data, off)
        if length < NLMSG_HDRLEN or off + length > len(data):
            raise FixtureFormatError(
                f"{where}: nlmsg at byte {off} has nlmsg_len {length}, {len(data) - off} bytes left"
            )
        yield NlMsg(mtype, flags, seq, pid, data[off + NLMSG_HDRLEN : off + length])
        off += (length + 3) & ~3
    if off < len(data):
        raise FixtureFormatError(f"{where}: {len(data) - off} trailing bytes after the last nlmsg")


def split_dumps(path: Path, *, protocol: int | None = NETLINK_SOCK_DIAG) -> list[list[bytes]]:
    """Split a capture into dumps: each request packet starts a new list of reply packets.

    ss sends one dump request per address family (AF_INET, then AF_INET6), so one ss run is two
    consecutive dumps. Packets before the first request (none in the fixtures) form no dump.
    """
    dumps: list[list[bytes]] = []
    for pkt in iter_pcap_packets(path):
        if protocol is not None and pkt.protocol != protocol:
            continue
        msgs = list(iter_nlmsgs(pkt.data, where=f"{path.name} packet {pkt.index}"))
        if msgs and all(m.is_request for m in msgs):
            dumps.append([])
        elif dumps:
            dumps[-1].append(pkt.data)
    return dumps


def iter_pcap_nlmsgs(path: Path, *, protocol: int | None = NETLINK_SOCK_DIAG) -> Iterator[NlMsg]:
    """Yield every netlink message of a pcap's ``protocol`` packets, requests included."""
    for pkt in iter_pcap_packets(path):
        if protocol is None or pkt.protocol == protocol:
            yield from iter_nlmsgs(pkt.data, where=f"{path.name} packet {pkt.index}")


def iter_nlas(data: bytes, start: int = 0) -> Iterator[tuple[int, bytes]]:
    """Yield (type masked with 0x3fff, payload) for each 4-byte-aligned attribute from ``start``."""
    off = start
    while off + 4 <= len(data):
        nla_len, nla_type = struct.unpack_from("=HH", data, off)
        if nla_len < 4 or off + nla_len > len(data):
            raise FixtureFormatError(f"attribute at byte {off}: nla_len {nla_len}, {len(data) - off} left")
        yield nla_type & NLA_TYPE_MASK, data[off + 4 : off + nla_len]
        off += (nla_len + 3) & ~3


# --- m-lab ------------------------------------------------------------------------------------

MLAB_TESTDATA = ("mlab", "testdata.zst")


def iter_mlab_messages(path: Path | None = None) -> Iterator[bytes]:
    """Yield each whole netlink message (header included) of m-lab's testdata.zst, walked by nlmsg_len."""
    import zstandard  # dev dependency; imported here so collecting tests never needs it

    if path is None:
        path = fixtures_dir().joinpath(*MLAB_TESTDATA)
    with path.open("rb") as fh:
        data = zstandard.ZstdDecompressor().stream_reader(fh).read()
    off = 0
    while off < len(data):
        if off + NLMSG_HDRLEN > len(data):
            raise FixtureFormatError(f"{path}: {len(data) - off} trailing bytes, shorter than nlmsghdr")
        (length,) = struct.unpack_from("=I", data, off)
        if length < NLMSG_HDRLEN or off + length > len(data):
            raise FixtureFormatError(f"{path}: nlmsg at byte {off} has nlmsg_len {length}")
        yield data[off : off + length]
        # m-lab stores each message as it came off the socket, so the next one starts right after.
        off += length


# --- attribute blobs ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AttributeBlob:
    """One ``attribute_*`` file: a single raw rtattr, 4-byte header included."""

    path: Path
    nla_len: int
    nla_type: int  # masked with 0x3fff
    payload: bytes

    @property
    def kernel(self) -> str:
        """The kernel folder the blob came from (e.g. ``6_6_44``), or ``""`` at the top level."""
        return self.path.parent.name if self.path.parent.name[:1].isdigit() else ""


def attribute_blobs(root: Path | None = None) -> list[AttributeBlob]:
    """Every ``attribute_*`` file under fixtures/xtcp2, with the type from its rtattr header.

    The all-zero placeholder ``attribute_pragueinfo_fake_fixme`` is left out (see ``ZEROED_FIXTURES``).
    """
    base = (root if root is not None else fixtures_dir()) / "xtcp2"
    blobs = []
    for path in sorted(base.rglob("attribute_*")):
        if not path.is_file() or is_zeroed(path):
            continue
        raw = path.read_bytes()
        if len(raw) < 4:
            raise FixtureFormatError(f"{path}: {len(raw)} bytes, shorter than an rtattr header")
        nla_len, nla_type = struct.unpack_from("=HH", raw, 0)
        blobs.append(AttributeBlob(path, nla_len, nla_type & NLA_TYPE_MASK, raw[4:nla_len]))
    return blobs


# --- pcap ↔ ss text pairs -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SsPair:
    """A capture and the ss text printed by the same ss run (the expected-value oracle)."""

    kernel: str
    pcap: Path
    ss_text: Path
    ss_args: str  # "-tia" (all states; printed with -o -e -m and tos too) or "-ti" (7.0.3: no -o/-e/-m)
    run: int = 0  # which ss run in the capture the text belongs to (one run = AF_INET + AF_INET6 dumps)
    same_run: bool = True  # False: the text came from another run; only long-lived sockets pair

    @property
    def id(self) -> str:
        """Short test id such as ``6_6_44/tcp_100_sockets_bbr``."""
        return f"{self.kernel}/{self.pcap.stem.removeprefix(self.kernel + '_')}"

    @property
    def show_options(self) -> bool:
        """ss printed -o output (timer, and the ts/sack/ecn/ecnseen/fastopen words)."""
        return self.ss_args != "-ti"

    def run_chunks(self) -> list[bytes]:
        """The reply packets of this pair's ss run: its AF_INET dump, then its AF_INET6 dump."""
        dumps = split_dumps(self.pcap)
        if len(dumps) < 2 * self.run + 2:
            raise FixtureFormatError(f"{self.pcap}: {len(dumps)} dumps, run {self.run} needs two more")
        return dumps[2 * self.run] + dumps[2 * self.run + 1]


_SOCKETS_PCAP = re.compile(r"^(?:(?P<kernel>\d+_\d+_\d+)_)?tcp_(?P<n>\d+)_sockets(?P<suffix>.*)\.pcap$")

# Pairs that do not follow the ``*_tcp_N_sockets*.pcap`` ↔ ``*ss_tcp_info_a_N*`` naming.
_EXTRA_PAIRS: tuple[tuple[str, str, str, str], ...] = (
    ("6_6_44", "ss_tcp_info_a_4.pcap", "ss_tcp_info_a_4", "-tia"),
    # 7.0.3 ships one capture with `ss -tin` text (established sockets only, no -a).
    ("7_0_3", "7_0_3_ss_tcp_info.pcap", "ss_tcp_info_n", "-ti"),
)

# Captures that hold several runs (6.6.44 ran ss three times; 7.0.3's first run is another tool's
# INFO-only dump). Found by decoding every run and comparing with the text: exactly one run matches
# every socket; the others differ in counters that moved between runs.
_RUN_OF_PAIR: dict[str, int] = {
    "6_6_44/tcp_1000_sockets": 1,
    "6_6_44/tcp_100_sockets": 2,
    "6_6_44/tcp_100_sockets_bbr": 1,
    "6_6_44/tcp_100_sockets_dctcp": 1,
    "6_6_44/tcp_100_sockets_vegas": 1,
    "7_0_3/ss_tcp_info": 1,
}
# The 6.6.44 10-socket text is from a different run than its capture (other cookies, ports and
# pids): only sshd's two listeners are the same sockets in both.
_OTHER_RUN_PAIRS = frozenset({"6_6_44/tcp_10_sockets"})

# Fixture files that are all zero bytes in the source snapshot (nothing to read).
ZEROED_FIXTURES = frozenset(
    {
        "6_1_103/6_1_103_tcp_1000_sockets.pcap",
        "6_1_103/6_1_103_ss_tcp_info_a_1000",
        "xtcp2/attribute_pragueinfo_fake_fixme",  # a placeholder upstream, 40 zero bytes
    }
)


def sockets_pcaps(root: Path | None = None) -> list[Path]:
    """Every ``*_tcp_*_sockets*.pcap`` (and the 6.6 unprefixed ``tcp_*_sockets*.pcap``), sorted."""
    base = (root if root is not None else fixtures_dir()) / "xtcp2"
    return sorted(p for p in base.glob("*/*.pcap") if _SOCKETS_PCAP.match(p.name))


def is_zeroed(path: Path) -> bool:
    """True for the fixture files known to hold only zero bytes."""
    return f"{path.parent.name}/{path.name}" in ZEROED_FIXTURES


def ss_pairs(root: Path | None = None) -> tuple[list[SsPair], list[Path]]:
    """Pair each socket capture with its ss text; also return captures that have no usable text.

    Zeroed captures and the 2000-socket netem captures (their text is missing from the snapshot) are
    the unpaired ones.
    """
    base = (root if root is not None else fixtures_dir()) / "xtcp2"
    found: list[tuple[str, Path, Path, str]] = []
    unpaired: list[Path] = []
    for pcap in sockets_pcaps(root):
        m = _SOCKETS_PCAP.match(pcap.name)
        assert m is not None
        kernel = pcap.parent.name
        prefix = f"{kernel}_" if m["kernel"] else ""
        text = pcap.parent / f"{prefix}ss_tcp_info_a_{m['n']}{m['suffix']}"
        if text.is_file() and not is_zeroed(pcap) and not is_zeroed(text):
            found.append((kernel, pcap, text, "-tia"))
        else:
            unpaired.append(pcap)
    for kernel, pcap_name, text_name, args in _EXTRA_PAIRS:
        pcap, text = base / kernel / pcap_name, base / kernel / text_name
        if pcap.is_file() and text.is_file():
            found.append((kernel, pcap, text, args))
    pairs = []
    for kernel, pcap, text, args in found:
        pair = SsPair(kernel, pcap, text, args)
        pairs.append(
            SsPair(
                kernel,
                pcap,
                text,
                args,
                run=_RUN_OF_PAIR.get(pair.id, 0),
                same_run=pair.id not in _OTHER_RUN_PAIRS,
            )
        )
    return pairs, unpaired
