"""Fixtures for the live tests: a fresh network namespace, and one holding the traffic program's sockets."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from .harness import Netns, Traffic, netns_unavailable_reason, skip_or_fail, start_traffic


@pytest.fixture(scope="module")
def netns() -> Iterator[Netns]:
    """A new network namespace with lo up, deleted after the module (skips without root, fails under CI)."""
    reason = netns_unavailable_reason()
    if reason:
        skip_or_fail(reason)
    try:
        ns = Netns.create()
    except RuntimeError as exc:
        skip_or_fail(f"cannot create a network namespace: {exc}")
        raise  # unreachable: skip_or_fail always raises
    try:
        yield ns
    finally:
        ns.delete()


@pytest.fixture(scope="module")
def traffic(netns: Netns) -> Iterator[Traffic]:
    """The traffic program running in ``netns``: listeners and connections, quiescent and held."""
    t = start_traffic(netns)
    try:
        yield t
    finally:
        t.stop()
