"""Specifications for the /metrics, /healthz and /readyz listener."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from xtcp_async.ops import http
from xtcp_async.service import Service
from xtcp_async.sinks.runner import SinkRunner

from .conftest import http_get, wait_until


@pytest.fixture
async def listening(make_service: Callable[..., Service]) -> AsyncIterator[tuple[Service, int]]:
    """A Service with one memory sink and its listener on a kernel-chosen loopback port."""
    service = make_service("memory://")
    server = await http.start(service, "127.0.0.1:0")
    port = server.sockets[0].getsockname()[1]
    async with server:
        yield service, port


async def test_healthz_answers_200_while_the_loop_runs(listening: tuple[Service, int]) -> None:
    """/healthz is 200 whatever the pipeline's state: it only says the process is alive."""
    _, port = listening
    status, _, body = await http_get(port, "/healthz")
    assert (status, body) == (200, b"ok\n")


async def test_readyz_is_503_until_the_first_poll(listening: tuple[Service, int]) -> None:
    """Before any poll finished /readyz is 503 with a one-line reason."""
    _, port = listening
    status, _, body = await http_get(port, "/readyz")
    assert status == 503
    assert body == b"not ready: no poll has completed yet\n"


async def test_readyz_follows_the_last_poll(listening: tuple[Service, int]) -> None:
    """/readyz is 200 after a good poll and 503 naming the error after a failed one."""
    service, port = listening
    service.stats.last_poll_ok = True
    assert (await http_get(port, "/readyz"))[:1] == (200,)
    service.stats.last_poll_ok = False
    service.stats.last_poll_error = "inet dump timed out after 5.0s\n(second line)"
    status, _, body = await http_get(port, "/readyz")
    assert status == 503
    assert body == b"not ready: last poll failed: inet dump timed out after 5.0s (second line)\n"


async def test_readyz_is_503_while_a_sink_fails_and_200_when_it_recovers(
        make_service: Callable[..., Service], tmp_path: Path) -> None:
    """A file sink whose directory cannot be made (a file is in its way) makes /readyz 503; clearing it makes 200."""
    blocker = tmp_path / "gone"
    blocker.write_bytes(b"")  # a file where the sink's directory should be: open() fails
    target = blocker / "out.jsonl"
    service = make_service(f"file://{target}")
    service.stats.last_poll_ok = True
    runner = service.runners[0]
    runner.settings = type(runner.settings)(retry_initial_s=0.02, retry_max_s=0.05)
    server = await http.start(service, "127.0.0.1:0")
    port = server.sockets[0].getsockname()[1]
    async with server, asyncio.TaskGroup() as tg:
        runner.start(tg)
        runner.put(b'{"a": 1}\n')
        await wait_until(lambda: runner.last_error is not None)
        status, _, body = await http_get(port, "/readyz")
        assert status == 503
        assert body.startswith(b"not ready: sink 0:file failing: file sink: cannot open")
        blocker.unlink()
        await wait_until(lambda: runner.stats.payloads_delivered > 0)
        assert (await http_get(port, "/readyz"))[0] == 200
        await runner.stop()
    assert target.read_bytes() == b'{"a": 1}\n'


async def test_metrics_answers_in_the_prometheus_text_format(listening: tuple[Service, int]) -> None:
    """/metrics is text format 0.0.4 by default and holds the service's metrics."""
    _, port = listening
    status, headers, body = await http_get(port, "/metrics")
    assert status == 200
    assert headers["content-type"].startswith("text/plain; version=0.0.4")
    assert b"\nxtcp_polls_total 0.0\n" in body


async def test_metrics_speaks_openmetrics_when_asked(listening: tuple[Service, int]) -> None:
    """A scraper that accepts OpenMetrics gets it (ends with # EOF)."""
    _, port = listening
    status, headers, body = await http_get(
        port, "/metrics", headers={"Accept": "application/openmetrics-text; version=1.0.0"})
    assert status == 200
    assert headers["content-type"].startswith("application/openmetrics-text")
    assert body.endswith(b"# EOF\n")


async def test_head_gets_headers_only(listening: tuple[Service, int]) -> None:
    """HEAD answers like GET without the body."""
    _, port = listening
    status, headers, body = await http_get(port, "/healthz", method="HEAD")
    assert (status, headers["content-length"], body) == (200, "3", b"")


@pytest.mark.parametrize(("method", "path", "expected"), [
    ("GET", "/", 404), ("GET", "/metricsx", 404), ("POST", "/metrics", 405), ("DELETE", "/readyz", 405),
])
async def test_unknown_paths_and_methods_are_refused(listening: tuple[Service, int], method: str, path: str,
                                                     expected: int) -> None:
    """Only GET/HEAD of the three paths are served."""
    _, port = listening
    assert (await http_get(port, path, method=method))[0] == expected


async def test_garbage_request_line_is_a_400(listening: tuple[Service, int]) -> None:
    """A request line that is not HTTP gets 400 and the connection closes."""
    _, port = listening
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"hello\r\n\r\n")
    raw = await reader.read()
    writer.close()
    assert raw.startswith(b"HTTP/1.1 400 ")


async def test_a_client_that_never_sends_its_request_is_dropped(
        listening: tuple[Service, int], monkeypatch: pytest.MonkeyPatch) -> None:
    """A silent client is disconnected after the request deadline instead of holding the socket."""
    monkeypatch.setattr(http, "REQUEST_TIMEOUT_S", 0.1)
    _, port = listening
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    async with asyncio.timeout(2):
        assert await reader.read() == b""
    writer.close()


async def test_request_with_bare_lf_line_endings_is_answered(listening: tuple[Service, int]) -> None:
    """A request whose lines end in LF only (netcat, hand-typed) is answered, not left hanging."""
    _, port = listening
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"GET /healthz HTTP/1.1\nHost: x\n\n")
    async with asyncio.timeout(2):
        raw = await reader.read()
    writer.close()
    assert raw.startswith(b"HTTP/1.1 200 ") and raw.endswith(b"ok\n")


async def test_oversized_request_head_is_refused(listening: tuple[Service, int]) -> None:
    """A request head over the limit gets 431, not unbounded buffering."""
    _, port = listening
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"GET /metrics HTTP/1.1\r\nX-Pad: " + b"a" * (http.MAX_HEAD_BYTES + 10))
    raw = await reader.read()
    writer.close()
    assert raw.startswith(b"HTTP/1.1 431 ")


async def test_a_taken_port_disables_the_listener_without_stopping_the_service(
        make_service: Callable[..., Service], caplog: pytest.LogCaptureFixture) -> None:
    """serve() logs one error and returns when the address is in use (collection goes on)."""
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        with caplog.at_level(logging.ERROR, logger="xtcp_async.ops.http"):
            async with asyncio.timeout(2):
                await http.serve(make_service(), f"127.0.0.1:{port}")
    assert f"metrics listener disabled: cannot listen on 127.0.0.1:{port}" in caplog.text


async def test_serve_stops_listening_when_cancelled(make_service: Callable[..., Service],
                                                    unused_tcp_port: int) -> None:
    """Cancelling the serve task (service shutdown) closes the port."""
    task = asyncio.create_task(http.serve(make_service(), f"127.0.0.1:{unused_tcp_port}"))
    for _ in range(200):
        try:
            assert (await http_get(unused_tcp_port, "/healthz"))[0] == 200
            break
        except ConnectionRefusedError:
            await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    with pytest.raises(ConnectionRefusedError):
        await asyncio.open_connection("127.0.0.1", unused_tcp_port)


@pytest.mark.parametrize(("listen", "expected"), [
    ("127.0.0.1:9088", ("127.0.0.1", 9088)), (":9088", (None, 9088)), ("0.0.0.0:1", ("0.0.0.0", 1)),
    ("[::1]:9088", ("::1", 9088)),
])
def test_listen_addresses_parse(listen: str, expected: tuple[str | None, int]) -> None:
    """HOST:PORT, [V6]:PORT and :PORT are understood."""
    assert http.parse_listen(listen) == expected


def test_a_disconnected_sink_makes_readyz_name_it(make_service: Callable[..., Service]) -> None:
    """A sink that reports itself disconnected is named by its runner in the reason."""
    from xtcp_async.ops.health import not_ready_reason
    from xtcp_async.sinks.memory import MemorySink

    class Down(MemorySink):
        @property
        def connected(self) -> bool:
            return False

    service = make_service("memory://", "memory://")
    service.stats.last_poll_ok = True
    service.runners[1] = SinkRunner("1:memory", Down())
    assert not_ready_reason(service) == "sink 1:memory not connected"


async def test_connections_beyond_the_cap_are_closed_at_once(listening: tuple[Service, int]) -> None:
    """With MAX_CONNECTIONS clients holding connections open, one more is closed without an answer,
    and a request after they leave is served again."""
    _, port = listening
    holders = [await asyncio.open_connection("127.0.0.1", port) for _ in range(http.MAX_CONNECTIONS)]
    await asyncio.sleep(0.05)
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"GET /healthz HTTP/1.1\r\n\r\n")
    async with asyncio.timeout(2):
        with contextlib.suppress(ConnectionError):
            assert await reader.read() == b""
    writer.close()
    for _, w in holders:
        w.close()
    await asyncio.sleep(0.05)
    status, _, body = await http_get(port, "/healthz")
    assert (status, body) == (200, b"ok\n")


def test_metrics_body_is_rendered_once_per_cache_period(make_service: Callable[..., Service],
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """A burst of scrapes within METRICS_CACHE_S costs one render; after it, a fresh one."""
    endpoints = http.HttpEndpoints(make_service("memory://"))
    renders = 0
    real = http.choose_encoder

    def counting(accept: str) -> object:
        encoder, ctype = real(accept)

        def encode(registry: object) -> bytes:
            nonlocal renders
            renders += 1
            return encoder(registry)  # type: ignore[arg-type]

        return encode, ctype

    monkeypatch.setattr(http, "choose_encoder", counting)
    for _ in range(50):
        assert endpoints.respond("GET", "/metrics", {})[0] == 200
    assert renders == 1
    monkeypatch.setattr(http, "METRICS_CACHE_S", 0.0)
    endpoints.respond("GET", "/metrics", {})
    assert renders == 2
