"""The compiled core decodes and encodes exactly what the reference paths do, on every kind of input."""

from __future__ import annotations

import importlib.util
import struct
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from tests.support.fixtures import attribute_blobs, require_fixtures
from tests.support.paths import META, assert_paths_agree, require_native
from tests.unit.netlink.synth import diag_msg, done_msg, nla, tcp_info
from xtcp_async import native
from xtcp_async.encode import encode_rows, items
from xtcp_async.netlink import constants as c
from xtcp_async.netlink.decode import decode_messages
from xtcp_async.netlink.fields import FIELDS, Field

DATA = Path(__file__).resolve().parents[2] / "data"


def _capture_6_18() -> list[bytes]:
    spec = importlib.util.spec_from_file_location("record_capture", DATA / "record_capture.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    chunks: list[bytes] = mod.read_chunks(DATA / "kernel_6_18_dump.bin")
    return chunks


def test_kernel_6_18_capture_is_the_same_through_every_path() -> None:
    """The 6.18 capture (280-byte tcp_info, both families, every state) decodes and encodes identically."""
    chunks = _capture_6_18()
    res = assert_paths_agree(chunks)
    assert res.batch.n > 10 and res.done
    # One chunk holding everything, and one message per chunk: the same again.
    assert_paths_agree([b"".join(chunks)])


def test_every_attribute_blob_is_the_same_through_every_path() -> None:
    """Each xtcp2 attribute blob inside a reply decodes and encodes identically on every path."""
    blobs = attribute_blobs(require_fixtures())
    msgs = []
    for i, blob in enumerate(blobs):
        raw = blob.path.read_bytes()[: blob.nla_len]
        msgs.append(diag_msg(sport=i + 1, attrs=raw + b"\0" * ((-len(raw)) & 3)))
    assert_paths_agree(msgs)
    assert_paths_agree([b"".join(msgs)])


def test_no_input_and_no_sockets_are_the_same_through_every_path() -> None:
    """No chunks, empty chunks and a bare DONE give empty batches with every column on every path."""
    assert_paths_agree([])
    assert_paths_agree([b"", b""])
    res = assert_paths_agree([done_msg()])
    assert res.done and res.batch.n == 0


def test_longer_than_known_and_repeated_attributes_are_counted_the_same() -> None:
    """A tcp_info longer than the table knows and a repeated attribute (last wins) agree on every path."""
    long_info = nla(c.INET_DIAG_INFO, tcp_info(280) + bytes(24))
    twice = nla(c.INET_DIAG_MARK, struct.pack("<I", 1)) + nla(c.INET_DIAG_MARK, struct.pack("<I", 2))
    res = assert_paths_agree([diag_msg(attrs=long_info) + diag_msg(attrs=twice, sport=2)])
    assert res.problems["tcp_info_longer_than_known"] == 1
    assert res.batch.columns["socket_mark"].tolist() == [0, 2]


def test_a_new_table_field_reaches_the_compiled_decoder_without_a_rebuild() -> None:
    """Configuring the core with a table that has one more field decodes that field's column."""
    require_native()
    core: Any = native.CORE
    extra = Field("tcp_info_test_extra", 3399, "uint32", "tcp_info", 8, 4)
    fields = (*FIELDS, extra)
    ints, raws = native.layout(fields)
    (_, wide, idx), = [(f, w, i) for f, w, i in ints if f.name == extra.name]
    n_u32 = sum(1 for _, w, _ in ints if not w)
    info = bytearray(tcp_info(232))
    info[8:12] = struct.pack("<I", 0xBEEF)
    held: list[tuple[Any, ...]] = []

    def alloc(n: int) -> tuple[Any, ...]:
        held.append((np.zeros((n_u32, n), np.uint32), np.zeros((len(ints) - n_u32, n), np.uint64),
                     np.zeros((len(native.ATTR_GROUPS), n), np.int32),
                     tuple(np.zeros((n, f.size), np.uint8) for f in raws), np.zeros(n, "S16"),
                     np.zeros(n, np.int64)))
        return held[0]

    native.configure(core, fields)
    try:
        n = core.decode([diag_msg(attrs=nla(c.INET_DIAG_INFO, bytes(info)))], alloc)[0]
    finally:
        native.configure(core)
    assert n == 1 and not wide
    assert held[0][0][idx][0] == 0xBEEF


def test_a_new_table_field_reaches_the_compiled_encoder(monkeypatch: Any) -> None:
    """A field added to the table (number 3399 here) is written by the compiled encoder as by numpy's."""
    require_native()
    extra = Field("tcp_info_test_extra", 3399, "uint32", "tcp_info", 8, 4)
    batch = decode_messages([diag_msg(attrs=nla(c.INET_DIAG_INFO, tcp_info(232)))]).batch.with_meta(META)
    batch = replace(batch, columns={**batch.columns, extra.name: np.array([300], dtype=np.uint32)})
    monkeypatch.setattr(items, "_BY_NUMBER", sorted((*FIELDS, extra), key=lambda f: f.number))
    got = encode_rows(batch, "protobuf-single", path="c").data
    assert got == encode_rows(batch, "protobuf-single", path="numpy").data
    assert bytes([0xB8, 0xD4, 0x01, 0xAC, 0x02]) in got  # tag (3399 << 3 | 0) and varint 300


def test_column_stage_fields_are_written_the_same_by_every_encoder() -> None:
    """sample_rate_ppm and closed, set by the column stages, come out identical from the compiled and numpy encoders."""
    require_native()
    chunks = _capture_6_18()
    batch = decode_messages(chunks).batch.with_meta(META)
    n = batch.n
    stage = {"sample_rate_ppm": np.arange(n, dtype=np.uint32) * 1000,
             "closed": (np.arange(n) % 3 == 0).astype(np.uint32)}
    batch = replace(batch, columns={**batch.columns, **stage})
    for fmt in ("protobuf-list", "protobuf-single", "jsonl"):
        assert encode_rows(batch, fmt, path="c").data == encode_rows(batch, fmt, path="numpy").data, fmt
    assert b'"closed":true' in encode_rows(batch, "jsonl", path="c").data


def test_enrichment_fields_are_written_the_same_by_every_encoder() -> None:
    """The prefix and ASN columns of the enrichment stages come out identical from the compiled and numpy encoders."""
    require_native()
    batch = decode_messages(_capture_6_18()).batch.with_meta(META)
    n = batch.n
    prefix = np.zeros((n, 16), dtype=np.uint8)
    prefix[:, 0], prefix[:, 1] = 10, np.arange(n) % 256
    columns = {**batch.columns, "inet_diag_msg_socket_dest_prefix": prefix,
               "inet_diag_msg_socket_dest_prefix_length": np.full(n, 16, dtype=np.uint32),
               "inet_diag_msg_socket_dest_asn": np.arange(n, dtype=np.uint64) * 7}
    lengths = {**batch.lengths, "prefix": np.full(n, 17, dtype=np.int32),
               "asn": np.where(np.arange(n) % 2 == 0, 8, 0).astype(np.int32)}
    batch = replace(batch, columns=columns, lengths=lengths)
    for fmt in ("protobuf-list", "protobuf-single", "jsonl"):
        assert encode_rows(batch, fmt, path="c").data == encode_rows(batch, fmt, path="numpy").data, fmt
    assert b'"inet_diag_msg_socket_dest_prefix":"10.' in encode_rows(batch, "jsonl", path="c").data
