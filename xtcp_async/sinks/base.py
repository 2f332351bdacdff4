"""The Sink interface: bytes in, delivery out.

A sink knows its client library and nothing about sockets or protobuf. The service wraps each
sink in a :class:`~xtcp_async.sinks.runner.SinkRunner` that owns the bounded buffer
(``buffer_bytes``, drop-oldest, counted), ordering and retries; so a sink's ``send`` only has
to deliver one payload (or a few, see ``send_many``) and say truthfully whether it arrived.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar, Protocol, runtime_checkable

#: Formats a payload can be encoded in.
FORMATS = ("jsonl", "protobuf-list", "protobuf-single")


@dataclass
class SinkStats:
    """Counters a sink keeps about itself (read by metrics and the shutdown report)."""

    payloads_delivered: int = 0
    bytes_delivered: int = 0
    delivery_errors: int = 0
    #: Payloads dropped, by reason (e.g. ``buffer_full``, ``too_large``, ``shutdown``).
    dropped: dict[str, int] = field(default_factory=dict)

    def drop(self, reason: str, count: int = 1) -> None:
        self.dropped[reason] = self.dropped.get(reason, 0) + count


@runtime_checkable
class Sink(Protocol):
    """What every sink implements.

    ``send`` returns only once the payload is delivered (for brokers: acknowledged) and raises
    :class:`~xtcp_async.errors.SinkError` otherwise; ``error.retriable`` tells the runner whether
    to keep the payload and try again. ``close`` is idempotent.
    """

    #: The scheme this sink is registered under (``udp``, ``kafka``...).
    scheme: ClassVar[str]
    #: Format used when the URL has no ``?format=`` and ``--format`` was not given.
    default_format: ClassVar[str]

    @property
    def max_payload_bytes(self) -> int | None:
        """The largest payload this sink can carry (None: no limit of its own)."""

    @property
    def connected(self) -> bool:
        """True while the sink believes it can deliver (used by /readyz)."""

    async def start(self) -> None: ...

    async def send(self, payload: bytes) -> None: ...

    async def send_many(self, payloads: list[bytes]) -> None:
        """Deliver several payloads at once (all or nothing); runners use it when
        ``max_send_many > 1``."""

    @property
    def max_send_many(self) -> int:
        """How many payloads one ``send_many`` may carry (1: call ``send``)."""

    async def close(self) -> None: ...


class BaseSink:
    """Defaults for the optional parts of :class:`Sink`; concrete sinks inherit it."""

    scheme: ClassVar[str] = ""
    default_format: ClassVar[str] = "protobuf-list"

    @property
    def max_payload_bytes(self) -> int | None:
        return None

    @property
    def connected(self) -> bool:
        return True

    @property
    def max_send_many(self) -> int:
        return 1

    async def start(self) -> None:
        return None

    async def send(self, payload: bytes) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    async def send_many(self, payloads: list[bytes]) -> None:
        for payload in payloads:
            await self.send(payload)

    async def close(self) -> None:
        return None
