"""`file:///path` (append) and `stdout` sinks.

Writes happen on a dedicated daemon thread per sink, never on the event loop and never on the
default executor: a write stuck on a full pipe or a hung NFS mount must not block shutdown
(asyncio.run joins default-executor threads forever on Python 3.11) nor ``close()``.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import io
import os
import queue
import sys
import threading
from collections.abc import Callable

from xtcp_async.errors import ConfigError, SinkError
from xtcp_async.sinks.base import BaseSink
from xtcp_async.sinks.options import SinkOptions, parse_options
from xtcp_async.sinks.spec import SinkSpec

#: How long close() waits for the writer thread to finish what it holds.
CLOSE_TIMEOUT_S = 2.0

_Job = tuple[Callable[[], None], asyncio.Future[None], asyncio.AbstractEventLoop] | None


class _Writer:
    """One daemon thread that runs blocking file operations in order."""

    def __init__(self, name: str) -> None:
        self._jobs: queue.SimpleQueue[_Job] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while True:
            job = self._jobs.get()
            if job is None:
                return
            fn, fut, loop = job
            try:
                fn()
            except BaseException as exc:  # handed to the awaiting coroutine
                loop.call_soon_threadsafe(_settle, fut, exc)
            else:
                loop.call_soon_threadsafe(_settle, fut, None)

    async def call(self, fn: Callable[[], None]) -> None:
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[None] = loop.create_future()
        self._jobs.put((fn, fut, loop))
        await fut

    def stop(self) -> None:
        self._jobs.put(None)


def _settle(fut: asyncio.Future[None], exc: BaseException | None) -> None:
    if fut.done():
        return
    if exc is None:
        fut.set_result(None)
    else:
        fut.set_exception(exc)


class FileOptions(SinkOptions):
    #: fsync after every payload (slower; survives a power cut).
    fsync: bool = False


class FileSink(BaseSink):
    """Appends payloads to a file (jsonl or protobuf-list: both self-delimiting)."""

    scheme = "file"
    default_format = "jsonl"

    def __init__(self, path: str, *, fsync: bool = False, buffer_bytes: int = 64 * 1024 * 1024) -> None:
        self.path = path
        self.fsync = fsync
        self.buffer_bytes = buffer_bytes
        self._fh: io.FileIO | None = None
        self._writer: _Writer | None = None
        self._reopen = False
        self._failing = False

    @classmethod
    def from_spec(cls, spec: SinkSpec) -> FileSink:
        if not spec.path or spec.path == "/":
            raise ConfigError(f"sink file: {spec.redacted!r} has no path (expected file:///absolute/path)")
        if os.path.isdir(spec.path):
            raise ConfigError(f"sink file: {spec.path} is a directory; name a file in it")
        o = parse_options(FileOptions, spec)
        return cls(spec.path, fsync=o.fsync, buffer_bytes=o.buffer_bytes)

    @property
    def connected(self) -> bool:
        return not self._failing

    async def start(self) -> None:
        if self._writer is None:
            self._writer = _Writer(f"file-sink:{self.path}")
        try:
            await self._writer.call(self._open)
        except OSError as exc:
            self._failing = True
            raise SinkError(f"file sink: cannot open {self.path}: {exc.strerror}", retriable=True) from exc

    def _open(self) -> None:
        if self._fh is None:
            # Like a log file: a missing parent directory is made, not an error.
            os.makedirs(os.path.dirname(self.path) or ".", exist_ok=True)
            # Unbuffered: a failed write must be known here, with how much of it landed.
            self._fh = io.FileIO(self.path, "ab")

    def _write(self, payload: bytes) -> None:
        """Append the payload whole, or leave the file as it was (a full disk tears no line).

        On a short or failed write (ENOSPC, EIO) the file is cut back to where this payload
        began, so a retry appends it once, whole, and nothing is written twice.
        """
        if self._reopen and self._fh is not None:
            self._reopen = False
            self._fh.close()
            self._fh = None
        self._open()
        fh = self._fh
        assert fh is not None
        start = os.fstat(fh.fileno()).st_size  # O_APPEND: this payload starts at the end
        view = memoryview(payload)
        done = 0
        try:
            while done < len(view):
                n = fh.write(view[done:])
                if not n:
                    raise OSError(errno.EIO, "write made no progress")
                done += n
            if self.fsync:
                os.fsync(fh.fileno())
        except OSError:
            if done:
                with contextlib.suppress(OSError):
                    os.ftruncate(fh.fileno(), start)
            raise

    async def send(self, payload: bytes) -> None:
        if self._writer is None:
            self._writer = _Writer(f"file-sink:{self.path}")
        try:
            await self._writer.call(lambda: self._write(payload))
        except OSError as exc:
            self._failing = True
            if self._fh is not None:  # a fresh open next time (the directory may come back)
                self._reopen = True
            what = "cannot open" if self._fh is None else "write failed:"
            raise SinkError(f"file sink: {what} {self.path}: {exc.strerror}", retriable=True) from exc
        self._failing = False

    def reopen(self) -> None:
        """Reopen the file before the next write (after log rotation; SIGHUP)."""
        self._reopen = True

    async def close(self) -> None:
        writer, self._writer = self._writer, None
        if writer is None:
            return
        try:
            await asyncio.wait_for(writer.call(self._close_file), CLOSE_TIMEOUT_S)
        except TimeoutError:
            # The thread is stuck in a write; it is a daemon, so it cannot hold up exit.
            pass
        finally:
            writer.stop()

    def _close_file(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None


class StdoutSink(BaseSink):
    """Writes payloads to standard output (jsonl by default: the `make run` view)."""

    scheme = "stdout"
    default_format = "jsonl"

    def __init__(self, buffer_bytes: int = 64 * 1024 * 1024) -> None:
        self.buffer_bytes = buffer_bytes
        self._writer: _Writer | None = None

    @classmethod
    def from_spec(cls, spec: SinkSpec) -> StdoutSink:
        return cls(parse_options(SinkOptions, spec).buffer_bytes)

    async def send(self, payload: bytes) -> None:
        if self._writer is None:
            self._writer = _Writer("stdout-sink")
        try:
            await self._writer.call(lambda: _write_stdout(payload))
        except BrokenPipeError as exc:
            raise SinkError("stdout sink: the reader closed the pipe", retriable=False) from exc

    async def close(self) -> None:
        writer, self._writer = self._writer, None
        if writer is not None:
            writer.stop()


def _write_stdout(payload: bytes) -> None:
    sys.stdout.buffer.write(payload)
    sys.stdout.buffer.flush()
