"""Specs for the benchmark's load generator: it really holds the sockets, and leaves nothing behind."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from bench.loadgen import LoadGen, count_established
from bench.measure import measure, run_once

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="loopback sockets and ss are Linux-only")


def _established_on(ports: list[int]) -> int:
    """Established sockets on ``ports`` as plain `ss -tn state established` lists them (no filter)."""
    out = subprocess.run(["ss", "-Htn", "state", "established"], check=True, capture_output=True,
                         text=True).stdout
    wanted = {f":{p}" for p in ports}
    count = 0
    for line in out.splitlines():
        local, peer = line.split()[-2:]
        if local[local.rfind(":"):] in wanted or peer[peer.rfind(":"):] in wanted:
            count += 1
    return count


def test_holds_both_ends_of_every_connection_and_closes_them_all_on_exit() -> None:
    """500 connections over two worker pairs show as 1000 established sockets, and none after exit."""
    with LoadGen(connections=500, per_worker=300) as lg:
        ports = list(lg.ports)
        assert len(ports) == 2
        assert lg.sockets == 1000
        assert _established_on(ports) >= 1000
        assert count_established(ports) == 1000
    assert _established_on(ports) == 0


def test_stop_is_idempotent_and_an_interrupted_start_leaves_no_worker() -> None:
    """A failed start tears down what it began; stop() can be called again safely."""
    lg = LoadGen(connections=50, timeout_s=0.0)
    with pytest.raises(Exception, match="timed out"):
        lg.start()
    lg.stop()
    assert _established_on(lg.ports) == 0


def test_measure_reports_the_childs_own_cpu_and_memory() -> None:
    """A child that burns CPU and touches 64 MiB is charged that, not the harness's own usage."""
    burn = "x = bytearray(64 << 20); import time; t = time.process_time()\nwhile time.process_time() - t < 0.2: pass"
    run = run_once([sys.executable, "-c", burn])
    assert run.cpu_s >= 0.2
    assert 64 << 20 <= run.max_rss_bytes < 200 << 20
    summary = measure(["true"], 3)
    assert len(summary.runs) == 3
    assert summary.cpu_s.min <= summary.cpu_s.median
    assert os.path.exists("/proc/self")
