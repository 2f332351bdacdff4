"""The scalar decoder: every field by the table, every tcp_info length, and bad input counted."""

from __future__ import annotations

import struct

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support.fixtures import iter_pcap_netlink, require_fixtures, sockets_pcaps
from tests.unit.netlink.synth import diag_msg, done_msg, error_msg, nla, tcp_info
from xtcp_async.netlink import constants as c
from xtcp_async.netlink import decode as d
from xtcp_async.netlink.fields import ENRICH_GROUPS, FIELDS, GROUP_BY_NAME

KERNEL_TCP_INFO_SIZES = (104, 120, 136, 144, 160, 168, 192, 200, 224, 232, 240, 248, 280)
TCP_INFO_FIELDS = [f for f in FIELDS if f.group == "tcp_info"]


def _value_at(raw: bytes, f: object) -> int:
    from xtcp_async.netlink.fields import Field

    assert isinstance(f, Field)
    fmt = {1: "B", 2: "H", 4: "I", 8: "Q"}[f.size]
    v = int(struct.unpack_from(("<" if not f.big_endian else ">") + fmt, raw, f.offset)[0])
    if f.bits:
        shift, width = f.bits
        v = (v >> shift) & ((1 << width) - 1)
    return v


@pytest.mark.parametrize("length", KERNEL_TCP_INFO_SIZES)
def test_tcp_info_decoded_by_length(length: int) -> None:
    """Each tcp_info field a kernel's struct holds is decoded at its offset; longer-struct fields are absent."""
    raw = tcp_info(length)
    res = d.decode_messages([diag_msg(attrs=nla(c.INET_DIAG_INFO, raw)) + done_msg()])
    assert res.batch.n == 1 and not res.problems and res.done
    rec = res.batch.to_records()[0]
    assert rec["tcp_info_length"] == length
    for f in TCP_INFO_FIELDS:
        if f.end <= length:
            assert rec[f.name] == _value_at(raw, f), f.name
        else:
            assert f.name not in rec, f.name


def test_wscale_nibbles_snd_low_rcv_high() -> None:
    """Byte 6 of tcp_info holds snd_wscale in the low nibble and rcv_wscale in the high one."""
    raw = bytearray(tcp_info(104))
    raw[6] = 0x97  # rcv 9, snd 7
    raw[7] = 0b101  # app_limited 1, fastopen_client_fail 2
    rec = d.decode_messages([diag_msg(attrs=nla(c.INET_DIAG_INFO, bytes(raw)))]).batch.to_records()[0]
    assert (rec["tcp_info_send_scale"], rec["tcp_info_rcv_scale"]) == (7, 9)
    assert rec["tcp_info_delivery_rate_app_limited"] == 1
    assert rec["tcp_info_fast_open_client_failed"] == 2


def test_longer_tcp_info_decoded_as_far_as_known_and_counted() -> None:
    """A tcp_info longer than 280 bytes decodes its known fields and counts the surplus."""
    raw = tcp_info(300)
    res = d.decode_messages([diag_msg(attrs=nla(c.INET_DIAG_INFO, raw))])
    assert res.problems == {"tcp_info_longer_than_known": 1}
    rec = res.batch.to_records()[0]
    assert rec["tcp_info_accecn_word"] == struct.unpack_from("<I", raw, 276)[0]


def test_inet_diag_msg_fields() -> None:
    """Ports are host order, addresses become text, cookie is both words, inode and uid come through."""
    src6 = bytes.fromhex("20010db8000000000000000000000001")
    msg = diag_msg(family=c.AF_INET6, sport=443, dport=51234, src=src6, dst=bytes(15) + b"\x01",
                   inode=99, cookie=0xAABBCCDD00112233)
    rec = d.decode_messages([msg]).batch.to_records()[0]
    assert rec["inet_diag_msg_socket_source_port"] == 443
    assert rec["inet_diag_msg_socket_destination_port"] == 51234
    assert rec["inet_diag_msg_socket_source"] == "2001:db8::1"
    assert rec["inet_diag_msg_socket_destination"] == "::1"
    assert rec["inet_diag_msg_socket_cookie"] == 0xAABBCCDD00112233
    assert rec["inet_diag_msg_inode"] == 99 and rec["inet_diag_msg_uid"] == 1000
    assert rec["inet_diag_msg_family_name"] == "inet6"


def test_every_attribute_group_decodes() -> None:
    """meminfo, cc info (vegas/dctcp/bbr), cong, tos, tclass, skmeminfo, shutdown, mark, class id, cgroup, sockopt."""
    attrs = b"".join([
        nla(c.INET_DIAG_MEMINFO, struct.pack("<4I", 1, 2, 3, 4)),
        nla(c.INET_DIAG_VEGASINFO, struct.pack("<4I", 5, 6, 7, 8)),
        nla(c.INET_DIAG_CONG, b"bbr\0"),
        nla(c.INET_DIAG_TOS, b"\x10"),
        nla(c.INET_DIAG_TCLASS, b"\x20"),
        nla(c.INET_DIAG_SKMEMINFO, struct.pack("<9I", *range(11, 20))),
        nla(c.INET_DIAG_SHUTDOWN, b"\x03"),
        nla(c.INET_DIAG_DCTCPINFO, struct.pack("<HHIII", 1, 2, 3, 4, 5)),
        nla(c.INET_DIAG_MARK, struct.pack("<I", 77)),
        nla(c.INET_DIAG_BBRINFO, struct.pack("<5I", 100, 1, 2000, 256, 512)),
        nla(c.INET_DIAG_CLASS_ID, struct.pack("<I", 0x10002)),
        nla(c.INET_DIAG_CGROUP_ID, struct.pack("<Q", 1 << 40)),
        nla(c.INET_DIAG_SOCKOPT, b"\x52\x01"),
        nla(c.INET_DIAG_SKV6ONLY, b"\x01"),
    ])
    res = d.decode_messages([diag_msg(attrs=attrs)])
    assert not res.problems
    rec = res.batch.to_records()[0]
    expect = {
        "mem_info_rmem": 1, "mem_info_tmem": 4, "vegas_info_enabled": 5, "vegas_info_min_rtt": 8,
        "congestion_algorithm_string": "bbr", "congestion_algorithm_enum": "BBR1",
        "type_of_service": 0x10, "traffic_class": 0x20, "sk_mem_info_rmem_alloc": 11,
        "sk_mem_info_drops": 19, "shutdown_state": 3, "dctcp_info_enabled": 1, "dctcp_info_ce_state": 2,
        "dctcp_info_alpha": 3, "dctcp_info_ab_tot": 5, "socket_mark": 77, "bbr_info_bw_lo": 100,
        "bbr_info_bw_hi": 1, "bbr_info_min_rtt": 2000, "bbr_info_pacing_gain": 256, "bbr_info_cwnd_gain": 512,
        "class_id": 0x10002, "c_group": 1 << 40, "sock_opt": 0x152, "skv6only": 1,
    }
    assert {k: rec.get(k) for k in expect} == expect


def test_short_skmeminfo_has_only_the_fields_sent() -> None:
    """An older kernel's 7-word skmeminfo decodes 7 fields; backlog and drops are absent."""
    rec = d.decode_messages([diag_msg(attrs=nla(c.INET_DIAG_SKMEMINFO, struct.pack("<7I", *range(7))))
                             ]).batch.to_records()[0]
    assert rec["sk_mem_info_optmem"] == 6
    assert "sk_mem_info_backlog" not in rec and "sk_mem_info_drops" not in rec


def test_unknown_attribute_is_skipped_and_counted() -> None:
    """An attribute type we do not know is counted and the following attributes still decode."""
    attrs = nla(99, b"abcd") + nla(c.INET_DIAG_MARK, struct.pack("<I", 5))
    res = d.decode_messages([diag_msg(attrs=attrs)])
    assert res.problems == {d.UNKNOWN_ATTRIBUTE: 1}
    assert res.batch.to_records()[0]["socket_mark"] == 5


def test_attribute_overrunning_its_message_is_counted_and_next_message_decodes() -> None:
    """An attribute whose length runs past its message stops that message's attributes, not the dump."""
    bad_attr = struct.pack("<HH", 200, c.INET_DIAG_INFO) + bytes(8)
    msgs = diag_msg(attrs=bad_attr, inode=1) + diag_msg(attrs=nla(c.INET_DIAG_TOS, b"\x04"), inode=2)
    res = d.decode_messages([msgs])
    assert res.problems == {d.ATTRIBUTE_OVERRUN: 1}
    recs = res.batch.to_records()
    assert [r["inet_diag_msg_inode"] for r in recs] == [1, 2]
    assert "tcp_info_rtt" not in recs[0] and recs[1]["type_of_service"] == 4


def test_zero_length_attribute_header_is_counted() -> None:
    """An attribute header of length 0 ends that message's attributes and is counted."""
    res = d.decode_messages([diag_msg(attrs=bytes(8), inode=1) + diag_msg(inode=2)])
    assert res.problems == {d.BAD_ATTRIBUTE_LENGTH: 1}
    assert res.batch.n == 2


def test_zero_length_message_header_skips_rest_of_chunk_only() -> None:
    """A message header of length 0 loses the rest of its chunk but not the next chunk."""
    chunk1 = diag_msg(inode=1) + bytes(16) + diag_msg(inode=2)
    chunk2 = diag_msg(inode=3) + done_msg()
    res = d.decode_messages([chunk1, chunk2])
    assert res.problems == {d.BAD_MESSAGE_LENGTH: 1}
    assert [r["inet_diag_msg_inode"] for r in res.batch.to_records()] == [1, 3]
    assert res.done


def test_truncated_message_is_counted() -> None:
    """A message cut short by the end of its chunk is counted; the complete ones before it decode."""
    whole = diag_msg(inode=1)
    res = d.decode_messages([whole + diag_msg(inode=2)[:50]])
    assert res.problems == {d.TRUNCATED_MESSAGE: 1}
    assert res.batch.n == 1


def test_short_inet_diag_msg_is_counted() -> None:
    """A SOCK_DIAG reply too short for an inet_diag_msg is skipped and counted."""
    short = struct.pack("<IHHII", 24, c.SOCK_DIAG_BY_FAMILY, c.NLM_F_MULTI, 1, 0) + bytes(8)
    res = d.decode_messages([short + diag_msg(inode=7)])
    assert res.problems == {d.SHORT_INET_DIAG_MSG: 1}
    assert res.batch.to_records()[0]["inet_diag_msg_inode"] == 7


def test_error_message_reports_errno_and_dump_intr_is_flagged() -> None:
    """NLMSG_ERROR yields its errno; NLM_F_DUMP_INTR on any message marks the result."""
    res = d.decode_messages([diag_msg(flags=c.NLM_F_MULTI | c.NLM_F_DUMP_INTR) + error_msg(1)])
    assert res.errors == [1]
    assert res.dump_interrupted


def test_groups_table_is_consistent() -> None:
    """Every field of a kernel group lies within the largest payload we claim to know."""
    for f in FIELDS:
        if f.group not in ("meta", "congestion", "stage", *ENRICH_GROUPS):
            assert f.end <= GROUP_BY_NAME[f.group].size, f.name


def _fixture_chunks() -> list[bytes]:
    root = require_fixtures()
    path = next(p for p in sockets_pcaps(root) if "6_10_3_tcp_100_sockets" in p.name)
    return list(iter_pcap_netlink(path))


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_mutated_fixture_bytes_never_crash_and_lose_only_what_is_damaged(data: st.DataObject) -> None:
    """Flipping, zeroing or cutting bytes of a real dump never raises; chunks not touched decode in full."""
    chunks = _fixture_chunks()
    clean = d.decode_messages(chunks)
    victim = data.draw(st.integers(0, len(chunks) - 1), label="chunk")
    raw = bytearray(chunks[victim])
    action = data.draw(st.sampled_from(["flip", "zero", "cut", "lenfield"]), label="action")
    pos = data.draw(st.integers(0, max(0, len(raw) - 1)), label="pos")
    if action == "flip" and raw:
        raw[pos] ^= data.draw(st.integers(1, 255))
    elif action == "zero":
        raw[pos:pos + 4] = bytes(len(raw[pos:pos + 4]))
    elif action == "cut":
        del raw[pos:]
    elif raw:
        raw[pos:pos + 2] = data.draw(st.binary(min_size=2, max_size=2))
    mutated = [*chunks[:victim], bytes(raw), *chunks[victim + 1:]]
    res = d.decode_messages(mutated)
    others = d.decode_messages([*chunks[:victim], *chunks[victim + 1:]])
    # Every socket of the untouched chunks is still there.
    assert res.batch.n >= others.batch.n
    assert res.batch.n <= clean.batch.n + 1 + len(raw) // 88
    assert sum(res.problems.values()) >= 0
