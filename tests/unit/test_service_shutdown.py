"""Shutdown and cancellation with slow and failing sinks: nothing is lost silently.

The service polls a recorded dump (tests/support/replay.py), so the socket count is known and the
host's own load (other suites holding 100k+ sockets) does not change what is tested.
"""

from __future__ import annotations

import asyncio
import signal
import time

from tests.support.replay import recorded_source
from xtcp_async.config import Config, SinkConfig, load_config
from xtcp_async.errors import SinkError
from xtcp_async.service import Service
from xtcp_async.sinks import Sink, parse_sink_url
from xtcp_async.sinks.base import BaseSink
from xtcp_async.sinks.memory import MemorySink


class DeadSink(BaseSink):
    """Never delivers: every send fails as retriable."""

    def __init__(self) -> None:
        self.attempts = 0
        self.closed = False

    async def send(self, payload: bytes) -> None:
        self.attempts += 1
        raise SinkError("broker down", retriable=True)

    async def close(self) -> None:
        self.closed = True


def _cfg(**flags: object) -> Config:
    base: dict[str, object] = {"metrics_listen": "", "max_batch_rows": 5, "interval": 0.3, "poll_timeout": 0.2}
    base.update(flags)
    return load_config(base)


def _with(cfg: Config, *sinks: Sink) -> list[tuple[SinkConfig, Sink]]:
    return [(SinkConfig(parse_sink_url("memory://"), "protobuf-list"), s) for s in sinks]


async def test_slow_sink_does_not_stall_a_fast_one() -> None:
    """With one slow and one fast sink, the fast one has every payload long before the slow one."""
    cfg = _cfg(count=1, shutdown_grace=0.1)
    fast, slow = MemorySink(), MemorySink(delay_s=5)
    service = Service(cfg, _with(cfg, fast, slow), recorded_source())
    t0 = time.monotonic()
    result = await service.run()
    assert time.monotonic() - t0 < 3
    assert fast.payloads and len(fast.payloads) == service.runners[0].stats.payloads_delivered
    # The slow sink's payloads were reported, not silently lost.
    slow_stats = service.runners[1].stats
    assert slow_stats.payloads_delivered + slow_stats.dropped.get("shutdown", 0) == len(fast.payloads)
    assert result.undelivered == slow_stats.dropped["shutdown"]


async def test_dead_sink_is_retried_then_reported_at_shutdown() -> None:
    """A sink that never delivers is retried within the grace period, then every payload is counted dropped."""
    cfg = _cfg(count=1, shutdown_grace=0.3)
    dead = DeadSink()
    service = Service(cfg, _with(cfg, dead), recorded_source())
    result = await service.run()
    assert dead.attempts >= 2 and dead.closed
    assert result.undelivered == service.stats.payloads_encoded > 0
    assert service.runners[0].stats.dropped == {"shutdown": result.undelivered}


async def test_first_signal_stops_polling_and_flushes() -> None:
    """SIGTERM during an endless run finishes the current poll, delivers it, and ends cleanly."""
    cfg = _cfg(shutdown_grace=5, max_batch_rows=1000)
    sink = MemorySink(delay_s=0.01)
    service = Service(cfg, _with(cfg, sink), recorded_source())
    task = asyncio.create_task(service.run())
    while service.stats.polls < 2:
        await asyncio.sleep(0.05)
    service.on_signal(signal.SIGTERM)
    result = await asyncio.wait_for(task, 5)
    assert result.interrupted and result.undelivered == 0
    assert len(sink.payloads) == service.stats.payloads_encoded
    assert sink.closed


async def test_second_signal_exits_at_once() -> None:
    """A second SIGTERM cancels a shutdown that waits on a stuck sink, and still counts what was held."""
    cfg = _cfg(shutdown_grace=30)
    dead = DeadSink()
    service = Service(cfg, _with(cfg, dead), recorded_source())
    task = asyncio.create_task(service.run())
    while service.stats.payloads_encoded == 0:
        await asyncio.sleep(0.05)
    service.on_signal(signal.SIGTERM)
    await asyncio.sleep(0.5)
    t0 = time.monotonic()
    service.on_signal(signal.SIGTERM)
    result = await asyncio.wait_for(task, 5)
    assert time.monotonic() - t0 < 2
    assert result.interrupted and result.undelivered > 0 and dead.closed
