"""Deterministic sampling: a socket is in or out by a hash of its identity, never by message order.

The same connection is therefore sampled in every poll of its life, and the sampled set is the
same across restarts and hosts (the hash has no seed). Per-class rates (``--sample
'dport = :443'=0.01 --sample '*'=0.1``): the first class whose expression matches a row gives
its rate; rows no class matches are kept whole (rate 1000000 ppm). Every kept row carries its
rate in ``sample_rate_ppm`` so downstream sums scale back (``sum(1e6 / sample_rate_ppm)``).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from xtcp_async.netlink.batch import SocketBatch
from xtcp_async.stages.evaluate import evaluate
from xtcp_async.stages.spec import SampleClass
from xtcp_async.stages.take import take

U64 = npt.NDArray[np.uint64]
FULL_PPM = 1_000_000
_C1 = np.uint64(0xBF58476D1CE4E5B9)
_C2 = np.uint64(0x94D049BB133111EB)
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)


def sample_key(batch: SocketBatch) -> U64:
    """The identity a socket is sampled by: its cookie.

    Cookies are unique per network namespace only; once namespaces are polled, mix the netns
    inode column in here (``cookie ^ mix64(netns_inode)``) and nowhere else.
    """
    return batch.columns["inet_diag_msg_socket_cookie"].astype(np.uint64, copy=False)


def mix64(x: U64) -> U64:
    """splitmix64's finaliser: every input bit flips each output bit with probability ~1/2.

    Cookies are sequential counters; their low bits alone would sample in stripes.
    """
    with np.errstate(over="ignore"):
        z = x + _GOLDEN
        z = (z ^ (z >> np.uint64(30))) * _C1
        z = (z ^ (z >> np.uint64(27))) * _C2
    return np.asarray(z ^ (z >> np.uint64(31)), dtype=np.uint64)


def keep_mask(keys: U64, rate_ppm: npt.NDArray[Any]) -> npt.NDArray[np.bool_]:
    """Rows whose hash falls below their rate: P(keep) = rate_ppm / 1e6."""
    # The top 53 bits as a fraction of 2**53, against the rate: exact in float64.
    frac = (mix64(keys) >> np.uint64(11)).astype(np.float64) * (1.0 / (1 << 53))
    return np.asarray(frac * FULL_PPM < rate_ppm)


class Sampler:
    """Keeps each row with its class's probability, by hash; adds ``sample_rate_ppm``."""

    def __init__(self, classes: tuple[SampleClass, ...]) -> None:
        self.classes = classes

    def rates(self, batch: SocketBatch) -> npt.NDArray[np.uint32]:
        """Each row's rate: the first matching class's, or FULL_PPM when none matches."""
        rate = np.full(batch.n, FULL_PPM, dtype=np.uint32)
        undecided = np.ones(batch.n, dtype=bool)
        for cls in self.classes:
            hit = undecided if cls.expr is None else undecided & evaluate(cls.expr, batch)
            rate[hit] = cls.rate_ppm
            undecided &= ~hit
            if not undecided.any():
                break
        return rate

    def __call__(self, batch: SocketBatch) -> SocketBatch:
        if not batch.n:
            return batch
        rate = self.rates(batch)
        keep = keep_mask(sample_key(batch), rate)
        out = take(batch, np.nonzero(keep)[0])
        out.columns["sample_rate_ppm"] = rate[keep]
        return out
