"""Network namespaces, the traffic program and the collector, driven as subprocesses for the live tests.

Everything runs inside a namespace this module creates (``ip netns add``) and always deletes, so
the tests never see or disturb the host's sockets. Also used by ``tests/data/record_capture.py``.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import select
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

NS_PREFIX = "xtcp-live-"
TRAFFIC_PROGRAM = Path(__file__).with_name("traffic.py")
READY_TIMEOUT_S = 30.0


def netns_unavailable_reason() -> str | None:
    """Why network namespaces cannot be made here, or None when they can."""
    if not sys.platform.startswith("linux"):
        return "network namespaces are Linux only"
    if os.geteuid() != 0:
        return "creating network namespaces needs root"
    for tool in ("ip", "ss"):
        if shutil.which(tool) is None:
            return f"`{tool}` (iproute2) is not installed"
    return None


def skip_or_fail(reason: str) -> None:
    """Skip the calling test with ``reason``, but fail it under CI, where every live test must run."""
    if os.environ.get("CI"):
        pytest.fail(f"{reason}; CI must run the live tests", pytrace=False)
    pytest.skip(reason=reason)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@dataclass
class Netns:
    """A network namespace made by this test run (its name carries our pid)."""

    name: str
    started: list[subprocess.Popen[str]] = field(default_factory=list)

    @classmethod
    def create(cls) -> Netns:
        """A fresh namespace with ``lo`` up; raises RuntimeError when it cannot be made."""
        remove_stale_namespaces()
        ns = cls(f"{NS_PREFIX}{os.getpid()}-{secrets.token_hex(4)}")
        _ip("netns", "add", ns.name)
        try:
            _ip("-n", ns.name, "link", "set", "lo", "up")
        except RuntimeError:
            ns.delete()
            raise
        return ns

    def argv(self, argv: Sequence[str | os.PathLike[str]]) -> list[str]:
        """``argv`` wrapped to run inside this namespace."""
        return ["ip", "netns", "exec", self.name, *map(str, argv)]

    def run(self, argv: Sequence[str | os.PathLike[str]], *, timeout_s: float = 60.0) -> str:
        """Run ``argv`` in the namespace; its stdout, or RuntimeError with its stderr when it fails."""
        proc = subprocess.run(self.argv(argv), capture_output=True, text=True, timeout=timeout_s, check=False)
        if proc.returncode != 0:
            raise RuntimeError(f"{' '.join(map(str, argv))} exited {proc.returncode}: {proc.stderr.strip()}")
        return proc.stdout

    def popen(self, argv: Sequence[str | os.PathLike[str]], **kwargs: Any) -> subprocess.Popen[str]:
        """Start ``argv`` in the namespace; it is killed by ``delete()`` if still running."""
        proc = subprocess.Popen(self.argv(argv), text=True, **kwargs)
        self.started.append(proc)
        return proc

    def delete(self) -> None:
        """Stop what we started in the namespace, then remove it (idempotent)."""
        stop_started(self.started)
        # Anything still inside was started by us (the namespace is ours alone): end it by pid.
        pids = subprocess.run(["ip", "netns", "pids", self.name], capture_output=True, text=True, check=False)
        for pid in (int(p) for p in pids.stdout.split() if p.isdigit()):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        subprocess.run(["ip", "netns", "del", self.name], capture_output=True, check=False)


def stop_started(started: list[subprocess.Popen[str]]) -> None:
    """Kill each process still running, reap it, close its pipes; empty the list."""
    for proc in started:
        if proc.poll() is None:
            proc.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=10)
        for stream in (proc.stdin, proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()
    started.clear()


def _ip(*args: str) -> None:
    proc = subprocess.run(["ip", *args], capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"ip {' '.join(args)} failed: {proc.stderr.strip()}")


def remove_stale_namespaces() -> None:
    """Delete namespaces left by earlier test runs that were killed before their teardown."""
    listing = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=False).stdout
    for m in re.finditer(rf"^({re.escape(NS_PREFIX)}(\d+)-[0-9a-f]+)\b", listing, re.M):
        if int(m.group(2)) != os.getpid() and not _pid_alive(int(m.group(2))):
            Netns(m.group(1)).delete()


@contextlib.contextmanager
def netns() -> Iterator[Netns]:
    """A fresh namespace for the block, removed afterwards even when the block fails."""
    ns = Netns.create()
    try:
        yield ns
    finally:
        ns.delete()


@dataclass
class Traffic:
    """The running traffic program and what it reported on its READY line."""

    proc: subprocess.Popen[str]
    info: dict[str, Any]

    def stop(self) -> None:
        """Close its stdin: it releases every socket and exits."""
        if self.proc.stdin is not None and not self.proc.stdin.closed:
            self.proc.stdin.close()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=10)


def start_traffic(ns: Netns, *, base_port: int = 40000) -> Traffic:
    """Run the traffic program in ``ns`` and wait until its sockets are made and quiescent."""
    env = {**os.environ, "XTCP_TRAFFIC_BASE_PORT": str(base_port)}
    proc = ns.popen([sys.executable, TRAFFIC_PROGRAM], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE, env=env)
    assert proc.stdout is not None
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline:
        ready, _, _ = select.select([proc.stdout], [], [], max(0.0, deadline - time.monotonic()))
        if not ready:
            break
        line = proc.stdout.readline()
        if not line:  # exited
            break
        if line.startswith("READY "):
            return Traffic(proc, json.loads(line[len("READY "):]))
    proc.kill()
    _, err = proc.communicate(timeout=10)
    raise RuntimeError(f"traffic program did not get ready (exit {proc.returncode}): {err.strip()[-2000:]}")


def collector_argv() -> list[str]:
    """The installed console script next to this interpreter, else ``python -m xtcp_async``."""
    script = Path(sys.executable).with_name("xtcp-async")
    return [str(script)] if script.exists() else [sys.executable, "-m", "xtcp_async"]


def run_collector(ns: Netns, out: Path, *args: str, timeout_s: float = 60.0) -> list[dict[str, Any]]:
    """Run the collector in ``ns`` with a jsonl file sink and ``args``; the records it wrote."""
    ns.run([*collector_argv(), "--sink", f"file://{out}?format=jsonl", "--metrics-listen", "", *args],
           timeout_s=timeout_s)
    return read_jsonl(out)


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """One dict per line of a jsonl file (an absent file is no records)."""
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
