"""Fixtures that start a real nsqd (installed by scripts/install_nsq.sh) for the NSQ tests."""

from __future__ import annotations

import itertools
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.brokers.nsqd import Nsqd, TlsFiles, ensure_nsq_installed, make_tls_files

_topic_numbers = itertools.count()


@pytest.fixture(scope="session")
def nsq_bin_dir() -> Path:
    """The directory holding nsqd and nsq_tail (installed on first use)."""
    try:
        return ensure_nsq_installed()
    except (RuntimeError, OSError) as exc:
        if os.environ.get("CI"):
            pytest.fail(f"nsqd is required under CI: {exc}")
        pytest.skip(reason=f"nsqd not available (needs Go and the Go module proxy; run `make brokers`): {exc}")


@pytest.fixture
def nsqd_factory(nsq_bin_dir: Path, tmp_path: Path) -> Iterator[Callable[..., Nsqd]]:
    """Start nsqds with custom flags; every one is killed after the test."""
    started: list[Nsqd] = []
    numbers = itertools.count()

    def make(*, start: bool = True, **kwargs: Any) -> Nsqd:
        daemon = Nsqd(nsq_bin_dir, tmp_path / f"nsqd{next(numbers)}", **kwargs)
        started.append(daemon)
        if start:
            daemon.start()
        return daemon

    yield make
    for daemon in started:
        daemon.kill()


@pytest.fixture
def nsqd(nsqd_factory: Callable[..., Nsqd]) -> Nsqd:
    """One running nsqd whose acknowledged messages survive a SIGKILL."""
    return nsqd_factory(durable=True)


@pytest.fixture(scope="session")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> TlsFiles:
    """A self-signed CA and a 127.0.0.1 server certificate, made for this test run."""
    return make_tls_files(tmp_path_factory.mktemp("nsq-tls"))


@pytest.fixture
def topic() -> str:
    """A topic name no other test uses."""
    return f"xtcp_test_{os.getpid()}_{next(_topic_numbers)}"
