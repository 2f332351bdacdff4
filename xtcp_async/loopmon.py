"""Measures event-loop stalls: how late a short periodic sleep wakes up."""

from __future__ import annotations

import asyncio
import gc
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from xtcp_async.stats import Stats


@contextmanager
def gc_pauses(stats: Stats) -> Iterator[None]:
    """Record the longest garbage-collector pass while inside (a suspect for loop stalls)."""
    started: list[float] = []

    def on_gc(phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            started[:] = [time.perf_counter()]
        elif started:
            took = time.perf_counter() - started[0]
            if took > stats.max_gc_pause_s:
                stats.max_gc_pause_s = took
                stats.max_gc_generation = int(info.get("generation", -1))

    callback: Callable[[str, dict[str, Any]], None] = on_gc
    gc.callbacks.append(callback)
    try:
        yield
    finally:
        gc.callbacks.remove(callback)


async def monitor_loop(stats: Stats, period_s: float = 0.005, idle_period_s: float | None = None) -> None:
    """Record the longest time the loop failed to run this task past its wake-up time.

    ``idle_period_s``: the period while no dump is read (default: ``period_s``). Waking every
    5 ms costs ~25 ms of CPU per second (measured, issue 13): between polls that was most of a
    small host's cost per poll, for stalls nobody waits on. A dump that starts during a longer
    sleep is still measured: the late wake-up is a stall of the loop like any other.
    """
    while True:
        period = period_s if stats.dumping or idle_period_s is None else idle_period_s
        t0 = time.perf_counter()
        cpu0 = time.process_time()
        await asyncio.sleep(period)
        late = time.perf_counter() - t0 - period
        if late > stats.max_loop_stall_s:
            stats.max_loop_stall_s = late
            stats.max_loop_stall_cpu_share = (time.process_time() - cpu0) / (late + period)
        # Stalls while a dump is read are the ones that delay the kernel and the sinks; start-up
        # (imports, connecting sinks) is reported separately through max_loop_stall_s.
        if stats.dumping and late > stats.max_dump_stall_s:
            stats.max_dump_stall_s = late
            # On a shared machine a stall can be the OS running someone else: this process's CPU
            # over the same span (sleep period + stall) tells that apart from our code holding the loop.
            stats.max_dump_stall_cpu_share = (time.process_time() - cpu0) / (late + period)
