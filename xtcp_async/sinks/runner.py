"""SinkRunner: the bounded, ordered, retrying buffer in front of one sink.

Why here and not in each sink: every sink needs the same promise — polling never waits on a
slow or dead sink, memory stays within ``buffer_bytes``, payloads go out in order, and every
payload that is given up is counted with a reason. Keeping that in one place means a sink's
``send`` only has to deliver and tell the truth.

Backpressure without stalls: :meth:`SinkRunner.offer` never blocks the caller. When the buffer is
full, a payload waits in a *line* behind it for room, spending its poll's wait budget (one budget
per poll, shared by all of that poll's payloads, shrinking while any of them waits, as aiokafka's
accumulator does). When the budget is spent the line is pushed into the buffer, which drops its
oldest payloads (``buffer_full``). So a sink that is merely slower than the encoder loses nothing,
a dead one loses its oldest data after one budget, and neither holds up the encoder, any other
sink, or the next poll. The line is bounded by ``buffer_bytes`` too: a runner holds at most twice
``buffer_bytes`` of payloads.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import time
from dataclasses import dataclass

from xtcp_async.errors import ConfigError, SinkError
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
    #: Seconds a poll's payloads may wait, in total, for room in a full buffer before the oldest
    #: are dropped (the service sets it to the poll interval).
    wait_budget_s: float = 10.0
    #: How long :meth:`SinkRunner.stop` gives the sink's ``start``/``close`` at most.
    start_timeout_s: float = 5.0
    close_timeout_s: float = 1.0


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
        self._closing = False
        self._task: asyncio.Task[None] | None = None
        self._unlogged_drops = 0
        self._last_drop_log = 0.0
        self._last_error: str | None = None
        # The wait line: (poll id, payload) in order, behind the buffer.
        self._line: collections.deque[tuple[int, bytes]] = collections.deque()
        self._line_bytes = 0
        #: Seconds of waiting left per poll id (absent: the whole budget).
        self._budget: dict[int, float] = {}
        #: The poll whose payload heads the line, and since when it waits (loop time).
        self._waiting: tuple[int, float] | None = None
        self._timer: asyncio.TimerHandle | None = None

    # -- producer side (never blocks) ---------------------------------------------------------

    @property
    def buffered_bytes(self) -> int:
        return self._buffered_bytes

    @property
    def buffered_payloads(self) -> int:
        """Payloads held: buffered, being sent, or waiting in line for room."""
        return len(self._buffer) + len(self._inflight) + len(self._line)

    @property
    def waiting_bytes(self) -> int:
        """Bytes of payloads waiting in line for room in the buffer."""
        return self._line_bytes

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

    def offer(self, payload: bytes, poll_id: int) -> None:
        """Hand over one payload of poll ``poll_id``; never blocks.

        It goes into the buffer when there is room (or its poll's wait budget is spent: then the
        oldest buffered payloads are dropped), else it waits in line behind the buffer.
        """
        size = len(payload)
        if size > self.settings.buffer_bytes:
            self._count_drop("too_large_for_buffer", 1)
            return
        if not self._line and (self.has_room(size) or self._budget_left(poll_id) <= 0):
            self.put(payload)
            return
        self._line.append((poll_id, payload))
        self._line_bytes += size
        self._idle.clear()
        # The line is bounded like the buffer: past it, its oldest go in now (dropping older).
        while self._line_bytes > self.settings.buffer_bytes:
            self._admit_head()
        self._admit()

    def _budget_left(self, poll_id: int) -> float:
        left = self._budget.get(poll_id, self.settings.wait_budget_s)
        if self._waiting is not None and self._waiting[0] == poll_id:
            left -= asyncio.get_running_loop().time() - self._waiting[1]
        return left

    def _admit_head(self) -> None:
        _, payload = self._line.popleft()
        self._line_bytes -= len(payload)
        self.put(payload)

    def _admit(self) -> None:
        """Move payloads from the line into the buffer: those that fit, and those whose poll has
        no budget left; then restart the waiting clock for the new head."""
        while self._line:
            poll_id, payload = self._line[0]
            if not (self.has_room(len(payload)) or self._budget_left(poll_id) <= 0):
                break
            self._admit_head()
        self._rearm()

    def _rearm(self) -> None:
        loop = asyncio.get_running_loop()
        now = loop.time()
        head = self._line[0][0] if self._line else None
        if self._waiting is not None and self._waiting[0] != head:
            # The clock stops for a poll whose payloads no longer head the line.
            poll_id, since = self._waiting
            self._budget[poll_id] = self._budget.get(poll_id, self.settings.wait_budget_s) - (now - since)
            self._waiting = None
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if head is None:
            return
        if self._waiting is None:
            self._waiting = (head, now)
            # Budgets of polls long past are never needed again.
            for old in [p for p in self._budget if p < head - 2]:
                del self._budget[old]
        self._timer = loop.call_later(max(self._budget_left(head), 0.0), self._admit)

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
        await self._start_sink()
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
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self.stats.delivery_errors += 1
                if not isinstance(exc, SinkError):
                    # A sink bug or an untranslated library error: never the service's end.
                    # Treated as retriable, so nothing is lost beyond what the buffer bound drops.
                    self._last_error = f"{type(exc).__name__}: {exc}"
                    log.error("sink %s: send failed unexpectedly, retrying in %.1fs: %s", self.name, delay,
                              self._last_error,
                              extra=rate_limited(f"sink:{self.name}:crash", self.settings.drop_log_interval_s))
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, self.settings.retry_max_s)
                    continue
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

    async def _start_sink(self) -> None:
        """Start the sink, bounded in time; a failure is logged and the sink retries on send.

        Started here, in the runner's own task, so a broker that is slow to answer delays only
        its own payloads, never polling or the other sinks.
        """
        try:
            async with asyncio.timeout(self.settings.start_timeout_s):
                await self.sink.start()
        except (asyncio.CancelledError, ConfigError):
            raise  # a configuration problem found on start-up ends the service (exit 2)
        except Exception as exc:
            log.warning("sink %s: start failed, will retry on send: %s", self.name,
                        exc if str(exc) else type(exc).__name__)

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
        if self._line:
            self._admit()

    def start(self, group: asyncio.TaskGroup) -> None:
        self._task = group.create_task(self.run(), name=f"sink-runner:{self.name}")

    async def drain(self, timeout_s: float) -> bool:
        """Wait until everything held was delivered, at most ``timeout_s``; True if empty."""
        self._closing = True
        self._wakeup.set()
        if self._idle.is_set():
            return True
        try:
            async with asyncio.timeout(max(timeout_s, 0.0)):
                await self._idle.wait()
        except TimeoutError:
            return False
        return True

    async def stop(self, close_timeout_s: float | None = None) -> int:
        """Stop the delivery task, count what is left as dropped (reason ``shutdown``),
        close the sink within ``close_timeout_s``. Idempotent; returns how many payloads were
        dropped here. Survives the cancellation of its caller's task."""
        self._closing = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._task is not None and not self._task.done():
            self._task.cancel()
            # The task may already be gone, or stuck in a send that ignores cancellation: wait
            # for it only as long as the close may take.
            await asyncio.wait([self._task], timeout=min(0.2, self.settings.close_timeout_s))
        left = self.buffered_payloads
        if left:
            self._buffer.clear()
            self._inflight = []
            self._line.clear()
            self._buffered_bytes = 0
            self._line_bytes = 0
            self.stats.drop("shutdown", left)
            log.error("sink %s: %d payload(s) could not be delivered before shutdown", self.name, left)
        limit = self.settings.close_timeout_s if close_timeout_s is None else close_timeout_s
        try:
            async with asyncio.timeout(max(limit, 0.0)):
                await self.sink.close()
        except TimeoutError:
            log.warning("sink %s: close did not finish within %.1fs", self.name, limit)
        except Exception as exc:  # closing a broken client must not hide the exit report
            log.warning("sink %s: close failed: %s: %s", self.name, type(exc).__name__, exc)
        return left
