"""The enrichment stage fills xtcp2's dest ASN and our prefix fields, in every format, and reloads safely."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.asn import capture_batch, oracle_asn, write_pfx2as
from tests.support.xtcp2_schema import xtcp2_classes
from tests.unit.encode.test_roundtrip import split_list_payload
from xtcp_async.encode import encode, encode_rows
from xtcp_async.encode.gen import xtcp_flat_record_pb2 as pb
from xtcp_async.encode.reference import build_messages
from xtcp_async.enrich.asndb import load_asn_db
from xtcp_async.enrich.stage import Enricher, enrich
from xtcp_async.netlink.batch import DESTINATION, SocketBatch


@pytest.fixture(scope="module")
def enriched(tmp_path_factory: pytest.TempPathFactory) -> SocketBatch:
    """The recorded 6.18 dump with ASN (pfx2as table) and /24 /48 prefixes."""
    db = write_pfx2as(tmp_path_factory.mktemp("asn") / "pfx2as.txt")
    return enrich(capture_batch(), load_asn_db(db), (24, 48))


def test_dest_asn_is_the_longest_match_of_each_remote_address(enriched: SocketBatch) -> None:
    """Each row's inet_diag_msg_socket_dest_asn is the oracle's ASN for its destination address."""
    got = enriched.columns["inet_diag_msg_socket_dest_asn"].tolist()
    want = [oracle_asn(a) for a in enriched.addresses_text(DESTINATION)]
    assert got == want
    assert {64501, 64502, 64510} <= set(got)  # 127.0.0.1, 127.0.0.2 and ::1 peers


def test_wire_bytes_equal_the_reference_encoder(enriched: SocketBatch) -> None:
    """The fast protobuf encoder writes the new fields exactly as the generated classes do."""
    payload = encode(enriched, "protobuf-list", max_bytes=1 << 22, max_rows=10_000).payloads[0]
    rows = list(pb.Envelope.FromString(split_list_payload(payload)).row)
    assert rows == build_messages(enriched)
    assert any(r.inet_diag_msg_socket_dest_prefix_length == 24 for r in rows)
    assert any(r.inet_diag_msg_socket_dest_prefix_length == 48 for r in rows)


def test_xtcp2_schema_reads_the_dest_asn(enriched: SocketBatch) -> None:
    """A consumer knowing only xtcp2's field list gets the ASN in its own field 1011."""
    _, envelope = xtcp2_classes()
    payload = encode(enriched, "protobuf-list", max_bytes=1 << 22, max_rows=10_000).payloads[0]
    rows = envelope.FromString(split_list_payload(payload)).row
    assert [r.inet_diag_msg_socket_dest_asn for r in rows] == enriched.columns["inet_diag_msg_socket_dest_asn"].tolist()


def test_jsonl_carries_asn_and_prefix_text(enriched: SocketBatch) -> None:
    """jsonl rows equal the reference records, with the prefix as address text beside its length."""
    rows = [json.loads(line) for line in encode_rows(enriched, "jsonl").data.decode().splitlines()]
    assert rows == enriched.to_records()
    by_dst = {r[DESTINATION]: r for r in rows}
    assert by_dst["127.0.0.2"]["inet_diag_msg_socket_dest_prefix"] == "127.0.0.0"
    assert by_dst["127.0.0.2"]["inet_diag_msg_socket_dest_asn"] == 64502
    assert by_dst["::1"]["inet_diag_msg_socket_dest_prefix"] == "::"
    assert by_dst["::ffff:127.0.0.1"]["inet_diag_msg_socket_dest_prefix_length"] == 120


def test_without_the_stage_the_fields_are_absent() -> None:
    """An unenriched batch encodes with no ASN or prefix field (proto3 unset, absent from JSON)."""
    batch = capture_batch()
    rows = encode_rows(batch, "jsonl").data.decode()
    assert "dest_asn" not in rows and "dest_prefix" not in rows
    payload = encode(batch, "protobuf-list", max_bytes=1 << 22, max_rows=10_000).payloads[0]
    rows = pb.Envelope.FromString(split_list_payload(payload)).row
    assert all(r.inet_diag_msg_socket_dest_asn == 0 and not r.inet_diag_msg_socket_dest_prefix for r in rows)


async def test_reload_swaps_the_table_and_a_bad_reload_keeps_it(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """SIGHUP's reload takes a new file; a broken file leaves the old table in use and logs why."""
    path = write_pfx2as(tmp_path / "pfx2as.txt", [("127.0.0.0/8", 1)])
    enricher = Enricher.load(str(path), None)
    write_pfx2as(path, [("127.0.0.0/8", 2)])
    fut = enricher.start_reload()
    assert fut is not None and await fut is True
    assert enricher(capture_batch()).columns["inet_diag_msg_socket_dest_asn"].max() == 2
    path.write_text("127.0.0.0\teight\t3\n")
    with caplog.at_level(logging.ERROR):
        fut = enricher.start_reload()
        assert fut is not None and await fut is False
    assert enricher(capture_batch()).columns["inet_diag_msg_socket_dest_asn"].max() == 2
    assert enricher.reloads == 1 and enricher.reload_failures == 1
    assert "keeping the previous table" in caplog.text and "line 1" in caplog.text


@pytest.mark.parametrize(("args", "words"), [
    (["--asn-db", "/nonexistent/asn.mmdb"], "--asn-db"),
    (["--aggregate", "--aggregate-by", "asn,cc"], "--aggregate-by asn needs --asn-db"),
    (["--prefix-len", "33,48"], "--prefix-len"),
    (["--aggregate-by", "asn,colour"], "--aggregate-by"),
    (["--sink", "null://?records=summaries"], "records"),
    (["--sink", "null://?records=aggregates"], "needs --aggregate"),
    (["--aggregate", "--aggregate-by", "state", "--emit", "changed"], "--emit changed"),
])
def test_bad_health_options_are_one_line_and_exit_2(args: list[str], words: str) -> None:
    """A missing database, an impossible prefix length or an unknown group key: one line, exit 2."""
    proc = subprocess.run([sys.executable, "-m", "xtcp_async", "--once", "--sink", "null://", *args],
                          capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and words in lines[0], lines
