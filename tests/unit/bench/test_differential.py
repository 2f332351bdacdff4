"""The per-poll figure is (k+1 polls − 1 poll) / k, and a figure drowned in start-up jitter is flagged."""

from __future__ import annotations

import pytest

from bench.__main__ import Options, _floor_polls, _jitter_problem
from bench.measure import Differential, Stat, Summary


def _summary(cpu: float) -> Summary:
    return Summary(["x"], [], Stat(cpu, cpu), Stat(cpu, cpu), Stat(1.0, 1.0))


def test_per_poll_cost_is_the_difference_over_k() -> None:
    d = Differential.of(4, _summary(0.30), _summary(0.70))
    assert d.cpu_s.min == pytest.approx(0.10)
    assert _jitter_problem(d) is None


def test_a_negative_or_zero_difference_is_reported_not_trusted() -> None:
    d = Differential.of(2, _summary(0.301), _summary(0.300))
    problem = _jitter_problem(d)
    assert problem is not None and "raise --polls" in problem


def test_floor_dumps_grow_for_small_socket_counts_and_keep_the_asked_k_for_large_ones() -> None:
    opts = Options(repeat=2, polls=10, interval_s=None, jsonl_polls=3, jsonl_repeat=2)
    small = _floor_polls(2_000, opts)
    # Enough dumps that their CPU (~1.4 µs per socket each) is at least half a second.
    assert small * 2_000 * 1.4e-6 >= 0.5 and small > opts.polls
    assert _floor_polls(120_000, opts) == opts.polls
