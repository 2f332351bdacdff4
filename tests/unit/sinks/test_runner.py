"""SinkRunner: bounded, ordered, retrying, and every drop counted."""

from __future__ import annotations

import asyncio

from xtcp_async.errors import SinkError
from xtcp_async.sinks.base import BaseSink
from xtcp_async.sinks.memory import MemorySink
from xtcp_async.sinks.runner import RunnerSettings, SinkRunner


class FlakySink(BaseSink):
    """Fails its first ``failures`` sends (retriable), then delivers."""

    def __init__(self, failures: int, retriable: bool = True) -> None:
        self.failures = failures
        self.retriable = retriable
        self.got: list[bytes] = []

    async def send(self, payload: bytes) -> None:
        if self.failures:
            self.failures -= 1
            raise SinkError("down", retriable=self.retriable)
        self.got.append(payload)


async def test_payloads_delivered_in_order_after_retries() -> None:
    """A sink that fails twice still receives every payload once, in order."""
    sink = FlakySink(2)
    runner = SinkRunner("t", sink, RunnerSettings(retry_initial_s=0.001))
    async with asyncio.TaskGroup() as tg:
        runner.start(tg)
        for i in range(5):
            runner.put(b"p%d" % i)
        assert await runner.drain(5)
        await runner.stop()
    assert sink.got == [b"p0", b"p1", b"p2", b"p3", b"p4"]
    assert runner.stats.delivery_errors == 2 and runner.stats.payloads_delivered == 5


async def test_full_buffer_drops_oldest_and_counts() -> None:
    """Over buffer_bytes the oldest queued payloads go first, each counted as buffer_full."""
    runner = SinkRunner("t", MemorySink(), RunnerSettings(buffer_bytes=30))
    for i in range(5):
        runner.put(bytes([i]) * 10)
    assert runner.buffered_payloads == 3 and runner.buffered_bytes == 30
    assert runner.stats.dropped == {"buffer_full": 2}
    async with asyncio.TaskGroup() as tg:
        runner.start(tg)
        await runner.drain(5)
        await runner.stop()
    assert isinstance(runner.sink, MemorySink)
    assert runner.sink.payloads == [bytes([i]) * 10 for i in (2, 3, 4)]


async def test_non_retriable_error_drops_that_payload_only() -> None:
    """A rejected payload is counted and the next one is still delivered."""
    sink = FlakySink(1, retriable=False)
    runner = SinkRunner("t", sink)
    async with asyncio.TaskGroup() as tg:
        runner.start(tg)
        runner.put(b"a")
        runner.put(b"b")
        await runner.drain(5)
        await runner.stop()
    assert sink.got == [b"b"] and runner.stats.dropped == {"rejected": 1}


async def test_stop_counts_undelivered_and_closes_sink() -> None:
    """What a dead sink still holds at stop is counted as dropped for shutdown, and the sink is closed."""
    sink = MemorySink(delay_s=10)
    runner = SinkRunner("t", sink)
    async with asyncio.TaskGroup() as tg:
        runner.start(tg)
        for _ in range(3):
            runner.put(b"x")
        assert not await runner.drain(0.05)
        assert await runner.stop() == 3
        assert await runner.stop() == 0  # idempotent
    assert runner.stats.dropped == {"shutdown": 3} and sink.closed


async def test_payload_in_flight_is_not_dropped_by_overflow() -> None:
    """A payload being sent stays counted and is not removed by a later overflow."""
    sink = MemorySink(delay_s=0.05)
    runner = SinkRunner("t", sink, RunnerSettings(buffer_bytes=20))
    async with asyncio.TaskGroup() as tg:
        runner.start(tg)
        runner.put(b"a" * 10)
        await asyncio.sleep(0.01)  # now in flight
        runner.put(b"b" * 10)
        runner.put(b"c" * 10)  # overflow: drops b, not the in-flight a
        await runner.drain(5)
        await runner.stop()
    assert sink.payloads == [b"a" * 10, b"c" * 10]
    assert runner.stats.dropped == {"buffer_full": 1}


async def test_put_wait_gives_backpressure_before_dropping() -> None:
    """A full buffer makes put_wait wait for room; only past its deadline is the oldest dropped."""
    sink = MemorySink(delay_s=0.02)
    runner = SinkRunner("t", sink, RunnerSettings(buffer_bytes=20))
    async with asyncio.TaskGroup() as tg:
        runner.start(tg)
        for i in range(10):
            await runner.put_wait(bytes([i]) * 10, timeout_s=5)
        await runner.drain(5)
        await runner.stop()
    assert sink.payloads == [bytes([i]) * 10 for i in range(10)]
    assert runner.stats.dropped == {}
    stuck = SinkRunner("s", MemorySink(), RunnerSettings(buffer_bytes=20))  # never started: never drains
    for i in range(3):
        await stuck.put_wait(bytes([i]) * 10, timeout_s=0.05)
    assert stuck.stats.dropped == {"buffer_full": 1}
