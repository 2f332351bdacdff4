"""The kernel boundary: the only module that makes netlink syscalls.

One non-blocking AF_NETLINK/NETLINK_SOCK_DIAG socket read through ``loop.add_reader``. Each
reader callback does at most ``max_recvs_per_callback`` recvs so a 60 MB dump never stalls the
event loop for long; chunks wait in a small bounded deque, and when it is full the reader is
removed, which leaves the rest of the dump in the kernel (netlink builds the next chunk only
when we recv) — backpressure costs nothing.
"""

from __future__ import annotations

import asyncio
import collections
import errno as errno_mod
import os
import select
import socket
import struct
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

from xtcp_async.errors import NetlinkError, PollTimeoutError
from xtcp_async.netlink import constants as c
from xtcp_async.netlink.request import dump_request

_HDR = struct.Struct("<IHHII")
_ERRNO = struct.Struct("<i")
#: nlmsghdr + the int error code: NLMSG_DONE without extended-ack attributes.
_DONE_LEN = 20
#: Budget granted again, and again, while the kernel's reply waits on the socket (see
#: DiagSocket._budget_after_timeout): short, so a dump that really stalls still fails soon.
KERNEL_AHEAD_GRACE_S = 0.05


@dataclass
class Chunk:
    """The bytes of one recv (whole netlink messages) and when they were read."""

    data: bytes
    read_ns: int


@dataclass
class DumpStatus:
    """What one dump did, filled in while it runs."""

    family: int
    chunks: int = 0
    bytes_read: int = 0
    recvs: int = 0
    #: NLM_F_DUMP_INTR was set on some message: not a consistent snapshot.
    interrupted: bool = False
    #: Messages with another sequence number or port id (left over from an abandoned dump).
    stale_messages: int = 0
    done: bool = False


class DiagSocket:
    """A sock_diag socket that runs one dump at a time."""

    def __init__(self, *, recv_buffer_bytes: int = 64 * 1024, max_recvs_per_callback: int = 4,
                 max_pending_chunks: int = 16, rcvbuf_bytes: int = 1 << 20,
                 opener: Callable[[int], socket.socket] | None = None,
                 prefetch_bytes: int = 0) -> None:
        # ≥32 KiB: the kernel sizes later dump chunks by our last recv (up to 32 KiB). Each recv
        # gets a fresh bytes object of this size, shrunk in place to what arrived: no buffer is
        # kept per socket (issue 10: hundreds of namespaces' sockets), and no copy is made out of
        # one (that copy was the size of the whole dump, ~60 MB per 120k-socket poll).
        self._buf_bytes = max(recv_buffer_bytes, 32 * 1024)
        #: Makes a bound socket (given SO_RCVBUF); None: one in the caller's namespace.
        self._opener = opener
        #: issue 10: read up to this many bytes in the thread that sends the request, before the
        #: event loop's reader takes over (0: none). In a namespace other than the host's, each
        #: recv that makes the kernel continue a dump walks the host-wide TCP hash table again
        #: (sockets of every namespace share it), ~3-30 ms however few sockets the namespace has;
        #: on the loop, 8 such dumps side by side were 40-200 ms stalls (docs/bench.md). A small
        #: namespace's whole dump now happens off the loop; a big one continues on the reader.
        self._prefetch = prefetch_bytes
        self._max_recvs = max_recvs_per_callback
        self._max_pending = max_pending_chunks
        self._rcvbuf = rcvbuf_bytes
        self._sock: socket.socket | None = None
        self._port_id = 0
        self._seq = int(time.time()) & 0x7FFFFFFF
        self.max_callback_s = 0.0

    def open(self) -> None:
        """Create and bind the socket (idempotent)."""
        if self._sock is None:
            sock = self._opener(self._rcvbuf) if self._opener is not None else new_diag_socket(self._rcvbuf)
            self._port_id = sock.getsockname()[0]
            self._sock = sock

    def close(self) -> None:
        """Close the socket (idempotent)."""
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    def _reopen(self) -> None:
        # After an abandoned dump the kernel may still hold part of it for this port id;
        # a fresh socket is the cheapest way to never read those bytes. It is made by the next
        # dump's open(): making it here could raise (a namespace gone) over the dump's own error.
        self.close()

    async def dump(self, family: int, *, states: int, ext: int, timeout_s: float,
                   status: DumpStatus | None = None, protocol: int = socket.IPPROTO_TCP,
                   bytecode: bytes = b"") -> AsyncIterator[Chunk]:
        """Yield the chunks of one dump of ``family`` until NLMSG_DONE.

        Raises NetlinkError on NLMSG_ERROR (with the errno) and PollTimeoutError when the dump
        does not finish within ``timeout_s``. ``bytecode``: a compiled filter program.
        """
        self.open()
        assert self._sock is not None
        sock = self._sock
        st = status or DumpStatus(family=family)
        self._seq = (self._seq + 1) & 0xFFFFFFFF
        seq = self._seq
        loop = asyncio.get_running_loop()
        pending: collections.deque[Chunk] = collections.deque()
        # What the dump waits on between reader callbacks: a bare future on the loop and a timer,
        # not asyncio.timeout() around an Event. Those look the running loop up again on every
        # wait, and on Python 3.11 each lookup is a getpid() syscall: ~4 per wait, ~500 waits
        # per 120k-socket poll (~2% of its CPU). True: the reader ran; False: the budget ran out.
        waiter: asyncio.Future[bool] | None = None

        def wake(readable: bool) -> None:
            if waiter is not None and not waiter.done():
                waiter.set_result(readable)
        failure: list[BaseException] = []
        fd = sock.fileno()
        reading = False
        bufsize = self._buf_bytes
        port_id = self._port_id
        fam = c.FAMILY_NAMES.get(family, f"family {family}")

        def take(data: bytes) -> bool:
            """Keep one recv's bytes; whether the dump goes on (not done, not failed, room left)."""
            st.recvs += 1
            st.bytes_read += len(data)
            if self._check(data, seq, port_id, st, failure):
                st.chunks += 1
                pending.append(Chunk(data, time.time_ns()))
            return not (st.done or failure or len(pending) >= self._max_pending)

        def recv_failed(exc: OSError) -> None:
            # ENOBUFS: the kernel dropped messages; the dump cannot be trusted.
            failure.append(NetlinkError(f"netlink recv failed: {os.strerror(exc.errno or 0)}", exc.errno or 0))

        def recv_once() -> bool:
            """One recv into the chunks; whether to read again right away."""
            try:
                data = sock.recv(bufsize)
            except (BlockingIOError, InterruptedError):
                return False
            except OSError as exc:
                recv_failed(exc)
                return False
            return len(data) > 0 and take(data)

        def on_readable() -> None:
            t0 = time.perf_counter()
            for _ in range(self._max_recvs):
                if not recv_once():
                    break
            wake(True)
            self.max_callback_s = max(self.max_callback_s, time.perf_counter() - t0)
            if (st.done or failure or len(pending) >= self._max_pending) and reading:
                pause()

        def pause() -> None:
            nonlocal reading
            if reading:
                loop.remove_reader(fd)
                reading = False

        def resume() -> None:
            nonlocal reading
            if not reading and not st.done and not failure:
                loop.add_reader(fd, on_readable)
                reading = True

        def send_and_prefetch(request: bytes, budget_s: float) -> None:
            """In a worker thread: the request, then up to ``self._prefetch`` bytes of replies."""
            sock.send(request)
            deadline = time.monotonic() + budget_s
            waiter = select.poll()
            waiter.register(fd, select.POLLIN)
            while st.bytes_read < self._prefetch:
                wait_ms = (deadline - time.monotonic()) * 1000
                if wait_ms <= 0 or not waiter.poll(wait_ms) or not recv_once():
                    return  # the reader (and its timeout) takes over

        # The timeout budget is spent only while waiting on the kernel: time our own consumer
        # takes between chunks (backpressure) is not the kernel being stuck.
        budget = timeout_s
        try:
            request = dump_request(family, seq=seq, states=states, ext=ext, protocol=protocol,
                                   bytecode=bytecode)
            try:
                # The kernel builds the first chunk inside sendmsg, walking the socket table until
                # it fills one: for a family with few sockets among many (IPv6 next to 120k IPv4)
                # that is the whole table, ~11 ms in one syscall. A thread keeps the loop free.
                t_send = loop.time()
                if self._prefetch:
                    await asyncio.to_thread(send_and_prefetch, request, budget)
                else:
                    await asyncio.to_thread(sock.send, request)
                budget -= loop.time() - t_send
            except OSError as exc:
                raise NetlinkError(f"netlink send failed: {exc}", exc.errno or 0) from exc
            resume()
            while True:
                while pending:
                    yield pending.popleft()
                if failure:
                    raise failure[0]
                if st.done:
                    return
                resume()
                if budget <= 0:
                    budget = self._budget_after_timeout(sock, fam, timeout_s)
                t0 = loop.time()
                waiter = loop.create_future()
                timer = loop.call_later(budget, wake, False)
                try:
                    # Not wait_for: on Python 3.11 wait_for can swallow a cancellation that arrives
                    # as the wait completes (CPython gh-86296), and the poller must always be
                    # cancellable. A cancelled await of the bare future simply raises.
                    readable = await waiter
                finally:
                    timer.cancel()
                    waiter = None
                if not readable:
                    budget = 0.0
                    continue
                budget -= loop.time() - t0
        finally:
            pause()
            if not st.done:
                self._reopen()

    @staticmethod
    def _budget_after_timeout(sock: socket.socket, fam: str, timeout_s: float) -> float:
        """The budget is spent: fail the dump, unless the kernel's reply is waiting to be read.

        Time between the reader's callbacks is charged to the budget, and while the encoder and
        decoder take their turns the loop comes back to the reader only every few ms. A reply
        already queued on the socket means the kernel is doing its part and we are the slow
        ones: reading it comes first, so the dump goes on (a little more budget, checked again).
        """
        try:
            sock.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT)
        except (BlockingIOError, InterruptedError):
            raise PollTimeoutError(f"{fam} dump did not finish within {timeout_s}s") from None
        except OSError:
            pass  # an error is waiting: the next recv reports it
        return KERNEL_AHEAD_GRACE_S

    @staticmethod
    def _check(data: bytes, seq: int, port_id: int, st: DumpStatus, failure: list[BaseException]) -> bool:
        """Look at a chunk's first and last message: errors, DONE, DUMP_INTR, foreign replies.

        True: the chunk belongs to this dump. Walking every header here would cost ~0.8 µs per
        socket (~0.1 s per 120k-socket poll) for facts a chunk already shows at its ends: all
        messages of one recv come from one skb of one dump (same seq and port id), a failing
        request is a lone NLMSG_ERROR, and NLMSG_DONE (20 bytes: we do not ask for extended
        acks) is always the last message of its skb. The decoder still walks every message and
        counts DUMP_INTR and malformed ones.
        """
        if len(data) < c.NLMSG_HDRLEN:
            return False
        nl_len, nl_type, nl_flags, nl_seq, nl_pid = _HDR.unpack_from(data, 0)
        if nl_seq != seq or nl_pid != port_id:
            st.stale_messages += 1
            return False
        if nl_flags & c.NLM_F_DUMP_INTR:
            st.interrupted = True
        if nl_type == c.NLMSG_ERROR:
            # A header alone (16 bytes, whatever nlmsg_len claims) carries no error code to read.
            err = -_ERRNO.unpack_from(data, c.NLMSG_HDRLEN)[0] if min(nl_len, len(data)) >= 20 else 0
            if err:
                failure.append(_kernel_error(err))
            else:
                st.done = True
            return True
        tail = len(data) - _DONE_LEN
        if nl_type == c.NLMSG_DONE:
            tail = 0
        if tail >= 0:
            t_len, t_type, _flags, t_seq, t_pid = _HDR.unpack_from(data, tail)
            if t_len == _DONE_LEN and t_type == c.NLMSG_DONE and t_seq == seq and t_pid == port_id:
                st.done = True
                # A dump that fails part-way reports its error as a negative int in DONE.
                err = -_ERRNO.unpack_from(data, tail + c.NLMSG_HDRLEN)[0]
                if err > 0:
                    failure.append(_kernel_error(err))
        return True

def new_diag_socket(rcvbuf_bytes: int = 1 << 20) -> socket.socket:
    """A non-blocking NETLINK_SOCK_DIAG socket, bound, in the calling thread's network namespace."""
    try:
        sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_NONBLOCK | socket.SOCK_CLOEXEC,
                             c.NETLINK_SOCK_DIAG)
    except OSError as exc:
        raise NetlinkError(f"cannot open a NETLINK_SOCK_DIAG socket: {exc}", exc.errno or 0) from exc
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf_bytes)
        sock.bind((0, 0))
    except OSError as exc:
        sock.close()
        raise NetlinkError(f"cannot bind the netlink socket: {exc}", exc.errno or 0) from exc
    return sock


def _kernel_error(err: int) -> NetlinkError:
    name = errno_mod.errorcode.get(err, str(err))
    return NetlinkError(f"kernel answered the dump with {name}: {os.strerror(err)}", err)


def check_program(bytecode: bytes, family: int = c.AF_INET) -> None:
    """Ask the kernel to audit a filter program: a dump of no states with it attached.

    The kernel audits the program (inet_diag_bc_audit) before it walks any socket, so an empty
    state mask makes this cost one round trip. Raises NetlinkError with the kernel's errno
    (EINVAL: a program it refuses; EPERM: fwmark without CAP_NET_ADMIN).
    """
    sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_CLOEXEC, c.NETLINK_SOCK_DIAG)
    try:
        sock.settimeout(5.0)
        sock.bind((0, 0))
        sock.send(dump_request(family, seq=1, states=0, ext=0, bytecode=bytecode))
        while True:
            data = sock.recv(65536)
            off = 0
            while off + c.NLMSG_HDRLEN <= len(data):
                nl_len, nl_type = _HDR.unpack_from(data, off)[:2]
                if nl_type in (c.NLMSG_ERROR, c.NLMSG_DONE):
                    err = -_ERRNO.unpack_from(data, off + c.NLMSG_HDRLEN)[0] if nl_len >= 20 else 0
                    if err > 0:
                        raise _kernel_error(err)
                    return
                off += max((nl_len + 3) & ~3, c.NLMSG_HDRLEN)
    except OSError as exc:
        raise NetlinkError(f"netlink filter check failed: {exc}", exc.errno or 0) from exc
    finally:
        sock.close()
