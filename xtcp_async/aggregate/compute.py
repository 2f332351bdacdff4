"""Per-group statistics of one poll, computed on columns (numpy), exact.

Definitions (the .proto documents the same, and tests/unit/aggregate checks them with pandas):

- *measured* sockets of a statistic: tcp_info carries the field and ``tcpi_rtt > 0`` (the kernel
  has an RTT sample; listeners and sockets that never got an ACK have none, and their min_rtt is
  ~0U). RTT, min_rtt and delivery-rate statistics are over the measured sockets.
- quantile q of n values: the sorted values' element ``floor(q * (n - 1))`` (the "lower" method of
  numpy and pandas): always one socket's real value. Mean: arithmetic, as a double. 0 where n = 0.
- retransmits: sum of ``tcpi_total_retrans``; share: that over the sum of ``tcpi_segs_out`` (over
  sockets with tcp_info).
- bytes_acked / bytes_received: sums; deltas: sums of each socket's increase since the previous
  poll, over sockets present in both (see :mod:`xtcp_async.aggregate.deltas`).
- app-limited share: measured sockets whose last delivery-rate sample was app-limited, over the
  measured sockets; rwnd- and sndbuf-limited shares: ``sum(rwnd_limited)`` and
  ``sum(sndbuf_limited)`` over ``sum(busy_time)`` (µs of time, as the kernel counts them).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from xtcp_async.aggregate.columns import PollColumns
from xtcp_async.aggregate.deltas import Deltas
from xtcp_async.aggregate.groups import Groups

Arr = npt.NDArray[Any]
QUANTILES = (0.5, 0.9, 0.99)


def group_quantiles(ids: Arr, values: Arr, mask: Arr, n_groups: int, qs: tuple[float, ...]) -> list[Arr]:
    """Per group and quantile: the sorted values' element floor(q * (n - 1)) among masked rows."""
    g = ids[mask]
    v = values[mask]
    order = np.lexsort((v, g))
    v_sorted = v[order]
    counts = np.bincount(g, minlength=n_groups)
    starts = np.zeros(n_groups, dtype=np.int64)
    np.cumsum(counts[:-1], out=starts[1:])
    out = []
    for q in qs:
        idx = starts + np.floor(q * (counts - 1)).astype(np.int64)
        picked = v_sorted[np.clip(idx, 0, max(len(v_sorted) - 1, 0))] if len(v_sorted) else np.zeros(n_groups, v.dtype)
        out.append(np.where(counts > 0, picked, 0).astype(values.dtype))
    return out


def group_sum(ids: Arr, values: Arr, n_groups: int, mask: Arr | None = None) -> npt.NDArray[np.uint64]:
    """Exact unsigned sums per group (no float rounding past 2**53)."""
    v = np.asarray(values, dtype=np.uint64)
    if mask is not None:
        v = np.where(mask, v, np.uint64(0))
    out = np.zeros(n_groups, dtype=np.uint64)
    np.add.at(out, ids, v)
    return out


def _share(num: Arr, den: Arr) -> npt.NDArray[np.float64]:
    num_f = num.astype(np.float64)
    den_f = den.astype(np.float64)
    return np.divide(num_f, den_f, out=np.zeros(len(num_f)), where=den_f > 0)


@dataclass(frozen=True)
class GroupStats:
    """One array (or list) per statistic, one entry per group."""

    columns: dict[str, Arr]

    def __getitem__(self, name: str) -> Arr:
        return self.columns[name]

    @property
    def n(self) -> int:
        return len(self.columns["sockets"])


def group_stats(cols: PollColumns, groups: Groups, deltas: Deltas) -> GroupStats:
    """Every per-group statistic of the module docstring."""
    ids, G = groups.ids, groups.count
    out: dict[str, Arr] = {"sockets": np.bincount(ids, minlength=G).astype(np.uint64)}
    has_ti = cols.has("rtt")
    sampled = has_ti & (cols.rtt > 0)
    out["rtt_sockets"] = group_sum(ids, sampled, G)
    for name in ("rtt", "min_rtt"):
        m = sampled & cols.has(name)
        for q, arr in zip(QUANTILES, group_quantiles(ids, cols.__dict__[name], m, G, QUANTILES), strict=True):
            out[f"{name}_p{round(q * 100)}"] = arr
        total = group_sum(ids, cols.__dict__[name], G, m)
        out[f"{name}_mean"] = _share(total, group_sum(ids, m, G))
    m_rate = sampled & cols.has("delivery_rate")
    p50, p90 = group_quantiles(ids, cols.delivery_rate, m_rate, G, (0.5, 0.9))
    out["delivery_rate_p50"], out["delivery_rate_p90"] = p50, p90
    has_retrans = cols.has("total_retrans")
    out["retransmits"] = group_sum(ids, cols.total_retrans, G, has_retrans)
    out["segs_out"] = group_sum(ids, cols.segs_out, G, cols.has("segs_out"))
    out["retransmit_share"] = _share(out["retransmits"], out["segs_out"])
    out["bytes_acked"] = group_sum(ids, cols.bytes_acked, G, cols.has("bytes_acked"))
    out["bytes_received"] = group_sum(ids, cols.bytes_received, G, cols.has("bytes_received"))
    out["bytes_acked_delta"] = group_sum(ids, deltas.acked, G)
    out["bytes_received_delta"] = group_sum(ids, deltas.received, G)
    out["delta_sockets"] = group_sum(ids, deltas.seen, G)
    m_app = sampled & cols.has("delivery_rate_app_limited")
    out["app_limited_share"] = _share(group_sum(ids, cols.delivery_rate_app_limited, G, m_app),
                                      group_sum(ids, m_app, G))
    busy = group_sum(ids, cols.busy_time, G, cols.has("busy_time"))
    out["busy_time_us"] = busy
    out["rwnd_limited_share"] = _share(group_sum(ids, cols.rwnd_limited, G, cols.has("rwnd_limited")), busy)
    out["sndbuf_limited_share"] = _share(group_sum(ids, cols.sndbuf_limited, G, cols.has("sndbuf_limited")), busy)
    # With --sample, the group's sockets over their scaled-back count; 0 when nothing was sampled.
    if cols.n and bool((cols.sample_ppm < 1_000_000).any()):
        scaled = np.bincount(ids, weights=1e6 / np.maximum(cols.sample_ppm, 1).astype(np.float64), minlength=G)
        out["sample_rate"] = _share(out["sockets"], scaled)
    return GroupStats(out)
