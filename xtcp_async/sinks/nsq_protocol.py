"""The producer half of NSQ's TCP protocol (V2) on asyncio streams.

Why not pynsq (measured in ``bench/nsq_loop_block.py``, written down in ``docs/nsq.md``): its
``pub()`` future resolves on the socket write rather than on nsqd's answer, it has no close() (its
reconnect timer cannot be cancelled), no backpressure, and its MPUB body is built with repeated
``+=``, which stalls the event loop for hundreds of milliseconds on a 5 MB batch.

This module holds the pure framing (commands out, frames in) and :class:`NsqConnection`, one
connection to one nsqd: handshake (magic, IDENTIFY with feature negotiation, TLS upgrade,
snappy/deflate, AUTH), request/answer matching in order, and heartbeats answered with NOP by a
reader task the connection owns. Protocol facts: https://nsq.io/clients/tcp_protocol_spec.html
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import logging
import re
import ssl
import struct
import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

log = logging.getLogger(__name__)

MAGIC_V2 = b"  V2"
FRAME_RESPONSE = 0
FRAME_ERROR = 1
FRAME_MESSAGE = 2
HEARTBEAT = b"_heartbeat_"
OK = b"OK"
NOP = b"NOP\n"

#: nsqd's rule for topic names (nsqd/protocol.IsValidTopicName): 1..64 of these characters.
TOPIC_RE = re.compile(r"^[.a-zA-Z0-9_-]+(#ephemeral)?$")
MAX_TOPIC_LEN = 64

_U32 = struct.Struct(">I")
_FRAME_HEAD = struct.Struct(">II")  # size (counts the type field), frame type

#: Large commands are written in pieces of about this size with a loop turn between pieces, so
#: neither the copy into the transport, TLS encryption nor compression holds the loop for long.
WRITE_PIECE_BYTES = 256 * 1024

#: A frame bigger than this from nsqd means we lost sync (answers to a producer are tiny).
MAX_FRAME_BYTES = 16 * 1024 * 1024


class NsqProtocolError(Exception):
    """nsqd sent something a producer cannot make sense of; the connection is unusable."""


class NsqErrorResponse(Exception):
    """nsqd answered a command with an error frame (``E_BAD_MESSAGE ...``)."""

    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.code = text.split(" ", 1)[0]


class NsqConnectionClosed(ConnectionError):
    """The connection went away before the command was answered."""


def is_valid_topic(name: str) -> bool:
    """Whether nsqd accepts ``name`` as a topic."""
    return 0 < len(name) <= MAX_TOPIC_LEN and TOPIC_RE.match(name) is not None


# -- commands out (pure) ----------------------------------------------------------------------
# Commands are returned as lists of pieces so a payload is never copied into a bigger buffer just
# to be framed: the pieces go to the transport as they are.


def command(name: bytes, *params: bytes, body: bytes | None = None) -> list[bytes]:
    """``NAME p1 p2\\n`` followed by a size-prefixed body when there is one."""
    line = b" ".join((name, *params)) + b"\n"
    if body is None:
        return [line]
    return [line, _U32.pack(len(body)), body]


def identify(features: dict[str, Any]) -> list[bytes]:
    return command(b"IDENTIFY", body=json.dumps(features, separators=(",", ":")).encode())


def auth(secret: bytes) -> list[bytes]:
    return command(b"AUTH", body=secret)


def pub(topic: str, payload: bytes) -> list[bytes]:
    return command(b"PUB", topic.encode("ascii"), body=payload)


def mpub_body_size(payloads: Iterable[bytes]) -> int:
    """Bytes of an MPUB body: message count, then each message size-prefixed (nsqd checks this
    against ``--max-body-size``)."""
    return 4 + sum(4 + len(p) for p in payloads)


def mpub(topic: str, payloads: Sequence[bytes]) -> list[bytes]:
    pieces = [b"MPUB " + topic.encode("ascii") + b"\n", _U32.pack(mpub_body_size(payloads)),
              _U32.pack(len(payloads))]
    for payload in payloads:
        pieces.append(_U32.pack(len(payload)))
        pieces.append(payload)
    return pieces


# -- frames in (pure) -------------------------------------------------------------------------


class FrameReader:
    """Incremental frame parser: ``feed`` bytes, take whole ``(frame_type, data)`` frames out.

    Bytes after the last whole frame stay buffered; :meth:`take_rest` hands them back, which the
    handshake needs when nsqd switches the stream to compression right after an answer.
    """

    def __init__(self) -> None:
        self._buf = bytearray()

    def feed(self, data: bytes) -> None:
        self._buf += data

    def next_frame(self) -> tuple[int, bytes] | None:
        if len(self._buf) < 4:
            return None
        (size,) = _U32.unpack_from(self._buf)
        if size < 4 or size > MAX_FRAME_BYTES:
            raise NsqProtocolError(f"nsqd sent a frame of impossible size {size}")
        if len(self._buf) < 4 + size:
            return None
        _, frame_type = _FRAME_HEAD.unpack_from(self._buf)
        data = bytes(self._buf[8 : 4 + size])
        del self._buf[: 4 + size]
        return frame_type, data

    def take_rest(self) -> bytes:
        rest = bytes(self._buf)
        self._buf.clear()
        return rest


# -- compression codecs (negotiated in IDENTIFY) ----------------------------------------------


class Codec(Protocol):
    def compress(self, data: bytes) -> bytes: ...

    def decompress(self, data: bytes) -> bytes: ...


class DeflateCodec:
    """Raw deflate both ways (nsqd uses Go's compress/flate: no zlib header).

    Each write ends with a sync flush so nsqd can decode the command before more arrives.
    """

    def __init__(self, level: int) -> None:
        self._c = zlib.compressobj(level, zlib.DEFLATED, -15)
        self._d = zlib.decompressobj(-15)

    def compress(self, data: bytes) -> bytes:
        return self._c.compress(data) + self._c.flush(zlib.Z_SYNC_FLUSH)

    def decompress(self, data: bytes) -> bytes:
        return self._d.decompress(data)


_SNAPPY_STREAM_ID = b"\xff\x06\x00\x00sNaPpY"


class SnappyCodec:
    """Snappy framing format (https://github.com/google/snappy/blob/main/framing_format.txt).

    Out: each write is a complete framed stream from cramjam; the format allows the stream
    identifier to repeat, so concatenated streams are one valid stream. In: chunks are cut out of
    the byte stream here and each is decoded (and its CRC-32C checked) by cramjam as a one-chunk
    stream.
    """

    def __init__(self) -> None:
        import cramjam  # optional dependency, checked when the sink's options are validated

        self._snappy = cramjam.snappy
        self._buf = bytearray()

    def compress(self, data: bytes) -> bytes:
        return bytes(self._snappy.compress(data))

    def decompress(self, data: bytes) -> bytes:
        self._buf += data
        out = bytearray()
        while len(self._buf) >= 4:
            kind = self._buf[0]
            length = int.from_bytes(self._buf[1:4], "little")
            if len(self._buf) < 4 + length:
                break
            chunk = bytes(self._buf[: 4 + length])
            del self._buf[: 4 + length]
            if kind in (0x00, 0x01):
                out += bytes(self._snappy.decompress(_SNAPPY_STREAM_ID + chunk))
            elif kind < 0x80 and kind != 0xFF:
                raise NsqProtocolError(f"unknown unskippable snappy chunk type {kind:#x}")
            # 0xff (stream identifier), 0xfe (padding), 0x80-0xfd (skippable): nothing to output
        return bytes(out)


# -- one connection ---------------------------------------------------------------------------


@dataclass(frozen=True)
class ConnectOptions:
    """What a connection negotiates; built once by the sink from its URL options."""

    client_id: str
    hostname: str
    user_agent: str
    ssl_context: ssl.SSLContext | None = None
    compression: str = "none"  # none | deflate | snappy
    deflate_level: int = 6
    auth_secret: bytes | None = None
    heartbeat_interval_ms: int = 30_000
    timeout_s: float = 5.0


class NsqConnection:
    """One handshaken connection to one nsqd; create with :meth:`open`.

    Commands are answered in the order they were sent, so answers are matched to a FIFO of
    futures. A reader task (owned here, ended by :meth:`close`) dispatches answers and replies to
    heartbeats. Any trouble (timeout, cancellation in the middle of a write, an error frame, which
    nsqd follows by closing) ends the connection: the byte stream cannot be trusted after it.
    """

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, name: str,
                 options: ConnectOptions) -> None:
        self.name = name
        self._reader = reader
        self._writer = writer
        self._options = options
        self._frames = FrameReader()
        self._codec: Codec | None = None
        self._pending: collections.deque[asyncio.Future[bytes]] = collections.deque()
        self._write_lock = asyncio.Lock()
        self._read_task: asyncio.Task[None] | None = None
        self._closed = asyncio.Event()
        self.identify_response: dict[str, Any] = {}
        self.close_reason: str | None = None

    # -- set-up ---------------------------------------------------------------------------

    @classmethod
    async def open(cls, host: str, port: int, options: ConnectOptions) -> NsqConnection:
        """Connect and handshake within ``options.timeout_s``; raises OSError, TimeoutError,
        :class:`NsqErrorResponse` or :class:`NsqProtocolError`."""
        name = f"{host}:{port}"
        async with asyncio.timeout(options.timeout_s):
            reader, writer = await asyncio.open_connection(host, port)
        conn = cls(reader, writer, name, options)
        try:
            async with asyncio.timeout(options.timeout_s):
                await conn._handshake(host)
        except BaseException:
            conn._abort("handshake failed")
            await conn._wait_transport_closed()
            raise
        conn._read_task = asyncio.get_running_loop().create_task(
            conn._read_loop(), name=f"nsq-reader:{name}")
        return conn

    async def _handshake(self, host: str) -> None:
        opts = self._options
        features: dict[str, Any] = {
            "client_id": opts.client_id,
            "hostname": opts.hostname,
            "user_agent": opts.user_agent,
            "feature_negotiation": True,
            "heartbeat_interval": opts.heartbeat_interval_ms,
            "tls_v1": opts.ssl_context is not None,
            "deflate": opts.compression == "deflate",
            "deflate_level": opts.deflate_level,
            "snappy": opts.compression == "snappy",
        }
        self._writer.write(MAGIC_V2 + b"".join(identify(features)))
        answer = await self._read_answer()
        try:
            negotiated: dict[str, Any] = json.loads(answer)
        except ValueError as exc:
            raise NsqProtocolError(f"IDENTIFY answer is not JSON: {answer[:80]!r}") from exc
        self.identify_response = negotiated
        if opts.ssl_context is not None:
            if not negotiated.get("tls_v1"):
                raise NsqProtocolError("TLS requested but nsqd has no TLS configured")
            # NSQ upgrades the same TCP connection to TLS after IDENTIFY (no leftover bytes can be
            # buffered here: nsqd sends nothing more until the TLS handshake is done).
            await self._writer.start_tls(opts.ssl_context, server_hostname=host)
            await self._expect_ok("TLS upgrade")
        if opts.compression != "none":
            if not negotiated.get(opts.compression):
                raise NsqProtocolError(f"nsqd refused {opts.compression} compression")
            codec: Codec = DeflateCodec(int(negotiated.get("deflate_level", opts.deflate_level))) \
                if opts.compression == "deflate" else SnappyCodec()
            # nsqd's OK after the switch is already compressed, and may have arrived with the
            # IDENTIFY answer: re-read whatever is buffered through the codec.
            rest = self._frames.take_rest()
            self._codec = codec
            if rest:
                self._frames.feed(codec.decompress(rest))
            await self._expect_ok(f"{opts.compression} upgrade")
        if negotiated.get("auth_required"):
            if opts.auth_secret is None:
                raise NsqErrorResponse("E_AUTH_REQUIRED nsqd requires AUTH but no secret is configured")
            await self._write_pieces(auth(opts.auth_secret))
            identity = await self._read_answer()
            log.info("nsq %s: authenticated (%s)", self.name, identity[:200].decode(errors="replace"))

    async def _expect_ok(self, step: str) -> None:
        answer = await self._read_answer()
        if answer != OK:
            raise NsqProtocolError(f"{step}: expected OK, got {answer[:80]!r}")

    async def _next_frame(self) -> tuple[int, bytes]:
        while True:
            frame = self._frames.next_frame()
            if frame is not None:
                return frame
            data = await self._reader.read(64 * 1024)
            if not data:
                raise NsqConnectionClosed("nsqd closed the connection")
            self._frames.feed(self._codec.decompress(data) if self._codec else data)

    async def _read_answer(self) -> bytes:
        """The next response during the handshake (heartbeats answered, errors raised)."""
        while True:
            frame_type, data = await self._next_frame()
            if frame_type == FRAME_RESPONSE and data == HEARTBEAT:
                await self._write_pieces([NOP])
                continue
            if frame_type == FRAME_ERROR:
                raise NsqErrorResponse(data.decode(errors="replace"))
            if frame_type != FRAME_RESPONSE:
                raise NsqProtocolError(f"unexpected frame type {frame_type} in handshake")
            return data

    # -- steady state ---------------------------------------------------------------------

    @property
    def is_open(self) -> bool:
        return not self._closed.is_set()

    async def request(self, pieces: list[bytes]) -> bytes:
        """Send one command and return nsqd's answer (``OK`` for PUB/MPUB).

        Raises :class:`NsqErrorResponse` for an error frame, :class:`NsqConnectionClosed` when the
        connection is or goes away, TimeoutError after ``timeout_s``.
        """
        if self._closed.is_set():
            raise NsqConnectionClosed(f"connection closed ({self.close_reason})")
        answer: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
        try:
            async with asyncio.timeout(self._options.timeout_s):
                async with self._write_lock:
                    self._pending.append(answer)
                    await self._write_pieces(pieces)
                return await answer
        except NsqErrorResponse:
            raise
        except BaseException as exc:
            # Timed out, cancelled or failed somewhere between the first byte written and the
            # answer: what nsqd received is unknown, so the stream is no longer usable.
            self._abort(f"request interrupted: {exc!r}")
            if isinstance(exc, OSError):
                raise NsqConnectionClosed(str(exc)) from exc
            raise

    async def _write_pieces(self, pieces: list[bytes]) -> None:
        """Write pieces in groups of about WRITE_PIECE_BYTES, yielding between groups, and wait
        for the transport's buffer to drain (the backpressure point)."""
        group: list[bytes | memoryview] = []
        size = 0
        for piece in pieces:
            # A huge single piece is sliced (memoryview: no copy) so it is yielded on too.
            view = memoryview(piece)
            for start in range(0, max(len(view), 1), WRITE_PIECE_BYTES):
                part = view[start : start + WRITE_PIECE_BYTES]
                group.append(part)
                size += len(part)
                if size >= WRITE_PIECE_BYTES:
                    await self._flush_group(group)
                    group, size = [], 0
                    await asyncio.sleep(0)
        if group:
            await self._flush_group(group)

    async def _flush_group(self, group: list[bytes | memoryview]) -> None:
        if self._codec is not None:
            self._writer.write(self._codec.compress(b"".join(group)))
        else:
            self._writer.writelines(group)
        await self._writer.drain()

    async def _read_loop(self) -> None:
        reason = "nsqd closed the connection"
        try:
            while True:
                frame_type, data = await self._next_frame()
                if frame_type == FRAME_RESPONSE and data == HEARTBEAT:
                    async with self._write_lock:
                        await self._write_pieces([NOP])
                    continue
                if frame_type == FRAME_MESSAGE:
                    continue  # a producer never subscribes; ignore rather than desync
                if not self._pending:
                    raise NsqProtocolError(f"answer with no command waiting: {data[:80]!r}")
                answer = self._pending.popleft()
                if answer.done():
                    continue  # its request was abandoned; the connection is being aborted anyway
                if frame_type == FRAME_ERROR:
                    text = data.decode(errors="replace")
                    answer.set_exception(NsqErrorResponse(text))
                    # Every error nsqd can answer a producer with is fatal: it closes the
                    # connection right after. Mark it closed now, so that a retry does not pick
                    # this connection in the moment before the close arrives.
                    reason = f"nsqd answered {text}"
                    return
                answer.set_result(data)
        except asyncio.CancelledError:
            reason = "closed"
            raise
        except (OSError, NsqConnectionClosed, NsqProtocolError, ValueError) as exc:
            reason = str(exc)
        finally:
            self._abort(reason)

    def _abort(self, reason: str) -> None:
        """Mark closed, fail what is waiting, drop the transport (idempotent, synchronous)."""
        if self._closed.is_set():
            return
        self.close_reason = reason
        self._closed.set()
        while self._pending:
            answer = self._pending.popleft()
            if not answer.done():
                answer.set_exception(NsqConnectionClosed(reason))
                # The request awaiting it may already be gone (cancelled); mark it retrieved.
                answer.exception()
        transport = self._writer.transport
        if not transport.is_closing():
            transport.abort()

    async def _wait_transport_closed(self) -> None:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self._writer.wait_closed(), self._options.timeout_s)

    async def wait_closed(self) -> None:
        """Return when the connection has ended, for whatever reason."""
        await self._closed.wait()

    async def close(self) -> None:
        """End the connection: reader task gone, socket closed (idempotent)."""
        self._abort("closed")
        task = self._read_task
        if task is not None and not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self._wait_transport_closed()
