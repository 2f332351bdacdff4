"""Churn driver for the namespace-churn test: run as ``unshare --net --mount --pid --fork --mount-proc
python netns_churn.py SECONDS``, so that ``--netns all`` sees only the namespaces this program makes
(its own /proc, its own /run/netns), not the host's busy one.

It runs the service in this process (``--netns all``, a poll every 0.2 s, null sink) while a thread
creates and deletes namespaces every 100 ms, alternating named ones (``ip netns add``) and unnamed
ones (a process started with ``unshare -n``). Then it removes them all, lets two more polls run and
looks at its own /proc/self/fd: every netlink socket the service holds is asked which namespace it
is in (SIOCGSKNS), so a socket that pins a deleted namespace shows up. It prints one JSON report.
"""

from __future__ import annotations

import asyncio
import collections
import fcntl
import json
import logging
import os
import socket
import subprocess
import sys
import threading
import time
from typing import Any

from xtcp_async.config import load_config
from xtcp_async.service import Service

#: ioctl(2) on a socket: an fd of the network namespace the socket belongs to (linux/sockios.h).
SIOCGSKNS = 0x894C
KEEP = 3  # namespaces of each kind alive at a time


def fd_table() -> dict[int, str]:
    """This process's open fds and what they point at."""
    out = {}
    for name in os.listdir("/proc/self/fd"):
        try:
            out[int(name)] = os.readlink(f"/proc/self/fd/{name}")
        except OSError:
            continue  # the fd of the listing itself
    return out


def netlink_namespaces() -> list[int]:
    """The namespace inode of every AF_NETLINK socket this process holds (one entry per socket)."""
    inodes = []
    for fd, target in fd_table().items():
        if not target.startswith("socket:"):
            continue
        try:
            s = socket.socket(fileno=os.dup(fd))
        except OSError:
            continue
        try:
            if s.family != socket.AF_NETLINK:
                continue
            nsfd = fcntl.ioctl(s.fileno(), SIOCGSKNS)
            try:
                inodes.append(os.fstat(nsfd).st_ino)
            finally:
                os.close(nsfd)
        finally:
            s.close()
    return inodes


class Churn(threading.Thread):
    """Every 100 ms: one namespace made, and the oldest of its kind removed once KEEP are alive."""

    def __init__(self) -> None:
        super().__init__(name="churn", daemon=True)
        self.stop = threading.Event()
        self.named: collections.deque[str] = collections.deque()
        self.holders: collections.deque[subprocess.Popen[bytes]] = collections.deque()
        self.created: set[int] = set()
        self.made = self.removed = 0
        self._n = 0

    def run(self) -> None:
        while not self.stop.is_set():
            t0 = time.monotonic()
            self._n += 1
            if self._n % 2:
                name = f"i10churn-{self._n}"
                subprocess.run(["ip", "netns", "add", name], check=True)
                self.created.add(os.stat(f"/run/netns/{name}").st_ino)
                self.named.append(name)
                if len(self.named) > KEEP:
                    self._del_named(self.named.popleft())
            else:
                proc = subprocess.Popen(["unshare", "-n", "sleep", "600"])
                deadline = time.monotonic() + 5
                while os.stat(f"/proc/{proc.pid}/ns/net").st_ino == os.stat("/proc/self/ns/net").st_ino:
                    assert time.monotonic() < deadline, "unshare did not make a namespace"
                    time.sleep(0.002)  # until unshare(2) has run in the child
                self.created.add(os.stat(f"/proc/{proc.pid}/ns/net").st_ino)
                self.holders.append(proc)
                if len(self.holders) > KEEP:
                    self._kill(self.holders.popleft())
            self.made += 1
            self.stop.wait(max(0.0, 0.1 - (time.monotonic() - t0)))

    def _del_named(self, name: str) -> None:
        subprocess.run(["ip", "netns", "del", name], check=True)
        self.removed += 1

    def _kill(self, proc: subprocess.Popen[bytes]) -> None:
        proc.kill()
        proc.wait()
        self.removed += 1

    def remove_all(self) -> None:
        while self.named:
            self._del_named(self.named.popleft())
        while self.holders:
            self._kill(self.holders.popleft())


class ErrorCount(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


async def wait_polls(service: Service, n: int, timeout_s: float = 20.0) -> None:
    target = service.stats.polls + n
    deadline = time.monotonic() + timeout_s
    while service.stats.polls < target:
        if time.monotonic() > deadline:
            raise TimeoutError(f"no {n} polls within {timeout_s}s")
        await asyncio.sleep(0.05)


async def main(seconds: float) -> dict[str, Any]:
    errors = ErrorCount()
    logging.getLogger().addHandler(errors)
    self_ns = os.stat("/proc/self/ns/net").st_ino
    fds_before = len(fd_table())
    cfg = load_config({"netns": "all", "interval": 0.2, "poll_timeout": 0.15, "sink": ["null://"],
                       "metrics_listen": "", "log_level": "warning"})
    service = Service(cfg)
    run = asyncio.create_task(service.run())
    await wait_polls(service, 2)
    steady_fds, steady_netlink = len(fd_table()), netlink_namespaces()
    churn = Churn()
    churn.start()
    polls0 = service.stats.polls
    most_polled = 0
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        most_polled = max(most_polled, service.stats.netns_polled)
        await asyncio.sleep(0.05)
    churn.stop.set()
    await asyncio.to_thread(churn.join)
    polls_during = service.stats.polls - polls0
    await asyncio.to_thread(churn.remove_all)
    await wait_polls(service, 2)
    after_fds, after_netlink = len(fd_table()), netlink_namespaces()
    registry = service.poller.namespaces.registry if service.poller.namespaces else None
    held = sorted(nid[1] for nid in registry.entries) if registry else []
    service.on_signal(15)
    result = await run
    return {
        "self_ns": self_ns, "created": len(churn.created), "made": churn.made, "removed": churn.removed,
        "polls_during_churn": polls_during, "most_namespaces_polled": most_polled,
        "fds_before_service": fds_before, "fds_steady": steady_fds,
        "fds_after_churn": after_fds, "fds_after_service": len(fd_table()),
        "netlink_ns_steady": steady_netlink, "netlink_ns_after_churn": after_netlink,
        "deleted_still_pinned": sorted(churn.created & set(after_netlink)),
        "deleted_still_held": sorted(churn.created & set(held)),
        "errors": errors.lines, "undelivered": result.undelivered, "stats": service.stats.as_dict(),
    }


if __name__ == "__main__":
    os.makedirs("/run/netns", exist_ok=True)
    # This mount namespace's own /run/netns: `ip netns add` here is invisible to the host, and the
    # host's names are invisible here.
    subprocess.run(["mount", "-t", "tmpfs", "xtcp-i10-churn", "/run/netns"], check=True)
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
    report = asyncio.run(main(float(sys.argv[1])))
    print(json.dumps(report, default=str))
