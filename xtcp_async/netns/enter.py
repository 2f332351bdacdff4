"""Open a NETLINK_SOCK_DIAG socket inside another network namespace.

A socket belongs to the namespace its creator was in when it called socket(2), and keeps it
for life; after that it is read like any other fd (``loop.add_reader`` on the event loop). So
only socket creation needs to happen "inside": setns(2) changes the namespace of the calling
*thread* only, so a short-lived thread enters, creates the sockets and exits, and nothing else
in the process ever runs in a foreign namespace. (A thread pool's thread must not be used: it
would be reused, still inside.) docs/bench.md and bench/netns_open.py measure this against a
forked helper that passes the fd back over a unix socket.

setns into a network namespace needs CAP_SYS_ADMIN (in the namespace's owning user namespace);
opening ``/proc/PID/ns/net`` of another user's process needs CAP_SYS_PTRACE.
"""

from __future__ import annotations

import asyncio
import ctypes
import errno
import os
import socket
import threading
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from xtcp_async.errors import NetlinkError
from xtcp_async.netlink.socket import new_diag_socket
from xtcp_async.netns.discover import NsId

CLONE_NEWNET = 0x40000000
T = TypeVar("T")


class NetnsGone(NetlinkError):
    """The namespace no longer exists (its processes exited, its name was deleted)."""


class NetnsDenied(NetlinkError):
    """The namespace exists but this process may not enter it (no CAP_SYS_ADMIN / CAP_SYS_PTRACE)."""


def _libc_setns() -> Callable[[int, int], None]:
    native = getattr(os, "setns", None)  # Python 3.12+
    if native is not None:
        return native  # type: ignore[no-any-return]
    libc = ctypes.CDLL(None, use_errno=True)

    def setns(fd: int, nstype: int) -> None:
        if libc.setns(fd, nstype) != 0:
            err = ctypes.get_errno()
            raise OSError(err, os.strerror(err))

    return setns


_setns = _libc_setns()


def enter_and_open(paths: Sequence[str], expect: NsId, rcvbuf_bytes: int) -> socket.socket:
    """A sock_diag socket in the namespace ``expect``, reached through the first of ``paths`` that
    still leads to it. Leaves the calling thread in that namespace: call it only in a thread
    that ends afterwards (:func:`in_fresh_thread`)."""
    denied: OSError | None = None
    for path in paths:
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        except (FileNotFoundError, ProcessLookupError):
            continue
        except PermissionError as exc:
            denied = exc
            continue
        try:
            st = os.fstat(fd)
            if (st.st_dev, st.st_ino) != expect:
                continue  # the pid was reused, or the name now holds another namespace
            try:
                _setns(fd, CLONE_NEWNET)
            except OSError as exc:
                if exc.errno in (errno.EPERM, errno.EACCES):
                    raise NetnsDenied(f"cannot enter network namespace {path}: {exc.strerror}",
                                      exc.errno) from None
                raise NetlinkError(f"setns({path}) failed: {exc.strerror}", exc.errno or 0) from None
        finally:
            os.close(fd)
        return new_diag_socket(rcvbuf_bytes)
    if denied is not None:
        raise NetnsDenied(f"cannot open network namespace {paths[0] if paths else '?'}: {denied.strerror}",
                          denied.errno or 0)
    raise NetnsGone(f"network namespace inode {expect[1]} is gone", errno.ENOENT)


def _thread(fn: Callable[[], T], deliver: Callable[[T | None, BaseException | None], None]) -> threading.Thread:
    def target() -> None:
        try:
            result = fn()
        except BaseException as exc:  # handed to the waiter, which re-raises it
            deliver(None, exc)
        else:
            deliver(result, None)

    return threading.Thread(target=target, name="xtcp-netns", daemon=True)


def run_in_fresh_thread(fn: Callable[[], T]) -> T:
    """Run ``fn`` in a new thread that ends with it and wait (blocking) for its result."""
    box: list[Any] = []
    t = _thread(fn, lambda res, exc: box.append((res, exc)))
    t.start()
    t.join()
    res, exc = box[0]
    if exc is not None:
        raise exc
    return res  # type: ignore[no-any-return]


async def in_fresh_thread(fn: Callable[[], T], discard: Callable[[T], None]) -> T:
    """Await ``fn`` run in a new thread that ends with it. If the waiter is cancelled first, the
    late result is handed to ``discard`` (e.g. to close the sockets it opened)."""
    loop = asyncio.get_running_loop()
    fut: asyncio.Future[T] = loop.create_future()

    def settle(res: T | None, exc: BaseException | None) -> None:
        if fut.cancelled():
            if res is not None:
                discard(res)
        elif exc is not None:
            fut.set_exception(exc)
        else:
            fut.set_result(res)  # type: ignore[arg-type]

    def deliver(res: T | None, exc: BaseException | None) -> None:
        try:
            loop.call_soon_threadsafe(settle, res, exc)
        except RuntimeError:  # the loop closed meanwhile: nobody waits, nothing to hand over
            if res is not None:
                discard(res)

    _thread(fn, deliver).start()
    return await fut
