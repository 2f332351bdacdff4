"""Distinct values of a column without sorting it (a dump holds a handful of families and cc names)."""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

#: Past this many distinct values, np.unique (a sort) is cheaper than one compare per value.
PEEL_LIMIT = 16


def small_codes(keys: npt.NDArray[Any]) -> tuple[npt.NDArray[np.intp], list[Any]]:
    """Index of each element in a list of the distinct values (dumps hold a handful)."""
    n = len(keys)
    codes = np.zeros(n, dtype=np.intp)
    uniq: list[Any] = []
    if n == 0:
        return codes, uniq
    flat = keys.reshape(n, -1) if keys.ndim > 1 else keys[:, None]
    left = np.ones(n, dtype=bool)
    start = 0
    # Peel off one value at a time: a compare per distinct value, no sort.
    while len(uniq) < PEEL_LIMIT:
        idx = int(np.argmax(left[start:])) + start
        if not left[idx]:
            return codes, uniq
        start = idx
        match = (flat == flat[idx]).all(axis=1)
        codes[match] = len(uniq)
        uniq.append(keys[idx])
        left &= ~match
    rest = np.nonzero(left)[0]
    if rest.size:
        more, inverse = np.unique(flat[rest], axis=0, return_inverse=True)
        codes[rest] = len(uniq) + inverse.reshape(-1)
        uniq.extend(more.reshape((-1, *keys.shape[1:])) if keys.ndim > 1 else more.reshape(-1))
    return codes, uniq
