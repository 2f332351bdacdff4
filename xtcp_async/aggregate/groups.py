"""Group ids for a poll's sockets from the --aggregate-by keys, with the group cap applied.

The selected key columns are laid side by side as bytes and ``np.unique`` numbers the distinct
rows: one sort per poll, whatever the keys. Past ``max_groups``, the largest groups keep their id
and the rest share one "other" group (the last id), whose size in groups is reported.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from xtcp_async.aggregate.columns import PollColumns
from xtcp_async.netlink import constants as c

Arr = npt.NDArray[Any]

#: Keys that vary by socket (location and hostname are the same for a whole poll).
ROW_KEYS = ("netns", "asn", "prefix", "port", "cc", "state")
ALL_KEYS = ("location", "hostname", *ROW_KEYS)


def service_ports(cols: PollColumns) -> Arr:
    """Each socket's local port when a listening socket of this poll holds it, else 0 (a client
    socket's ephemeral port says nothing about a service)."""
    # Not np.unique first: isin does not mind repeats, and numpy 2.3's plain np.unique imports
    # numpy.ma (~4.5 ms of the first poll, issue 13).
    listening = cols.sport[cols.state == c.TCP_STATES["listen"]]
    return np.where(np.isin(cols.sport, listening), cols.sport, 0).astype(np.uint16)


def key_columns(cols: PollColumns, keys: tuple[str, ...]) -> dict[str, Arr]:
    """The per-row value of each selected key (prefix: family, length and 16 bytes)."""
    out: dict[str, Arr] = {}
    for k in keys:
        if k == "netns":
            out[k] = cols.netns
        elif k == "asn":
            out[k] = cols.asn
        elif k == "prefix":
            is4 = (cols.family == c.AF_INET).astype(np.uint8)
            out[k] = np.concatenate([is4[:, None], cols.prefix_len[:, None].astype(np.uint8), cols.prefix], axis=1)
        elif k == "port":
            out[k] = service_ports(cols)
        elif k == "cc":
            out[k] = cols.congestion
        elif k == "state":
            out[k] = cols.state
    return out


@dataclass(frozen=True)
class Groups:
    """Group id per socket, the first socket of each group (its key values), and the fold."""

    ids: npt.NDArray[np.intp]
    #: Row index of one socket per group (for the "other" group: -1).
    first: npt.NDArray[np.intp]
    count: int
    #: Whether the last group is "other", and how many groups were folded into it.
    other: bool
    folded: int


def group(cols: PollColumns, keys: tuple[str, ...], max_groups: int) -> Groups:
    """Number the sockets' groups by ``keys``, folding all but the ``max_groups - 1`` largest when
    there are more than ``max_groups`` (ties broken by key order, so the fold is deterministic)."""
    n = cols.n
    kc = key_columns(cols, tuple(k for k in keys if k in ROW_KEYS))
    if not n:
        return Groups(np.zeros(0, np.intp), np.zeros(0, np.intp), 0, False, 0)
    if not kc:
        return Groups(np.zeros(n, np.intp), np.zeros(1, np.intp), 1, False, 0)
    parts = [np.ascontiguousarray(v).view(np.uint8).reshape(n, -1) for v in kc.values()]
    raw = np.ascontiguousarray(np.concatenate(parts, axis=1))
    _, first, inverse = np.unique(raw.view(f"V{raw.shape[1]}").reshape(-1), return_index=True, return_inverse=True)
    ids = inverse.reshape(-1).astype(np.intp)
    g = len(first)
    if g <= max_groups:
        return Groups(ids, first.astype(np.intp), g, False, 0)
    sizes = np.bincount(ids, minlength=g)
    # Largest first; equal sizes in key order (np.unique's order). lexsort: last key is primary.
    order = np.lexsort((np.arange(g), -sizes))
    kept = order[:max_groups - 1]
    new_id = np.full(g, max_groups - 1, dtype=np.intp)
    new_id[kept] = np.arange(len(kept))
    firsts = np.append(first[kept], -1).astype(np.intp)
    return Groups(new_id[ids], firsts, max_groups, True, g - len(kept))
