"""Helpers shared by the broker sink tests: distinct payloads, a sink behind a real runner."""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

from xtcp_async.sinks.base import Sink
from xtcp_async.sinks.runner import RunnerSettings, SinkRunner


def payloads(count: int, min_size: int = 1, max_size: int = 4000, seed: int = 1) -> list[bytes]:
    """Distinct random payloads (each starts with its index, so order and duplicates show)."""
    rng = random.Random(seed)
    return [i.to_bytes(4, "big") + rng.randbytes(rng.randint(min_size, max_size)) for i in range(count)]


def index_of(payload: bytes) -> int:
    return int.from_bytes(payload[:4], "big")


@contextlib.asynccontextmanager
async def started(sink: Sink) -> AsyncIterator[Sink]:
    """The sink started, and closed after whatever the block does (a failing assertion too)."""
    await sink.start()
    try:
        yield sink
    finally:
        await sink.close()


@contextlib.asynccontextmanager
async def running(sink: Sink, **settings: Any) -> AsyncIterator[SinkRunner]:
    """The sink started behind a SinkRunner with short retry delays; stopped (and the sink
    closed) after."""
    runner = SinkRunner(type(sink).scheme, sink, RunnerSettings(
        buffer_bytes=int(sink.buffer_bytes), retry_initial_s=0.05, retry_max_s=0.5, **settings))
    await sink.start()
    async with asyncio.TaskGroup() as group:
        runner.start(group)
        try:
            yield runner
        finally:
            await runner.stop()


async def wait_until(predicate: Callable[[], bool], timeout_s: float, what: str) -> None:
    """Poll ``predicate`` until true; fail the test after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s}s waiting for {what}")
        await asyncio.sleep(0.02)
