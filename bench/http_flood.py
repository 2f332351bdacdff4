"""``python -m bench http-flood``: the longest event-loop stall while /metrics is flooded.

Starts the service (null sink, 1 s interval, listening sockets only so polls are small), sends
``--concurrency`` simultaneous /metrics requests in waves for ``--seconds``, then stops it and
prints the longest loop stall it recorded (``max_loop_stall_s`` from --stats-json) and its polls.
Run it before and after a change to the listener; the machine's load shows in the number too.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tests.brokers.nsqd import free_port


async def _flood(port: int, concurrency: int, seconds: float) -> int:
    sent = 0

    async def one() -> None:
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(b"GET /metrics HTTP/1.1\r\nHost: bench\r\n\r\n")
            await reader.read()
            writer.close()
        except OSError:
            pass

    end = time.monotonic() + seconds
    while time.monotonic() < end:
        await asyncio.gather(*(one() for _ in range(concurrency)))
        sent += concurrency
    return sent


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="python -m bench http-flood", description=__doc__.split("\n")[0])
    p.add_argument("--concurrency", type=int, default=300)
    p.add_argument("--seconds", type=float, default=10.0)
    args = p.parse_args(argv)
    port = free_port()
    with tempfile.TemporaryDirectory() as tmp:
        stats = Path(tmp) / "stats.json"
        proc = subprocess.Popen([sys.executable, "-m", "xtcp_async", "--sink", "null://", "--interval", "1",
                                 "--states", "listen", "--metrics-listen", f"127.0.0.1:{port}",
                                 "--stats-json", str(stats)], stderr=subprocess.DEVNULL)
        try:
            time.sleep(3)  # start-up and the first poll
            sent = asyncio.run(_flood(port, args.concurrency, args.seconds))
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(30)
        report = json.loads(stats.read_text())
    print(f"requests sent: {sent} ({args.concurrency} at a time for {args.seconds:.0f} s)")
    print(f"longest event-loop stall: {report['max_loop_stall_s'] * 1000:.1f} ms; polls: {report['polls']}")
    return 0
