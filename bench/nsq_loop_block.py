"""How long does publishing a 5 MB batch to nsqd stall the event loop: pynsq 0.9.1 vs our producer.

Run: ``.venv/bin/python -m bench.nsq_loop_block [--mb 5] [--payload-kb 64] [--rounds 5]``

It starts its own nsqd on loopback (tests/brokers/nsqd.py; installs it on first use), then for
each client publishes ``--mb`` megabytes as one batch, ``--rounds`` times, while a ticker task
measures the longest gap between its 1 ms ticks (the event-loop stall). It also times how long
one batch takes until nsqd acknowledged it, and PUB-one-by-one against MPUB throughput for small
payloads (which decides how many payloads the sink puts in one MPUB).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from tests.brokers.nsqd import Nsqd, ensure_nsq_installed
from xtcp_async.sinks.nsq import NsqSink
from xtcp_async.sinks.spec import parse_sink_url


class StallMeter:
    """A task that sleeps 1 ms in a loop and records the longest time it was kept waiting."""

    def __init__(self) -> None:
        self.max_gap_s = 0.0
        self._task: asyncio.Task[None] | None = None

    async def _tick(self) -> None:
        last = time.perf_counter()
        while True:
            await asyncio.sleep(0.001)
            now = time.perf_counter()
            self.max_gap_s = max(self.max_gap_s, now - last - 0.001)
            last = now

    async def __aenter__(self) -> StallMeter:
        self._task = asyncio.get_running_loop().create_task(self._tick())
        await asyncio.sleep(0.01)
        self.max_gap_s = 0.0
        return self

    async def __aexit__(self, *exc: object) -> None:
        await asyncio.sleep(0.005)  # let the ticker see the end of the last stall
        assert self._task is not None
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task


async def measure(label: str, publish: Callable[[list[bytes]], Awaitable[None]], batch: list[bytes],
                  rounds: int) -> dict[str, Any]:
    stalls, durations = [], []
    for _ in range(rounds):
        async with StallMeter() as meter:
            started = time.perf_counter()
            await publish(batch)
            durations.append(time.perf_counter() - started)
        stalls.append(meter.max_gap_s)
    row = {"client": label, "max_stall_ms": max(stalls) * 1e3, "median_stall_ms": statistics.median(stalls) * 1e3,
           "median_acked_ms": statistics.median(durations) * 1e3}
    print(f"{label:<34} max stall {row['max_stall_ms']:8.1f} ms   median stall "
          f"{row['median_stall_ms']:8.1f} ms   batch acknowledged in {row['median_acked_ms']:8.1f} ms")
    return row


async def pynsq_publisher(address: str, topic: str) -> tuple[Callable[[list[bytes]], Awaitable[None]], Any]:
    """pynsq's Writer, created inside the running loop (else it never connects)."""
    import nsq

    writer = nsq.Writer([address], reconnect_interval=0.5)
    for _ in range(200):
        if any(c.connected() for c in writer.conns.values()):
            break
        await asyncio.sleep(0.01)

    async def publish(batch: list[bytes]) -> None:
        loop = asyncio.get_running_loop()
        done: asyncio.Future[Any] = loop.create_future()

        def callback(conn: Any, data: Any) -> None:
            if not done.done():
                done.set_result(data)

        # The MPUB body is built inside this call, synchronously, with repeated `+=`.
        writer.mpub(topic, batch, callback=callback)
        answer = await done
        if answer != b"OK":
            raise RuntimeError(f"pynsq: {answer!r}")

    return publish, writer


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=float, default=5.0, help="batch size in MB (nsqd's max body is 5 MiB)")
    parser.add_argument("--payload-kb", default="64,16,4",
                        help="payload sizes to try, comma-separated (more, smaller payloads: more `+=`)")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()

    batches = []
    for kb in (int(x) for x in args.payload_kb.split(",")):
        payload = bytes(range(256)) * (kb * 4)
        batches.append([payload] * int(args.mb * 1_000_000 // (len(payload) + 4)))

    with tempfile.TemporaryDirectory() as tmp:
        nsqd = Nsqd(ensure_nsq_installed(), Path(tmp), max_body_size=6 * 1024 * 1024)
        nsqd.start()
        try:
            publish, _writer = await pynsq_publisher(nsqd.tcp_address, "bench_pynsq")
            sink = NsqSink.from_spec(parse_sink_url(
                f"nsq://{nsqd.tcp_address}/bench_ours?max_body_bytes={6 * 1024 * 1024}"))
            await sink.start()
            try:
                for batch in batches:
                    print(f"\nbatch: {len(batch)} payloads of {len(batch[0])} bytes = "
                          f"{len(batch) * len(batch[0]) / 1e6:.2f} MB in one MPUB")
                    await measure("pynsq 0.9.1 Writer.mpub", publish, batch, args.rounds)
                    await measure("xtcp_async NsqSink.send_many", sink.send_many, batch, args.rounds)
                    for compression in ("deflate", "snappy"):
                        other = NsqSink.from_spec(parse_sink_url(
                            f"nsq://{nsqd.tcp_address}/bench_ours?max_body_bytes={6 * 1024 * 1024}"
                            f"&compression={compression}"))
                        await other.start()
                        try:
                            await measure(f"xtcp_async NsqSink {compression}", other.send_many, batch,
                                          args.rounds)
                        finally:
                            await other.close()

                small = [bytes(2000)] * 5000
                started = time.perf_counter()
                for item in small:
                    await sink.send(item)
                one_by_one = time.perf_counter() - started
                print(f"\n{len(small)} x 2 kB payloads: PUB one at a time {len(small) / one_by_one:9.0f} msg/s")
                for per_mpub in (16, 64, 256, 1024):
                    started = time.perf_counter()
                    for start in range(0, len(small), per_mpub):
                        await sink.send_many(small[start : start + per_mpub])
                    elapsed = time.perf_counter() - started
                    print(f"{'':>20}MPUB of {per_mpub:5d}        {len(small) / elapsed:9.0f} msg/s")
            finally:
                await sink.close()
        finally:
            nsqd.stop()


if __name__ == "__main__":
    asyncio.run(main())
