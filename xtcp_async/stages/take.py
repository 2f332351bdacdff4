"""Rows of a batch picked by index (a copy), the one row-selection helper of the stages."""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from xtcp_async.netlink.batch import SocketBatch


def take(batch: SocketBatch, rows: npt.NDArray[Any]) -> SocketBatch:
    """A new batch of ``rows`` (record_counter keeps counting from the batch's first row)."""
    return SocketBatch(
        n=len(rows),
        columns={k: v[rows] for k, v in batch.columns.items()},
        lengths={k: v[rows] for k, v in batch.lengths.items()},
        congestion=batch.congestion[rows],
        read_ns=batch.read_ns[rows],
        meta=batch.meta,
    )


def zeros_like(batch: SocketBatch, n: int) -> SocketBatch:
    """``n`` rows of zeros shaped like ``batch``: every attribute absent (lengths 0)."""
    return SocketBatch(
        n=n,
        columns={k: np.zeros((n, *v.shape[1:]), dtype=v.dtype) for k, v in batch.columns.items()},
        lengths={k: np.zeros(n, dtype=v.dtype) for k, v in batch.lengths.items()},
        congestion=np.zeros(n, dtype=batch.congestion.dtype),
        read_ns=np.zeros(n, dtype=batch.read_ns.dtype),
        meta=batch.meta,
    )
