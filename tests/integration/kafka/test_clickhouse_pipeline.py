"""The deploy/clickhouse recipe end to end: xtcp-async → a real Kafka broker → ClickHouse's own
Kafka engine (chdb, in a process started in the schema directory, as a server reads its
format_schema_path) → the materialized view → the MergeTree table; then every query file runs.

One poll goes to Kafka (protobuf-list) and to a jsonl file at once, so the table can be compared,
socket by socket, with the jsonl text of the same poll.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from aiokafka import AIOKafkaProducer
from kafka_helpers import LiveSockets, run_cli

from tests.brokers.kafka import LATEST
from tests.support import grafana
from tests.support.clickhouse import PROTO, ClickHouse, ClickHouseError, ddl_files, query_files

if TYPE_CHECKING:
    from tests.brokers.kafka import KafkaBroker

pytest.importorskip("chdb", reason="chdb (ClickHouse in-process) is a dev dependency")

pytestmark = [pytest.mark.kafka, pytest.mark.slow,
              pytest.mark.parametrize("kafka_broker", [LATEST], indirect=True, ids=[f"kafka-{LATEST}"])]

CONNECTIONS = 12
LOCATION, HOSTNAME = "pop-test-1", "edge-ch-1"
#: Not protobuf at all: the error stream must catch it and the consumer must move past it.
JUNK = b"\xff\xff\xff\xff\x0fnot protobuf"


@dataclass
class Ingested:
    ch: ClickHouse
    jsonl: list[dict[str, Any]]
    live: LiveSockets


async def publish_junk_then_poll(bootstrap: str, topic: str, jsonl: Path) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await producer.start()
    try:
        await producer.send_and_wait(topic, JUNK)
    finally:
        await producer.stop()
    code, _, err = await run_cli("--sink", f"kafka://{bootstrap}/{topic}", "--sink", f"file://{jsonl}",
                                 "--once", "--location", LOCATION, "--hostname", HOSTNAME, "--shutdown-grace", "60")
    assert code == 0, err


@pytest.fixture(scope="module")
def ingested(kafka_broker: KafkaBroker, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Ingested]:
    """One junk message, then one poll of this host published to Kafka and written as jsonl; the
    schema applied from deploy/clickhouse with the README's parameters; rows waited for."""
    tmp = tmp_path_factory.mktemp("clickhouse")
    topic = "xtcp-clickhouse-pipeline"
    live = LiveSockets(CONNECTIONS)
    jsonl = tmp / "poll.jsonl"
    # A private loop, not asyncio.run(): that would also reset the thread's current event loop,
    # which pytest-asyncio owns, and leave it to be collected unclosed.
    loop = asyncio.new_event_loop()
    try:
        loop.run_until_complete(publish_junk_then_poll(kafka_broker.bootstrap, topic, jsonl))
    finally:
        loop.close()
    rows = [json.loads(line) for line in jsonl.read_text().splitlines()]

    # The README's step: the .proto goes into the server's format_schemas directory.
    schemas = tmp / "format_schemas"
    schemas.mkdir()
    shutil.copy(PROTO, schemas)
    ch = ClickHouse(tmp / "data", schemas)
    params = {"ttl_days": 14, "kafka_brokers": kafka_broker.bootstrap, "kafka_topic": topic,
              "kafka_group": "clickhouse-xtcp"}
    try:
        for ddl in ddl_files():
            try:
                ch.query(ddl.read_text(), params)
            except ClickHouseError as exc:
                # chdb 4.4 answers the Kafka table's CREATE with this although the table is made and
                # consumes (its embedded server's background start-up); anything else is a real error.
                if "Shutdown was called" not in str(exc) or not ch.scalar("EXISTS TABLE xtcp.sockets_queue"):
                    raise
        got = ch.wait_for("SELECT count() FROM xtcp.sockets", len(rows), timeout_s=90)
        assert got >= len(rows), f"{got} of {len(rows)} rows arrived"
        ch.wait_for("SELECT count() FROM xtcp.kafka_errors", 1, timeout_s=30)
        yield Ingested(ch, rows, live)
    finally:
        ch.close()
        live.close()


def address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    return ipaddress.ip_address(text)


def test_every_polled_socket_is_one_row(ingested: Ingested) -> None:
    """The table holds exactly the sockets of the poll: one row per jsonl line, same cookies, and
    the junk message is in the dead-letter table, not in the rows."""
    ch = ingested.ch
    assert ch.scalar("SELECT count() FROM xtcp.sockets") == len(ingested.jsonl)
    cookies = {r["inet_diag_msg_socket_cookie"] for r in ingested.jsonl}
    got = {int(r["c"]) for r in ch.query("SELECT inet_diag_msg_socket_cookie AS c FROM xtcp.sockets")}
    assert got == cookies
    (dead,) = ch.query("SELECT raw_message, error FROM xtcp.kafka_errors")
    assert dead["raw_message"].encode("latin-1", errors="replace").endswith(b"not protobuf")
    assert dead["error"]


def test_addresses_ports_and_states_equal_the_jsonl_text(ingested: Ingested) -> None:
    """Source/destination (IPv6, IPv4 mapped), ports, state, host and location equal the same poll's
    jsonl; the event time is the poll's timestamp_ns."""
    rows = ingested.ch.query(
        "SELECT inet_diag_msg_socket_cookie AS cookie, toString(inet_diag_msg_socket_source) AS src, "
        "toString(inet_diag_msg_socket_destination) AS dst, inet_diag_msg_socket_source_port AS sport, "
        "inet_diag_msg_socket_destination_port AS dport, inet_diag_msg_state AS state, hostname, location, "
        "inet_diag_msg_family_name AS family, toUnixTimestamp64Nano(event_time) AS ts FROM xtcp.sockets")
    by_cookie = {int(r["cookie"]): r for r in rows}
    for want in ingested.jsonl:
        got = by_cookie[want["inet_diag_msg_socket_cookie"]]
        for field, key in (("src", "inet_diag_msg_socket_source"), ("dst", "inet_diag_msg_socket_destination")):
            stored = ipaddress.IPv6Address(got[field])
            if want["inet_diag_msg_family_name"] == "inet":
                assert stored.ipv4_mapped == address(want[key]), (got, want[key])
            else:
                assert stored == address(want[key])
        assert (got["sport"], got["dport"], got["state"]) == (
            want["inet_diag_msg_socket_source_port"], want["inet_diag_msg_socket_destination_port"],
            want["inet_diag_msg_state"])
        assert (got["hostname"], got["location"], got["family"]) == (HOSTNAME, LOCATION,
                                                                      want["inet_diag_msg_family_name"])
        assert int(got["ts"]) == want["timestamp_ns"]


def test_rtt_and_bytes_of_known_connections(ingested: Ingested) -> None:
    """Each test connection's client end has a positive RTT and bytes_acked covering what it sent."""
    rows = ingested.ch.query(
        f"SELECT inet_diag_msg_socket_source_port AS sport, tcp_info_rtt AS rtt, tcp_info_bytes_acked AS acked "
        f"FROM xtcp.sockets WHERE inet_diag_msg_socket_destination_port = {ingested.live.port} "
        f"AND state_name = 'ESTABLISHED'")
    by_port = {r["sport"]: r for r in rows}
    assert set(by_port) == set(ingested.live.sent)
    for port, sent in ingested.live.sent.items():
        assert by_port[port]["rtt"] > 0
        assert int(by_port[port]["acked"]) >= sent


def run_query_file(ingested: Ingested, name: str) -> list[dict[str, Any]]:
    path = next(p for p in query_files() if p.name == name)
    assert path.read_text().startswith("-- "), f"{name}: first line must say what it answers"
    return ingested.ch.query(path.read_text())


def test_every_query_file_runs(ingested: Ingested) -> None:
    """Each file in deploy/clickhouse/queries starts with a one-line comment and runs on the table."""
    names = [p.name for p in query_files()]
    assert len(names) >= 8
    for name in names:
        run_query_file(ingested, name)


def test_rtt_percentiles_are_positive_and_ordered(ingested: Ingested) -> None:
    """RTT by location, by remote network and by ASN: our location is there, p50 ≤ p99, both > 0;
    the ASN query runs while nothing fills the ASN yet (all 0)."""
    for name in ("rtt_by_location.sql", "rtt_by_remote_network.sql", "rtt_by_asn.sql"):
        rows = run_query_file(ingested, name)
        assert rows, name
        assert {r["location"] for r in rows} == {LOCATION}
        for r in rows:
            assert 0 < r["rtt_p50_ms"] <= r["rtt_p99_ms"], (name, r)
    networks = {r["destination_network"] for r in run_query_file(ingested, "rtt_by_remote_network.sql")}
    assert "127.0.0.0/24" in networks
    assert {int(r["remote_asn"]) for r in run_query_file(ingested, "rtt_by_asn.sql")} == {0}


def test_sockets_by_state_add_up_to_the_poll(ingested: Ingested) -> None:
    """One poll, one minute: sockets per state equal the jsonl's count per state."""
    rows = run_query_file(ingested, "sockets_by_state.sql")
    names = {1: "ESTABLISHED", 2: "SYN_SENT", 3: "SYN_RECV", 4: "FIN_WAIT1", 5: "FIN_WAIT2", 6: "TIME_WAIT",
             7: "CLOSE", 8: "CLOSE_WAIT", 9: "LAST_ACK", 10: "LISTEN", 11: "CLOSING", 12: "NEW_SYN_RECV"}
    want: dict[str, int] = {}
    for r in ingested.jsonl:
        want[names[r["inet_diag_msg_state"]]] = want.get(names[r["inet_diag_msg_state"]], 0) + 1
    got: dict[str, float] = {}
    for r in rows:
        got[r["state_name"]] = got.get(r["state_name"], 0) + r["sockets"]
    assert got == want


def test_retransmits_and_bytes_by_algorithm_are_consistent(ingested: Ingested) -> None:
    """Retransmit share is within [0, 1] and counts every non-listening socket once; bytes by
    algorithm add up to the jsonl's bytes_sent of those sockets."""
    share = run_query_file(ingested, "retransmit_share_by_location.sql")
    non_listen = [r for r in ingested.jsonl if r["inet_diag_msg_state"] != 10]
    assert [r["location"] for r in share] == [LOCATION]
    assert share[0]["sockets"] == len(non_listen)
    assert 0 <= share[0]["retransmit_share"] <= 1
    by_algo = run_query_file(ingested, "bytes_by_congestion_algorithm.sql")
    assert sum(int(r["total_bytes_sent"]) for r in by_algo) == sum(r.get("tcp_info_bytes_sent", 0) for r in non_listen)
    algos = {r.get("congestion_algorithm_string") or "(none)" for r in non_listen}
    assert {r["congestion_algorithm"] for r in by_algo} == algos


def test_worst_networks_and_bbr_candidates_obey_their_thresholds(ingested: Ingested) -> None:
    """Worst networks are sorted by p99 RTT; every BBR candidate is off BBR, ≥ 50 ms, ≥ 1% retransmitted
    (loopback connections are none of that, so here the list is empty)."""
    worst = run_query_file(ingested, "worst_remote_networks.sql")
    assert worst
    assert [r["rtt_p99_ms"] for r in worst] == sorted((r["rtt_p99_ms"] for r in worst), reverse=True)
    for r in run_query_file(ingested, "bbr_candidates.sql"):
        assert not r["congestion_algorithm"].startswith("bbr")
        assert r["min_rtt_ms"] >= 50 and r["retransmit_share"] >= 0.01


def test_every_dashboard_panel_and_variable_query_runs(ingested: Ingested) -> None:
    """The ClickHouse dashboard's variable queries list our location and host; each panel's SQL, with
    those values and the plugin's macros expanded, runs on the table — for all ASNs and for one."""
    board = grafana.load("xtcp-clickhouse.json")
    now = int(time.time())
    window = {"start_s": now - 3600, "end_s": now + 60, "interval_s": 60}
    values: dict[str, list[str]] = {}
    for var in board["templating"]["list"]:
        if var["type"] == "query":
            sql = grafana.expand_clickhouse_macros(grafana.expand_variables(var["query"], values), **window)
            values[var["name"]] = [next(iter(r.values())) for r in ingested.ch.query(sql)]
    assert values == {"location": [LOCATION], "host": [HOSTNAME]}
    for asn in ("", "0"):
        values["asn"] = [asn]
        answered = 0
        for panel, target in grafana.targets(board):
            sql = grafana.expand_clickhouse_macros(grafana.expand_variables(target["rawSql"], values), **window)
            rows = ingested.ch.query(sql)
            answered += bool(rows)
            if panel["title"] == "RTT p50/p99 by location over time":
                assert rows and all(0 < r["rtt_p50_ms"] <= r["rtt_p99_ms"] for r in rows)
        assert answered >= 8  # all but the BBR candidates (none on loopback) have rows


def test_bbr_candidates_are_exactly_the_slow_lossy_non_bbr_clients(ingested: Ingested) -> None:
    """Loopback has no long lossy paths, so four copies of real rows are given such numbers under a
    location of their own: the query lists the two non-BBR ones that pass both thresholds, not the
    BBR one nor the one losing too little."""
    ch = ingested.ch
    synthetic = "pop-bbr-test"
    # (congestion algorithm, min RTT µs, bytes sent, bytes retransmitted)
    cases = [("cubic", 80_000, 1_000_000, 50_000), ("reno", 120_000, 2_000_000, 40_000),
             ("bbr", 90_000, 1_000_000, 50_000), ("cubic", 80_000, 1_000_000, 1_000)]
    columns = [r["name"] for r in ch.query("SELECT name FROM system.columns WHERE database = 'xtcp' "
                                           "AND table = 'sockets' AND default_kind != 'ALIAS' ORDER BY position")]
    try:
        for i, (algo, min_rtt, sent, retrans) in enumerate(cases):
            # An explicit column list: chdb 4.4 silently skips INSERT ... SELECT * REPLACE (...).
            changed = {"location": f"'{synthetic}'", "congestion_algorithm_string": f"'{algo}'",
                       "tcp_info_min_rtt": str(min_rtt), "tcp_info_bytes_sent": str(sent),
                       "tcp_info_bytes_retrans": str(retrans),
                       "inet_diag_msg_socket_destination": f"toIPv6('2001:db8::{i + 1}')",
                       "inet_diag_msg_socket_cookie": str(10**12 + i)}
            select = ", ".join(changed.get(c, c) for c in columns)
            ch.query(f"INSERT INTO xtcp.sockets ({', '.join(columns)}) SELECT {select} FROM xtcp.sockets "
                     f"WHERE state_name = 'ESTABLISHED' AND location = '{LOCATION}' LIMIT 1")
        rows = [r for r in run_query_file(ingested, "bbr_candidates.sql") if r["location"] == synthetic]
        assert [(r["client"], r["congestion_algorithm"], r["min_rtt_ms"], r["retransmit_share"]) for r in rows] == [
            ("2001:db8::2", "reno", 120.0, 0.02), ("2001:db8::1", "cubic", 80.0, 0.05)]
        assert rows[0]["destination_network"] == "2001:db8::/48"
    finally:
        ch.query(f"DELETE FROM xtcp.sockets WHERE location = '{synthetic}'")
    assert ch.scalar(f"SELECT count() FROM xtcp.sockets WHERE location = '{synthetic}'") == 0
