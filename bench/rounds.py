"""Rounds: ss, the raw dump and the service measured one after another, again and again.

Why: on these shared VMs the same binary's CPU per poll drifts by 2x within minutes (other tenants'
load is charged to whoever runs), so a ratio of two figures taken minutes apart says little. Each
round measures every command once, back to back; a round's ratio divides by the mean of the ss
runs just before and just after it; the targets are judged on the median of the per-round ratios,
reported with their range.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from bench.measure import Stat


@dataclass(frozen=True)
class Spread:
    """Median of per-round values, with the lowest and highest."""

    median: float
    low: float
    high: float
    values: tuple[float, ...]

    @classmethod
    def of(cls, values: Sequence[float]) -> Spread | None:
        if not values:
            return None
        return cls(statistics.median(values), min(values), max(values), tuple(values))

    def to_json(self) -> dict[str, Any]:
        return {"median": self.median, "min": self.low, "max": self.high, "rounds": list(self.values)}


@dataclass
class Round:
    """CPU per poll of each command in one round (None: not measured or not trustworthy)."""

    cpu: dict[str, float | None] = field(default_factory=dict)


def ss_between(ss_runs: Sequence[float], i: int) -> float:
    """The ss CPU around round ``i``: the mean of the run before it and the one after it."""
    after = ss_runs[i + 1] if i + 1 < len(ss_runs) else ss_runs[i]
    return (ss_runs[i] + after) / 2


def ratios(rounds: Sequence[Round], ss_runs: Sequence[float], sockets: int) -> dict[str, Spread | None]:
    """Per-round ratios and per-socket shares, summarised as median and range."""
    def collect(f: Callable[[Round, float], float | None]) -> list[float]:
        out = []
        for i, r in enumerate(rounds):
            ss = ss_between(ss_runs, i)
            if ss <= 0:
                continue
            v = f(r, ss)
            if v is not None:
                out.append(v)
        return out

    def over_ss(key: str) -> Callable[[Round, float], float | None]:
        def f(r: Round, ss: float) -> float | None:
            v = r.cpu.get(key)
            return None if v is None else v / ss
        return f

    def above_floor(r: Round, _ss: float) -> float | None:
        c, b = r.cpu.get("service_null_pblist"), r.cpu.get("floor_stdlib")
        return None if c is None or b is None or not sockets else (c - b) / sockets * 1e6

    def jsonl_above_write(r: Round, ss: float) -> float | None:
        d, w = r.cpu.get("service_file_jsonl"), r.cpu.get("write_floor_jsonl")
        return None if d is None or w is None else (d - w) / ss

    return {
        "c_over_a": Spread.of(collect(over_ss("service_null_pblist"))),
        "d_minus_write_over_a": Spread.of(collect(jsonl_above_write)),
        "d_over_a": Spread.of(collect(over_ss("service_file_jsonl"))),
        "b_over_a": Spread.of(collect(over_ss("floor_stdlib"))),
        "c_minus_b_us_per_socket": Spread.of(collect(above_floor)),
    }


def merge_stat(stats: Sequence[Stat | None]) -> Stat | None:
    """Rounds' single figures as one min / median."""
    values = [s.median for s in stats if s is not None]
    return Stat.of(values) if values else None
