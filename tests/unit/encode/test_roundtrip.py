"""protobuf-list, protobuf-single and jsonl carry the same values, readable by xtcp2's schema too."""

from __future__ import annotations

import ipaddress
import json
from typing import Any

import pytest
from google.protobuf.internal.decoder import _DecodeVarint  # type: ignore[attr-defined]

from tests.support.fixtures import iter_pcap_netlink, require_fixtures, sockets_pcaps
from tests.support.xtcp2_schema import xtcp2_classes
from xtcp_async.encode import encode
from xtcp_async.encode.gen import xtcp_flat_record_pb2 as pb
from xtcp_async.netlink.batch import PollMeta, SocketBatch
from xtcp_async.netlink.decode import decode_messages

META = PollMeta(poll_id=7, timestamp_ns=1_700_000_000_123_456_789, hostname="cache-01.example",
                location="ams1", label="edge", tag="canary", daemon_version="0.1.0", record_counter_start=100)


def _batch() -> SocketBatch:
    root = require_fixtures()
    chunks: list[bytes] = []
    for path in sockets_pcaps(root):
        if "_100_sockets" in path.name:
            chunks.extend(iter_pcap_netlink(path))
    batch = decode_messages(chunks).batch
    assert batch.n > 1000
    return batch.with_meta(META)


def split_list_payload(payload: bytes) -> bytes:
    """The Envelope bytes inside one ProtobufList payload (asserting the varint frames it exactly)."""
    length, pos = _DecodeVarint(payload, 0)
    assert pos + length == len(payload)
    return payload[pos:]


def _as_json_value(name: str, value: Any, family: int) -> Any:
    if isinstance(value, bytes):
        if family == 2:
            return str(ipaddress.IPv4Address(value[:4]))
        a6 = ipaddress.IPv6Address(value)
        return f"::ffff:{a6.ipv4_mapped}" if a6.ipv4_mapped else str(a6)
    if name == "congestion_algorithm_enum":
        return pb.CongestionAlgorithm.Name(value)
    return value


def _compare(msg: Any, rec: dict[str, Any]) -> None:
    known = {fd.name for fd in msg.DESCRIPTOR.fields}
    fam = rec["inet_diag_msg_family"]
    for name, value in rec.items():
        if name not in known:
            continue
        got = _as_json_value(name, getattr(msg, name), fam)
        assert got == value, (name, got, value)
    # Fields the kernel did not send are absent from JSON and unset (zero) in protobuf.
    for fd in msg.DESCRIPTOR.fields:
        if fd.name not in rec and fd.type != fd.TYPE_BYTES:
            assert getattr(msg, fd.name) in (0, "", False), fd.name


def test_protobuf_list_and_jsonl_agree_with_generated_classes() -> None:
    """Every record of the protobuf-list payloads equals the jsonl line of the same socket."""
    batch = _batch()
    lines = [json.loads(x) for p in encode(batch, "jsonl", max_bytes=1 << 22, max_rows=10_000).payloads
             for x in p.splitlines()]
    rows = [r for p in encode(batch, "protobuf-list", max_bytes=1 << 22, max_rows=10_000).payloads
            for r in pb.Envelope.FromString(split_list_payload(p)).row]
    assert len(rows) == len(lines) == batch.n
    for msg, rec in zip(rows, lines, strict=True):
        _compare(msg, rec)
    assert lines[0]["record_counter"] == 100 and lines[-1]["record_counter"] == 100 + batch.n - 1
    assert {r["hostname"] for r in lines} == {"cache-01.example"}


def test_xtcp2_schema_reads_the_same_values() -> None:
    """A consumer holding only xtcp2's field list decodes our payloads to the jsonl values."""
    record_cls, envelope_cls = xtcp2_classes()
    batch = _batch()
    lines = [json.loads(x) for p in encode(batch, "jsonl", max_bytes=1 << 22, max_rows=10_000).payloads
             for x in p.splitlines()]
    rows = [r for p in encode(batch, "protobuf-list", max_bytes=1 << 22, max_rows=10_000).payloads
            for r in envelope_cls.FromString(split_list_payload(p)).row]
    assert len(rows) == batch.n
    for msg, rec in zip(rows, lines, strict=True):
        _compare(msg, rec)
    assert record_cls is not None


def test_protobuf_single_is_one_record_per_payload() -> None:
    """protobuf-single payloads are bare records, one per socket, equal to the list rows."""
    batch = _batch().slice(0, 50)
    singles = encode(batch, "protobuf-single", max_bytes=65_507, max_rows=10_000).payloads
    listed = pb.Envelope.FromString(split_list_payload(
        encode(batch, "protobuf-list", max_bytes=1 << 22, max_rows=10_000).payloads[0])).row
    assert len(singles) == 50
    assert [pb.XtcpFlatRecord.FromString(s) for s in singles] == list(listed)


@pytest.mark.parametrize(("max_rows", "max_bytes"), [(100, 1 << 22), (10_000, 20_000), (7, 3_000)])
def test_batches_respect_row_and_byte_caps(max_rows: int, max_bytes: int) -> None:
    """No payload holds more rows or bytes than the caps, and together they hold every socket once."""
    batch = _batch()
    payloads = encode(batch, "protobuf-list", max_bytes=max_bytes, max_rows=max_rows).payloads
    counters = []
    for p in payloads:
        assert len(p) <= max_bytes
        rows = pb.Envelope.FromString(split_list_payload(p)).row
        assert 0 < len(rows) <= max_rows
        counters.extend(r.record_counter for r in rows)
    assert counters == list(range(100, 100 + batch.n))


def test_record_larger_than_cap_is_dropped_and_counted() -> None:
    """A record that cannot fit the byte cap is counted as too large, never sent truncated."""
    batch = _batch().slice(0, 10)
    packed = encode(batch, "protobuf-list", max_bytes=100, max_rows=10_000)
    assert packed.payloads == [] and packed.too_large == 10
