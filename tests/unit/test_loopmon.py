"""The loop monitor records the longest stall during a dump, and how much of it was our own CPU."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import pytest

from xtcp_async.loopmon import monitor_loop
from xtcp_async.stats import Stats


async def _stall_once(stats: Stats, hold: Callable[[], None]) -> None:
    task = asyncio.create_task(monitor_loop(stats, period_s=0.001))
    await asyncio.sleep(0.01)  # the monitor is sleeping on its first period now
    stats.dumping = True
    hold()
    await asyncio.sleep(0.01)  # let the monitor wake up late and record it
    task.cancel()


def _off_cpu(seconds: float) -> None:
    """Hold the loop without using CPU: what being descheduled by the OS looks like from inside."""
    time.sleep(seconds)


def _spin_cpu(seconds: float) -> None:
    t = time.process_time()
    while time.process_time() - t < seconds:
        pass


async def test_a_stall_spent_on_our_cpu_shows_that_cpu() -> None:
    stats = Stats()
    await _stall_once(stats, lambda: _spin_cpu(0.06))
    assert stats.max_dump_stall_s >= 0.05
    assert stats.max_dump_stall_cpu_share > 0.6


async def test_a_stall_while_the_process_is_off_cpu_shows_little_cpu() -> None:
    stats = Stats()
    await _stall_once(stats, lambda: _off_cpu(0.06))
    assert stats.max_dump_stall_s >= 0.05
    assert stats.max_dump_stall_cpu_share < 0.3


async def test_stalls_outside_a_dump_count_only_as_loop_stalls() -> None:
    stats = Stats()
    task = asyncio.create_task(monitor_loop(stats, period_s=0.001))
    await asyncio.sleep(0.01)
    _off_cpu(0.03)
    await asyncio.sleep(0.01)
    task.cancel()
    assert stats.max_loop_stall_s >= 0.02
    assert stats.max_dump_stall_s == 0.0


async def test_between_dumps_the_monitor_wakes_at_its_idle_period(monkeypatch: pytest.MonkeyPatch) -> None:
    """No dump running: the monitor sleeps idle_period_s; once a dump runs, period_s again."""
    slept: list[float] = []
    real_sleep = asyncio.sleep

    async def recording_sleep(seconds: float) -> None:
        slept.append(seconds)
        await real_sleep(0.001)

    monkeypatch.setattr("xtcp_async.loopmon.asyncio.sleep", recording_sleep)
    stats = Stats()
    task = asyncio.create_task(monitor_loop(stats, period_s=0.005, idle_period_s=0.1))
    await real_sleep(0.02)
    stats.dumping = True
    await real_sleep(0.02)
    task.cancel()
    assert slept[0] == 0.1
    assert slept[-1] == 0.005
