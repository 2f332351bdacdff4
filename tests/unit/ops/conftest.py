"""Shared pieces for the ops unit tests: a Service built from the real config loader."""

from __future__ import annotations

import asyncio
import itertools
import os
from collections.abc import Callable

import pytest

from xtcp_async.config import load_config
from xtcp_async.service import Service
from xtcp_async.sinks.runner import SinkRunner


@pytest.fixture(autouse=True)
def _no_xtcp_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """The developer's own XTCP_* variables must not leak into the configs built here."""
    for name in list(os.environ):
        if name.startswith("XTCP_"):
            monkeypatch.delenv(name)


@pytest.fixture
def make_service() -> Callable[..., Service]:
    """A Service for the given sink URLs, with its runners built (not started)."""

    def make(*urls: str) -> Service:
        cfg = load_config({"sink": list(urls or ["memory://"]), "metrics_listen": ""})
        service = Service(cfg)
        for i, (sc, sink) in enumerate(service.sinks):
            service.runners.append(SinkRunner(f"{i}:{sc.spec.scheme}", sink))
        return service

    return make


async def http_get(port: int, path: str, *, method: str = "GET",
                   headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    """One HTTP/1.1 request to 127.0.0.1:port: (status, lower-cased headers, body)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    head = f"{method} {path} HTTP/1.1\r\nHost: test\r\n"
    for name, value in (headers or {}).items():
        head += f"{name}: {value}\r\n"
    writer.write((head + "\r\n").encode())
    await writer.drain()
    raw = await reader.read()
    writer.close()
    await writer.wait_closed()
    head_bytes, _, body = raw.partition(b"\r\n\r\n")
    lines = head_bytes.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ")[1])
    hdrs = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    return status, hdrs, body


async def wait_until(condition: Callable[[], bool], timeout_s: float = 5.0) -> None:
    """Poll ``condition`` every 10 ms until it holds (TimeoutError after ``timeout_s``)."""
    async with asyncio.timeout(timeout_s):
        for _ in itertools.count():
            if condition():
                return
            await asyncio.sleep(0.01)
