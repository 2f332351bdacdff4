"""Namespace, container and pod are stamped per chunk and come out of every format on the right rows."""

from __future__ import annotations

import asyncio
import json

import numpy as np

from tests.support.xtcp2_schema import xtcp2_classes
from tests.unit.encode.test_roundtrip import split_list_payload
from tests.unit.netlink.synth import diag_msg
from xtcp_async.config import load_config
from xtcp_async.encode import encode
from xtcp_async.encode.gen import xtcp_flat_record_pb2 as pb
from xtcp_async.encode.reference import build_messages
from xtcp_async.netlink.batch import SocketBatch
from xtcp_async.netlink.origin import ORIGIN_FIELDS, NetnsOrigin
from xtcp_async.netlink.socket import Chunk
from xtcp_async.pipeline import Decoder, PollChunk, PollInfo
from xtcp_async.stats import Stats

POD = NetnsOrigin("pid:4242", 4026532999, "ab" * 32, "containerd", "0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d",
                  "web-7d4b9", "shop")
NAMED = NetnsOrigin("blue", 4026532100)


def _chunk(n: int, port0: int) -> Chunk:
    return Chunk(b"".join(diag_msg(sport=port0 + i, inode=port0 + i) for i in range(n)), 1)


def _decoded(*origins: NetnsOrigin | None) -> SocketBatch:
    """One decoder batch of three chunks of 5 sockets each, from the given namespaces."""
    cfg = load_config({"metrics_listen": "", "hostname": "h"})
    q: asyncio.Queue[object] = asyncio.Queue()
    dec = Decoder(cfg, Stats(), q, q)  # type: ignore[arg-type]
    info = PollInfo(1, 2)
    return dec._decode([PollChunk(info, _chunk(5, 1000 * (i + 1)), o) for i, o in enumerate(origins)], info)


def _origin_by_port(records: list[dict[str, object]]) -> dict[int, dict[str, object]]:
    return {int(str(r["inet_diag_msg_socket_source_port"])): {k: r[k] for k in ORIGIN_FIELDS if k in r}
            for r in records}


def test_decoder_stamps_each_chunks_rows_with_its_namespace() -> None:
    """Rows take the origin of the chunk they came in; the batch holds one table entry per namespace."""
    batch = _decoded(POD, NAMED, POD)
    assert batch.n == 15 and len(batch.origins) == 2
    got = _origin_by_port(batch.to_records())
    assert got[1000] == got[3004] == POD.values()
    assert got[2002] == {"netns": "blue", "netns_inode": 4026532100}


def test_every_format_carries_the_origin_of_each_row() -> None:
    """protobuf-list (fast encoder), the reference encoder and jsonl agree row by row."""
    batch = _decoded(NAMED, POD, None)
    lines = [json.loads(x) for p in encode(batch, "jsonl", max_bytes=1 << 22, max_rows=10_000).payloads
             for x in p.splitlines()]
    rows = [r for p in encode(batch, "protobuf-list", max_bytes=1 << 22, max_rows=10_000).payloads
            for r in pb.Envelope.FromString(split_list_payload(p)).row]
    assert rows == build_messages(batch)
    for msg, line in zip(rows, lines, strict=True):
        for name in ORIGIN_FIELDS:
            assert getattr(msg, name) == line.get(name, getattr(pb.XtcpFlatRecord(), name)), name
    by_port = _origin_by_port(lines)
    assert by_port[1000] == NAMED.values() and by_port[2000] == POD.values() and by_port[3000] == {}


def test_xtcp2_consumers_read_netns_and_container() -> None:
    """xtcp2's own schema decodes netns, netns_inode, container_id and container_runtime from our bytes."""
    _, envelope_cls = xtcp2_classes()
    batch = _decoded(POD)
    payload = encode(batch, "protobuf-list", max_bytes=1 << 22, max_rows=10_000).payloads[0]
    row = envelope_cls.FromString(split_list_payload(payload)).row[0]
    assert (row.netns, row.netns_inode, row.container_id, row.container_runtime) == (
        POD.netns, POD.netns_inode, POD.container_id, POD.container_runtime)


def test_without_namespaces_nothing_is_stamped() -> None:
    """--netns self: no origin table, and no origin key in any format."""
    batch = _decoded(None, None)
    assert batch.origin_codes is None
    assert all(not set(ORIGIN_FIELDS) & set(r) for r in batch.to_records())
    line = json.loads(encode(batch, "jsonl", max_bytes=1 << 22, max_rows=10_000).payloads[0].splitlines()[0])
    assert not set(ORIGIN_FIELDS) & set(line)


def test_concat_and_slice_keep_each_rows_origin() -> None:
    """Joining batches with different tables (and one without) and slicing keep every row's origin."""
    a, b, c = _decoded(POD, NAMED), _decoded(None), _decoded(NAMED)
    joined = SocketBatch.concat([a, b, c])
    assert joined.row_origins() == a.row_origins() + b.row_origins() + c.row_origins()
    assert len(joined.origins) == 3  # POD, NAMED, and the empty origin of the unstamped rows
    assert joined.slice(3, 12).row_origins() == joined.row_origins()[3:12]
    assert np.array_equal(SocketBatch.concat([b, b]).read_ns, np.concatenate([b.read_ns, b.read_ns]))
    assert SocketBatch.concat([b, b]).origin_codes is None


def test_stage_row_picks_keep_each_rows_origin() -> None:
    """Sampling and change-only keep rows by index: each kept row keeps its namespace."""
    from xtcp_async.stages.take import take

    batch = _decoded(POD, NAMED, None)
    rows = np.array([0, 6, 7, 14], dtype=np.intp)
    assert take(batch, rows).row_origins() == [batch.row_origins()[i] for i in rows.tolist()]
