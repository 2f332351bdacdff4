"""Keep freed heap memory for the next poll instead of giving it back to the OS (glibc only).

Every poll allocates and frees the same large buffers: ~60 MB of recv'd chunks, ~65 MB of
columns and ~40 MB of encoded rows at 120k sockets (jsonl: ~340 MB). glibc serves such blocks
with mmap (or trims the heap top once a few MB are free), so each poll faulted fresh, zeroed
pages in again (~4% of a poll's CPU; on this VM, page faults are dear). Raising both thresholds
keeps those pages in the heap for reuse. The cost is memory that stays resident between polls,
bounded: at most TRIM_BYTES of free heap is kept, and blocks above MMAP_BYTES still come from
mmap. Measured (`python -m bench`, docs/bench.md): peak RSS at 120k sockets rose from ~88 to
~94 MiB.
"""

from __future__ import annotations

import ctypes

#: mallopt parameter numbers (glibc's malloc.h).
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
#: glibc refuses an mmap threshold above HEAP_MAX_SIZE / 2 (32 MiB on 64-bit).
MMAP_BYTES = 32 * 1024 * 1024
TRIM_BYTES = 64 * 1024 * 1024


def keep_freed_memory() -> bool:
    """Set the thresholds; False where the C library has no mallopt (musl) or refuses them."""
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    return bool(mallopt(_M_MMAP_THRESHOLD, MMAP_BYTES)) and bool(mallopt(_M_TRIM_THRESHOLD, TRIM_BYTES))


__all__ = ["keep_freed_memory"]
