"""Specifications of the test-side fixture readers and the ss text oracle (tests/support)."""

from __future__ import annotations

import ipaddress
import struct
from collections import Counter
from pathlib import Path

import pytest

from tests.support import fixtures as fx
from tests.support import ss_text as ss

pytestmark = pytest.mark.fixtures

_PCAP_HDR = struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 262144, fx.LINKTYPE_NETLINK)
_COOKED = struct.pack(">HHHHHHHH", 4, fx.ARPHRD_NETLINK, 0, 0, 0, 0, 0, fx.NETLINK_SOCK_DIAG)
_DONE = struct.pack("=IHHII", 20, fx.NLMSG_DONE, fx.NLM_F_MULTI, 1, 0) + b"\0\0\0\0"


def _record(data: bytes, order: str = "<") -> bytes:
    return struct.pack(order + "IIII", 1, 2, len(data), len(data)) + data


@pytest.fixture(scope="module")
def root() -> Path:
    """The shared fixtures folder (skips where absent, fails under CI)."""
    return fx.require_fixtures()


def all_pcaps() -> list[Path]:
    """Every pcap under fixtures/xtcp2 (empty when the fixtures are absent)."""
    base = fx.fixtures_dir() / "xtcp2"
    return sorted(base.rglob("*.pcap")) if base.is_dir() else []


def _pairs() -> list[fx.SsPair]:
    return fx.ss_pairs()[0] if (fx.fixtures_dir() / "xtcp2").is_dir() else []


# --- locating the fixtures -------------------------------------------------------------------------


def test_fixtures_dir_follows_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """XTCP_FIXTURES_DIR overrides the default ../shared/fixtures location."""
    monkeypatch.setenv(fx.ENV_FIXTURES_DIR, str(tmp_path))
    assert fx.fixtures_dir() == tmp_path


def test_default_fixtures_dir_is_beside_the_repository(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without the variable the fixtures are looked for in shared/fixtures next to the repo root."""
    monkeypatch.delenv(fx.ENV_FIXTURES_DIR, raising=False)
    assert fx.fixtures_dir() == fx.REPO_ROOT.parent / "shared" / "fixtures"
    assert (fx.REPO_ROOT / "pyproject.toml").is_file()


def test_require_fixtures_skips_when_absent(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Outside CI a missing fixtures folder skips the test with a reason naming the path."""
    monkeypatch.setenv(fx.ENV_FIXTURES_DIR, str(tmp_path / "nowhere"))
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match="nowhere"):
        fx.require_fixtures()


def test_require_fixtures_fails_under_ci(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Under CI a missing fixtures folder is a failure, never a skip."""
    monkeypatch.setenv(fx.ENV_FIXTURES_DIR, str(tmp_path / "nowhere"))
    monkeypatch.setenv("CI", "1")
    with pytest.raises(pytest.fail.Exception, match="CI must run"):
        fx.require_fixtures()


# --- pcap reader on synthetic files ----------------------------------------------------------------


def test_pcap_reader_strips_the_cooked_header(tmp_path: Path) -> None:
    """A packet yields exactly the netlink bytes after the 16-byte cooked header."""
    path = tmp_path / "one.pcap"
    path.write_bytes(_PCAP_HDR + _record(_COOKED + _DONE))
    assert list(fx.iter_pcap_netlink(path)) == [_DONE]


def test_pcap_reader_accepts_big_endian_files(tmp_path: Path) -> None:
    """A big-endian pcap (magic a1b2c3d4 as written) reads the same packets."""
    header = struct.pack(">IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 262144, fx.LINKTYPE_NETLINK)
    path = tmp_path / "be.pcap"
    path.write_bytes(header + _record(_COOKED + _DONE, ">"))
    assert list(fx.iter_pcap_netlink(path)) == [_DONE]


def test_pcap_reader_reports_a_truncated_record(tmp_path: Path) -> None:
    """A record whose length runs past the end of the file raises a clear error."""
    path = tmp_path / "cut.pcap"
    path.write_bytes(_PCAP_HDR + _record(_COOKED + _DONE)[:-5])
    with pytest.raises(fx.FixtureFormatError, match="packet 0 truncated"):
        list(fx.iter_pcap_netlink(path))


def test_pcap_reader_reports_a_truncated_record_header(tmp_path: Path) -> None:
    """A record header cut short raises a clear error instead of yielding garbage."""
    path = tmp_path / "cut.pcap"
    path.write_bytes(_PCAP_HDR + _record(_COOKED + _DONE) + b"\1\2\3")
    with pytest.raises(fx.FixtureFormatError, match="record header truncated"):
        list(fx.iter_pcap_netlink(path))


def test_pcap_reader_rejects_other_link_types(tmp_path: Path) -> None:
    """Only LINKTYPE_NETLINK captures are accepted."""
    header = struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 262144, 1)
    path = tmp_path / "eth.pcap"
    path.write_bytes(header)
    with pytest.raises(fx.FixtureFormatError, match="link type 1"):
        list(fx.iter_pcap_netlink(path))


def test_pcap_reader_filters_other_netlink_protocols(tmp_path: Path) -> None:
    """Packets of another netlink family (NETLINK_ROUTE) are left out unless asked for."""
    route = struct.pack(">HHHHHHHH", 4, fx.ARPHRD_NETLINK, 0, 0, 0, 0, 0, 0)
    path = tmp_path / "mixed.pcap"
    path.write_bytes(_PCAP_HDR + _record(route + _DONE) + _record(_COOKED + _DONE))
    assert len(list(fx.iter_pcap_netlink(path))) == 1
    assert len(list(fx.iter_pcap_netlink(path, protocol=None))) == 2


def test_nlmsg_walk_rejects_a_lying_length() -> None:
    """An nlmsg_len longer than the bytes left is an error, not a silent stop."""
    bad = struct.pack("=IHHII", 400, 20, 2, 1, 0)
    with pytest.raises(fx.FixtureFormatError, match="nlmsg_len 400"):
        list(fx.iter_nlmsgs(bad))


# --- the real captures -----------------------------------------------------------------------------


@pytest.mark.parametrize("path", all_pcaps(), ids=lambda p: f"{p.parent.name}/{p.name}")
def test_every_pcap_holds_sane_netlink_messages(root: Path, path: Path) -> None:
    """Each packet is whole netlink messages whose nlmsg_len fits the packet; zeroed files are reported."""
    if fx.is_zeroed(path):
        with pytest.raises(fx.FixtureFormatError, match="not a classic pcap"):
            list(fx.iter_pcap_packets(path))
        return
    packets = list(fx.iter_pcap_packets(path))
    assert packets
    kinds: Counter[str] = Counter()
    for pkt in packets:
        if pkt.protocol != fx.NETLINK_SOCK_DIAG:
            continue
        for msg in fx.iter_nlmsgs(pkt.data, where=f"{path.name}#{pkt.index}"):
            if msg.is_request:
                kinds["request"] += 1
                assert msg.type == fx.SOCK_DIAG_BY_FAMILY
            elif msg.is_sock_reply:
                kinds["socket"] += 1
                assert len(msg.payload) >= fx.INET_DIAG_MSG_LEN
                assert msg.family in (fx.AF_INET, fx.AF_INET6)
                assert list(fx.iter_nlas(msg.payload, fx.INET_DIAG_MSG_LEN)) is not None
            elif msg.type == fx.NLMSG_DONE:
                kinds["done"] += 1
    assert kinds["socket"] + kinds["request"] + kinds["done"] > 0


def test_requests_and_replies_are_told_apart(root: Path) -> None:
    """A 4.19 capture is two dump requests (AF_INET, AF_INET6), the replies, and two NLMSG_DONE."""
    path = root / "xtcp2/4_19_319/4_19_319_tcp_10_sockets.pcap"
    msgs = list(fx.iter_pcap_nlmsgs(path))
    requests = [m for m in msgs if m.is_request]
    assert [m.family for m in requests] == [fx.AF_INET, fx.AF_INET6]
    assert all(m.flags & fx.NLM_F_DUMP == fx.NLM_F_DUMP for m in requests)
    assert all(len(m.payload) == fx.INET_DIAG_REQ_V2_LEN for m in requests)
    assert sum(m.is_sock_reply for m in msgs) == 33
    assert sum(m.type == fx.NLMSG_DONE for m in msgs) == 2


def test_capture_with_route_traffic_keeps_only_sock_diag(root: Path) -> None:
    """5_15_164's 10-socket capture also holds NETLINK_ROUTE packets; the default reader skips them."""
    path = root / "xtcp2/5_15_164/5_15_164_tcp_10_sockets.pcap"
    protocols = Counter(p.protocol for p in fx.iter_pcap_packets(path))
    assert protocols[0] > 0
    assert sum(m.is_sock_reply for m in fx.iter_pcap_nlmsgs(path)) == 33


def test_split_dumps_starts_a_dump_at_each_request(root: Path) -> None:
    """6.6.44's 100-socket capture holds three ss runs: six dumps of replies."""
    dumps = fx.split_dumps(root / "xtcp2/6_6_44/tcp_100_sockets.pcap")
    assert len(dumps) == 6
    sockets = [sum(m.is_sock_reply for chunk in d for m in fx.iter_nlmsgs(chunk)) for d in dumps]
    assert sum(sockets) == 1200
    assert sockets[0::2] == [sockets[0]] * 3


def test_socket_capture_pairing_covers_every_kernel(root: Path) -> None:
    """Every kernel folder has at least one capture paired with its ss text; only known files are left."""
    pairs, unpaired = fx.ss_pairs()
    kernels = {p.kernel for p in pairs}
    assert kernels == {"4_19_319", "5_4_281", "5_15_164", "6_1_103", "6_6_44", "6_8_12", "6_10_3", "7_0_3"}
    assert {p.name for p in unpaired} == {
        "6_1_103_tcp_1000_sockets.pcap",
        "6_10_3_tcp_2000_sockets_with_netem_approx_30mins.pcap",
        "6_10_3_tcp_2000_sockets_with_netem_approx_60mins.pcap",
        "6_10_3_tcp_2000_sockets_with_netem_bbr_approx_60mins.pcap",
    }


# --- ss text ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("pair", _pairs(), ids=lambda p: p.id)
def test_ss_text_parses_to_one_socket_per_line_pair(root: Path, pair: fx.SsPair) -> None:
    """Every ss text parses into as many sockets as it has socket lines, each with its info line."""
    text = pair.ss_text.read_bytes().decode("utf-8", errors="replace")
    socks = ss.parse_ss_text(text)
    lines = text.splitlines()
    assert len(socks) == ss.count_socket_lines(text) == (len(lines) - 1) // 2
    assert all(s["state"] in ss.STATES for s in socks)


@pytest.mark.parametrize("pair", _pairs(), ids=lambda p: p.id)
def test_ss_run_has_as_many_sockets_as_the_text(root: Path, pair: fx.SsPair) -> None:
    """The ss run a text belongs to replied with one message per printed socket (or, for the one text
    from another run, shares only sshd's two listeners with the capture)."""
    chunks = pair.run_chunks()
    replies = [m for c in chunks for m in fx.iter_nlmsgs(c) if m.is_sock_reply]
    socks = ss.parse_ss_file(pair.ss_text)
    if pair.same_run:
        assert len(replies) == len(socks)
    else:
        cookies = {struct.unpack_from("=Q", m.payload, 44)[0] for m in replies}
        shared = [s for s in socks if ss.cookie_of(s) in cookies]
        assert [(s["state"], s["local"].port) for s in shared] == [("LISTEN", 22), ("LISTEN", 22)]


def test_ss_first_line_fields() -> None:
    """The first line gives state, queues, endpoints, timer, users and the -e/--tos details."""
    text = (
        "State Recv-Q Send-Q Local Address:Port Peer Address:Port Process\n"
        'ESTAB 0 10 [::ffff:127.0.0.1]:4005 [::ffff:127.0.0.1]:44585 users:(("a b",pid=1,fd=3)) '
        "timer:(on,2.865ms,1) uid:1000 ino:5 sk:6b4a <-> tos:0x2 tclass:0 class_id:0\n"
        "\t skmem:(r0,rb10,t0,tb20,f4096,w0,o0,bl0,d3) ts sack cubic wscale:7,9 rtt:0.041/0.02\n"
    )
    (sock,) = ss.parse_ss_text(text)
    assert (sock["state"], sock["recv_q"], sock["send_q"]) == ("ESTAB", "0", "10")
    assert (sock["local"].ip(), sock["local"].port) == (ipaddress.ip_address("::ffff:127.0.0.1"), 4005)
    assert sock["users"] == '(("a b",pid=1,fd=3))'
    assert sock["timer"] == {"name": "on", "expires": "2.865ms", "retrans": "1"}
    assert ss.cookie_of(sock) == 0x6B4A
    assert (sock["shutdown"], sock["tos"]) == ("<->", "0x2")
    assert (sock["skmem"]["f"], sock["skmem"]["d"]) == ("4096", "3")
    assert (sock["ts"], sock["cong"], sock["wscale"]) == (True, "cubic", "7,9")
    assert ss.to_kernel_rtt(sock["rtt"]) == (41, 20)


@pytest.mark.parametrize(
    ("text", "addr", "port", "iface"),
    [
        ("127.0.0.1:22", "127.0.0.1", 22, None),
        ("0.0.0.0:*", "0.0.0.0", 0, None),
        ("*:4096", "*", 4096, None),
        ("[::]:22", "::", 22, None),
        ("[fe80::1]%eth0:8080", "fe80::1", 8080, "eth0"),
        ("10.1.2.3%lo:*", "10.1.2.3", 0, "lo"),
    ],
)
def test_endpoints_parse_every_form_ss_prints(text: str, addr: str, port: int, iface: str | None) -> None:
    """IPv4, bracketed IPv6, the * wildcard, %iface scopes and * ports all parse."""
    ep = ss.parse_endpoint(text)
    assert (ep.addr, ep.port, ep.iface) == (addr, port, iface)


def test_info_line_keeps_rates_limits_and_groups() -> None:
    """Spaced keys, rwnd_limited percentages, bbr and dctcp groups are kept as raw text."""
    text = (
        "State Recv-Q Send-Q Local Address:Port Peer Address:Port\n"
        "ESTAB 0 0 10.0.0.1:1 10.0.0.2:2\n"
        "\t bbr wscale:9,9 bbr:(bw:13107187496bps,mrtt:0.02,pacing_gain:2.88672,cwnd_gain:2.88672) "
        "send 34816000000bps pacing_rate 800bps/1600bps delivery_rate 13107200000bps app_limited "
        "busy:3ms rwnd_limited:2ms(66.7%) dctcp:(ce_state:0,alpha:10,ab_ecn:0,ab_tot:0) retrans:0/1\n"
    )
    (sock,) = ss.parse_ss_text(text)
    assert sock["cong"] == "bbr"
    assert (sock["bbr"]["bw"], sock["bbr"]["cwnd_gain"]) == ("13107187496bps", "2.88672")
    assert (sock["pacing_rate"], sock["max_pacing_rate"]) == ("800bps", "1600bps")
    assert (sock["rwnd_limited"], sock["rwnd_limited_pct"]) == ("2ms", "66.7")
    assert (sock["dctcp"]["alpha"], sock["app_limited"]) == ("10", True)
    assert ss.to_kernel_bytes_per_s(sock["delivery_rate"]) == (1638400000, 1638400000)


def test_ss_text_rejects_a_socket_without_info_line() -> None:
    """Two socket lines in a row mean the text is not ss -i output."""
    text = "State Recv-Q Send-Q Local Address:Port Peer Address:Port\nESTAB 0 0 1.1.1.1:1 2.2.2.2:2\n"
    with pytest.raises(ss.SsParseError, match="without its info line"):
        ss.parse_ss_text(text)


# --- rendering kernel values the way ss prints them --------------------------------------------------


@pytest.mark.parametrize(
    ("us", "text"),
    [(41, "0.041"), (20, "0.02"), (201000, "201"), (34749, "34.749"), (1234567, "1234.57"), (0, "0")],
)
def test_fmt_ms_is_printf_g_of_milliseconds(us: int, text: str) -> None:
    """µs fields print as %g of ms: exact below one second of µs, 6 significant digits above."""
    assert ss.fmt_ms(us) == text


@pytest.mark.parametrize(
    ("ms", "text"),
    [(0, ""), (290, "290ms"), (2865, "2.865ms"), (10432, "10sec"), (9000, "9sec"), (73000, "1min13sec"),
     (600500, "10min"), (60000, "1min")],
)  # fmt: skip
def test_fmt_ms_timer_mirrors_print_ms_timer(ms: int, text: str) -> None:
    """Timers drop milliseconds above 9 s and seconds above 9 min, like ss."""
    assert ss.fmt_ms_timer(ms) == text
    low, high = ss.to_kernel_timer_ms(text)
    assert low <= ms <= high


@pytest.mark.parametrize(
    ("bytes_per_s", "numeric", "text"),
    [
        (1638400000, True, "13107200000"),
        (1240, False, "9.92k"),
        (6875000000, False, "55G"),
        (100, False, "800"),
    ],
)
def test_fmt_bw_mirrors_sprint_bw(bytes_per_s: int, numeric: bool, text: str) -> None:
    """Rates are bytes/s × 8 printed %.0f with -n, else %.3g with a k/M/G/T suffix."""
    assert ss.fmt_bw(bytes_per_s, numeric=numeric) == text
    low, high = ss.to_kernel_bytes_per_s(text + "bps")
    assert low <= bytes_per_s <= high


def test_hash_x_prints_zero_without_prefix() -> None:
    """tos/tclass/class_id use C's %#x, which prints 0 (not 0x0) for zero."""
    assert (ss.fmt_hash_x(0), ss.fmt_hash_x(2)) == ("0", "0x2")


def test_render_info_line_applies_ss_omission_rules() -> None:
    """Zero counters, rto of 3 s, ssthresh ≥ 0xFFFF, reordering 3 and ~0 min_rtt are not printed."""
    rec = {
        "tcp_info_state": 10, "inet_diag_msg_state": 10, "tcp_info_rto": 3000000,
        "tcp_info_snd_ssthresh": 0xFFFF,
        "tcp_info_reordering": 3, "tcp_info_min_rtt": 0xFFFFFFFF, "tcp_info_snd_cwnd": 10,
        "tcp_info_sacked": 128, "tcp_info_pacing_rate": 2**64 - 1, "congestion_algorithm_string": "cubic",
    }  # fmt: skip
    assert ss.render_info_line(rec) == {"cong": "cubic", "cwnd": "10"}


def test_render_send_uses_vegas_rtt_when_enabled() -> None:
    """ss computes send = cwnd × mss × 8 / rtt, taking the rtt from vegas info when vegas is enabled."""
    base = {"tcp_info_state": 1, "tcp_info_rtt": 100, "tcp_info_snd_mss": 1000, "tcp_info_snd_cwnd": 10}
    assert ss.render_info_line(base)["send"] == "800000000bps"
    vegas = base | {"vegas_info_enabled": 1, "vegas_info_rtt": 200}
    assert ss.render_info_line(vegas)["send"] == "400000000bps"


# --- m-lab and attribute blobs ----------------------------------------------------------------------


def test_mlab_stream_has_420_messages(root: Path) -> None:
    """m-lab's testdata.zst walks into 420 whole messages: 375 AF_INET6 and 45 AF_INET."""
    msgs = list(fx.iter_mlab_messages())
    assert len(msgs) == 420
    families = Counter(m[fx.NLMSG_HDRLEN] for m in msgs)
    assert families == {fx.AF_INET6: 375, fx.AF_INET: 45}
    for raw in msgs:
        (msg,) = fx.iter_nlmsgs(raw)
        assert msg.type == fx.SOCK_DIAG_BY_FAMILY
        info = [p for t, p in fx.iter_nlas(msg.payload, fx.INET_DIAG_MSG_LEN) if t == 2]
        assert [len(p) for p in info] in ([168], [])


def test_attribute_blobs_carry_their_type(root: Path) -> None:
    """Each attribute_* file is one rtattr whose type matches its name and whose length fits the file."""
    blobs = fx.attribute_blobs()
    assert len(blobs) > 40
    by_word = {
        "info": 2, "meminfo": 1, "cong": 4, "vegasinfo": 3, "tos": 5, "tcclass": 6, "skmeminfo": 7,
        "shutdown": 8, "dctcpinfo": 9, "bbrinfo": 16, "class_id": 17, "cgroup": 21, "sockopt": 22,
    }  # fmt: skip
    for blob in blobs:
        assert 4 <= blob.nla_len <= blob.path.stat().st_size, blob.path
        name = blob.path.name.removeprefix("attribute_")
        word = next((w for w in sorted(by_word, key=len, reverse=True) if name.startswith(w)), None)
        if word is not None:
            assert blob.nla_type == by_word[word], blob.path
    info_sizes = {b.kernel: len(b.payload) for b in blobs if b.path.name == "attribute_info"}
    assert (info_sizes["4_19_319"], info_sizes["6_6_44"], info_sizes["6_10_3"]) == (224, 240, 248)
