"""`python -m xtcp_async.ops.consume kafka://HOST:9092/TOPIC`: print the records as JSON lines.

The demo consumer of docker/compose.yaml, and a quick way for an operator to see what a topic
holds: it reads protobuf-list payloads (varint length ‖ Envelope, the xtcp2/ClickHouse
ProtobufList framing) and prints one JSON object per record with the proto field names.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Iterator, Sequence
from typing import Any

from google.protobuf.json_format import MessageToDict

from xtcp_async.encode.gen import xtcp_flat_record_pb2 as pb
from xtcp_async.sinks.spec import parse_sink_url


def read_varint(data: bytes, pos: int) -> tuple[int, int]:
    """(value, position after it) of the base-128 varint at ``pos``."""
    value = shift = 0
    while True:
        if pos >= len(data):
            raise ValueError("truncated varint")
        b = data[pos]
        pos += 1
        value |= (b & 0x7F) << shift
        if not b & 0x80:
            return value, pos
        shift += 7


def records(payload: bytes) -> Iterator[dict[str, Any]]:
    """Every record of one protobuf-list payload, as a dict keyed by proto field name."""
    pos = 0
    while pos < len(payload):
        size, pos = read_varint(payload, pos)
        if pos + size > len(payload):
            raise ValueError("truncated ProtobufList entry")
        env = pb.Envelope.FromString(payload[pos:pos + size])
        pos += size
        for row in env.row:
            yield MessageToDict(row, preserving_proto_field_name=True)


async def consume_kafka(url: str, limit: int | None) -> int:
    from aiokafka import AIOKafkaConsumer

    spec = parse_sink_url(url)
    servers = ",".join(f"{h}:{p}" for h, p in spec.host_ports(9092))
    consumer = AIOKafkaConsumer(spec.path.strip("/"), bootstrap_servers=servers,
                                auto_offset_reset="earliest", group_id=None)
    printed = 0
    await consumer.start()
    try:
        async for msg in consumer:
            for rec in records(msg.value):
                sys.stdout.write(json.dumps(rec) + "\n")
                printed += 1
            sys.stdout.flush()
            if limit is not None and printed >= limit:
                break
    finally:
        await consumer.stop()
    return printed


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m xtcp_async.ops.consume", description=__doc__)
    p.add_argument("url", help="kafka://HOST:PORT[,HOST:PORT]/TOPIC (payloads in protobuf-list)")
    p.add_argument("--limit", type=int, default=None, help="stop after this many records")
    ns = p.parse_args(argv)
    if not ns.url.startswith("kafka://"):
        p.error("only kafka:// URLs are supported")
    try:
        asyncio.run(consume_kafka(ns.url, ns.limit))
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
