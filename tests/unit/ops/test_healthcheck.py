"""Specifications for the container health probe command."""

from __future__ import annotations

import asyncio

import pytest

from xtcp_async.ops.healthcheck import main, probe_url


@pytest.mark.parametrize(("listen", "url"), [
    ("0.0.0.0:9088", "http://127.0.0.1:9088/healthz"),
    (":9088", "http://127.0.0.1:9088/healthz"),
    ("[::]:9088", "http://[::1]:9088/healthz"),
    ("10.1.2.3:9100", "http://10.1.2.3:9100/healthz"),
    ("[fd00::1]:9088", "http://[fd00::1]:9088/healthz"),
])
def test_wildcard_binds_are_probed_on_loopback(listen: str, url: str) -> None:
    """A wildcard listen address is probed on loopback; a specific one as it is."""
    assert probe_url(listen, "/healthz") == url


def test_probe_fails_when_nothing_listens(unused_tcp_port: int) -> None:
    """Nothing on the port: exit status 1."""
    assert main(["--listen", f"127.0.0.1:{unused_tcp_port}", "--timeout", "1"]) == 1


async def test_probe_follows_the_http_status(unused_tcp_port: int) -> None:
    """200 is healthy (0), 503 is not (1)."""
    status = b"200 OK"

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 " + status + b"\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(answer, "127.0.0.1", unused_tcp_port)
    async with server:
        args = ["--listen", f"0.0.0.0:{unused_tcp_port}", "--timeout", "2"]
        assert await asyncio.to_thread(main, args) == 0
        status = b"503 Service Unavailable"
        assert await asyncio.to_thread(main, [*args, "--path", "/readyz"]) == 1
