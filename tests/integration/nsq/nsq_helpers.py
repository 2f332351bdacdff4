"""Shared helpers of the NSQ integration tests (run a sink behind a real SinkRunner)."""

from __future__ import annotations

import contextlib
import os

from tests.support.sinks import index_of, payloads, running, started, wait_until
from xtcp_async.sinks.nsq import NsqSink
from xtcp_async.sinks.spec import parse_sink_url

__all__ = ["index_of", "payloads", "running", "started", "wait_until"]


def make_sink(address: str, topic: str, **options: str) -> NsqSink:
    query = "&".join(f"{k}={v}" for k, v in options.items())
    return NsqSink.from_spec(parse_sink_url(f"nsq://{address}/{topic}" + (f"?{query}" if query else "")))


def open_fds() -> set[str]:
    """This process's open file descriptors, with what they point to."""
    fds = set()
    for name in os.listdir("/proc/self/fd"):
        with contextlib.suppress(OSError):
            fds.add(f"{name}->{os.readlink(f'/proc/self/fd/{name}')}")
    return fds


def socket_fds() -> set[str]:
    return {fd for fd in open_fds() if "socket:" in fd}
