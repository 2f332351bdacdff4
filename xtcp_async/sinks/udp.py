"""`udp://host:port`: one payload per datagram, never more than ``max_datagram`` bytes.

The byte cap is reported as ``max_payload_bytes`` so the encoder splits batches to fit; a
single record too large for a datagram is dropped (and counted) by the encoder, never sent
truncated.
"""

from __future__ import annotations

import asyncio
import socket

from pydantic import Field

from xtcp_async.errors import ConfigError, SinkError
from xtcp_async.sinks.base import BaseSink
from xtcp_async.sinks.options import SinkOptions, parse_options
from xtcp_async.sinks.spec import SinkSpec

#: The largest UDP payload over IPv4: 65,535 - 8 (UDP header) - 20 (IP header).
MAX_UDP_PAYLOAD = 65_507


class UdpOptions(SinkOptions):
    max_datagram: int = Field(default=MAX_UDP_PAYLOAD, ge=64, le=MAX_UDP_PAYLOAD)


class UdpSink(BaseSink):
    """Sends each payload as one datagram to one host:port."""

    scheme = "udp"
    default_format = "protobuf-list"

    def __init__(self, host: str, port: int, *, max_datagram: int = MAX_UDP_PAYLOAD,
                 buffer_bytes: int = 64 * 1024 * 1024) -> None:
        self.host = host
        self.port = port
        self.max_datagram = max_datagram
        self.buffer_bytes = buffer_bytes
        self._sock: socket.socket | None = None

    @classmethod
    def from_spec(cls, spec: SinkSpec) -> UdpSink:
        if len(spec.hosts) != 1 or spec.hosts[0][1] is None:
            raise ConfigError(f"sink udp: {spec.redacted!r} needs exactly one host:port")
        o = parse_options(UdpOptions, spec)
        host, port = spec.host_ports(0)[0]
        return cls(host, port, max_datagram=o.max_datagram, buffer_bytes=o.buffer_bytes)

    @property
    def max_payload_bytes(self) -> int:
        return self.max_datagram

    async def start(self) -> None:
        if self._sock is not None:
            return
        loop = asyncio.get_running_loop()
        try:
            infos = await loop.getaddrinfo(self.host, self.port, type=socket.SOCK_DGRAM)
            family, _, _, _, addr = infos[0]
            sock = socket.socket(family, socket.SOCK_DGRAM)
            sock.setblocking(False)
            sock.connect(addr)
        except OSError as exc:
            raise SinkError(f"udp sink: cannot reach {self.host}:{self.port}: {exc}", retriable=True) from exc
        self._sock = sock

    async def send(self, payload: bytes) -> None:
        if len(payload) > self.max_datagram:
            raise SinkError(f"udp sink: payload of {len(payload)} bytes exceeds max_datagram "
                            f"{self.max_datagram}", retriable=False)
        if self._sock is None:
            await self.start()
        assert self._sock is not None
        loop = asyncio.get_running_loop()
        try:
            try:
                await loop.sock_sendall(self._sock, payload)
            except ConnectionRefusedError:
                # The error is an ICMP port-unreachable reported for an *earlier* datagram;
                # this one was not sent yet, so send it once more.
                await loop.sock_sendall(self._sock, payload)
        except OSError as exc:
            raise SinkError(f"udp sink: send to {self.host}:{self.port} failed: {exc}", retriable=True) from exc

    async def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None
