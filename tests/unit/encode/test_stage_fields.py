"""sample_rate_ppm and closed: every encoder writes them the same way, and to_records agrees."""

from __future__ import annotations

import json

import numpy as np

from tests.unit.encode.test_roundtrip import split_list_payload
from tests.unit.stages.batches import synthetic_batch
from xtcp_async.encode import encode, reference, wire
from xtcp_async.encode.gen import xtcp_flat_record_pb2 as pb
from xtcp_async.netlink.batch import SocketBatch


def _staged(n: int) -> SocketBatch:
    batch = synthetic_batch(n)
    batch.columns["sample_rate_ppm"] = np.where(np.arange(n) % 3 == 0, 10_000, 1_000_000).astype(np.uint32)
    batch.columns["closed"] = (np.arange(n) % 7 == 0).astype(np.uint32)
    return batch


def test_wire_encoder_writes_stage_fields_like_the_reference() -> None:
    """The fast wire encoder's bytes parse to the same sample_rate_ppm and closed as the reference's."""
    batch = _staged(500)
    fast = wire.encode_rows(batch, list_entries=False)
    slow = reference.encode_rows(batch, list_entries=False)
    for i, raw in enumerate(slow):
        a = pb.XtcpFlatRecord.FromString(fast.data[fast.offsets[i]:fast.offsets[i + 1]])
        b = pb.XtcpFlatRecord.FromString(raw)
        assert (a.sample_rate_ppm, a.closed) == (b.sample_rate_ppm, b.closed)
        assert a == b


def test_jsonl_and_protobuf_agree_on_stage_fields() -> None:
    """jsonl shows the rate on every line and closed only where true; protobuf carries the same."""
    batch = _staged(300)
    lines = [json.loads(x) for p in encode(batch, "jsonl", max_bytes=1 << 22, max_rows=10_000).payloads
             for x in p.splitlines()]
    rows = [r for p in encode(batch, "protobuf-list", max_bytes=1 << 22, max_rows=10_000).payloads
            for r in pb.Envelope.FromString(split_list_payload(p)).row]
    for i, (line, row) in enumerate(zip(lines, rows, strict=True)):
        assert line["sample_rate_ppm"] == row.sample_rate_ppm == (10_000 if i % 3 == 0 else 1_000_000)
        assert line.get("closed", False) == row.closed == (i % 7 == 0)
    assert lines == batch.to_records()


def test_a_batch_without_stage_columns_says_it_was_not_sampled() -> None:
    """No stage ran: every record still carries sample_rate_ppm 1000000 and no closed flag."""
    batch = synthetic_batch(50)
    rows = [r for p in encode(batch, "protobuf-list", max_bytes=1 << 22, max_rows=10_000).payloads
            for r in pb.Envelope.FromString(split_list_payload(p)).row]
    assert {r.sample_rate_ppm for r in rows} == {1_000_000} and not any(r.closed for r in rows)
