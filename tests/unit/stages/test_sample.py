"""Deterministic sampling by cookie hash: unbiased, stable across processes, per-class rates."""

from __future__ import annotations

import math
import subprocess
import sys

import numpy as np
import pytest

from tests.unit.stages.batches import synthetic_batch
from xtcp_async.netlink.filter_ast import parse
from xtcp_async.stages.chain import StageChain
from xtcp_async.stages.sample import FULL_PPM, Sampler, keep_mask
from xtcp_async.stages.spec import SampleClass, StageSettings, parse_sample


def test_one_percent_of_100k_cookies_estimates_the_count_within_the_binomial_bound() -> None:
    """Scaling a 1% sample of 100k sequential cookies back (sum 1e6/ppm) lands within 4 sigma of 100k."""
    n, ppm = 100_000, 10_000
    keys = np.arange(1, n + 1, dtype=np.uint64) + np.uint64(0x4000)
    kept = int(keep_mask(keys, np.full(n, ppm)).sum())
    estimate = kept * FULL_PPM / ppm
    p = ppm / FULL_PPM
    sigma = math.sqrt(n * p * (1 - p)) * FULL_PPM / ppm
    assert abs(estimate - n) <= 4 * sigma, (kept, estimate)


def test_the_sampled_set_is_the_same_in_another_process() -> None:
    """A fresh interpreter keeps exactly the same cookies (no per-process seed)."""
    keys = np.arange(10_000, 20_000, dtype=np.uint64) * np.uint64(7919)
    here = np.nonzero(keep_mask(keys, np.full(len(keys), 50_000)))[0].tolist()
    code = ("import numpy as np; from xtcp_async.stages.sample import keep_mask; "
            "k = np.arange(10_000, 20_000, dtype=np.uint64) * np.uint64(7919); "
            "print(np.nonzero(keep_mask(k, np.full(len(k), 50_000)))[0].tolist())")
    there = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    assert here == eval(there.stdout)
    assert 400 < len(here) < 600


def test_a_socket_kept_at_a_low_rate_is_kept_at_every_higher_rate() -> None:
    """Rates nest: raising the rate only adds sockets, so a connection never flickers between rates."""
    keys = np.arange(50_000, dtype=np.uint64)
    low = keep_mask(keys, np.full(len(keys), 10_000))
    high = keep_mask(keys, np.full(len(keys), 100_000))
    assert not (low & ~high).any()


def test_first_matching_class_gives_the_rate_and_unmatched_rows_are_kept_whole() -> None:
    """--sample 'dport = :443'=0.01 --sample 'sport = :80'=1: 443 rows at 10000 ppm, others 1000000."""
    batch = synthetic_batch(20_000, dports=[443, 80, 22])
    sampler = Sampler((SampleClass("dport = :443", parse("dport = :443"), 10_000),))
    rates = sampler.rates(batch)
    dport = batch.columns["inet_diag_msg_socket_destination_port"]
    assert set(rates[dport == 443].tolist()) == {10_000}
    assert set(rates[dport != 443].tolist()) == {FULL_PPM}
    out = sampler(batch)
    out_dport = out.columns["inet_diag_msg_socket_destination_port"]
    assert (out.columns["sample_rate_ppm"][out_dport == 443] == 10_000).all()
    assert out.n < batch.n and (out_dport != 443).sum() == (dport != 443).sum()


def test_sampled_rows_are_dropped_before_encoding_and_carry_their_rate() -> None:
    """The stage chain with --sample 0.1 keeps about a tenth, each record says 100000 ppm."""
    batch = synthetic_batch(10_000)
    chain = StageChain(StageSettings(samples=(parse_sample("0.1"),)))
    out = chain.on_batch(batch)
    assert 800 < out.n < 1200
    assert {r["sample_rate_ppm"] for r in out.to_records()} == {100_000}
    assert chain.rows_sampled_out == batch.n - out.n


@pytest.mark.parametrize(("text", "word"), [("0", "rate"), ("1.5", "rate"), ("dport = :1=x", "RATE"),
                                            ("autobound=0.1", "autobound")])
def test_bad_sample_specs_are_refused_naming_the_problem(text: str, word: str) -> None:
    """A rate outside (0, 1] or a kernel-only condition is a ValueError saying which."""
    with pytest.raises(ValueError, match=word):
        parse_sample(text)
