"""NsqSink: publishes payloads to one NSQ topic, PUB for one payload, MPUB for several.

A payload counts as delivered only once nsqd answered OK. The runner in front owns buffering and
retries; this sink owns the connections: one supervisor task per nsqd keeps a connection up
(reconnecting every ``reconnect_interval_s`` after a failure or an nsqd restart) and
:meth:`NsqSink.close` ends those tasks and sockets. The wire protocol is ours
(:mod:`xtcp_async.sinks.nsq_protocol`); ``docs/nsq.md`` says why pynsq is not used.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import itertools
import logging
import os
import socket
import ssl
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from xtcp_async import __version__
from xtcp_async.errors import ConfigError, SinkError
from xtcp_async.sinks.base import BaseSink
from xtcp_async.sinks.nsq_protocol import (
    ConnectOptions,
    NsqConnection,
    NsqConnectionClosed,
    NsqErrorResponse,
    NsqProtocolError,
    is_valid_topic,
    mpub,
    pub,
)

if TYPE_CHECKING:
    from xtcp_async.sinks.spec import SinkSpec

log = logging.getLogger(__name__)

DEFAULT_PORT = 4150
#: nsqd's defaults for --max-msg-size and --max-body-size.
NSQD_MAX_MSG_SIZE = 1024 * 1024
NSQD_MAX_BODY_SIZE = 5 * 1024 * 1024

#: Most payloads one send_many takes from the runner. Bigger batches are cut into MPUBs that fit
#: max_body_bytes, so this only bounds how much one retry can repeat; 256 small payloads per
#: round trip is already past the point where MPUB stops getting faster (docs/nsq.md).
MAX_SEND_MANY = 256

#: nsqd answers these when the command itself is wrong: sending it again cannot succeed.
_PERMANENT_ERRORS = frozenset({"E_BAD_MESSAGE", "E_BAD_BODY", "E_BAD_TOPIC", "E_INVALID"})


class NsqOptions(BaseModel):
    """The URL query options of an ``nsq://`` sink."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    tls: bool = False
    ca_file: Path | None = None
    cert_file: Path | None = None
    key_file: Path | None = None
    auth_secret_file: Path | None = None
    auth_secret_env: str | None = None
    compression: Literal["none", "snappy", "deflate"] = "none"
    deflate_level: int = Field(default=6, ge=1, le=9)
    reconnect_interval_s: float = Field(default=1.0, gt=0, le=3600)
    timeout_s: float = Field(default=5.0, gt=0, le=600)
    max_message_bytes: int = Field(default=NSQD_MAX_MSG_SIZE, ge=1)
    max_body_bytes: int = Field(default=NSQD_MAX_BODY_SIZE, ge=13)
    buffer_bytes: int = Field(default=64 * 1024 * 1024, ge=1)

    @model_validator(mode="after")
    def _consistent(self) -> NsqOptions:
        if (self.cert_file is None) != (self.key_file is None):
            raise ValueError("cert_file and key_file go together")
        if not self.tls and (self.ca_file or self.cert_file):
            raise ValueError("ca_file/cert_file/key_file need tls=true")
        if self.auth_secret_file is not None and self.auth_secret_env is not None:
            raise ValueError("give auth_secret_file or auth_secret_env, not both")
        if self.max_body_bytes < self.max_message_bytes + 8:
            raise ValueError("max_body_bytes must be at least max_message_bytes + 8 (MPUB framing)")
        if self.compression == "snappy" and importlib.util.find_spec("cramjam") is None:
            raise ValueError("compression=snappy needs the cramjam package (pip install cramjam)")
        return self


def _parse_options(spec: SinkSpec) -> NsqOptions:
    try:
        return NsqOptions.model_validate(spec.options)
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"]) or "options"
        allowed = ", ".join(NsqOptions.model_fields)
        if err["type"] == "extra_forbidden":
            raise ConfigError(f"sink nsq: unknown option {where!r} (allowed: {allowed})") from None
        raise ConfigError(f"sink nsq: option {where}: {err['msg']}") from None


class NsqSink(BaseSink):
    """Publishes to ``nsq://host:4150[,host2:4150]/TOPIC``; see ``docs/nsq.md`` for the options."""

    scheme: ClassVar[str] = "nsq"
    default_format: ClassVar[str] = "protobuf-list"

    def __init__(self, addresses: list[tuple[str, int]], topic: str, options: NsqOptions,
                 auth_secret: bytes | None = None) -> None:
        self.addresses = addresses
        self.topic = topic
        self.options = options
        #: Read by the service for this sink's runner buffer (in-flight bound).
        self.buffer_bytes = options.buffer_bytes
        #: Payloads refused inside a send_many batch (see send_many); single ones the runner counts.
        self.refused_payloads = 0
        self._auth_secret = auth_secret
        self._conns: dict[str, NsqConnection] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self._conn_ready: asyncio.Event | None = None
        self._round_robin = itertools.count()
        self._last_error: str | None = None
        self._started = False
        self._closed = False
        # The batch being sent by send_many and how many of it are done (see send_many).
        self._batch: list[bytes] | None = None
        self._batch_done = 0

    @classmethod
    def from_spec(cls, spec: SinkSpec) -> NsqSink:
        """Validate the URL, and read the TLS files and secret file now: a missing or unreadable
        one is a configuration error at start-up (exit 2), not a failure at the first send."""
        options = _parse_options(spec)
        if not spec.hosts:
            raise ConfigError("sink nsq: URL needs at least one nsqd host, e.g. nsq://127.0.0.1:4150/xtcp")
        if not is_valid_topic(spec.path):
            raise ConfigError(f"sink nsq: topic {spec.path!r} is not valid "
                              "(allowed: 1..64 of [.a-zA-Z0-9_-], optional #ephemeral)")
        secret: bytes | None = None
        if options.auth_secret_env is not None:
            value = os.environ.get(options.auth_secret_env)
            if not value:
                raise ConfigError(f"sink nsq: option auth_secret_env: ${options.auth_secret_env} is not set")
            secret = value.encode()
        sink = cls(spec.host_ports(DEFAULT_PORT), spec.path, options, auth_secret=secret)
        sink._connect_options()  # raises ConfigError naming the option
        return sink

    # -- Sink properties ------------------------------------------------------------------

    @property
    def max_payload_bytes(self) -> int:
        return self.options.max_message_bytes

    @property
    def max_send_many(self) -> int:
        return MAX_SEND_MANY

    @property
    def connected(self) -> bool:
        return any(c.is_open for c in self._conns.values())

    # -- life cycle -----------------------------------------------------------------------

    def _connect_options(self) -> ConnectOptions:
        opts = self.options
        context: ssl.SSLContext | None = None
        if opts.tls:
            try:
                context = ssl.create_default_context(
                    cafile=str(opts.ca_file) if opts.ca_file else None)
            except (OSError, ssl.SSLError) as exc:
                raise ConfigError(f"sink nsq: option ca_file: {exc}") from exc
            try:
                if opts.cert_file and opts.key_file:
                    context.load_cert_chain(opts.cert_file, opts.key_file)
            except (OSError, ssl.SSLError) as exc:
                raise ConfigError(f"sink nsq: option cert_file/key_file: {exc}") from exc
        secret = self._auth_secret
        if opts.auth_secret_file is not None:
            try:
                secret = opts.auth_secret_file.read_bytes().strip()
            except OSError as exc:
                raise ConfigError(f"sink nsq: option auth_secret_file: {exc}") from exc
        host = socket.gethostname()
        return ConnectOptions(client_id=host.split(".")[0], hostname=host,
                              user_agent=f"xtcp_async/{__version__}", ssl_context=context,
                              compression=opts.compression, deflate_level=opts.deflate_level,
                              auth_secret=secret, timeout_s=opts.timeout_s)

    async def start(self) -> None:
        """Start one connection supervisor per nsqd; never fails because nsqd is down."""
        if self._started or self._closed:
            return
        connect_options = self._connect_options()
        self._started = True
        self._conn_ready = asyncio.Event()
        loop = asyncio.get_running_loop()
        for host, port in self.addresses:
            self._spawn_supervisor(loop, host, port, connect_options)

    def _spawn_supervisor(self, loop: asyncio.AbstractEventLoop, host: str, port: int,
                          connect_options: ConnectOptions) -> None:
        task = loop.create_task(self._supervise(host, port, connect_options), name=f"nsq-connect:{host}:{port}")
        self._tasks.append(task)

        def on_done(t: asyncio.Task[None]) -> None:
            # A supervisor only ends by close(); anything else is a bug: say so, and keep the
            # sink alive with a fresh supervisor rather than going silently deaf.
            with contextlib.suppress(ValueError):
                self._tasks.remove(t)
            if t.cancelled() or self._closed:
                return
            exc = t.exception()
            self._last_error = f"{host}:{port}: supervisor died: {type(exc).__name__}: {exc}"
            log.error("nsq %s:%d: connection supervisor died (%s: %s); restarting it", host, port,
                      type(exc).__name__, exc)
            loop.call_later(self.options.reconnect_interval_s, self._restart_supervisor, loop, host, port,
                            connect_options)

        task.add_done_callback(on_done)

    def _restart_supervisor(self, loop: asyncio.AbstractEventLoop, host: str, port: int,
                            connect_options: ConnectOptions) -> None:
        if not self._closed:
            self._spawn_supervisor(loop, host, port, connect_options)

    async def _supervise(self, host: str, port: int, connect_options: ConnectOptions) -> None:
        """Keep one connection to host:port up until close()."""
        key = f"{host}:{port}"
        failures = 0
        while True:
            try:
                conn = await NsqConnection.open(host, port, connect_options)
            except (OSError, TimeoutError, NsqErrorResponse, NsqProtocolError) as exc:
                self._last_error = f"{key}: {exc or type(exc).__name__}"
                # One warning per outage, then quiet: a down nsqd would otherwise log every second.
                level = logging.WARNING if failures == 0 else logging.DEBUG
                log.log(level, "nsq %s: cannot connect (%s); retrying every %.1fs",
                        key, self._last_error, self.options.reconnect_interval_s)
                failures += 1
                await asyncio.sleep(self.options.reconnect_interval_s)
                continue
            log.info("nsq %s: connected%s", key, f" after {failures} failed attempt(s)" if failures else "")
            failures = 0
            self._conns[key] = conn
            assert self._conn_ready is not None
            self._conn_ready.set()
            try:
                await conn.wait_closed()
            finally:
                # Also on cancellation (close()): the connection must not outlive its supervisor.
                self._conns.pop(key, None)
                if not any(c.is_open for c in self._conns.values()):
                    self._conn_ready.clear()
                await conn.close()
            self._last_error = f"{key}: {conn.close_reason}"
            log.warning("nsq %s: connection lost (%s); reconnecting", key, conn.close_reason)
            # Immediately first (a dropped idle connection is usually back at once), then at the
            # reconnect interval through the loop above.

    async def close(self) -> None:
        """Stop the supervisors and close every connection (idempotent)."""
        self._closed = True
        tasks, self._tasks = self._tasks, []
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        conns = list(self._conns.values())
        self._conns.clear()
        for conn in conns:
            await conn.close()

    # -- delivery -------------------------------------------------------------------------

    async def _connection(self) -> NsqConnection:
        if self._closed:
            raise SinkError("nsq sink is closed", retriable=False)
        if not self._started:
            await self.start()
        assert self._conn_ready is not None
        open_conns = [c for c in self._conns.values() if c.is_open]
        if not open_conns:
            # Give a reconnect in progress a chance before reporting failure to the runner. The
            # event can still be set for a connection that just died (its supervisor has not
            # run yet), hence the loop.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.options.timeout_s):
                    while not open_conns:
                        self._conn_ready.clear()
                        await self._conn_ready.wait()
                        open_conns = [c for c in self._conns.values() if c.is_open]
        if not open_conns:
            raise SinkError(f"nsq: no connection to nsqd ({self._last_error})", retriable=True)
        return open_conns[next(self._round_robin) % len(open_conns)]

    async def _request(self, pieces: list[bytes], what: str) -> None:
        conn = await self._connection()
        try:
            answer = await conn.request(pieces)
        except NsqErrorResponse as exc:
            self._last_error = f"{conn.name}: {exc}"
            permanent = exc.code in _PERMANENT_ERRORS
            raise SinkError(f"nsq {conn.name}: {what} refused: {exc}", retriable=not permanent) from exc
        except (NsqConnectionClosed, NsqProtocolError, TimeoutError, OSError) as exc:
            self._last_error = f"{conn.name}: {exc or type(exc).__name__}"
            raise SinkError(f"nsq {conn.name}: {what} not acknowledged: {exc or type(exc).__name__}",
                            retriable=True) from exc
        if answer != b"OK":
            raise SinkError(f"nsq {conn.name}: {what}: unexpected answer {answer[:80]!r}", retriable=True)

    def _refusal(self, payload: bytes) -> str | None:
        if not payload:
            return "empty payload (nsqd rejects empty messages)"
        if len(payload) > self.options.max_message_bytes:
            return (f"payload of {len(payload)} bytes is over max_message_bytes="
                    f"{self.options.max_message_bytes}")
        return None

    async def send(self, payload: bytes) -> None:
        """PUB one payload; returns once nsqd answered OK."""
        refusal = self._refusal(payload)
        if refusal is not None:
            # Never sent: nsqd would answer with a fatal error and drop the connection.
            raise SinkError(f"nsq: refused {refusal}", retriable=False)
        await self._request(pub(self.topic, payload), "PUB")

    async def send_many(self, payloads: list[bytes]) -> None:
        """MPUB the payloads, cut into commands whose body fits max_body_bytes.

        All or nothing towards the runner: if a later MPUB fails after earlier ones were
        acknowledged, the runner retries this very list object (its in-flight batch), and the
        sink resumes after the part already delivered instead of publishing it twice.
        """
        if payloads is not self._batch:
            self._batch, self._batch_done = payloads, 0
            for payload in payloads:
                refusal = self._refusal(payload)
                if refusal is not None:
                    # One bad payload must not cost the batch, and the runner counts whole
                    # batches only, so it is counted (once) here and skipped below.
                    self.refused_payloads += 1
                    log.error("nsq: refused %s", refusal)
        for group in self._mpub_groups(payloads, self._batch_done):
            pieces = mpub(self.topic, [payloads[i] for i in group]) if len(group) > 1 \
                else pub(self.topic, payloads[group[0]])
            await self._request(pieces, f"MPUB of {len(group)}")
            self._batch_done = group[-1] + 1
        self._batch = None

    def _mpub_groups(self, payloads: list[bytes], start: int) -> list[list[int]]:
        """Indices of the sendable payloads from ``start``, grouped into MPUB bodies that fit."""
        groups: list[list[int]] = []
        group: list[int] = []
        body = 4
        for i in range(start, len(payloads)):
            size = len(payloads[i])
            if self._refusal(payloads[i]) is not None:
                continue
            if group and body + 4 + size > self.options.max_body_bytes:
                groups.append(group)
                group, body = [], 4
            group.append(i)
            body += 4 + size
        if group:
            groups.append(group)
        return groups
