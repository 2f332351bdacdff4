"""The many-namespace poll dumps every family of every namespace, at most N at once, rescanning when due."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from xtcp_async.config import load_config
from xtcp_async.netlink.origin import NetnsOrigin
from xtcp_async.netns.poller import NamespacePoller
from xtcp_async.pipeline import PollInfo
from xtcp_async.stats import Stats


@dataclass
class _Entry:
    sock: object
    origin: NetnsOrigin

    def gone(self) -> bool:
        return False


@dataclass
class _Registry:
    """Stands in for NamespaceRegistry: a fixed set of namespaces, counting rescans."""

    entries: dict[tuple[int, int], _Entry] = field(default_factory=dict)
    refreshes: int = 0
    closed: bool = False

    async def refresh(self) -> None:
        self.refreshes += 1

    def close(self) -> None:
        self.closed = True


def _poller(n: int, rescan: float | None, max_concurrent: int) -> tuple[NamespacePoller, _Registry]:
    flags: dict[str, Any] = {"metrics_listen": "", "netns": "all"}
    if rescan is not None:
        flags["netns_rescan"] = rescan
    cfg = load_config(flags)
    reg = _Registry({(0, i): _Entry(object(), NetnsOrigin(f"pid:{i}", i)) for i in range(n)})
    return NamespacePoller(cfg.poll, Stats(), registry=reg, max_concurrent=max_concurrent), reg  # type: ignore[arg-type]


async def test_every_family_of_every_namespace_is_dumped_with_bounded_concurrency() -> None:
    """20 namespaces × 2 families are all dumped, never more than 8 namespaces at a time."""
    poller, _ = _poller(20, None, 8)
    running = peak = 0
    seen: list[tuple[str, int]] = []

    async def dump(info: PollInfo, source: object, family: int, origin: NetnsOrigin | None, gone: object) -> bool:
        nonlocal running, peak
        assert origin is not None
        running += 1
        peak = max(peak, running)
        await asyncio.sleep(0.002)
        running -= 1
        seen.append((origin.netns, family))
        return True

    await poller.poll(PollInfo(1, 0), dump)
    assert sorted(seen) == sorted((f"pid:{i}", f) for i in range(20) for f in (2, 10))
    assert peak == 8
    assert poller.stats.netns_polled == 20


async def test_a_failed_family_skips_the_namespaces_other_family() -> None:
    """When a namespace's first dump fails, its second family is not tried (it would fail the same way)."""
    poller, _ = _poller(3, None, 8)
    calls: list[int] = []

    async def dump(info: PollInfo, source: object, family: int, origin: NetnsOrigin | None, gone: object) -> bool:
        calls.append(family)
        return False

    await poller.poll(PollInfo(1, 0), dump)
    assert calls == [2, 2, 2]


async def test_rescans_happen_every_poll_or_every_netns_rescan_seconds() -> None:
    """Without --netns-rescan each poll rediscovers; with a long one only the first does."""
    async def dump(*_: object) -> bool:
        return True

    every, reg_every = _poller(2, None, 8)
    spaced, reg_spaced = _poller(2, 3600.0, 8)
    for i in range(3):
        await every.poll(PollInfo(i, 0), dump)
        await spaced.poll(PollInfo(i, 0), dump)
    assert (reg_every.refreshes, reg_spaced.refreshes) == (3, 1)
    every.close()
    assert reg_every.closed
