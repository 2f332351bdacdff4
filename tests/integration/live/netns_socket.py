"""A sock_diag socket opened inside a test namespace, for in-process polls of that namespace.

A netlink socket belongs to the network namespace of the thread that created it, so a helper
thread enters the namespace (setns), opens the socket and exits; the socket keeps talking to
that namespace from any thread. Lets one test run hundreds of filtered dumps without spawning a
collector process per dump.
"""

from __future__ import annotations

import ctypes
import os
import threading
from collections.abc import Callable
from typing import TypeVar

CLONE_NEWNET = 0x40000000
T = TypeVar("T")


def in_netns(name: str, fn: Callable[[], T]) -> T:
    """Run ``fn`` on a thread that has entered the namespace ``ip netns`` calls ``name``."""
    libc = ctypes.CDLL(None, use_errno=True)
    result: list[T] = []
    error: list[BaseException] = []

    def run() -> None:
        try:
            fd = os.open(f"/var/run/netns/{name}", os.O_RDONLY)
            try:
                if libc.setns(fd, CLONE_NEWNET) != 0:
                    raise OSError(ctypes.get_errno(), "setns failed")
            finally:
                os.close(fd)
            result.append(fn())
        except BaseException as exc:  # handed to the caller's thread
            error.append(exc)

    # The thread ends after fn: a thread that entered another namespace never runs other work.
    t = threading.Thread(target=run, name=f"netns:{name}")
    t.start()
    t.join()
    if error:
        raise error[0]
    return result[0]
