"""A namespace's dump that fails because the namespace vanished is counted, not a failed poll; other
failures still fail it. Each record of a namespace's dump carries that namespace."""

from __future__ import annotations

import asyncio

from tests.support.replay import recorded_source
from xtcp_async.config import load_config
from xtcp_async.netlink import constants as c
from xtcp_async.netlink.origin import NetnsOrigin
from xtcp_async.pipeline import ChunkItem, PollChunk, Poller, PollInfo
from xtcp_async.stats import Stats

ORIGIN = NetnsOrigin("pid:7", 4026530000)


def _poller() -> tuple[Poller, asyncio.Queue[ChunkItem]]:
    cfg = load_config({"metrics_listen": "", "poll_timeout": 0.2, "interval": 1})
    q: asyncio.Queue[ChunkItem] = asyncio.Queue()
    return Poller(cfg, Stats(), q), q


async def test_a_vanished_namespace_is_counted_and_the_poll_stays_good() -> None:
    """A dump that times out in a namespace that is gone adds to netns_vanished and fails nothing."""
    poller, _ = _poller()
    info = PollInfo(1, 0)
    ok = await poller._dump(info, recorded_source(hang=[c.AF_INET]), c.AF_INET, ORIGIN, lambda: True)
    assert not ok
    assert (poller.stats.netns_vanished, poller.stats.poll_timeouts, poller.stats.polls_failed) == (1, 0, 0)
    assert not info.failed


async def test_a_failure_in_a_namespace_that_still_exists_fails_the_poll() -> None:
    """The same timeout in a namespace that is still there is a poll timeout, as for the host's own."""
    poller, _ = _poller()
    info = PollInfo(1, 0)
    await poller._dump(info, recorded_source(hang=[c.AF_INET]), c.AF_INET, ORIGIN, lambda: False)
    assert (poller.stats.netns_vanished, poller.stats.poll_timeouts, poller.stats.polls_failed) == (0, 1, 1)
    assert info.failed


async def test_chunks_of_a_namespace_dump_carry_its_origin() -> None:
    """Every chunk a namespace's dump queues is tagged with that namespace's origin."""
    poller, q = _poller()
    assert await poller._dump(PollInfo(1, 0), recorded_source(), c.AF_INET6, ORIGIN, lambda: False)
    items = [q.get_nowait() for _ in range(q.qsize())]
    assert items and all(isinstance(i, PollChunk) and i.origin is ORIGIN for i in items)
