"""Without the compiled core the service runs the numpy paths, says so once at start-up, and loses nothing."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from .harness import Netns, Traffic, collector_argv, read_jsonl

pytestmark = pytest.mark.root


def _run(ns: Netns, out: Path, native: str) -> tuple[list[str], int]:
    """(warning lines on stderr, records written) of one --once run with XTCP_NATIVE=native."""
    env = {**os.environ, "XTCP_NATIVE": native}
    proc = ns.popen([*collector_argv(), "--once", "--sink", f"file://{out}?format=jsonl", "--metrics-listen", ""],
                    stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    return [line for line in err.splitlines() if "WARNING" in line], len(read_jsonl(out))


@pytest.mark.timeout(180)
def test_numpy_fallback_warns_once_and_writes_every_record(netns: Netns, traffic: Traffic, tmp_path: Path) -> None:
    """XTCP_NATIVE=0: one start-up warning naming the numpy paths; the same records as with the core."""
    warned, n_numpy = _run(netns, tmp_path / "numpy.jsonl", "0")
    assert len([w for w in warned if "numpy" in w]) == 1
    quiet, n_core = _run(netns, tmp_path / "core.jsonl", "1")
    assert not [w for w in quiet if "numpy" in w]
    assert n_numpy == n_core > 0
