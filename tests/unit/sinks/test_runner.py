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


class StuckSink(BaseSink):
    """Accepts a send and never returns from it: a broker that stopped answering."""

    def __init__(self) -> None:
        self.sends = 0
        self.closed = False

    async def send(self, payload: bytes) -> None:
        self.sends += 1
        await asyncio.Event().wait()

    async def close(self) -> None:
        self.closed = True


async def test_offer_gives_a_slow_sink_backpressure_before_dropping() -> None:
    """A full buffer makes a payload wait in line (offer never blocks); a sink that keeps up within the
    budget loses nothing, and order holds."""
    sink = MemorySink(delay_s=0.02)
    # 10 payloads of 10 bytes: 50 buffered or in flight, 50 waiting (the line holds up to buffer_bytes).
    runner = SinkRunner("t", sink, RunnerSettings(buffer_bytes=50, wait_budget_s=5))
    async with asyncio.TaskGroup() as tg:
        runner.start(tg)
        t0 = asyncio.get_running_loop().time()
        for i in range(10):
            runner.offer(bytes([i]) * 10, poll_id=1)
        assert asyncio.get_running_loop().time() - t0 < 0.01
        assert runner.waiting_bytes > 0
        assert await runner.drain(5)
        await runner.stop()
    assert sink.payloads == [bytes([i]) * 10 for i in range(10)]
    assert runner.stats.dropped == {}


async def test_dead_sink_drops_oldest_once_the_polls_budget_is_spent() -> None:
    """With the sink stuck, a poll's payloads wait one budget in all, then the oldest are dropped and counted."""
    sink = StuckSink()
    runner = SinkRunner("t", sink, RunnerSettings(buffer_bytes=30, wait_budget_s=0.2))
    async with asyncio.TaskGroup() as tg:
        runner.start(tg)
        for i in range(6):
            runner.offer(bytes([i]) * 10, poll_id=1)
        await asyncio.sleep(0.1)
        assert runner.stats.dropped == {}  # still within the budget
        await asyncio.sleep(0.2)
        # 10 bytes in flight + 20 buffered = 30: of 6 payloads, 3 were dropped (the oldest queued).
        assert runner.stats.dropped == {"buffer_full": 3}
        assert runner.waiting_bytes == 0
        # The budget of poll 1 is spent: a late payload of it goes in at once, dropping the oldest.
        runner.offer(b"x" * 10, poll_id=1)
        assert runner.stats.dropped == {"buffer_full": 4}
        # A new poll gets a budget of its own: it waits again.
        runner.offer(b"y" * 10, poll_id=2)
        assert runner.stats.dropped == {"buffer_full": 4} and runner.waiting_bytes == 10
        left = await runner.stop()
    assert left == 4 and runner.stats.dropped == {"buffer_full": 4, "shutdown": 4}
    assert sink.closed


async def test_budget_is_shared_by_a_polls_payloads_and_shrinks_as_spent() -> None:
    """Time a poll's payloads already waited is taken off the rest of that poll's budget."""
    runner = SinkRunner("s", MemorySink(), RunnerSettings(buffer_bytes=10, wait_budget_s=0.3))  # never drains
    runner.offer(b"a" * 10, poll_id=1)
    runner.offer(b"b" * 10, poll_id=1)  # waits
    await asyncio.sleep(0.2)
    assert runner.stats.dropped == {}
    await asyncio.sleep(0.15)
    assert runner.stats.dropped == {"buffer_full": 1}  # a dropped after 0.3 s, not 0.3 s per payload
    runner.offer(b"c" * 10, poll_id=1)
    assert runner.stats.dropped == {"buffer_full": 2}
    await runner.stop()


async def test_wait_line_is_bounded() -> None:
    """Payloads waiting in line never exceed buffer_bytes: past it the oldest go in (dropping older)."""
    runner = SinkRunner("s", MemorySink(), RunnerSettings(buffer_bytes=20, wait_budget_s=60))  # never drains
    for i in range(10):
        runner.offer(bytes([i]) * 10, poll_id=1)
    assert runner.buffered_bytes <= 20 and runner.waiting_bytes <= 20
    assert runner.stats.dropped == {"buffer_full": 6}
    assert runner.buffered_payloads == 4
    await runner.stop()


class CrashingSink(BaseSink):
    """Raises something that is not a SinkError on its first sends (a bug, an untranslated error)."""

    def __init__(self, crashes: int) -> None:
        self.crashes = crashes
        self.got: list[bytes] = []

    async def send(self, payload: bytes) -> None:
        if self.crashes:
            self.crashes -= 1
            raise FileNotFoundError("auth_secret_file vanished")
        self.got.append(payload)


async def test_sink_raising_a_non_sink_error_is_retried_not_fatal() -> None:
    """An unexpected exception from send neither ends the runner nor loses the payload."""
    sink = CrashingSink(2)
    runner = SinkRunner("t", sink, RunnerSettings(retry_initial_s=0.001))
    async with asyncio.TaskGroup() as tg:
        runner.start(tg)
        runner.put(b"p")
        assert await runner.drain(5)
        assert runner.last_error is None
        await runner.stop()
    assert sink.got == [b"p"] and runner.stats.delivery_errors == 2


class HangingCloseSink(StuckSink):
    """A client whose close never finishes."""

    async def close(self) -> None:
        await asyncio.Event().wait()


async def test_stop_is_bounded_with_a_stuck_send_and_a_hanging_close() -> None:
    """stop() returns within its bound even when send and close never finish, counting what was held."""
    runner = SinkRunner("t", HangingCloseSink(), RunnerSettings(close_timeout_s=0.2))
    async with asyncio.TaskGroup() as tg:
        runner.start(tg)
        runner.put(b"a")
        runner.put(b"b")
        await asyncio.sleep(0.05)
        t0 = asyncio.get_running_loop().time()
        assert await runner.stop() == 2
        assert asyncio.get_running_loop().time() - t0 < 0.6
    assert runner.stats.dropped == {"shutdown": 2}
