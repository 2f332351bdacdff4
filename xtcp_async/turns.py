"""Turns for the CPU-heavy steps of the pipeline's tasks (decode, encode, pack), one per loop iteration."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator

from xtcp_async.stats import Stats


class CpuTurns:
    """Lets the decoder and encoder take turns: at most one CPU-heavy step per loop iteration.

    Each step (decode ~1 MiB, encode one slice, join a batch) is a few ms; two tasks each doing
    one back to back in the same iteration would double the stall every timer and socket
    waits. A fair lock hands the next turn to the other task on the *next* iteration.
    """

    def __init__(self, stats: Stats | None = None) -> None:
        self._lock = asyncio.Lock()
        self._stats = stats

    @contextlib.asynccontextmanager
    async def turn(self) -> AsyncIterator[None]:
        async with self._lock:
            t0, cpu0 = time.perf_counter(), time.thread_time()
            yield
            if self._stats is not None:
                # The longest single step, whose it was, and its CPU time: a wall time far above
                # the CPU time is the OS running someone else, not this step holding the loop.
                took, cpu = time.perf_counter() - t0, time.thread_time() - cpu0
                if took > self._stats.max_turn_s:
                    task = asyncio.current_task()
                    self._stats.max_turn_s = took
                    self._stats.max_turn_task = task.get_name() if task is not None else "?"
                self._stats.max_turn_cpu_s = max(self._stats.max_turn_cpu_s, cpu)
            # Keep the turn over one loop iteration: timers and callbacks that came due during
            # this step run before the other task's wake-up is even queued...
            await asyncio.sleep(0)
        # ...and before this task's own next step.
        await asyncio.sleep(0)


__all__ = ["CpuTurns"]
