"""A dump recorded on kernel 6.18 (280-byte tcp_info) decodes to exactly what ss printed at the same moment.

``tests/data/kernel_6_18_dump.bin`` holds the raw replies of one AF_INET and one AF_INET6 dump
of a namespace with IPv4/IPv6/v4-mapped connections, listeners, half-closed, TIME-WAIT, uid-65534
and bound-only sockets; ``kernel_6_18_ss.txt`` is ``ss -tainOHem`` run right after. Both were
made by ``tests/data/record_capture.py``. No root needed: this only reads the files.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest

from tests.integration.live.ss_line import STATES, SsLine, disagreements, parse_text, record_key
from tests.support.replay import DUMP, recorded_chunks
from xtcp_async.netlink.decode import DecodeResult, decode_messages

DATA = DUMP.parent
SS_TEXT = DATA / "kernel_6_18_ss.txt"
ACCECN = ("received_ce", "delivered_e1_bytes", "delivered_e0_bytes", "delivered_ce_bytes", "received_e1_bytes",
          "received_e0_bytes", "received_ce_bytes", "accecn_fail_mode", "accecn_opt_seen", "accecn_word")


def _read_chunks() -> list[bytes]:
    return recorded_chunks()


@pytest.fixture(scope="module")
def decoded() -> DecodeResult:
    """The recorded dump, decoded."""
    return decode_messages(_read_chunks())


@pytest.fixture(scope="module")
def records(decoded: DecodeResult) -> list[dict[str, Any]]:
    """One record per socket of the recorded dump."""
    return decoded.batch.to_records()


@pytest.fixture(scope="module")
def ss_lines() -> list[SsLine]:
    """The ss -tainOHem lines printed right after the dump."""
    return parse_text(SS_TEXT.read_text())


def _bound_only(recs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [r for r in recs if r["inet_diag_msg_state"] == STATES["UNCONN"]]


def test_capture_decodes_cleanly_to_two_complete_dumps(decoded: DecodeResult) -> None:
    """Every message of the capture decodes: no problems, no errors, not interrupted, NLMSG_DONE seen."""
    assert decoded.done
    assert not decoded.problems
    assert not decoded.errors
    assert not decoded.dump_interrupted
    assert decoded.batch.n >= 25


def test_every_socket_with_tcp_info_sends_the_280_byte_struct(records: list[dict[str, Any]]) -> None:
    """On 6.18 tcp_info is 280 bytes, so the AccECN counters are present; TIME-WAIT and bound-only sockets have none."""
    for r in records:
        if r["inet_diag_msg_state"] in (STATES["TIME-WAIT"], STATES["UNCONN"]):
            assert r["tcp_info_length"] == 0
            assert "tcp_info_rtt" not in r
        else:
            assert r["tcp_info_length"] == 280
            for name in ACCECN:
                assert f"tcp_info_{name}" in r


def test_capture_holds_the_same_sockets_as_ss_plus_the_bound_only_one(
    records: list[dict[str, Any]], ss_lines: list[SsLine]
) -> None:
    """The dump and ss hold the same sockets by state, addresses and ports; only the bound-only socket is extra."""
    bound = _bound_only(records)
    assert [(r["inet_diag_msg_socket_source"], r["inet_diag_msg_socket_destination_port"]) for r in bound] == [
        ("127.0.0.1", 0)]
    ours = Counter(record_key(r) for r in records if r not in bound)
    theirs = Counter(s.key for s in ss_lines)
    assert ours == theirs, f"missing: {theirs - ours}; extra: {ours - theirs}"
    assert {r["inet_diag_msg_family"] for r in records} == {2, 10}


def test_every_socket_agrees_with_the_saved_ss_text(records: list[dict[str, Any]], ss_lines: list[SsLine]) -> None:
    """Each socket's decoded values, rendered the way ss prints them, equal the saved ss text key by key."""
    by_key = {record_key(r): r for r in records}
    problems = [f"{s.key}: {p}" for s in ss_lines for p in disagreements(by_key[s.key], s)]
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize(
    ("field", "delta"),
    [("tcp_info_rtt", 1), ("tcp_info_rto", 1000), ("tcp_info_bytes_acked", 1), ("tcp_info_send_scale", 1),
     ("sk_mem_info_snd_buf", 1), ("inet_diag_msg_inode", 1), ("bbr_info_min_rtt", 1000),
     ("tcp_info_data_segs_in", 1), ("inet_diag_msg_uid", 1), ("inet_diag_msg_socket_interface", 1),
     ("inet_diag_msg_socket_cookie", 1), ("inet_diag_msg_rqueue", 1), ("shutdown_state", 1)],
)
def test_comparison_notices_a_value_that_is_off(
    records: list[dict[str, Any]], ss_lines: list[SsLine], field: str, delta: int
) -> None:
    """The ss comparison is not vacuous: one value changed in one established record is reported."""
    by_key = {record_key(r): r for r in records}
    sock = next(s for s in ss_lines if s.state == "ESTAB" and s.cc == "bbr")
    changed = {**by_key[sock.key], field: by_key[sock.key][field] + delta}
    assert disagreements(changed, sock)
