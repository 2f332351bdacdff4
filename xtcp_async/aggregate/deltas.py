"""bytes_acked / bytes_received deltas per socket since the previous poll, keyed by socket cookie.

State is three sorted arrays (cookie, bytes_acked, bytes_received) of the previous poll, not a
dict of objects: one ``searchsorted`` per poll finds each socket's previous values. A socket
contributes a delta only when its cookie was in the previous poll and it carried tcp_info both
times; a counter that went backwards (a cookie reused after a reboot of the namespace) counts 0.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

U64 = npt.NDArray[np.uint64]
Bool = npt.NDArray[np.bool_]


@dataclass(frozen=True)
class DeltaState:
    """The previous poll's counters by cookie (sorted, unique cookies)."""

    cookie: U64
    acked: U64
    received: U64

    @staticmethod
    def empty() -> DeltaState:
        z = np.zeros(0, dtype=np.uint64)
        return DeltaState(z, z, z)


@dataclass(frozen=True)
class Deltas:
    """Per socket of the current poll: the deltas, and whether the socket had a previous value."""

    acked: U64
    received: U64
    seen: Bool


def _one(x: npt.NDArray[Any]) -> U64:
    return np.asarray(x, dtype=np.uint64)


def poll_deltas(prev: DeltaState, cookie: U64, acked: U64, received: U64,
                has_counters: Bool) -> tuple[Deltas, DeltaState]:
    """This poll's deltas against ``prev``, and the state for the next poll."""
    cookie, acked, received = _one(cookie), _one(acked), _one(received)
    n = len(cookie)
    seen = np.zeros(n, dtype=bool)
    d_acked = np.zeros(n, dtype=np.uint64)
    d_received = np.zeros(n, dtype=np.uint64)
    if len(prev.cookie) and n:
        pos = np.searchsorted(prev.cookie, cookie)
        pos_c = np.minimum(pos, len(prev.cookie) - 1)
        seen = (prev.cookie[pos_c] == cookie) & has_counters
        pa, pr = prev.acked[pos_c], prev.received[pos_c]
        d_acked = np.where(seen & (acked >= pa), acked - pa, np.uint64(0))
        d_received = np.where(seen & (received >= pr), received - pr, np.uint64(0))
    # Next state: this poll's sockets with counters; the last row wins for a cookie listed twice
    # (an interrupted dump can repeat a socket).
    keep = np.nonzero(has_counters)[0]
    c = cookie[keep]
    order = np.argsort(c, kind="stable")
    c_sorted = c[order]
    last = np.ones(len(c_sorted), dtype=bool)
    if len(c_sorted) > 1:
        last[:-1] = c_sorted[1:] != c_sorted[:-1]
    rows = keep[order[last]]
    state = DeltaState(cookie[rows], acked[rows], received[rows])
    return Deltas(d_acked, d_received, seen), state
