"""Kafka sink on aiokafka: one Kafka record per payload, delivered when the broker acknowledges it.

``kafka://h1:9092,h2:9092/TOPIC?compression=zstd&acks=all&...`` (options: see ``KafkaOptions``
and docs/kafka.md). The SinkRunner in front owns buffering, ordering and retries; this module
only turns a payload into an acknowledged record, or into a :class:`SinkError` that says
truthfully whether trying again can help.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import socket
import ssl
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from aiokafka import AIOKafkaProducer
from aiokafka import codec as kafka_codec
from aiokafka import errors as kafka_errors
from aiokafka.record.default_records import DefaultRecordBatchBuilder
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from xtcp_async.errors import ConfigError, SinkError
from xtcp_async.sinks.base import BaseSink
from xtcp_async.sinks.runner import DEFAULT_BUFFER_BYTES

if TYPE_CHECKING:
    from xtcp_async.sinks.spec import SinkSpec

log = logging.getLogger(__name__)

DEFAULT_PORT = 9092
# Kafka's own rule for topic names (clients/.../internals/Topic.java): legal characters, ≤ 249.
_TOPIC_RE = re.compile(r"^[a-zA-Z0-9._-]{1,249}$")
# Options that would put a secret on the command line (visible in `ps`) or in a config file
# next to the URL; the password comes from a file or the environment instead.
_REFUSED = ("sasl_password", "password", "sasl_plain_password")
_CODEC_CHECKS = {"gzip": kafka_codec.has_gzip, "snappy": kafka_codec.has_snappy,
                 "lz4": kafka_codec.has_lz4, "zstd": kafka_codec.has_zstd}
# Errors that are about this one payload: sending it again fails the same way, so the runner
# must drop it (counted as "rejected") instead of blocking everything behind it.
_PAYLOAD_ERRORS: tuple[type[BaseException], ...] = (
    kafka_errors.MessageSizeTooLargeError, kafka_errors.RecordTooLargeError,
    kafka_errors.RecordListTooLargeError, kafka_errors.CorruptRecordException,
    kafka_errors.InvalidTopicError,
)
# Errors after which this producer instance cannot go on (its idempotence state is stale or it
# is closed); the next send makes a new producer.
_PRODUCER_STATE_ERRORS: tuple[type[BaseException], ...] = (
    kafka_errors.ProducerFenced, kafka_errors.OutOfOrderSequenceNumber, kafka_errors.InvalidProducerEpoch,
    kafka_errors.UnknownProducerId, kafka_errors.ProducerClosed, kafka_errors.IllegalStateError,
)


class KafkaOptions(BaseModel):
    """The ``?key=value`` options of a kafka:// URL (or the same keys in the config file)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    compression: Literal["gzip", "snappy", "lz4", "zstd", "none"] = "zstd"
    acks: Literal["all", "1", "0"] = "all"
    linger_ms: int = Field(default=0, ge=0, le=60_000)
    client_id: str = Field(default="xtcp-async", min_length=1)
    batch_size: int = Field(default=16_384, ge=1)
    max_request_size: int = Field(default=1_048_576, ge=1024)
    #: aiokafka's request and metadata timeout; also how long without acknowledgements before
    #: the sink reports itself disconnected (see KafkaSink._await_acks).
    request_timeout_ms: int = Field(default=30_000, ge=100)
    #: Payloads handed to the producer before waiting for their acks (pipelining).
    max_in_flight: int = Field(default=16, ge=1, le=1024)
    #: Producer idempotence (no duplicates from aiokafka's own retries); needs acks=all.
    idempotence: bool | None = None
    key: Literal["none", "hostname"] = "none"
    key_hostname: str | None = None
    tls: bool | None = None
    ca_file: str | None = None
    cert_file: str | None = None
    key_file: str | None = None
    check_hostname: bool = True
    sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] | None = None
    sasl_username: str | None = None
    sasl_password_file: str | None = None
    sasl_password_env: str | None = None
    buffer_bytes: int = Field(default=DEFAULT_BUFFER_BYTES, ge=1)


def parse_options(options: dict[str, str]) -> KafkaOptions:
    """Validate the options; any problem is one ConfigError line naming the option."""
    for name in _REFUSED:
        if name in options:
            raise ConfigError(f"sink kafka: option {name!r} is refused (a password must not be on the "
                              "command line or in the URL); use sasl_password_file=PATH or "
                              "sasl_password_env=VAR")
    try:
        return KafkaOptions.model_validate(options)
    except ValidationError as exc:
        err = exc.errors()[0]
        name = str(err["loc"][0]) if err["loc"] else "?"
        if err["type"] == "extra_forbidden":
            allowed = ", ".join(sorted(KafkaOptions.model_fields))
            raise ConfigError(f"sink kafka: unknown option {name!r} (allowed: {allowed})") from None
        raise ConfigError(f"sink kafka: option {name}={options.get(name)!r}: {err['msg']}") from None


def _read_password(opts: KafkaOptions) -> str:
    if (opts.sasl_password_file is None) == (opts.sasl_password_env is None):
        raise ConfigError("sink kafka: sasl_mechanism needs exactly one of sasl_password_file or "
                          "sasl_password_env")
    if opts.sasl_password_env is not None:
        value = os.environ.get(opts.sasl_password_env)
        if value is None:
            raise ConfigError(f"sink kafka: sasl_password_env: environment variable "
                              f"{opts.sasl_password_env!r} is not set")
        return value
    assert opts.sasl_password_file is not None
    try:
        # One trailing newline is what editors and `echo` add; it is never part of the password.
        return Path(opts.sasl_password_file).read_text().removesuffix("\n")
    except OSError as exc:
        raise ConfigError(f"sink kafka: sasl_password_file: cannot read {opts.sasl_password_file!r}: "
                          f"{exc.strerror}") from None


def _ssl_context(opts: KafkaOptions) -> ssl.SSLContext:
    if (opts.cert_file is None) != (opts.key_file is None):
        raise ConfigError("sink kafka: cert_file and key_file go together (a client certificate needs "
                          "its key)")
    try:
        ctx = ssl.create_default_context(cafile=opts.ca_file)
        ctx.check_hostname = opts.check_hostname
        if opts.cert_file is not None and opts.key_file is not None:
            ctx.load_cert_chain(opts.cert_file, opts.key_file)
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(f"sink kafka: TLS files (ca_file/cert_file/key_file) cannot be loaded: "
                          f"{exc}") from None
    return ctx


def producer_settings(spec: SinkSpec, opts: KafkaOptions) -> dict[str, Any]:
    """The AIOKafkaProducer keyword arguments for ``spec`` (config stage: reads TLS and password
    files, so a bad one is a ConfigError at start-up, not a retry loop)."""
    if not spec.hosts:
        raise ConfigError(f"sink kafka: {spec.redacted!r} names no broker (expected kafka://HOST:PORT/TOPIC)")
    if opts.compression != "none" and not _CODEC_CHECKS[opts.compression]():
        raise ConfigError(f"sink kafka: compression={opts.compression} needs its codec library; install "
                          "'aiokafka[zstd,lz4,snappy]'")
    idempotence = opts.acks == "all" if opts.idempotence is None else opts.idempotence
    if idempotence and opts.acks != "all":
        raise ConfigError(f"sink kafka: idempotence=true needs acks=all (got acks={opts.acks})")
    tls = opts.tls if opts.tls is not None else any(f is not None for f in (opts.ca_file, opts.cert_file,
                                                                           opts.key_file))
    settings: dict[str, Any] = {
        "bootstrap_servers": [f"{h}:{p}" for h, p in spec.host_ports(DEFAULT_PORT)],
        "client_id": opts.client_id,
        "acks": "all" if opts.acks == "all" else int(opts.acks),
        "compression_type": None if opts.compression == "none" else opts.compression,
        "linger_ms": opts.linger_ms,
        "max_batch_size": opts.batch_size,
        "max_request_size": opts.max_request_size,
        "request_timeout_ms": opts.request_timeout_ms,
        "enable_idempotence": idempotence,
    }
    if tls:
        settings["ssl_context"] = _ssl_context(opts)
    elif opts.ca_file or opts.cert_file or opts.key_file:
        raise ConfigError("sink kafka: ca_file/cert_file/key_file given but tls=false")
    if opts.sasl_mechanism is not None:
        if not opts.sasl_username:
            raise ConfigError("sink kafka: sasl_mechanism needs sasl_username")
        settings.update(sasl_mechanism=opts.sasl_mechanism, sasl_plain_username=opts.sasl_username,
                        sasl_plain_password=_read_password(opts))
        settings["security_protocol"] = "SASL_SSL" if tls else "SASL_PLAINTEXT"
    else:
        settings["security_protocol"] = "SSL" if tls else "PLAINTEXT"
    return settings


def max_value_bytes(max_request_size: int, key: bytes | None) -> int:
    """The largest record value aiokafka accepts under ``max_request_size`` with this key.

    aiokafka refuses a record whose estimated batch size (batch header + record overhead + key +
    value + their varint lengths) exceeds max_request_size; use its own estimate, so the
    encoder never makes a payload the producer would reject.
    """
    def estimate(value: bytes) -> int:
        return int(DefaultRecordBatchBuilder.estimate_size_in_bytes(key, value, []))

    n = max_request_size - estimate(b"")
    while n > 0 and estimate(bytes(n)) > max_request_size:
        n -= 1  # the value's length varint grows by at most 4 bytes: a handful of rounds
    return max(n, 0)


def translate(exc: BaseException, topic: str) -> SinkError:
    """An aiokafka error as a SinkError whose ``retriable`` tells the runner what to do."""
    if isinstance(exc, _PAYLOAD_ERRORS):
        return SinkError(f"kafka: topic {topic!r} rejected the payload: {exc!r}", retriable=False)
    if isinstance(exc, kafka_errors.KafkaTimeoutError):
        return SinkError(f"kafka: no acknowledgement from the broker within the request timeout ({topic!r})")
    # Everything else (connection loss, leader moves, authorization, unknown topic…) can heal
    # while the payload waits in the bounded buffer, so it is retried, never silently dropped.
    return SinkError(f"kafka: delivery to {topic!r} failed: {exc!r}")


def config_refusal(exc: BaseException, settings: dict[str, Any]) -> ConfigError | None:
    """A start failure that no retry can fix because the configuration is wrong, as a ConfigError
    naming the option (the service then exits 2); None for everything that may heal."""
    if isinstance(exc, kafka_errors.UnsupportedSaslMechanismError):
        return ConfigError(f"sink kafka: option sasl_mechanism: the broker does not accept "
                           f"{settings.get('sasl_mechanism')}: {exc}")
    return None


def _retrieve(future: asyncio.Future[Any]) -> None:
    if not future.cancelled():
        future.exception()


class KafkaSink(BaseSink):
    """Publishes each payload as one Kafka record and returns once the broker acknowledged it."""

    scheme: ClassVar[str] = "kafka"
    default_format: ClassVar[str] = "protobuf-list"

    def __init__(self, topic: str, settings: dict[str, Any], *, key: bytes | None = None,
                 max_in_flight: int = 16, buffer_bytes: int = DEFAULT_BUFFER_BYTES,
                 close_timeout_s: float = 10.0) -> None:
        self.topic = topic
        self.settings = settings
        self.key = key
        self.buffer_bytes = buffer_bytes
        self.close_timeout_s = close_timeout_s
        self._max_in_flight = max_in_flight
        self._ack_wait_s = float(settings.get("request_timeout_ms", 30_000)) / 1000
        self._max_payload = max_value_bytes(int(settings.get("max_request_size", 1_048_576)), key)
        self._producer: AIOKafkaProducer | None = None
        self._connected = False
        self._connect_failures = 0
        self._closed = False

    @classmethod
    def from_spec(cls, spec: SinkSpec) -> KafkaSink:
        """Build the sink from its URL (no network I/O; TLS and password files are read here)."""
        opts = parse_options(spec.options)
        if not _TOPIC_RE.match(spec.path) or spec.path in (".", ".."):
            raise ConfigError(f"sink kafka: topic {spec.path!r} in {spec.redacted!r} is not a valid Kafka "
                              "topic name (1-249 of a-z A-Z 0-9 . _ -)")
        settings = producer_settings(spec, opts)
        key: bytes | None = None
        if opts.key == "hostname":
            key = (opts.key_hostname or socket.gethostname()).encode()
        return cls(spec.path, settings, key=key, max_in_flight=opts.max_in_flight,
                   buffer_bytes=opts.buffer_bytes)

    # -- Sink interface --

    @property
    def max_payload_bytes(self) -> int:
        return self._max_payload

    @property
    def connected(self) -> bool:
        return self._connected

    @property
    def max_send_many(self) -> int:
        return self._max_in_flight

    async def start(self) -> None:
        """Connect once; a broker that is down is logged and retried by the next send."""
        try:
            await self._ensure_producer()
        except SinkError:
            return  # already logged; the runner's retry loop calls send() with backoff

    async def send(self, payload: bytes) -> None:
        await self.send_many([payload])

    async def send_many(self, payloads: list[bytes]) -> None:
        """Queue all payloads in the producer, then wait for every acknowledgement.

        All or nothing for the runner: if any fails, the whole list is retried, so the ones
        that did arrive arrive twice (at-least-once; the tests count these duplicates).
        """
        producer = await self._ensure_producer()
        futures: list[asyncio.Future[Any]] = []
        try:
            for payload in payloads:
                future = await producer.send(self.topic, payload, key=self.key)
                # If this send is cancelled (runner stopping) nobody awaits the future; reading
                # its outcome in a callback keeps asyncio from logging "exception never retrieved".
                future.add_done_callback(_retrieve)
                futures.append(future)
        except kafka_errors.KafkaError as exc:
            await self._settle(futures)
            raise await self._failed(exc) from exc
        await self._await_acks(futures)
        for future in futures:
            error = future.exception()
            if error is not None:
                raise await self._failed(error) from error
        self._connected = True

    async def _await_acks(self, futures: list[asyncio.Future[Any]]) -> None:
        """Wait for every acknowledgement, however long the broker is away.

        Why no deadline here: while the partition leader is known, aiokafka keeps a queued batch
        and retries it until the broker is back (measured: a SIGKILLed broker's backlog arrives
        after its restart, with no error). Giving up early would not take the batch back out of
        aiokafka, so the runner's retry would send it a second time. Instead, after
        request_timeout_ms without all acks the sink reports itself disconnected (for /readyz)
        and logs once; a batch aiokafka itself expires (leader unknown) still fails with a
        timeout the runner retries.
        """
        pending: set[asyncio.Future[Any]] = set(futures)
        while pending:
            _, pending = await asyncio.wait(pending, timeout=self._ack_wait_s)
            if pending and self._connected:
                self._connected = False
                log.warning("kafka: no acknowledgement from %s for %.1f s (broker down?); %d payload(s) "
                            "wait in the producer, in order", ",".join(self.settings["bootstrap_servers"]),
                            self._ack_wait_s, len(pending))

    async def close(self) -> None:
        """Flush what aiokafka still holds (at most ``close_timeout_s``) and disconnect. Idempotent."""
        self._closed = True
        self._connected = False
        producer, self._producer = self._producer, None
        if producer is not None:
            await self._stop_producer(producer, self.close_timeout_s)

    # -- internals --

    async def _ensure_producer(self) -> AIOKafkaProducer:
        if self._producer is not None:
            return self._producer
        if self._closed:
            raise SinkError("kafka: sink is closed", retriable=False)
        producer = AIOKafkaProducer(**self.settings)
        try:
            # aiokafka's bootstrap has no overall deadline of its own when a host accepts TCP
            # but never answers (wrong port, TLS mismatch); bound it by the request timeout.
            await asyncio.wait_for(producer.start(), self.settings["request_timeout_ms"] / 1000)
        except asyncio.CancelledError:
            # Cut short (the runner's start-up deadline, shutdown): the half-started producer
            # holds sockets and tasks; close it before going, whatever the cancellation.
            await asyncio.shield(self._stop_producer(producer, 1.0))
            raise
        except (kafka_errors.KafkaError, OSError, TimeoutError) as exc:
            await self._stop_producer(producer, 1.0)
            self._connected = False
            refused = config_refusal(exc, self.settings)
            if refused is not None:
                raise refused from exc
            self._connect_failures += 1
            servers = ",".join(self.settings["bootstrap_servers"])
            hint = self._idempotence_hint(exc)
            # First failure loud, then every 10th: the runner already logs each retry.
            if self._connect_failures == 1 or self._connect_failures % 10 == 0:
                log.warning("kafka: cannot connect to %s (attempt %d), will retry: %r%s",
                            servers, self._connect_failures, exc, hint)
            raise SinkError(f"kafka: cannot connect to {servers}: {exc!r}{hint}") from exc
        if self._connect_failures:
            log.info("kafka: connected to %s after %d failed attempt(s)",
                     ",".join(self.settings["bootstrap_servers"]), self._connect_failures)
        self._connect_failures = 0
        self._producer = producer
        self._connected = True
        return producer

    def _idempotence_hint(self, exc: BaseException) -> str:
        """Why a start failed, when the likely cause is the idempotent producer.

        With idempotence on, aiokafka's start asks the broker for a producer id (InitProducerId);
        Kafka-protocol brokers that lack it answer with an error aiokafka reports as
        UnknownError or UnsupportedVersionError, which alone says nothing useful.
        """
        if not self.settings.get("enable_idempotence"):
            return ""
        if isinstance(exc, kafka_errors.UnknownError | kafka_errors.UnsupportedVersionError):
            return ("; the broker refused the idempotent producer (InitProducerId): if it does not "
                    "support idempotence, set ?idempotence=false on the sink URL")
        return ""

    async def _failed(self, exc: BaseException) -> SinkError:
        self._connected = False
        producer = self._producer
        if isinstance(exc, _PRODUCER_STATE_ERRORS) and producer is not None:
            # This producer's idempotence state is stale or it is closed: the next send makes
            # a fresh one (new producer id, sequence numbers from zero).
            self._producer = None
            log.warning("kafka: producer reset after %r", exc)
            await self._stop_producer(producer, 1.0)
        return translate(exc, self.topic)

    @staticmethod
    async def _settle(futures: list[asyncio.Future[Any]]) -> None:
        # Retrieve every outcome so no future is garbage collected with an unread exception.
        if futures:
            await asyncio.gather(*futures, return_exceptions=True)

    @staticmethod
    async def _stop_producer(producer: AIOKafkaProducer, timeout_s: float) -> None:
        stop = asyncio.ensure_future(producer.stop())
        done, _ = await asyncio.wait({stop}, timeout=timeout_s)
        if not done:
            # aiokafka's stop() waits for every queued batch with no deadline of its own; with
            # the broker gone that is the whole request timeout. Its stop() also returns once
            # the sender task ends, so end that task, then fail the batches nobody will send
            # (the runner already counted their payloads as undelivered) so that stop()'s own
            # flush task finishes too. Private attributes: checked, with a plain wait as fallback.
            sender_task = getattr(getattr(producer, "_sender", None), "sender_task", None)
            if isinstance(sender_task, asyncio.Task):
                sender_task.cancel()
        try:
            await stop
        except (kafka_errors.KafkaError, OSError) as exc:
            log.debug("kafka: error while stopping the producer: %r", exc)
        finally:
            accumulator = getattr(producer, "_message_accumulator", None)
            if not done and accumulator is not None:
                accumulator.fail_all(kafka_errors.KafkaTimeoutError("kafka sink closed before delivery"))
                await asyncio.sleep(0)  # let stop()'s flush task see the failed batches
