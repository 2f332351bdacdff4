"""Aggregate records of a live namespace equal pandas and ClickHouse computations over the same poll's rows.

The collector polls the traffic namespace twice with --asn-db and --aggregate; one file sink gets
the socket rows (jsonl), two get the aggregate records (jsonl, and protobuf-list for ClickHouse).
"""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

import pytest
from google.protobuf.internal.decoder import _DecodeVarint  # type: ignore[attr-defined]

from tests.support.aggregate_oracle import key_of, oracle
from tests.support.asn import write_pfx2as

from .harness import Netns, Traffic, collector_argv, read_jsonl

pytestmark = pytest.mark.root

KEYS = ("asn", "port", "state")
PROTO = Path(__file__).resolve().parents[3] / "proto" / "xtcp_flat_record.proto"


@pytest.fixture(scope="module")
def run(netns: Netns, traffic: Traffic, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Two polls with rows to one file and aggregates to two others."""
    del traffic
    d = tmp_path_factory.mktemp("agg")
    db = write_pfx2as(d / "pfx2as.txt")
    out = {"rows": d / "rows.jsonl", "agg": d / "agg.jsonl", "agg_pb": d / "agg.pb"}
    netns.run([*collector_argv(), "--metrics-listen", "", "--count", "2", "--interval", "1", "--poll-timeout", "0.8",
               "--asn-db", str(db), "--prefix-len", "24,64", "--aggregate", "--aggregate-by", ",".join(KEYS),
               "--sink", f"file://{out['rows']}?format=jsonl",
               "--sink", f"file://{out['agg']}?format=jsonl&records=aggregates",
               "--sink", f"file://{out['agg_pb']}?format=protobuf-list&records=aggregates"], timeout_s=60)
    return out


def _poll(records: list[dict[str, Any]], poll_id: int) -> list[dict[str, Any]]:
    return [r for r in records if r["poll_id"] == poll_id]


def test_live_aggregates_equal_pandas(run: dict[str, Path]) -> None:
    """Every statistic of every group of the second poll equals pandas over that poll's rows (deltas
    against the first poll's rows)."""
    rows = read_jsonl(run["rows"])
    aggs = read_jsonl(run["agg"])
    assert {r["poll_id"] for r in aggs} == {1, 2}
    theirs = oracle(_poll(rows, 2), KEYS, prev=_poll(rows, 1))
    ours = {key_of(r, KEYS): r for r in _poll(aggs, 2)}
    assert set(ours) == set(theirs)
    for key, want in theirs.items():
        for name, value in want.items():
            assert ours[key].get(name, 0) == value, (key, name)
    assert {k[0] for k in ours} >= {64501, 64510}  # 127.0.0.1 and ::1 peers got their ASNs
    assert sum(r["sockets"] for r in _poll(aggs, 2)) == len(_poll(rows, 2))
    assert not any(r.get("tcp_info_rtt") for r in aggs)  # the aggregate sink got no socket rows


def test_clickhouse_reads_the_aggregate_records(run: dict[str, Path]) -> None:
    """ClickHouse's ProtobufList reader decodes the aggregate payloads with our .proto, to the jsonl values."""
    chdb = pytest.importorskip("chdb", reason="chdb (ClickHouse in-process) is a dev dependency")
    cols = ("poll_id", "asn", "local_port", "state", "sockets", "rtt_p50", "rtt_p99", "retransmits", "bytes_acked")
    # One file per payload, as the Kafka engine hands ClickHouse one message at a time.
    data = run["agg_pb"].read_bytes()
    pos = 0
    while pos < len(data):
        length, start = _DecodeVarint(data, pos)
        (run["agg_pb"].parent / f"agg-{pos:08d}.bin").write_bytes(data[pos:start + length])
        pos = start + length
    sql = (f"SELECT {', '.join(cols)} FROM file('{run['agg_pb'].parent}/agg-*.bin', 'ProtobufList') ORDER BY ALL "
           f"SETTINGS format_schema = '{PROTO}:XtcpAggregateRecord'")
    got = [tuple(r) for r in csv.reader(io.StringIO(str(chdb.query(sql, "CSV"))))]
    want = sorted(tuple(str(r.get(c, 0 if c != "state" else "")) for c in cols) for r in read_jsonl(run["agg"]))
    assert sorted(got) == want and len(got) > 3


def test_clickhouse_sql_over_the_rows_gives_the_same_rtt_quantiles(run: dict[str, Path]) -> None:
    """ClickHouse SQL over the poll's jsonl rows, with the documented quantile definition, gives our RTT
    quantiles per ASN state and port."""
    chdb = pytest.importorskip("chdb", reason="chdb (ClickHouse in-process) is a dev dependency")
    ours = {key_of(r, KEYS): r for r in _poll(read_jsonl(run["agg"]), 2)}
    q = ", ".join(f"arraySort(groupArrayIf(tcp_info_rtt, tcp_info_rtt > 0))"
                  f"[toUInt64(floor({x} * (countIf(tcp_info_rtt > 0) - 1))) + 1]" for x in (0.5, 0.9, 0.99))
    sql = (f"SELECT inet_diag_msg_socket_dest_asn, inet_diag_msg_socket_source_port, inet_diag_msg_state, {q}, count() "
           f"FROM file('{run['rows']}', 'JSONEachRow') WHERE poll_id = 2 "
           f"GROUP BY ALL SETTINGS input_format_skip_unknown_fields = 1")
    rows = list(csv.reader(io.StringIO(str(chdb.query(sql, "CSV")))))
    by_group: dict[tuple[int, int], list[int]] = {}
    states = {1: "established", 10: "listen"}
    listening = {int(r[1]) for r in rows if int(r[2]) == 10}
    checked = 0
    for asn, sport, state, p50, p90, p99, n in rows:
        if int(state) not in states or int(sport) not in listening:
            continue  # client sockets of a state fold into port 0 groups: compared by pandas above
        key = (int(asn), int(sport), states[int(state)])
        by_group[key[:2]] = [int(n)]
        rec = ours[key]
        assert (rec.get("rtt_p50", 0), rec.get("rtt_p90", 0), rec.get("rtt_p99", 0), rec["sockets"]) == \
            (int(p50 or 0), int(p90 or 0), int(p99 or 0), int(n)), key
        checked += 1
    assert checked >= 3
