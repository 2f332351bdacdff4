"""SinkRunner: the bounded, ordered, retrying buffer in front of one sink.

Why here and not in each sink: every sink needs the same promise — polling never waits on a
slow or dead sink, memory stays within ``buffer_bytes``, payloads go out in order, and every
payload that is given up is counted with a reason. Keeping that in one place means a sink's
``send`` only has to deliver and tell the truth.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import time
from dataclasses import dataclass

from xtcp_async.errors import SinkError
from xtcp_async.ops.ratelimit import rate_limited
from xtcp_async.sinks.base import Sink, SinkStats

log = logging.getLogger(__name__)

DEFAULT_BUFFER_BYTES = 64 * 1024 * 1024


@dataclass(frozen=True)
class RunnerSettings:
    """Buffering and retry policy of one runner."""

    buffer_bytes: int = DEFAULT_BUFFER_BYTES
    retry_initial_s: float = 0.1
    retry_max_s: float = 5.0
    #: At most one "dropped" log line per this many seconds (the count is in the line).
    drop_log_interval_s: float = 10.0


class SinkRunner:
    """Owns one sink's buffer and the task that drains it into the sink."""

    def __init__(self, name: str, sink: Sink, settings: RunnerSettings | None = None) -> None:
        self.name = name
        self.sink = sink
        self.settings = settings or RunnerSettings()
        self.stats = SinkStats()
        self._buffer: collections.deque[bytes] = collections.deque()
        self._inflight: list[bytes] = []
        self._buffered_bytes = 0
        self._wakeup = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self._space = asyncio.Event()
        self._closing = False
        self._task: asyncio.Task[None] | None = None
        self._unlogged_drops = 0
        self._last_drop_log = 0.0
        self._last_error: str | None = None

    # -- producer side (never blocks) ---------------------------------------------------------

    @property
    def buffered_bytes(self) -> int:
        return self._buffered_bytes

    @property
    def buffered_payloads(self) -> int:
        return len(self._buffer) + len(self._inflight)

    @property
    def last_error(self) -> str | None:
        """The last delivery error, cleared by the next success (for /readyz)."""
        return self._last_error

    def put(self, payload: bytes) -> None:
        """Queue one payload; if the buffer would overflow, the oldest payloads are dropped."""
        size = len(payload)
        if size > self.settings.buffer_bytes:
            self._count_drop("too_large_for_buffer", 1)
            return
        while self._buffered_bytes + size > self.settings.buffer_bytes and self._buffer:
            old = self._buffer.popleft()
            self._buffered_bytes -= len(old)
            self._count_drop("buffer_full", 1)
        self._buffer.append(payload)
        self._buffered_bytes += size
        self._idle.clear()
        self._wakeup.set()

    def has_room(self, size: int) -> bool:
        """Whether ``size`` more bytes fit without dropping anything."""
        return self._buffered_bytes + size <= self.settings.buffer_bytes or not self._buffer

    async def put_wait(self, payload: bytes, timeout_s: float) -> None:
        """Queue one payload, waiting up to ``timeout_s`` for room before dropping the oldest.

        A sink that is merely slower than the encoder (a file, a busy broker) then gets
        backpressure instead of losses; one that stays full past the deadline still cannot hold
        polling up for longer than that.
        """
        deadline = asyncio.get_running_loop().time() + timeout_s
        while not self.has_room(len(payload)) and len(payload) <= self.settings.buffer_bytes:
            remaining = deadline - asyncio.get_running_loop().time()
            if remaining <= 0:
                break
            self._space.clear()
            try:
                await asyncio.wait_for(self._space.wait(), remaining)
            except TimeoutError:
                break
        self.put(payload)

    def _count_drop(self, reason: str, count: int) -> None:
        self.stats.drop(reason, count)
        self._unlogged_drops += count
        now = time.monotonic()
        if now - self._last_drop_log >= self.settings.drop_log_interval_s:
            log.warning("sink %s: dropped %d payload(s) (%s; totals %s)", self.name,
                        self._unlogged_drops, reason, self.stats.dropped)
            self._unlogged_drops = 0
            self._last_drop_log = now

    # -- consumer side ------------------------------------------------------------------------

    async def run(self) -> None:
        """Deliver buffered payloads until :meth:`drain`/:meth:`stop` (run as a task).

        Payloads being sent leave the deque for ``_inflight`` (their bytes still count against
        the buffer), so a drop-oldest in :meth:`put` never removes what is on the wire, and a
        retried payload keeps its place at the head of the order.
        """
        delay = self.settings.retry_initial_s
        while True:
            if not self._inflight:
                if not self._buffer:
                    self._idle.set()
                    if self._closing:
                        return
                    self._wakeup.clear()
                    await self._wakeup.wait()
                    continue
                self._inflight = self._take_batch()
            batch = self._inflight
            try:
                if len(batch) == 1:
                    await self.sink.send(batch[0])
                else:
                    await self.sink.send_many(batch)
            except SinkError as exc:
                self.stats.delivery_errors += 1
                self._last_error = str(exc)
                if not exc.retriable:
                    self._finish_inflight()
                    self._count_drop("rejected", len(batch))
                    log.error("sink %s: payload rejected: %s", self.name, exc)
                    continue
                log.warning("sink %s: delivery failed, retrying in %.1fs: %s", self.name, delay, exc,
                            extra=rate_limited(f"sink:{self.name}:retry", self.settings.drop_log_interval_s))
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.settings.retry_max_s)
                continue
            delay = self.settings.retry_initial_s
            self._last_error = None
            self._finish_inflight()
            self.stats.payloads_delivered += len(batch)
            self.stats.bytes_delivered += sum(len(p) for p in batch)

    def _take_batch(self) -> list[bytes]:
        """The next payloads to send together: up to ``max_send_many``, but a payload over the
        sink's cap always goes alone, so its rejection is counted against it and nothing else."""
        first = self._buffer.popleft()
        cap = self.sink.max_payload_bytes
        batch = [first]
        if cap is not None and len(first) > cap:
            return batch
        limit = self.sink.max_send_many
        while self._buffer and len(batch) < limit and (cap is None or len(self._buffer[0]) <= cap):
            batch.append(self._buffer.popleft())
        return batch

    def _finish_inflight(self) -> None:
        self._buffered_bytes -= sum(len(p) for p in self._inflight)
        self._inflight = []
        self._space.set()

    def start(self, group: asyncio.TaskGroup) -> None:
        self._task = group.create_task(self.run(), name=f"sink-runner:{self.name}")

    async def drain(self, timeout_s: float) -> bool:
        """Wait until everything buffered was delivered, at most ``timeout_s``; True if empty."""
        self._closing = True
        self._wakeup.set()
        try:
            await asyncio.wait_for(self._idle.wait(), timeout_s)
        except TimeoutError:
            return False
        return True

    async def stop(self) -> int:
        """Stop the delivery task, count what is left as dropped (reason ``shutdown``),
        close the sink. Idempotent; returns how many payloads were dropped here."""
        self._closing = True
        if self._task is not None and not self._task.done():
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        left = self.buffered_payloads
        if left:
            self._buffer.clear()
            self._inflight = []
            self._buffered_bytes = 0
            self.stats.drop("shutdown", left)
            log.error("sink %s: %d payload(s) could not be delivered before shutdown", self.name, left)
        await self.sink.close()
        return left
