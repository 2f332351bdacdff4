"""`file:///path` (append) and `stdout` sinks."""

from __future__ import annotations

import asyncio
import os
import sys
from typing import BinaryIO

from xtcp_async.errors import ConfigError, SinkError
from xtcp_async.sinks.base import BaseSink
from xtcp_async.sinks.options import SinkOptions, parse_options
from xtcp_async.sinks.spec import SinkSpec


class FileOptions(SinkOptions):
    #: fsync after every payload (slower; survives a power cut).
    fsync: bool = False


class FileSink(BaseSink):
    """Appends payloads to a file. Writes run in a thread so a slow disk never stalls polling.

    Payloads are written as they are: use jsonl or protobuf-list (self-delimiting) for files.
    """

    scheme = "file"
    default_format = "jsonl"

    def __init__(self, path: str, *, fsync: bool = False, buffer_bytes: int = 64 * 1024 * 1024) -> None:
        self.path = path
        self.fsync = fsync
        self.buffer_bytes = buffer_bytes
        self._fh: BinaryIO | None = None

    @classmethod
    def from_spec(cls, spec: SinkSpec) -> FileSink:
        if not spec.path or spec.path == "/":
            raise ConfigError(f"sink file: {spec.url!r} has no path (expected file:///absolute/path)")
        o = parse_options(FileOptions, spec)
        return cls(spec.path, fsync=o.fsync, buffer_bytes=o.buffer_bytes)

    async def start(self) -> None:
        self._open()

    def _open(self) -> None:
        try:
            self._fh = open(self.path, "ab")  # noqa: SIM115 - kept open for the sink's life
        except OSError as exc:
            raise SinkError(f"file sink: cannot open {self.path}: {exc.strerror}", retriable=True) from exc

    def _write(self, payload: bytes) -> None:
        if self._fh is None:
            self._open()
        assert self._fh is not None
        self._fh.write(payload)
        self._fh.flush()
        if self.fsync:
            os.fsync(self._fh.fileno())

    async def send(self, payload: bytes) -> None:
        try:
            await asyncio.to_thread(self._write, payload)
        except OSError as exc:
            raise SinkError(f"file sink: write to {self.path} failed: {exc.strerror}", retriable=True) from exc

    def reopen(self) -> None:
        """Close and reopen the file (after log rotation; SIGHUP)."""
        if self._fh is not None:
            self._fh.close()
            self._fh = None

    async def close(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None


class StdoutSink(BaseSink):
    """Writes payloads to standard output (jsonl by default: the `make run` view)."""

    scheme = "stdout"
    default_format = "jsonl"

    def __init__(self, buffer_bytes: int = 64 * 1024 * 1024) -> None:
        self.buffer_bytes = buffer_bytes

    @classmethod
    def from_spec(cls, spec: SinkSpec) -> StdoutSink:
        return cls(parse_options(SinkOptions, spec).buffer_bytes)

    async def send(self, payload: bytes) -> None:
        try:
            await asyncio.to_thread(self._write, payload)
        except BrokenPipeError as exc:
            raise SinkError("stdout sink: the reader closed the pipe", retriable=False) from exc

    @staticmethod
    def _write(payload: bytes) -> None:
        sys.stdout.buffer.write(payload)
        sys.stdout.buffer.flush()
