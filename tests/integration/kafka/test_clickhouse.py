"""ClickHouse (chdb, in-process) reads what the Kafka sink published with the project's own .proto."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from kafka_helpers import LiveSockets, consume, run_cli, split_protobuf_list

from tests.brokers.kafka import LATEST
from xtcp_async.encode.gen import xtcp_flat_record_pb2 as pb

if TYPE_CHECKING:
    from tests.brokers.kafka import KafkaBroker

chdb = pytest.importorskip("chdb", reason="chdb (ClickHouse in-process) is a dev dependency")

pytestmark = pytest.mark.kafka

PROTO = Path(__file__).resolve().parents[3] / "proto" / "xtcp_flat_record.proto"
CONNECTIONS = 25
COLUMNS = ("inet_diag_msg_socket_source_port", "inet_diag_msg_socket_destination_port", "tcp_info_rtt",
           "tcp_info_bytes_acked", "hostname", "poll_id")


def clickhouse_version() -> tuple[int, int]:
    major, minor = str(chdb.query("SELECT version()", "CSV")).strip().strip('"').split(".")[:2]
    return int(major), int(minor)


# ClickHouse before 26.3 looks the ProtobufList envelope up as a top-level "Envelope" with the row
# type nested in it; our (and xtcp2's) schema has a package and a top-level row message, so older
# servers refuse the schema. They read the same rows sent as protobuf-single (ProtobufSingle).
LIST_NEEDS = (26, 3)


@pytest.fixture(scope="module")
def live() -> Iterator[LiveSockets]:
    """Established loopback connections that carried data (both ends are polled)."""
    sockets = LiveSockets(CONNECTIONS)
    yield sockets
    sockets.close()


def query_rows(files: str, fmt: str, port: int) -> list[tuple[str, ...]]:
    sql = (f"SELECT {', '.join(COLUMNS)} FROM file('{files}', '{fmt}') "
           f"WHERE inet_diag_msg_socket_source_port = {port} OR inet_diag_msg_socket_destination_port = {port} "
           f"ORDER BY ALL SETTINGS format_schema = '{PROTO}:XtcpFlatRecord'")
    return [tuple(r) for r in csv.reader(io.StringIO(str(chdb.query(sql, "CSV"))))]


def expected_rows(rows: list[pb.XtcpFlatRecord], port: int) -> list[tuple[str, ...]]:
    mine = [r for r in rows if port in (r.inet_diag_msg_socket_source_port, r.inet_diag_msg_socket_destination_port)]
    return sorted(tuple(str(getattr(r, c)) for c in COLUMNS) for r in mine)


@pytest.mark.parametrize(
    "fmt",
    [
        pytest.param("protobuf-list", marks=pytest.mark.xfail(
            clickhouse_version() < LIST_NEEDS, strict=True, raises=RuntimeError,
            reason=f"ClickHouse {'.'.join(map(str, clickhouse_version()))} < 26.3 cannot resolve the "
                   "ProtobufList envelope of a packaged schema (use protobuf-single there)")),
        "protobuf-single",
    ],
)
@pytest.mark.parametrize("kafka_broker", [LATEST], indirect=True, ids=[f"kafka-{LATEST}"])
async def test_clickhouse_reads_the_payloads_with_our_proto(
    kafka_broker: KafkaBroker, topic: str, live: LiveSockets, fmt: str, tmp_path: Path
) -> None:
    """Every Kafka record, read by ClickHouse's own Protobuf reader, gives one row per polled socket,
    and ports, rtt and bytes_acked equal what protobuf's Python decoder reads from the same bytes."""
    code, _, err = await run_cli("--sink", f"kafka://{kafka_broker.bootstrap}/{topic}?format={fmt}",
                                 "--once", "--states", "established", "--family", "inet",
                                 "--max-batch-rows", "8", "--hostname", "edge-ch-1", "--shutdown-grace", "60")
    assert code == 0, err
    records = await consume(kafka_broker.bootstrap, topic)
    decoded: list[pb.XtcpFlatRecord] = []
    for i, record in enumerate(records):
        # One file per Kafka record: the Kafka engine, too, hands ClickHouse one message at a time.
        (tmp_path / f"record-{i:05d}.bin").write_bytes(record.value)
        if fmt == "protobuf-list":
            decoded += [row for raw in split_protobuf_list(record.value) for row in pb.Envelope.FromString(raw).row]
        else:
            decoded.append(pb.XtcpFlatRecord.FromString(record.value))
    expected = expected_rows(decoded, live.port)
    assert len(expected) == 2 * CONNECTIONS  # both ends of every connection, from one poll

    got = query_rows(str(tmp_path / "record-*.bin"), "ProtobufList" if fmt == "protobuf-list" else "ProtobufSingle",
                     live.port)

    assert got == expected
    by_ports = {(int(r[0]), int(r[1])): r for r in got}
    for client_port, sent in live.sent.items():
        row = by_ports[(client_port, live.port)]
        assert int(row[3]) >= sent  # bytes_acked covers what the client sent
        assert int(row[2]) > 0  # a loopback rtt, measured by the kernel
        assert row[4] == "edge-ch-1"
