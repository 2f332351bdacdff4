"""keep_freed_memory: a poll's worth of freed blocks is reused by the next poll, not faulted in again.

The pattern is a poll's: many MiB-sized blocks (recv'd chunks, columns, encoded rows) alive
together, all freed at the poll's end. glibc alone returns the freed heap top to the OS (its
trim threshold follows the largest mmap'd block freed, a few MiB), so the next poll faults every
page in again.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

_PROBE = """
import resource, sys
from xtcp_async.ops.heap import keep_freed_memory
if sys.argv[1] == "on":
    assert keep_freed_memory()
faults = []
for _ in range(6):
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    blocks = [bytearray(1024 * 1024) for _ in range(40)]  # zero-filled: every page is touched
    del blocks
    faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
print(sum(faults[2:]))
"""


def _faults(mode: str) -> int:
    out = subprocess.run([sys.executable, "-c", _PROBE, mode], check=True, capture_output=True, text=True,
                         timeout=30)
    return int(out.stdout.strip())


@pytest.mark.timeout(60)
def test_freed_blocks_are_reused_instead_of_faulted_in_again() -> None:
    pages = 4 * 40 * 1024 * 1024 // 4096  # the last four rounds, every page of each block
    assert _faults("off") > pages // 2
    assert _faults("on") < pages // 20
