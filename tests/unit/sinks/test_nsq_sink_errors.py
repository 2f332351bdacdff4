"""How the NSQ sink reports nsqd's answers, against a scripted nsqd on loopback.

A real nsqd cannot be made to fail the second of two MPUBs on cue, so these tests use a tiny
server that speaks just enough of the protocol and answers each command from a script.
"""

from __future__ import annotations

import asyncio
import json
import struct
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from tests.support.sinks import started
from xtcp_async.errors import SinkError
from xtcp_async.sinks.nsq import NsqSink
from xtcp_async.sinks.spec import parse_sink_url


class ScriptedNsqd:
    """Accepts producers; answers command N with ``script[N]`` (``None``: never answer)."""

    def __init__(self, script: list[bytes | None]) -> None:
        self.script = script
        self.commands: list[tuple[bytes, list[bytes]]] = []
        self.connections = 0
        self.server: asyncio.Server | None = None

    @property
    def port(self) -> int:
        assert self.server is not None
        return int(self.server.sockets[0].getsockname()[1])

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            assert await reader.readexactly(4) == b"  V2"
            while True:
                line = (await reader.readline()).rstrip(b"\n")
                if not line:
                    return
                name = line.split(b" ")[0]
                body = b""
                if name in (b"IDENTIFY", b"PUB", b"MPUB"):
                    (size,) = struct.unpack(">I", await reader.readexactly(4))
                    body = await reader.readexactly(size)
                if name == b"IDENTIFY":
                    self._send(writer, 0, json.dumps({"tls_v1": False, "auth_required": False}).encode())
                    continue
                self.commands.append((line, _messages(name, body)))
                answer = self.script.pop(0) if self.script else b"OK"
                if answer is None:
                    continue
                self._send(writer, 1 if answer.startswith(b"E_") else 0, answer)
                if answer.startswith(b"E_"):
                    writer.close()  # nsqd closes after every error a producer can get
                    return
        except (asyncio.IncompleteReadError, ConnectionError):
            return
        finally:
            writer.close()

    @staticmethod
    def _send(writer: asyncio.StreamWriter, kind: int, data: bytes) -> None:
        writer.write(struct.pack(">II", 4 + len(data), kind) + data)


def _messages(name: bytes, body: bytes) -> list[bytes]:
    if name == b"PUB":
        return [body]
    (count,) = struct.unpack_from(">I", body)
    out, pos = [], 4
    for _ in range(count):
        (size,) = struct.unpack_from(">I", body, pos)
        out.append(body[pos + 4 : pos + 4 + size])
        pos += 4 + size
    return out


MakeServer = Callable[[list[bytes | None]], Awaitable[ScriptedNsqd]]


@pytest.fixture
async def make_server() -> AsyncIterator[MakeServer]:
    servers: list[ScriptedNsqd] = []

    async def make(script: list[bytes | None]) -> ScriptedNsqd:
        fake = ScriptedNsqd(script)
        fake.server = await asyncio.start_server(fake._handle, "127.0.0.1", 0)
        servers.append(fake)
        return fake

    yield make
    for fake in servers:
        assert fake.server is not None
        fake.server.close()
        await fake.server.wait_closed()


async def test_a_batch_failing_halfway_resumes_without_duplicates(make_server: MakeServer) -> None:
    """When the 2nd MPUB of a batch fails, the retry of the same batch sends only the rest."""
    fake = await make_server([b"OK", b"E_MPUB_FAILED topic exiting"])
    sink = NsqSink.from_spec(parse_sink_url(
        f"nsq://127.0.0.1:{fake.port}/t?max_message_bytes=100&max_body_bytes=108&reconnect_interval_s=0.05"))
    batch = [bytes([i]) * 50 for i in range(4)]  # two per MPUB: 4 + 2 * 54 = 112 > 108, so one each
    async with started(sink):
        with pytest.raises(SinkError) as info:
            await sink.send_many(batch)
        assert info.value.retriable
        await sink.send_many(batch)  # the runner retries the very same list
    sent = [m for _, msgs in fake.commands for m in msgs]
    # First command delivered batch[0]; second (batch[1]) failed; the retry starts at batch[1].
    assert sent == [batch[0], batch[1], batch[1], batch[2], batch[3]]
    assert fake.connections == 2


async def test_bad_message_answer_is_not_retriable(make_server: MakeServer) -> None:
    """E_BAD_MESSAGE (nsqd's own limit is lower than ours) drops the payload instead of looping."""
    fake = await make_server([b"E_BAD_MESSAGE PUB message too big 10 > 5"])
    sink = NsqSink.from_spec(parse_sink_url(f"nsq://127.0.0.1:{fake.port}/t"))
    async with started(sink):
        with pytest.raises(SinkError, match="E_BAD_MESSAGE") as info:
            await sink.send(b"0123456789")
        assert not info.value.retriable


async def test_no_answer_times_out_retriably_and_reconnects(make_server: MakeServer) -> None:
    """A command nsqd never answers fails after timeout_s; the next send uses a new connection."""
    fake = await make_server([None, b"OK"])
    sink = NsqSink.from_spec(parse_sink_url(
        f"nsq://127.0.0.1:{fake.port}/t?timeout_s=0.2&reconnect_interval_s=0.05"))
    async with started(sink):
        with pytest.raises(SinkError, match="not acknowledged") as info:
            await sink.send(b"first")
        assert info.value.retriable
        await sink.send(b"second")
    assert [m for _, msgs in fake.commands for m in msgs] == [b"first", b"second"]
    assert fake.connections == 2
