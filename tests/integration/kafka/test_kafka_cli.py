"""End to end: the real ``xtcp-async`` CLI polls live sockets into a real broker; a consumer reads them."""

from __future__ import annotations

import collections
from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest
from kafka_helpers import LiveSockets, consume, run_cli, split_protobuf_list

from tests.brokers.kafka import free_port
from xtcp_async.encode.gen import xtcp_flat_record_pb2 as pb

if TYPE_CHECKING:
    from tests.brokers.kafka import KafkaBroker

pytestmark = pytest.mark.kafka

CONNECTIONS = 20


@pytest.fixture
def live() -> Iterator[LiveSockets]:
    """Twenty established loopback connections that carried data."""
    sockets = LiveSockets(CONNECTIONS)
    yield sockets
    sockets.close()


def ours(row: pb.XtcpFlatRecord, live: LiveSockets) -> bool:
    return live.port in (row.inet_diag_msg_socket_source_port, row.inet_diag_msg_socket_destination_port)


async def test_cli_streams_polls_into_kafka_and_every_record_decodes(
    kafka_broker: KafkaBroker, topic: str, live: LiveSockets
) -> None:
    """Three polls go out as ProtobufList records; each decodes, and each poll holds both ends of
    every test connection with the bytes the client really sent acknowledged."""
    code, _, err = await run_cli("--sink", f"kafka://{kafka_broker.bootstrap}/{topic}", "--count", "3",
                                 "--interval", "0.5", "--poll-timeout", "0.4", "--states", "established",
                                 "--family", "inet", "--max-batch-rows", "16")
    assert code == 0, err
    records = await consume(kafka_broker.bootstrap, topic)
    per_poll: collections.Counter[int] = collections.Counter()
    for record in records:
        for raw in split_protobuf_list(record.value):
            envelope = pb.Envelope.FromString(raw)
            assert 0 < len(envelope.row) <= 16
            for row in envelope.row:
                if not ours(row, live):
                    continue
                per_poll[row.poll_id] += 1
                sent = live.sent.get(row.inet_diag_msg_socket_source_port)
                if sent is not None and row.inet_diag_msg_socket_destination_port == live.port:
                    assert row.tcp_info_bytes_acked >= sent
    assert per_poll == {1: 2 * CONNECTIONS, 2: 2 * CONNECTIONS, 3: 2 * CONNECTIONS}


async def test_cli_once_exits_1_when_kafka_is_unreachable() -> None:
    """--once against a port where no broker listens gives up after the grace period with exit code 1."""
    code, _, err = await run_cli("--sink", f"kafka://127.0.0.1:{free_port()}/xtcp", "--once",
                                 "--shutdown-grace", "2", timeout_s=60)
    assert code == 1, err
    assert "kafka" in err.lower()
