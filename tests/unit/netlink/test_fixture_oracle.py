"""The decoder agrees, socket by socket and field by field, with the ss text shipped with each capture.

Oracle: ``tests/support/ss_text.py`` renders a decoded record the way iproute2's ss prints it (same
omission rules, same printf rounding), and the rendered text must equal the text ss printed — exact
string equality, so ss's rounding is allowed and nothing else. See ``tests/support/ORACLE.md``.
"""

from __future__ import annotations

import ipaddress
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from tests.support import fixtures as fx
from tests.support import ss_text as ss
from xtcp_async.netlink.decode import decode_messages

pytestmark = pytest.mark.fixtures

# First-line keys rendered from inet_diag_msg and attributes; -ti output (7.0.3) prints only the first 3.
HEADER_KEYS = (
    "state",
    "recv_q",
    "send_q",
    "timer",
    "uid",
    "ino",
    "sk",
    "shutdown",
    "tos",
    "tclass",
    "class_id",
)
MAX_REPORTED = 25


def _pairs() -> list[fx.SsPair]:
    return fx.ss_pairs()[0] if (fx.fixtures_dir() / "xtcp2").is_dir() else []


@pytest.fixture(scope="module")
def root() -> Path:
    """The shared fixtures folder (skips where absent, fails under CI)."""
    return fx.require_fixtures()


def _ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    return ipaddress.ip_address(text)


def _address_key(rec: dict[str, Any]) -> tuple[str, int, str, int]:
    return (
        str(_ip(rec["inet_diag_msg_socket_source"])),
        rec["inet_diag_msg_socket_source_port"],
        str(_ip(rec["inet_diag_msg_socket_destination"])),
        rec["inet_diag_msg_socket_destination_port"],
    )


def _pair_sockets(
    pair: fx.SsPair, socks: list[ss.SsSocket], recs: list[dict[str, Any]]
) -> list[tuple[ss.SsSocket, dict[str, Any]]]:
    """Match ss lines with records: by cookie (ss -e prints it as sk:) else by addresses and ports."""
    by_cookie = {r["inet_diag_msg_socket_cookie"]: r for r in recs}
    by_addr: dict[tuple[str, int, str, int], list[dict[str, Any]]] = {}
    for r in recs:
        by_addr.setdefault(_address_key(r), []).append(r)
    matched = []
    for s in socks:
        cookie = ss.cookie_of(s)
        if cookie is not None:
            rec = by_cookie.get(cookie)
        else:
            candidates = by_addr.get(ss.address_key(s), [])
            assert len(candidates) <= 1, f"{pair.id} line {s['line_no']}: ambiguous without a cookie"
            rec = candidates[0] if candidates else None
        if rec is not None:
            matched.append((s, rec))
    return matched


def _mismatches(pair: fx.SsPair, sock: ss.SsSocket, rec: dict[str, Any]) -> list[str]:
    """Every key where the rendered record differs from ss's text, as readable lines."""
    where = f"{pair.id} line {sock['line_no']} {sock['local'].raw} -> {sock['peer'].raw}"
    out = []
    local, peer = sock["local"], sock["peer"]
    got_addr = (
        _ip(rec["inet_diag_msg_socket_source"]),
        rec["inet_diag_msg_socket_source_port"],
        _ip(rec["inet_diag_msg_socket_destination"]),
        rec["inet_diag_msg_socket_destination_port"],
        rec["inet_diag_msg_family"] == fx.AF_INET6,
    )
    want_addr = (local.ip(), local.port, peer.ip(), peer.port, local.is_v6_text)
    if got_addr != want_addr:
        out.append(f"{where}: addresses decoded {got_addr}, ss {want_addr}")
    header = ss.render_header(rec)
    keys = HEADER_KEYS if pair.show_options else HEADER_KEYS[:3]
    for key in keys:
        if header.get(key) != sock.get(key):
            out.append(f"{where}: {key} decoded→{header.get(key)!r}, ss {sock.get(key)!r}")
    info = ss.render_info_line(rec, options=pair.show_options)
    printed = {k: v for k, v in sock.items() if k in ss.INFO_KEYS}
    for key in sorted(set(info) | set(printed)):
        if info.get(key) != printed.get(key):
            out.append(f"{where}: {key} decoded→{info.get(key)!r}, ss {printed.get(key)!r}")
    return out


@pytest.mark.parametrize("pair", _pairs(), ids=lambda p: p.id)
def test_capture_run_decodes_without_problems(root: Path, pair: fx.SsPair) -> None:
    """The ss run's replies decode with no problem counted, both NLMSG_DONE seen, one row per reply."""
    chunks = pair.run_chunks()
    res = decode_messages(chunks)
    replies = sum(m.is_sock_reply for c in chunks for m in fx.iter_nlmsgs(c))
    assert dict(res.problems) == {}
    assert res.errors == []
    assert res.done
    assert not res.dump_interrupted
    assert res.batch.n == replies


@pytest.mark.parametrize("pair", _pairs(), ids=lambda p: p.id)
def test_every_socket_matches_its_ss_line(root: Path, pair: fx.SsPair) -> None:
    """Each socket ss printed is decoded, and every field ss shows equals the decoded value ss-formatted."""
    socks = ss.parse_ss_file(pair.ss_text)
    recs = decode_messages(pair.run_chunks()).batch.to_records()
    matched = _pair_sockets(pair, socks, recs)
    if pair.same_run:
        assert len(matched) == len(socks) == len(recs)
    else:
        # Text and capture come from different runs: only sshd's listeners are the same sockets.
        assert [s["state"] for s, _ in matched] == ["LISTEN", "LISTEN"]
    problems = [line for s, r in matched for line in _mismatches(pair, s, r)]
    summary = Counter(line.split(": ", 1)[1].split(" ", 1)[0] for line in problems)
    assert not problems, f"{len(problems)} mismatches {dict(summary)}:\n" + "\n".join(problems[:MAX_REPORTED])


def test_oracle_covers_every_field_the_issue_lists(root: Path) -> None:
    """Across all captures ss printed every field the issue asks to compare, so each is checked somewhere."""
    seen: Counter[str] = Counter()
    for pair in _pairs():
        for sock in ss.parse_ss_file(pair.ss_text):
            seen.update(k for k in sock if k in ss.INFO_KEYS or k in HEADER_KEYS)
    required = {
        "state", "recv_q", "send_q", "rtt", "rto", "ato", "mss", "cwnd", "ssthresh", "bytes_sent",
        "bytes_acked", "bytes_received", "bytes_retrans", "segs_out", "segs_in", "data_segs_out",
        "data_segs_in", "retrans", "lastsnd", "lastrcv", "lastack", "rcv_space", "rcv_ssthresh", "wscale",
        "delivery_rate", "pacing_rate", "app_limited", "busy", "minrtt", "skmem", "bbr", "dctcp", "send",
        "timer", "unacked", "rcv_rtt", "snd_wnd", "rcv_wnd", "tos", "tclass", "class_id", "shutdown",
    }  # fmt: skip
    assert required <= set(seen), sorted(required - set(seen))


def test_vegas_sockets_need_the_vegas_rtt(root: Path) -> None:
    """ss's send rate for vegas sockets is only reproduced with vegas_info_rtt, so vegas info is checked."""
    (pair,) = [p for p in _pairs() if p.id == "6_6_44/tcp_100_sockets_vegas"]
    recs = decode_messages(pair.run_chunks()).batch.to_records()
    vegas = [r for r in recs if r.get("vegas_info_enabled")]
    assert len(vegas) >= 200
    differs = 0
    for rec in vegas:
        without = {k: v for k, v in rec.items() if not k.startswith("vegas_info_")}
        differs += ss.render_info_line(rec).get("send") != ss.render_info_line(without).get("send")
    assert differs > len(vegas) // 2


def test_mlab_stream_decodes_all_420_messages(root: Path) -> None:
    """m-lab's 4.9-era stream: 420 rows (375 IPv6, 45 IPv4), tcp_info of 168 bytes up to delivery_rate."""
    res = decode_messages(list(fx.iter_mlab_messages()))
    recs = res.batch.to_records()
    assert dict(res.problems) == {}
    assert len(recs) == 420
    assert Counter(r["inet_diag_msg_family"] for r in recs) == {fx.AF_INET6: 375, fx.AF_INET: 45}
    with_info = [r for r in recs if "tcp_info_state" in r]
    assert with_info
    assert all(r.get("tcp_info_length", 168) == 168 for r in with_info)
    assert all("tcp_info_delivery_rate" in r for r in with_info)
    assert not any("tcp_info_busy_time" in r or "tcp_info_bytes_sent" in r for r in recs)
