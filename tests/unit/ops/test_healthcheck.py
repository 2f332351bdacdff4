"""Specifications for the container health probe command."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from xtcp_async.ops.healthcheck import listen_of, main, probe_url, service_argv


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


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.parametrize(("argv", "cmdline_args"), [
    (["/opt/xtcp/bin/python", "/opt/xtcp/bin/xtcp-async", "--once"], ["--once"]),
    (["python3", "-m", "xtcp_async", "--sink", "null://"], ["--sink", "null://"]),
    (["python3", "-m", "xtcp_async.ops.healthcheck"], None),
    (["/sbin/docker-init", "--", "sleep"], None),
])
def test_service_arguments_are_found_in_a_command_line(argv: list[str], cmdline_args: list[str] | None) -> None:
    """The console script and `python -m xtcp_async` are recognised; other processes are not."""
    assert service_argv(argv) == cmdline_args


@pytest.mark.timeout(60)
@pytest.mark.parametrize("how", ["flag", "config-file"])
def test_probe_reads_the_address_the_running_service_resolved(how: str, tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """A real xtcp-async whose --metrics-listen (or its relative config file) overrides an
    XTCP_METRICS_LISTEN in its environment is probed where it listens, not at the variable."""
    decoy, real = _free_port(), _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("XTCP_")}
    env["XTCP_METRICS_LISTEN"] = f"0.0.0.0:{decoy}"
    args = [sys.executable, "-m", "xtcp_async", "--sink", "null://", "--interval", "1"]
    if how == "flag":
        args += ["--metrics-listen", f"0.0.0.0:{real}"]
    else:
        (tmp_path / "xtcp.toml").write_text(f'metrics_listen = "127.0.0.1:{real}"\n')
        del env["XTCP_METRICS_LISTEN"]  # a file is below the environment in precedence
        args += ["--config", "xtcp.toml"]
    monkeypatch.setenv("XTCP_METRICS_LISTEN", f"127.0.0.1:{decoy}")  # the probe's own env is not the service's
    log = tmp_path / "service.log"
    with log.open("wb") as err, subprocess.Popen(args, env=env, cwd=tmp_path, stdout=subprocess.DEVNULL,
                                                 stderr=err) as proc:
        try:
            # Until the listener is up (and, right after exec, while /proc/PID/cmdline is still
            # empty) the probe fails; it must succeed within the deadline.
            deadline = time.monotonic() + 30
            while main(["--pid", str(proc.pid), "--timeout", "1"]) != 0:
                assert proc.poll() is None, log.read_text()
                assert time.monotonic() < deadline, "the service's listener never answered"
                time.sleep(0.2)
            assert listen_of(proc.pid).endswith(f":{real}")
        finally:
            proc.terminate()
            proc.wait(20)


def test_probe_of_a_process_that_is_not_the_service_fails_with_a_reason(capsys: pytest.CaptureFixture[str]) -> None:
    """--pid naming another program: exit 1 and a line saying why, no probe of a guessed address."""
    assert main(["--pid", str(os.getpid()), "--timeout", "1"]) == 1
    assert "is not xtcp-async" in capsys.readouterr().err
