"""Test-side handle on a chdb worker process (tests/support/chdb_worker.py), and the deploy/
ClickHouse files applied the way the README says."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
DDL_DIR = ROOT / "deploy" / "clickhouse"
QUERY_DIR = DDL_DIR / "queries"
PROTO = ROOT / "proto" / "xtcp_flat_record.proto"


class ClickHouseError(RuntimeError):
    """ClickHouse refused a statement."""


class ClickHouse:
    """One chdb session in a child process whose working directory is ``schema_dir``."""

    def __init__(self, data_dir: Path, schema_dir: Path) -> None:
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        self.proc = subprocess.Popen([sys.executable, "-m", "tests.support.chdb_worker", str(data_dir)],
                                     cwd=schema_dir, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     text=True)

    def query(self, sql: str, params: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        """Rows of ``sql`` (as ClickHouse's JSON format gives them; UInt64 come as strings)."""
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(json.dumps({"sql": sql, "params": params}) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            raise ClickHouseError(f"chdb worker exited ({self.proc.poll()})")
        answer = json.loads(line)
        if not answer["ok"]:
            raise ClickHouseError(answer["error"])
        data = answer["data"]
        return list(data["data"]) if data else []

    def scalar(self, sql: str) -> int:
        (row,) = self.query(sql)
        (value,) = row.values()
        return int(value)

    def wait_for(self, sql: str, at_least: int, timeout_s: float) -> int:
        """Poll a count query until it reaches ``at_least`` (returns the last count at the deadline)."""
        deadline = time.monotonic() + timeout_s
        while True:
            n = self.scalar(sql)
            if n >= at_least or time.monotonic() > deadline:
                return n
            time.sleep(0.5)

    def close(self) -> None:
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        if self.proc.stdout is not None:
            self.proc.stdout.close()


def ddl_files() -> list[Path]:
    """The schema files in the order the README applies them (their names sort in that order)."""
    return sorted(DDL_DIR.glob("[0-9][0-9]_*.sql"))


def query_files() -> list[Path]:
    return sorted(QUERY_DIR.glob("*.sql"))
