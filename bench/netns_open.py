"""How to open a NETLINK_SOCK_DIAG socket inside another network namespace, timed three ways.

1. a fresh thread per namespace: setns, socket(), bind, exit (the thread is left inside);
2. one fresh thread for a whole batch of namespaces (what xtcp_async.netns.registry does);
3. a forked helper process: it receives a namespace path over a unix socket, setns()es, makes the
   socket and passes the fd back with SCM_RIGHTS (start-up reported separately).
"""

from __future__ import annotations

import array
import os
import socket
import statistics
import subprocess
import sys
import threading
import time
from typing import Any

HELPER = r"""
import array, os, socket, sys
from xtcp_async.netns.enter import CLONE_NEWNET, _setns
from xtcp_async.netlink.socket import new_diag_socket
chan = socket.socket(fileno=int(sys.argv[1]))
while True:
    path = chan.recv(4096)
    if not path:
        break
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    _setns(fd, CLONE_NEWNET)
    os.close(fd)
    s = new_diag_socket()
    chan.sendmsg([b"k"], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", [s.fileno()]))])
    s.close()
"""


def _open_in(path: str) -> socket.socket:
    from xtcp_async.netlink.socket import new_diag_socket
    from xtcp_async.netns.enter import CLONE_NEWNET, _setns

    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        _setns(fd, CLONE_NEWNET)
    finally:
        os.close(fd)
    return new_diag_socket()


def _thread_each(paths: list[str]) -> list[float]:
    times = []
    for path in paths:
        got: list[socket.socket] = []
        t0 = time.perf_counter()
        t = threading.Thread(target=lambda p=path, g=got: g.append(_open_in(p)))
        t.start()
        t.join()
        times.append(time.perf_counter() - t0)
        got[0].close()
    return times


def _thread_batch(paths: list[str]) -> list[float]:
    got: list[socket.socket] = []
    t0 = time.perf_counter()
    t = threading.Thread(target=lambda: got.extend(_open_in(p) for p in paths))
    t.start()
    t.join()
    per = (time.perf_counter() - t0) / len(paths)
    for s in got:
        s.close()
    return [per]


def _helper(paths: list[str]) -> tuple[list[float], float]:
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    t0 = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-c", HELPER, str(theirs.fileno())], pass_fds=[theirs.fileno()])
    theirs.close()
    times = []
    try:
        for i, path in enumerate(paths):
            t1 = time.perf_counter()
            ours.send(path.encode())
            fds = array.array("i")
            _, anc, _, _ = ours.recvmsg(1, socket.CMSG_LEN(fds.itemsize))
            fds.frombytes(anc[0][2][: fds.itemsize])
            sock = socket.socket(fileno=fds[0])
            if i == 0:
                startup = time.perf_counter() - t0  # includes the first round trip
            else:
                times.append(time.perf_counter() - t1)
            sock.close()
    finally:
        ours.close()
        proc.wait(timeout=30)
    return times, startup


def measure_open_methods(pids: list[int]) -> dict[str, Any]:
    paths = [f"/proc/{pid}/ns/net" for pid in pids]
    each = _thread_each(paths)
    batch = [_thread_batch(paths)[0] for _ in range(5)]
    helper, startup = _helper(paths)

    def us(values: list[float]) -> dict[str, float]:
        return {"us_min": min(values) * 1e6, "us_median": statistics.median(values) * 1e6}

    return {"namespaces": len(paths), "methods": {
        "a fresh thread per namespace (setns, socket, bind)": us(each),
        "one fresh thread for all of them (xtcp_async's way)": us(batch),
        "forked helper, fd back over SCM_RIGHTS (per round trip)": us(helper),
        "forked helper: its start-up + first round trip": us([startup]),
    }}
