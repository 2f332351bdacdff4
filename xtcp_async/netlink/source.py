"""Where a poll's netlink replies come from: the kernel, or a recording of it.

The poller only needs "dump family F, yield its chunks until done". Taking that as a small
Protocol lets the service's backpressure, shutdown and pipeline specs run on known sockets (a
recorded dump such as tests/data/kernel_6_18_dump.bin) instead of whatever the host has, and
lets a later poll side (several network namespaces) plug in without touching the stages.
"""

from __future__ import annotations

import asyncio
import socket
import struct
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Protocol

from xtcp_async.errors import PollTimeoutError
from xtcp_async.netlink import constants as c
from xtcp_async.netlink.socket import Chunk, DumpStatus

_HDR = struct.Struct("<IHHII")


class DumpSource(Protocol):
    """What the poller reads dumps from (:class:`~xtcp_async.netlink.socket.DiagSocket` in production)."""

    #: Longest single reader callback so far (seconds), for the stall figures.
    max_callback_s: float

    def open(self) -> None: ...

    def close(self) -> None: ...

    def dump(self, family: int, *, states: int, ext: int, timeout_s: float,
             status: DumpStatus | None = None, protocol: int = socket.IPPROTO_TCP,
             bytecode: bytes = b"") -> AsyncIterator[Chunk]: ...


def split_by_family(chunks: Sequence[bytes]) -> dict[int, list[bytes]]:
    """Group recorded chunks into one dump per family (each dump ends with its NLMSG_DONE).

    A dump's family is that of its first SOCK_DIAG_BY_FAMILY message (byte 0 of inet_diag_msg);
    a dump with no socket at all takes the next family of (inet, inet6) not seen yet.
    """
    dumps: dict[int, list[bytes]] = {}
    current: list[bytes] = []
    family: int | None = None
    for data in chunks:
        current.append(data)
        if family is None and len(data) > c.NLMSG_HDRLEN and _HDR.unpack_from(data, 0)[1] == c.SOCK_DIAG_BY_FAMILY:
            family = data[c.NLMSG_HDRLEN]
        if len(data) >= 20 and _HDR.unpack_from(data, len(data) - 20)[1] == c.NLMSG_DONE:
            if family is None:
                family = next(f for f in (c.AF_INET, c.AF_INET6) if f not in dumps)
            dumps[family] = current
            current, family = [], None
    return dumps


class ReplaySource:
    """Replays recorded dump chunks as if the kernel sent them, with optional faults.

    ``delay_s`` waits before each chunk (a slow kernel); a family in ``hang`` never finishes,
    so its dump fails with PollTimeoutError after ``timeout_s`` like a stuck kernel dump.
    Every dump of a family replays the same bytes, so each poll sees the same sockets.
    """

    def __init__(self, dumps: Mapping[int, Sequence[bytes]], *, delay_s: float = 0.0,
                 hang: Sequence[int] = ()) -> None:
        self.dumps = {fam: list(chunks) for fam, chunks in dumps.items()}
        self.delay_s = delay_s
        self.hang = set(hang)
        self.max_callback_s = 0.0
        self.opened = 0
        self.closed = 0
        self.dumps_started = 0

    def open(self) -> None:
        self.opened += 1

    def close(self) -> None:
        self.closed += 1

    async def dump(self, family: int, *, states: int, ext: int, timeout_s: float,
                   status: DumpStatus | None = None, protocol: int = socket.IPPROTO_TCP,
                   bytecode: bytes = b"") -> AsyncIterator[Chunk]:
        # A recording replays what the kernel sent; a filter program (``bytecode``) is not re-run.
        self.dumps_started += 1
        st = status or DumpStatus(family=family)
        fam = c.FAMILY_NAMES.get(family, f"family {family}")
        # Deadlines are checked around our own awaits only: a timeout scope must never span a
        # yield, or it would cancel the consumer's unrelated await instead of this dump.
        deadline = asyncio.get_running_loop().time() + timeout_s
        for data in self.dumps.get(family, []):
            if self.delay_s:
                await self._sleep_until(min(asyncio.get_running_loop().time() + self.delay_s, deadline))
            if asyncio.get_running_loop().time() >= deadline:
                raise PollTimeoutError(f"{fam} dump did not finish within {timeout_s}s")
            st.recvs += 1
            st.chunks += 1
            st.bytes_read += len(data)
            yield Chunk(data, time.time_ns())
        if family in self.hang:
            await self._sleep_until(deadline)
            raise PollTimeoutError(f"{fam} dump did not finish within {timeout_s}s")
        st.done = True

    @staticmethod
    async def _sleep_until(when: float) -> None:
        await asyncio.sleep(max(0.0, when - asyncio.get_running_loop().time()))
