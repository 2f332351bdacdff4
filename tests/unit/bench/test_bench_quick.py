"""Spec for `python -m bench --quick`: the whole harness runs end to end at 2k sockets."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[3]


@pytest.mark.slow
@pytest.mark.skipif(sys.platform != "linux", reason="loopback sockets, ss and netlink are Linux-only")
def test_quick_run_writes_every_row_for_one_small_size(tmp_path: Path) -> None:
    """The quick run measures ss and the raw dump at 2000 sockets and writes them to the JSON file."""
    out = tmp_path / "latest.json"
    subprocess.run([sys.executable, "-m", "bench", "--quick", "--out", str(out)], cwd=REPO_ROOT,
                   check=True, capture_output=True, timeout=300)
    doc = json.loads(out.read_text())
    assert doc["machine"]["nproc"] >= 1
    (size,) = doc["sizes"]
    assert size["sockets"] == 2000
    rows = size["rows"]
    for key in ("ss", "floor_stdlib"):
        assert rows[key]["status"] == "ok"
        assert rows[key]["cpu_s"]["min"] > 0
    assert set(rows) >= {"ss", "floor_stdlib", "floor_project", "service_null_pblist", "service_file_jsonl",
                         "write_floor_jsonl"}
    assert rows["write_floor_jsonl"]["bytes_per_poll"] > 2000 * 1000  # ~3 KB of jsonl per socket


@pytest.mark.slow
@pytest.mark.skipif(sys.platform != "linux", reason="loopback sockets, ss and netlink are Linux-only")
def test_replay_records_a_dump_once_and_pushes_exactly_the_asked_rows_through(tmp_path: Path) -> None:
    """Replay records a small dump, then decodes and encodes it replicated to the requested count."""
    out = tmp_path / "replay.json"
    dump = tmp_path / "dump.bin"
    subprocess.run([sys.executable, "-m", "bench", "replay", "--sockets", "5000", "--record-sockets", "1000",
                    "--dump", str(dump), "--repeat", "1", "--out", str(out)], cwd=REPO_ROOT, check=True,
                   capture_output=True, timeout=300)
    assert dump.stat().st_size > 0
    doc = json.loads(out.read_text())
    for fmt in ("protobuf-list", "jsonl"):
        (run,) = doc["formats"][fmt]["runs"]
        assert run["rows"] == 5000
        assert run["payload_bytes"] > 0
