"""Namespaces for the ``--netns`` live tests: named ones (``ip netns add``) and unnamed ones that
exist only because a process started with ``unshare -n`` is in them."""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from .harness import Netns, stop_started

#: --netns all from the host also dumps the host's own namespace, which on a shared machine may hold
#: a benchmark's 260k sockets (a 4 s dump); the default 5 s poll timeout is not about our namespaces.
HOST_TIMEOUT = ("--poll-timeout", "60")


@dataclass
class UnnamedNetns:
    """A network namespace held only by the process started in it (``unshare -n``, no name)."""

    started: list[subprocess.Popen[str]] = field(default_factory=list)

    def argv(self, argv: Sequence[str | os.PathLike[str]]) -> list[str]:
        """``argv`` run in a new namespace of its own with lo up: exec keeps the pid, so ``pid`` is in it."""
        return ["unshare", "-n", "sh", "-c", 'ip link set lo up && exec "$@"', "sh", *map(str, argv)]

    def popen(self, argv: Sequence[str | os.PathLike[str]], **kwargs: Any) -> subprocess.Popen[str]:
        """Start the holding process (only one per namespace: a second would make a second namespace)."""
        assert not self.started, "an unnamed namespace has exactly one holder here"
        proc = subprocess.Popen(self.argv(argv), text=True, **kwargs)
        self.started.append(proc)
        # Until unshare(2) has run in the child, its /proc/PID/ns/net is still ours.
        own = inode("/proc/self/ns/net")
        deadline = time.monotonic() + 10
        while inode(self.path) == own:
            if time.monotonic() > deadline:
                raise RuntimeError("unshare -n did not make a namespace")
            time.sleep(0.002)
        return proc

    @property
    def pid(self) -> int:
        return self.started[0].pid

    @property
    def path(self) -> str:
        return f"/proc/{self.pid}/ns/net"

    def enter(self, argv: Sequence[str | os.PathLike[str]]) -> list[str]:
        """``argv`` run inside this namespace from outside (nsenter)."""
        return ["nsenter", "-t", str(self.pid), "-n", *map(str, argv)]

    def delete(self) -> None:
        """Kill the holder: the namespace goes with it (idempotent)."""
        stop_started(self.started)


def inode(path: str) -> int:
    return os.stat(path).st_ino


def named_enter(ns: Netns, argv: Sequence[str | os.PathLike[str]]) -> list[str]:
    """``argv`` run inside a named namespace (like ``ss -N NAME``)."""
    return ns.argv(argv)


def run_text(argv: list[str]) -> str:
    """stdout of ``argv``; RuntimeError with its stderr when it fails."""
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} exited {proc.returncode}: {proc.stderr.strip()}")
    return proc.stdout
