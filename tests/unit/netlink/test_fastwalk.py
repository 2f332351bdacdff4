"""The numpy walk and the compiled core decode exactly what the scalar walk (the specification) decodes,
and every encoder writes the same bytes for what they decode."""

from __future__ import annotations

import itertools
import struct
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support.fixtures import fixtures_dir, is_zeroed, iter_mlab_messages, iter_pcap_netlink, require_fixtures
from tests.support.paths import assert_paths_agree
from tests.unit.netlink.synth import diag_msg, done_msg, error_msg, nla, tcp_info
from xtcp_async.netlink import constants as c
from xtcp_async.netlink import fastwalk
from xtcp_async.netlink.decode import DecodeResult

# Blank upstream files (e.g. 6_1_103_tcp_1000_sockets.pcap is all zero bytes) hold nothing to decode.
ALL_PCAPS = [p for p in sorted((fixtures_dir() / "xtcp2").glob("*/*.pcap")) if not is_zeroed(p)]


def test_fixtures_are_present() -> None:
    """The shared captures these tests iterate over exist (a skip with a reason elsewhere, a failure under CI)."""
    require_fixtures()
    assert ALL_PCAPS


def assert_same(chunks: list[bytes]) -> DecodeResult:
    """Scalar, numpy and compiled decodes of ``chunks`` agree on everything; payloads are byte-identical."""
    return assert_paths_agree(chunks)


def _pcap_chunks(path: Path) -> list[bytes]:
    require_fixtures()
    return list(iter_pcap_netlink(path))


@pytest.mark.fixtures
@pytest.mark.parametrize("path", ALL_PCAPS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_every_fixture_decodes_the_same(path: Path) -> None:
    """Every capture gives the same batch, problems and flags through both walks."""
    assert_same(_pcap_chunks(path))


@pytest.mark.fixtures
def test_fixture_chunks_joined_into_one_buffer_decode_the_same() -> None:
    """One big chunk of mixed message lengths (many speculation rounds) matches the scalar walk."""
    chunks = _pcap_chunks(fixtures_dir() / "xtcp2" / "6_6_44" / "tcp_1000_sockets.pcap")
    assert assert_same([b"".join(chunks)]).batch.n > 9000


@pytest.mark.fixtures
def test_mlab_stream_decodes_the_same() -> None:
    """m-lab's recorded messages, one per chunk and all in one chunk, match the scalar walk."""
    require_fixtures()
    msgs = list(iter_mlab_messages())
    assert_same(msgs)
    assert_same([b"".join(msgs)])


def _sock(length: int, cc: bytes = b"cubic\0", sport: int = 1) -> bytes:
    attrs = nla(c.INET_DIAG_INFO, tcp_info(length)) + nla(c.INET_DIAG_CONG, cc)
    return diag_msg(sport=sport, attrs=attrs)


def test_alternating_lengths_beyond_the_round_budget_decode_the_same() -> None:
    """A chunk whose lengths change every message, longer than the speculation budget, matches."""
    msgs = [_sock(104 if i % 2 else 232, sport=i) for i in range(3 * fastwalk._MAX_ROUNDS)]
    res = assert_same([b"".join(msgs) + done_msg()])
    assert res.batch.n == len(msgs)
    assert res.done


def test_layouts_beyond_the_template_budget_decode_the_same() -> None:
    """Messages of one length with more distinct attribute layouts than templates are walked one by one."""
    kinds = [c.INET_DIAG_TOS, c.INET_DIAG_TCLASS, c.INET_DIAG_SHUTDOWN, c.INET_DIAG_PROTOCOL, 40]
    # Same total length, attributes in another order: every message its own layout.
    orders = list(itertools.permutations(kinds))[: 3 * fastwalk._MAX_TEMPLATES]
    msgs = [diag_msg(sport=i, attrs=b"".join(nla(k, bytes([i])) for k in order))
            for i, order in enumerate(orders)]
    assert len({len(m) for m in msgs}) == 1
    res = assert_same([b"".join(msgs)])
    assert res.problems["unknown_attribute"] > 0


def test_errors_keep_stream_order_across_fast_and_scalar_chunks() -> None:
    """NLMSG_ERROR errnos from clean chunks and from chunks the scalar walk owns come out in stream order."""
    clean = [_sock(232) + error_msg(5), _sock(232) + error_msg(7)]
    truncated = _sock(232) + error_msg(6) + _sock(232)[:50]
    res = assert_same([clean[0], truncated, clean[1]])
    assert res.errors == [5, 6, 7]
    assert res.problems["truncated_message"] == 1


def test_request_done_noop_unknown_and_short_messages_are_classified_the_same() -> None:
    """Requests, DONE, NOOP, unknown types, short replies and DUMP_INTR are counted like the scalar walk."""
    request = struct.pack("<IHHII", 16 + 56, c.SOCK_DIAG_BY_FAMILY, c.NLM_F_REQUEST | c.NLM_F_DUMP, 1, 0)
    request += bytes(56)
    noop = struct.pack("<IHHII", 16, c.NLMSG_NOOP, 0, 1, 0)
    unknown = struct.pack("<IHHII", 20, 77, 0, 1, 0) + bytes(4)
    short = struct.pack("<IHHII", 16 + 40, c.SOCK_DIAG_BY_FAMILY, c.NLM_F_MULTI, 1, 0) + bytes(40)
    intr = diag_msg(flags=c.NLM_F_MULTI | c.NLM_F_DUMP_INTR)
    ack = struct.pack("<IHHIIi", 36, c.NLMSG_ERROR, 0, 1, 0, 0) + bytes(16)
    tiny_error = struct.pack("<IHHII", 16, c.NLMSG_ERROR, 0, 1, 0)
    res = assert_same([request + noop + unknown + short + intr + ack + tiny_error + done_msg()])
    assert res.dump_interrupted
    assert res.batch.n == 1
    assert res.errors == []


def _mutation_chunks() -> list[bytes]:
    chunks = _pcap_chunks(fixtures_dir() / "xtcp2" / "6_10_3" / "6_10_3_tcp_100_sockets.pcap")
    return chunks


@pytest.mark.fixtures
@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_mutated_fixture_bytes_decode_the_same(data: st.DataObject) -> None:
    """Bytes flipped, zeroed, cut, or header/attribute lengths rewritten anywhere: both walks still agree."""
    chunks = _mutation_chunks()
    for _ in range(data.draw(st.integers(1, 3), label="mutations")):
        victim = data.draw(st.integers(0, len(chunks) - 1), label="chunk")
        raw = bytearray(chunks[victim])
        if not raw:
            continue
        action = data.draw(st.sampled_from(["flip", "zero", "cut", "u16", "splice"]), label="action")
        # Header and attribute length fields sit at 4-byte boundaries: aim there half the time.
        pos = data.draw(st.integers(0, len(raw) - 1), label="pos")
        if data.draw(st.booleans(), label="aligned"):
            pos &= ~3
        if action == "flip":
            raw[pos] ^= data.draw(st.integers(1, 255))
        elif action == "zero":
            raw[pos:pos + 4] = bytes(len(raw[pos:pos + 4]))
        elif action == "cut":
            del raw[pos:]
        elif action == "u16":
            raw[pos:pos + 2] = data.draw(st.binary(min_size=2, max_size=2))
        else:
            other = chunks[data.draw(st.integers(0, len(chunks) - 1), label="donor")]
            start = data.draw(st.integers(0, len(other)), label="from")
            raw[pos:pos] = other[start:start + data.draw(st.integers(0, 600), label="size")]
        chunks = [*chunks[:victim], bytes(raw), *chunks[victim + 1:]]
    assert_same(chunks)
