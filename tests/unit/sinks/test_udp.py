"""The UDP sink against a real UDP socket on loopback: one payload per datagram, never over the cap."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Iterator

import pytest

from tests.support.fixtures import iter_pcap_netlink, require_fixtures, sockets_pcaps
from tests.unit.encode.test_roundtrip import split_list_payload
from xtcp_async.config import load_config
from xtcp_async.encode.gen import xtcp_flat_record_pb2 as pb
from xtcp_async.errors import ConfigError
from xtcp_async.netlink.decode import decode_messages
from xtcp_async.pipeline import Encoder, PollBatch, PollEnd, PollInfo, SinkGroup
from xtcp_async.sinks import create_sink, parse_sink_url
from xtcp_async.sinks.runner import SinkRunner
from xtcp_async.sinks.udp import UdpSink
from xtcp_async.stats import Stats


@pytest.fixture
def receiver() -> Iterator[socket.socket]:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
        s.settimeout(2)
        yield s


def _recv_all(s: socket.socket) -> list[bytes]:
    out = []
    s.settimeout(0.5)
    try:
        while True:
            out.append(s.recv(70_000))
    except TimeoutError:
        return out


async def test_batches_split_to_fit_max_datagram(receiver: socket.socket) -> None:
    """A 1,500-socket batch to udp://?max_datagram=8000 arrives as datagrams ≤ 8000 bytes holding every record."""
    root = require_fixtures()
    path = next(p for p in sockets_pcaps(root) if p.name.startswith("6_10_3_tcp_1000_sockets"))
    batch = decode_messages(list(iter_pcap_netlink(path))).batch
    port = receiver.getsockname()[1]
    sink = create_sink(parse_sink_url(f"udp://127.0.0.1:{port}?max_datagram=8000"))
    assert isinstance(sink, UdpSink) and sink.max_payload_bytes == 8000
    cfg = load_config({"once": True})
    stats = Stats()
    runner = SinkRunner("udp", sink)
    q: asyncio.Queue[object] = asyncio.Queue()
    poll = PollInfo(1, 0)
    for item in (PollBatch(poll, batch), PollEnd(poll), None):
        q.put_nowait(item)
    await sink.start()
    async with asyncio.TaskGroup() as tg:
        runner.start(tg)
        await Encoder(cfg, stats, q, [SinkGroup("protobuf-list", [(runner, 8000)])]).run()  # type: ignore[arg-type]
        await runner.drain(5)
        await runner.stop()
    datagrams = _recv_all(receiver)
    assert datagrams and max(len(d) for d in datagrams) <= 8000
    rows = sum(len(pb.Envelope.FromString(split_list_payload(d)).row) for d in datagrams)
    assert rows == batch.n
    assert runner.stats.payloads_delivered == len(datagrams)


async def test_oversized_payload_is_refused_not_truncated(receiver: socket.socket) -> None:
    """A payload above max_datagram is refused with a non-retriable error; nothing is sent."""
    from xtcp_async.errors import SinkError

    sink = UdpSink("127.0.0.1", receiver.getsockname()[1], max_datagram=100)
    await sink.start()
    with pytest.raises(SinkError) as info:
        await sink.send(b"x" * 101)
    assert not info.value.retriable
    await sink.send(b"y" * 100)
    assert receiver.recv(1000) == b"y" * 100
    await sink.close()
    await sink.close()


@pytest.mark.parametrize("url", ["udp://127.0.0.1", "udp://a:1,b:2", "udp://127.0.0.1:9?max_datagram=70000",
                                 "udp://127.0.0.1:9?bogus=1"])
def test_bad_udp_urls_are_config_errors(url: str) -> None:
    """A UDP URL without exactly one host:port, or with a bad option, is a ConfigError."""
    with pytest.raises(ConfigError):
        create_sink(parse_sink_url(url))
