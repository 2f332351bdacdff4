"""``python -m bench.writefloor --bytes N --count K --file F``: the kernel's cost of writing jsonl.

The jsonl row (d) writes each poll's records to a file; at 120k sockets that is ~340 MB per poll,
and copying it into the page cache is the kernel's work, not the service's. ``ss -tin`` (a) is
measured writing to /dev/null. This writes the same number of bytes per "poll" to a file in the
same directory, in the service's payload size (4 MiB writes, appended), so the bench can show d
with and without that floor. Bytes are random, made once before the first write.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

PAYLOAD_BYTES = 4 * 1024 * 1024


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--bytes", type=int, required=True, help="bytes per poll")
    p.add_argument("--count", type=int, default=1, help="polls")
    p.add_argument("--file", type=Path, required=True)
    args = p.parse_args(argv)
    payload = os.urandom(PAYLOAD_BYTES)
    fd = os.open(args.file, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        for _ in range(args.count):
            left = args.bytes
            while left > 0:
                left -= os.write(fd, memoryview(payload)[:min(left, PAYLOAD_BYTES)])
    finally:
        os.close(fd)
        args.file.unlink(missing_ok=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
