"""The metrics and health listener: /metrics, /healthz, /readyz on one small asyncio server.

Why not prometheus-client's ``start_http_server``: it runs a thread, and this service keeps
everything on the event loop (no locks around Stats). The requests are tiny GETs from a
scraper and a kubelet, so a minimal HTTP/1.1 server that answers one request per connection
and closes is enough; every read has a deadline so a client that never finishes its request
cannot hold a connection open.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry
from prometheus_client.exposition import choose_encoder

from xtcp_async.ops.health import not_ready_reason
from xtcp_async.ops.metrics import build_registry

if TYPE_CHECKING:
    from xtcp_async.service import Service

log = logging.getLogger(__name__)

#: A client has this long to send its request head.
REQUEST_TIMEOUT_S = 5.0
#: Request heads larger than this are refused (ours are a few hundred bytes).
MAX_HEAD_BYTES = 16 * 1024
#: Connections served at once; more are closed at once. A scraper and a kubelet need a few; a
#: flood of hundreds would otherwise all be served in the same loop iterations and stall polling
#: (measured: 300 concurrent /metrics requests held the loop 0.5 s).
MAX_CONNECTIONS = 16
#: A /metrics body is reused for this long: rendering costs ~0.6 ms, scrapers come every 15 s or
#: so, and a burst of scrapes then costs one render.
METRICS_CACHE_S = 1.0

_REASONS = {200: "OK", 400: "Bad Request", 404: "Not Found", 405: "Method Not Allowed",
            431: "Request Header Fields Too Large", 503: "Service Unavailable"}


def parse_listen(listen: str) -> tuple[str | None, int]:
    """``HOST:PORT``, ``[V6]:PORT`` or ``:PORT`` (every interface) → (host, port)."""
    host, _, port = listen.rpartition(":")
    host = host.strip("[]")
    return (host or None), int(port)


class HttpEndpoints:
    """Routes one request to its answer; separate from the socket handling so tests can call it."""

    def __init__(self, service: Service, registry: CollectorRegistry | None = None) -> None:
        self.service = service
        self.registry = registry if registry is not None else build_registry(service)
        self.active = 0
        self.refused = 0
        self._cache: tuple[float, str, str, bytes] | None = None  # (when, accept, type, body)

    def respond(self, method: str, target: str, headers: dict[str, str]) -> tuple[int, str, bytes]:
        """(status, content type, body) for one request."""
        path = target.split("?", 1)[0]
        if path not in ("/metrics", "/healthz", "/readyz"):
            return 404, "text/plain; charset=utf-8", b"not found: try /metrics, /healthz, /readyz\n"
        if method not in ("GET", "HEAD"):
            return 405, "text/plain; charset=utf-8", b"only GET and HEAD\n"
        if path == "/healthz":
            # The event loop answered, so the process is alive; that is all liveness means.
            return 200, "text/plain; charset=utf-8", b"ok\n"
        if path == "/readyz":
            reason = not_ready_reason(self.service)
            if reason is None:
                return 200, "text/plain; charset=utf-8", b"ready\n"
            return 503, "text/plain; charset=utf-8", f"not ready: {reason}\n".encode()
        accept = headers.get("accept", "")
        now = time.monotonic()
        if self._cache is not None and self._cache[1] == accept and now - self._cache[0] < METRICS_CACHE_S:
            return 200, self._cache[2], self._cache[3]
        encoder, content_type = choose_encoder(accept)
        body = encoder(self.registry)
        self._cache = (now, accept, content_type, body)
        return 200, content_type, body

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Serve one request on one connection, then close it (at once when too many are open)."""
        if self.active >= MAX_CONNECTIONS:
            self.refused += 1
            writer.transport.abort()
            return
        self.active += 1
        try:
            await self._serve(reader, writer)
        finally:
            self.active -= 1

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            try:
                async with asyncio.timeout(REQUEST_TIMEOUT_S):
                    head = await _read_head(reader)
            except (asyncio.LimitOverrunError, ValueError):
                status, ctype, body, method = 431, "text/plain", b"request head too large\n", "GET"
            else:
                status, ctype, body, method = self._answer(head)
            reason = _REASONS.get(status, "")
            out = (f"HTTP/1.1 {status} {reason}\r\nContent-Type: {ctype}\r\n"
                   f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n").encode()
            writer.write(out if method == "HEAD" else out + body)
            async with asyncio.timeout(REQUEST_TIMEOUT_S):
                await writer.drain()
        except (TimeoutError, asyncio.IncompleteReadError, ConnectionError):
            pass  # the client went away or stalled; nothing to answer
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    def _answer(self, head: bytes) -> tuple[int, str, bytes, str]:
        # RFC 9112 §2.2: a recipient may take a bare LF as a line terminator (curl -H, netcat).
        lines = head.decode("latin-1").replace("\r\n", "\n").split("\n")
        parts = lines[0].split(" ")
        if len(parts) != 3 or not parts[2].startswith("HTTP/"):
            return 400, "text/plain", b"bad request line\n", "GET"
        method, target = parts[0], parts[1]
        headers: dict[str, str] = {}
        for line in lines[1:]:
            name, sep, value = line.partition(":")
            if sep:
                headers[name.strip().lower()] = value.strip()
        status, ctype, body = self.respond(method, target, headers)
        return status, ctype, body, method


async def _read_head(reader: asyncio.StreamReader) -> bytes:
    """The request head up to its empty line, whether lines end in CRLF or a bare LF."""
    head = b""
    while True:
        line = await reader.readline()
        if not line:
            raise asyncio.IncompleteReadError(head, None)
        head += line
        if len(head) > MAX_HEAD_BYTES:
            raise ValueError("request head too large")
        if line in (b"\r\n", b"\n"):
            return head


async def start(service: Service, listen: str) -> asyncio.Server:
    """Bind the listener (raises OSError when the address is taken or invalid)."""
    host, port = parse_listen(listen)
    endpoints = HttpEndpoints(service)
    return await asyncio.start_server(endpoints.handle, host, port, limit=MAX_HEAD_BYTES,
                                      reuse_address=True)


async def serve(service: Service, listen: str) -> None:
    """Serve /metrics, /healthz and /readyz on ``listen`` until cancelled.

    If the address cannot be bound the service keeps collecting without the listener (and
    says so loudly): a second, manual ``xtcp-async --once`` on a host where the daemon already
    holds the default port must still work, and losing metrics must never stop the data.
    """
    try:
        server = await start(service, listen)
    except (OSError, ValueError) as exc:
        log.error("metrics listener disabled: cannot listen on %s: %s", listen, exc)
        return
    bound = ", ".join(_addr(sock.getsockname()) for sock in server.sockets)
    log.info("metrics and health on http://%s (/metrics, /healthz, /readyz)", bound)
    try:
        async with server:
            await server.serve_forever()
    finally:
        server.close()


def _addr(name: object) -> str:
    if isinstance(name, tuple) and len(name) >= 2:
        host = str(name[0])
        return f"[{host}]:{name[1]}" if ":" in host else f"{host}:{name[1]}"
    return str(name)
