"""The columnar wire encoder writes the same records as the generated protobuf classes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support.fixtures import fixtures_dir, is_zeroed, iter_pcap_netlink, require_fixtures
from xtcp_async.encode import reference, wire
from xtcp_async.encode.framing import EncodedRows, varint
from xtcp_async.encode.gen import xtcp_flat_record_pb2 as pb
from xtcp_async.netlink.batch import DESTINATION, SOURCE, PollMeta, SocketBatch, field_dtype
from xtcp_async.netlink.decode import decode_messages
from xtcp_async.netlink.fields import GROUPS, KERNEL_INT_FIELDS

META = PollMeta(poll_id=9, timestamp_ns=1_732_500_000_123_456_789, hostname="cache-07.pop-fra.example",
                location="fra1", label="edge", tag="canary", daemon_version="0.1.0",
                record_counter_start=1000)
# Blank upstream files (e.g. 6_1_103_tcp_1000_sockets.pcap is all zero bytes) hold nothing to decode.
ALL_PCAPS = [p for p in sorted((fixtures_dir() / "xtcp2").glob("*/*.pcap")) if not is_zeroed(p)]


def test_fixtures_are_present() -> None:
    """The shared captures these tests iterate over exist (a skip with a reason elsewhere, a failure under CI)."""
    require_fixtures()
    assert ALL_PCAPS
TCP_INFO_SIZES = (104, 120, 136, 144, 160, 168, 192, 200, 224, 232, 240, 248, 280)
U32_EDGES = (0, 1, 127, 128, 16_383, 16_384, 2**21 - 1, 2**21, 2**28 - 1, 2**28, 2**32 - 1)
U64_EDGES = (*U32_EDGES, 2**32, 2**35 - 1, 2**35, 2**49, 2**56 - 1, 2**56, 2**63 - 1, 2**63, 2**64 - 1)


def rows_of(enc: EncodedRows) -> list[bytes]:
    return [enc.data[int(enc.offsets[i]):int(enc.offsets[i + 1])] for i in range(enc.n)]


def unframe(row: bytes) -> bytes:
    """The record inside one protobuf-list row (asserting the tag and varint frame it exactly)."""
    assert row[:1] == wire.ROW_TAG
    body = row[1:]
    for k in range(1, 11):
        if varint(len(body) - k) == body[:k]:
            return body[k:]
    raise AssertionError("row length varint does not match the row")


def assert_same_records(batch: SocketBatch) -> None:
    """Both framings parse to exactly the reference encoder's messages."""
    expected = reference.build_messages(batch)
    listed = wire.encode_rows(batch, list_entries=True)
    single = wire.encode_rows(batch, list_entries=False)
    assert listed.n == single.n == batch.n
    assert [pb.XtcpFlatRecord.FromString(unframe(r)) for r in rows_of(listed)] == expected
    assert [pb.XtcpFlatRecord.FromString(r) for r in rows_of(single)] == expected
    assert list(pb.Envelope.FromString(listed.data).row) == expected


def _fixture_batch(path: Path) -> SocketBatch:
    require_fixtures()
    chunks = list(iter_pcap_netlink(path))
    return decode_messages(chunks, read_ns=list(range(1, len(chunks) + 1))).batch.with_meta(META)


@pytest.mark.fixtures
@pytest.mark.parametrize("path", ALL_PCAPS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_every_fixture_encodes_to_the_reference_records(path: Path) -> None:
    """Every socket of every capture parses back to the record the generated classes build."""
    assert_same_records(_fixture_batch(path))


@pytest.mark.fixtures
@pytest.mark.parametrize("path", ALL_PCAPS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_every_fixture_is_byte_identical_to_the_reference(path: Path) -> None:
    """Fields go out in field-number order like the protobuf library's, so the bytes are equal too."""
    batch = _fixture_batch(path)
    for list_entries in (True, False):
        assert rows_of(wire.encode_rows(batch, list_entries=list_entries)) == reference.encode_rows(
            batch, list_entries=list_entries)


def test_empty_batch_is_no_rows() -> None:
    """A batch of no sockets encodes to no bytes and a single offset."""
    enc = wire.encode_rows(decode_messages([]).batch, list_entries=True)
    assert enc.n == 0
    assert enc.data == b""
    assert enc.offsets.tolist() == [0]


# --- synthetic batches -----------------------------------------------------------------------------

def _column(draw: st.DrawFn, n: int, dtype: Any) -> np.ndarray[Any, Any]:
    edges = U64_EDGES if dtype == np.uint64 else U32_EDGES
    value = st.one_of(st.sampled_from(edges), st.integers(0, int(np.iinfo(dtype).max)))
    return np.array(draw(st.lists(value, min_size=n, max_size=n)), dtype=dtype)


@st.composite
def batches(draw: st.DrawFn) -> SocketBatch:
    """Columns full of extreme values; groups absent, partial or present per row (absent rows hold junk)."""
    n = draw(st.integers(1, 12))
    columns: dict[str, Any] = {f.name: _column(draw, n, field_dtype(f)) for f in KERNEL_INT_FIELDS}
    for name in (SOURCE, DESTINATION):
        raw = draw(st.lists(st.binary(min_size=16, max_size=16), min_size=n, max_size=n))
        columns[name] = np.frombuffer(b"".join(raw), dtype=np.uint8).reshape(n, 16).copy()
    columns["inet_diag_msg_family"] = np.array(
        draw(st.lists(st.sampled_from([2, 10, 0, 1, 255]), min_size=n, max_size=n)), dtype=np.uint32)
    lengths: dict[str, Any] = {"inet_diag_msg": np.full(n, 72, dtype=np.int32)}
    for g in GROUPS[1:]:
        sizes = [0, g.size, *(TCP_INFO_SIZES if g.name == "tcp_info" else ())]
        choice = st.one_of(st.sampled_from(sizes), st.integers(0, g.size + 8))
        lengths[g.name] = np.array(draw(st.lists(choice, min_size=n, max_size=n)), dtype=np.int32)
    names = st.one_of(st.sampled_from([b"", b"cubic", b"bbr", b"dctcp", b"vegas", b"prague", b"bbr3",
                                       b"x" * 16, b"\xff\xfe\x80", b"a\0b"]),
                      st.binary(max_size=16).map(lambda b: b.rstrip(b"\0")))
    congestion = np.array(draw(st.lists(names, min_size=n, max_size=n)), dtype="S16")
    read_ns = np.array(draw(st.lists(st.integers(-(2**63), 2**63 - 1), min_size=n, max_size=n)),
                       dtype=np.int64)
    text = st.one_of(st.just(""), st.text(max_size=8), st.just("h" * 300), st.just("ü€😀"))
    meta = PollMeta(
        poll_id=draw(st.sampled_from([0, 1, 2**64 - 1])),
        timestamp_ns=draw(st.sampled_from([0, -1, 1_732_500_000_123_456_789, 2**63 - 1])),
        hostname=draw(text), location=draw(text), label=draw(text), tag=draw(text),
        daemon_version=draw(text), schema_version=draw(st.sampled_from([0, 1, 2**32 - 1])),
        dump_interrupted=draw(st.booleans()),
        record_counter_start=draw(st.sampled_from([0, 1, 2**40, 2**64 - 64])),
    )
    return SocketBatch(n, columns, lengths, congestion, read_ns, meta)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(batch=batches())
def test_synthetic_batches_encode_to_the_reference_records(batch: SocketBatch) -> None:
    """Zeros, max u32/u64, negative int64, empty and long strings, odd cc names and absent groups all match."""
    assert_same_records(batch)
    assert rows_of(wire.encode_rows(batch, list_entries=True)) == reference.encode_rows(batch, list_entries=True)


def _minimal_batch(n: int, congestion: bytes) -> SocketBatch:
    columns: dict[str, Any] = {f.name: np.zeros(n, dtype=field_dtype(f)) for f in KERNEL_INT_FIELDS}
    columns[SOURCE] = np.zeros((n, 16), dtype=np.uint8)
    columns[DESTINATION] = np.zeros((n, 16), dtype=np.uint8)
    lengths: dict[str, Any] = {g.name: np.zeros(n, dtype=np.int32) for g in GROUPS}
    lengths["congestion"][0] = len(congestion)
    cong = np.array([congestion] + [b""] * (n - 1), dtype="S16")
    return SocketBatch(n, columns, lengths, cong, np.zeros(n, dtype=np.int64), PollMeta(schema_version=0))


def test_rows_shorter_than_a_store_fall_back_to_the_reference() -> None:
    """Near-empty rows beside a long non-ASCII cc name (wider than the rows) still encode exactly."""
    batch = _minimal_batch(4, b"\xff" * 16)
    assert_same_records(batch)
    assert rows_of(wire.encode_rows(batch, list_entries=True)) == reference.encode_rows(batch, list_entries=True)


def test_large_batch_crosses_row_blocks() -> None:
    """Rows on both sides of a block boundary are written whole (heads of even rows restored)."""
    n = wire._BLOCK_ROWS + 3
    batch = _minimal_batch(n, b"cubic")
    batch.columns["tcp_info_rtt"][:] = np.arange(n, dtype=np.uint32) * 977
    batch.lengths["tcp_info"][:] = 280
    assert rows_of(wire.encode_rows(batch, list_entries=True)) == reference.encode_rows(batch, list_entries=True)
