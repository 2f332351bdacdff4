"""Per-round ratios: each round is divided by the ss runs around it, and summarised as median and range."""

from __future__ import annotations

import pytest

from bench.rounds import Round, Spread, ratios, ss_between


def test_a_round_is_divided_by_the_mean_of_the_ss_runs_before_and_after_it() -> None:
    """Round i uses ss runs i and i + 1; the last round without a later run uses its own."""
    assert ss_between([1.0, 3.0], 0) == 2.0
    assert ss_between([1.0, 3.0], 1) == 3.0


def test_ratios_are_the_median_and_range_of_the_rounds() -> None:
    """Three rounds whose ss drifted give per-round ratios, their median, min and max, and µs above the floor."""
    rounds = [Round({"service_null_pblist": 0.5, "floor_stdlib": 0.25, "service_file_jsonl": 1.0}),
              Round({"service_null_pblist": 1.0, "floor_stdlib": 0.5, "service_file_jsonl": None}),
              Round({"service_null_pblist": 0.6, "floor_stdlib": 0.3, "service_file_jsonl": 1.2})]
    got = ratios(rounds, [1.0, 1.0, 2.0, 2.0], sockets=100_000)
    c = got["c_over_a"]
    assert c is not None
    assert c.values == pytest.approx((0.5, 2 / 3, 0.3))
    assert (c.median, c.low, c.high) == pytest.approx((0.5, 0.3, 2 / 3))
    d = got["d_over_a"]
    assert d is not None and d.values == pytest.approx((1.0, 0.6))  # the unmeasured round is left out
    share = got["c_minus_b_us_per_socket"]
    assert share is not None and share.values == pytest.approx((2.5, 5.0, 3.0))


def test_jsonl_above_its_write_floor_is_divided_by_ss_per_round() -> None:
    """d − d′ (the service's jsonl cost without the kernel's file write) over ss, round by round."""
    rounds = [Round({"service_file_jsonl": 1.0, "write_floor_jsonl": 0.4}),
              Round({"service_file_jsonl": 1.2, "write_floor_jsonl": None}),
              Round({"service_file_jsonl": 0.9, "write_floor_jsonl": 0.5})]
    got = ratios(rounds, [1.0, 1.0, 2.0, 2.0], sockets=100_000)["d_minus_write_over_a"]
    assert got is not None and got.values == pytest.approx((0.6, 0.2))


def test_no_rounds_is_no_figure() -> None:
    """Without any round there is nothing to report (None, not a zero)."""
    assert Spread.of([]) is None
    assert ratios([], [1.0], sockets=10)["c_over_a"] is None
