"""Shared helpers of the Kafka integration tests: a sink behind a real SinkRunner, and a
consumer that reads a topic back to its end."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition

from tests.support.sinks import index_of, payloads, running, started, wait_until
from xtcp_async.sinks.kafka import KafkaSink
from xtcp_async.sinks.spec import parse_sink_url

__all__ = ["index_of", "payloads", "running", "started", "wait_until"]

#: SASL users every shared broker knows (PLAIN and SCRAM-SHA-256/512).
SASL_USERS = {"xtcp": "xtcp-test-secret"}


def make_sink(bootstrap: str, topic: str, **options: str) -> KafkaSink:
    query = "&".join(f"{k}={v}" for k, v in options.items())
    url = f"kafka://{bootstrap}/{topic}" + (f"?{query}" if query else "")
    return KafkaSink.from_spec(parse_sink_url(url))


async def end_offset(bootstrap: str, topic: str, **client: Any) -> int:
    """How many records partition 0 of ``topic`` holds (its log end offset)."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, **client)
    await consumer.start()
    try:
        tp = TopicPartition(topic, 0)
        offsets = await consumer.end_offsets([tp])
        return int(offsets[tp])
    finally:
        await consumer.stop()


async def consume(bootstrap: str, topic: str, timeout_s: float = 20.0, **client: Any) -> list[Any]:
    """Every record of partition 0 of ``topic``, from the beginning to the end offset read first.

    Reading to the end offset (not "until N arrived") means duplicates are seen, not hidden.
    """
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False,
                                auto_offset_reset="earliest", **client)
    await consumer.start()
    try:
        tp = TopicPartition(topic, 0)
        consumer.assign([tp])
        end = (await consumer.end_offsets([tp]))[tp]
        await consumer.seek_to_beginning(tp)
        records: list[Any] = []
        deadline = time.monotonic() + timeout_s
        while await consumer.position(tp) < end:
            if time.monotonic() > deadline:
                raise AssertionError(f"read {len(records)} of {end} records of {topic} in {timeout_s}s")
            batch = await consumer.getmany(tp, timeout_ms=500, max_records=10_000)
            records.extend(batch.get(tp, []))
        return records
    finally:
        await consumer.stop()


class LiveSockets:
    """``count`` established loopback connections to one listener, each client having sent a
    known number of bytes that the server read (so bytes_acked and rtt are real, non-zero)."""

    def __init__(self, count: int) -> None:
        import socket

        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self.listener.getsockname()[1]
        self.clients: list[socket.socket] = []
        self.servers: list[socket.socket] = []
        #: client port -> bytes that client sent
        self.sent: dict[int, int] = {}
        for i in range(count):
            client = socket.create_connection(("127.0.0.1", self.port))
            server, _ = self.listener.accept()
            size = 1000 + 37 * i
            client.sendall(b"x" * size)
            got = 0
            while got < size:
                got += len(server.recv(65536))
            self.clients.append(client)
            self.servers.append(server)
            self.sent[client.getsockname()[1]] = size

    def close(self) -> None:
        for s in [*self.clients, *self.servers, self.listener]:
            s.close()


async def run_cli(*args: str, timeout_s: float = 60.0) -> tuple[int, str, str]:
    """Run the real ``xtcp-async`` CLI (as ``python -m xtcp_async``); return code, stdout, stderr."""
    import sys

    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "xtcp_async", "--metrics-listen", "", *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    try:
        out, err = await asyncio.wait_for(proc.communicate(), timeout_s)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise
    assert proc.returncode is not None
    return proc.returncode, out.decode(errors="replace"), err.decode(errors="replace")


def split_protobuf_list(payload: bytes) -> list[bytes]:
    """The Envelope messages of one ProtobufList payload (varint length ‖ Envelope, repeated)."""
    envelopes, i = [], 0
    while i < len(payload):
        length, shift = 0, 0
        while True:
            byte = payload[i]
            i += 1
            length |= (byte & 0x7F) << shift
            shift += 7
            if not byte & 0x80:
                break
        envelopes.append(payload[i:i + length])
        i += length
    assert i == len(payload), "payload does not end on an envelope boundary"
    return envelopes
