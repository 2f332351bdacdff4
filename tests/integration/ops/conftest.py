"""A real xtcp-async process (live netlink) with its metrics listener, and a real nsqd."""

from __future__ import annotations

import itertools
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.brokers.nsqd import Nsqd, ensure_nsq_installed, free_port

REPO_ROOT = Path(__file__).resolve().parents[3]


def eventually(condition: Callable[[], bool], timeout_s: float = 15.0, what: str = "condition") -> None:
    """Poll ``condition`` every 50 ms until it holds; fail naming ``what`` after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.05)
    pytest.fail(f"timed out after {timeout_s}s waiting for {what}")


class Xtcp:
    """One `python -m xtcp_async` subprocess with a metrics port, a log file and a stats file."""

    def __init__(self, workdir: Path, args: list[str]) -> None:
        self.port = free_port()
        self.log_path = workdir / "xtcp.log"
        self.stats_path = workdir / "stats.json"
        env = {k: v for k, v in os.environ.items() if not k.startswith("XTCP_")}
        env["PYTHONUNBUFFERED"] = "1"
        self.argv = [sys.executable, "-m", "xtcp_async", "--metrics-listen", f"127.0.0.1:{self.port}",
                     "--stats-json", str(self.stats_path), *args]
        with self.log_path.open("wb") as log:
            self.proc = subprocess.Popen(self.argv, stdout=subprocess.DEVNULL, stderr=log,
                                         stdin=subprocess.DEVNULL, env=env, cwd=REPO_ROOT)
        eventually(lambda: self.get("/healthz")[0] == 200 or self.proc.poll() is not None, 20,
                   "the listener to answer")
        if self.proc.poll() is not None:
            pytest.fail(f"xtcp-async exited with {self.proc.returncode}:\n{self.log()}")

    def get(self, path: str) -> tuple[int, str]:
        """(status, body) of GET path; (0, error) when nothing answers."""
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}{path}", timeout=5) as resp:
                return resp.status, resp.read().decode()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read().decode()
        except OSError as exc:
            return 0, str(exc)

    def scrape(self) -> dict[str, dict[tuple[tuple[str, str], ...], float]]:
        """sample name → {sorted labels → value} from /metrics."""
        status, text = self.get("/metrics")
        assert status == 200, text
        out: dict[str, dict[tuple[tuple[str, str], ...], float]] = {}
        for fam in text_string_to_metric_families(text):
            for s in fam.samples:
                out.setdefault(s.name, {})[tuple(sorted(s.labels.items()))] = s.value
        return out

    def signal(self, sig: signal.Signals) -> None:
        self.proc.send_signal(sig)

    def wait(self, timeout_s: float) -> int | None:
        """The exit code, or None if the process is still running after ``timeout_s``."""
        try:
            return self.proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            return None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stats(self) -> dict[str, Any]:
        data: dict[str, Any] = json.loads(self.stats_path.read_text())
        return data

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)


@pytest.fixture
def xtcp(tmp_path: Path) -> Iterator[Callable[..., Xtcp]]:
    """Start xtcp-async with the given flags (after a fast poll schedule); killed after the test."""
    started: list[Xtcp] = []
    numbers = itertools.count()

    def start(*args: str, all_states: bool = False) -> Xtcp:
        workdir = tmp_path / f"xtcp{next(numbers)}"
        workdir.mkdir()
        # Other suites on this 2-core machine hold ~20k sockets; a full dump plus encode then
        # comes close to the 0.4 s poll timeout, and a failed poll makes /readyz 503 for a
        # reason that is not the one under test. Listening sockets only (kernel-side filter)
        # keeps polls short; the metrics test dumps every state.
        states = [] if all_states else ["--states", "listen"]
        proc = Xtcp(workdir, ["--interval", "0.5", "--poll-timeout", "0.4", *states, *args])
        started.append(proc)
        return proc

    yield start
    for proc in started:
        proc.kill()


@pytest.fixture
def nsqd(tmp_path: Path) -> Iterator[Nsqd]:
    """A running nsqd on free loopback ports (killed, and resumed if stopped, after the test)."""
    try:
        bin_dir = ensure_nsq_installed()
    except (RuntimeError, OSError) as exc:
        if os.environ.get("CI"):
            pytest.fail(f"nsqd is required under CI: {exc}")
        pytest.skip(reason=f"nsqd not available (needs Go and the Go module proxy): {exc}")
    daemon = Nsqd(bin_dir, tmp_path / "nsqd")
    daemon.start()
    yield daemon
    if daemon.proc is not None and daemon.proc.poll() is None:
        daemon.proc.send_signal(signal.SIGCONT)
    daemon.kill()
