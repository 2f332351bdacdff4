"""Shared helpers of the NSQ integration tests (run a sink behind a real SinkRunner)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import time
from collections.abc import AsyncIterator, Callable

from xtcp_async.sinks.nsq import NsqSink
from xtcp_async.sinks.runner import RunnerSettings, SinkRunner
from xtcp_async.sinks.spec import parse_sink_url


def make_sink(address: str, topic: str, **options: str) -> NsqSink:
    query = "&".join(f"{k}={v}" for k, v in options.items())
    return NsqSink.from_spec(parse_sink_url(f"nsq://{address}/{topic}" + (f"?{query}" if query else "")))


def payloads(count: int, min_size: int = 1, max_size: int = 4000, seed: int = 1) -> list[bytes]:
    """Distinct random payloads (each starts with its index, so duplicates are visible)."""
    rng = random.Random(seed)
    return [i.to_bytes(4, "big") + rng.randbytes(rng.randint(min_size, max_size)) for i in range(count)]


@contextlib.asynccontextmanager
async def running(sink: NsqSink) -> AsyncIterator[SinkRunner]:
    """The sink started behind a SinkRunner with short retry delays; stopped (and closed) after."""
    runner = SinkRunner("nsq", sink, RunnerSettings(buffer_bytes=sink.buffer_bytes,
                                                   retry_initial_s=0.05, retry_max_s=0.5))
    await sink.start()
    async with asyncio.TaskGroup() as group:
        runner.start(group)
        try:
            yield runner
        finally:
            await runner.stop()


async def wait_until(predicate: Callable[[], bool], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s}s waiting for {what}")
        await asyncio.sleep(0.02)


def open_fds() -> set[str]:
    """This process's open file descriptors, with what they point to."""
    fds = set()
    for name in os.listdir("/proc/self/fd"):
        with contextlib.suppress(OSError):
            fds.add(f"{name}->{os.readlink(f'/proc/self/fd/{name}')}")
    return fds


def socket_fds() -> set[str]:
    return {fd for fd in open_fds() if "socket:" in fd}
