"""The file sink on a disk that fills up and is freed again: whole payloads only, none twice, every loss counted.

A real filesystem that fills: a 1 MiB tmpfs mounted by the test (needs root; skips elsewhere
with the reason, fails under CI).
"""

from __future__ import annotations

import asyncio
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.live.harness import skip_or_fail
from xtcp_async.sinks.file import FileSink
from xtcp_async.sinks.runner import RunnerSettings, SinkRunner

pytestmark = pytest.mark.root


@pytest.fixture
def tiny_disk(tmp_path: Path) -> Iterator[Path]:
    """A 1 MiB tmpfs, unmounted after the test."""
    mnt = tmp_path / "disk"
    mnt.mkdir()
    if os.geteuid() != 0:
        skip_or_fail("mounting a tmpfs needs root")
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mnt)], capture_output=True, text=True)
    if done.returncode:
        skip_or_fail(f"cannot mount a tmpfs: {done.stderr.strip()}")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


def _payload(i: int) -> bytes:
    """Ten JSON lines of ~300 bytes, each naming its payload and line."""
    return b"".join(b'{"p":%d,"l":%d,"pad":"%s"}\n' % (i, j, b"x" * 280) for j in range(10))


@pytest.mark.timeout(60)
async def test_full_disk_then_freed_leaves_whole_payloads_once_and_counts_the_rest(tiny_disk: Path) -> None:
    """Payloads written while the disk fills and after it is freed: no torn line, no duplicate,
    delivered + dropped = sent."""
    filler = tiny_disk / "filler"
    filler.write_bytes(b"\0" * (1024 * 1024 - 96 * 1024))  # ~96 KiB left
    out = tiny_disk / "records.jsonl"
    sink = FileSink(str(out))
    runner = SinkRunner("file", sink, RunnerSettings(buffer_bytes=200 * 3000, retry_initial_s=0.01, retry_max_s=0.05,
                                                   wait_budget_s=0.5))
    sent = 120  # ~360 KiB: far more than fits
    async with asyncio.TaskGroup() as tg:
        runner.start(tg)
        for i in range(sent):
            runner.offer(_payload(i), poll_id=1)
            await asyncio.sleep(0.002)
        deadline = asyncio.get_running_loop().time() + 10
        while runner.stats.delivery_errors < 3:
            assert asyncio.get_running_loop().time() < deadline, "the disk never filled"
            await asyncio.sleep(0.01)
        filler.unlink()  # space again: the retried payload and the rest go through
        assert await runner.drain(20)
        await runner.stop()
    lines = out.read_bytes().split(b"\n")
    assert lines[-1] == b""  # ends with a whole line
    keys = [line[: line.index(b',"pad"')] for line in lines[:-1]]
    assert len(keys) == len(set(keys)), "a payload was written twice"
    payloads = {k.split(b",")[0] for k in keys}
    assert len(keys) == 10 * len(payloads), "a payload was written in part"
    delivered = runner.stats.payloads_delivered
    assert len(payloads) == delivered
    assert delivered + sum(runner.stats.dropped.values()) == sent
