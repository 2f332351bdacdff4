"""Do-nothing and in-memory sinks: for `--sink null` (benchmarks) and for pipeline tests."""

from __future__ import annotations

import asyncio

from xtcp_async.sinks.base import BaseSink
from xtcp_async.sinks.options import SinkOptions, parse_options
from xtcp_async.sinks.spec import SinkSpec


class NullSink(BaseSink):
    """Accepts every payload and throws it away."""

    scheme = "null"
    default_format = "protobuf-list"

    def __init__(self, buffer_bytes: int = 64 * 1024 * 1024) -> None:
        self.buffer_bytes = buffer_bytes

    @classmethod
    def from_spec(cls, spec: SinkSpec) -> NullSink:
        return cls(parse_options(SinkOptions, spec).buffer_bytes)

    async def send(self, payload: bytes) -> None:
        return None


class MemoryOptions(SinkOptions):
    max_payload_bytes: int | None = None
    delay_s: float = 0.0


class MemorySink(BaseSink):
    """Keeps payloads in a list; ``delay_s`` makes it a slow sink for shutdown tests."""

    scheme = "memory"
    default_format = "protobuf-list"

    def __init__(self, *, max_payload_bytes: int | None = None, delay_s: float = 0.0,
                 buffer_bytes: int = 64 * 1024 * 1024) -> None:
        self.payloads: list[bytes] = []
        self._max = max_payload_bytes
        self.delay_s = delay_s
        self.buffer_bytes = buffer_bytes
        self.closed = False

    @classmethod
    def from_spec(cls, spec: SinkSpec) -> MemorySink:
        o = parse_options(MemoryOptions, spec)
        return cls(max_payload_bytes=o.max_payload_bytes, delay_s=o.delay_s, buffer_bytes=o.buffer_bytes)

    @property
    def max_payload_bytes(self) -> int | None:
        return self._max

    async def send(self, payload: bytes) -> None:
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        self.payloads.append(payload)

    async def close(self) -> None:
        self.closed = True
