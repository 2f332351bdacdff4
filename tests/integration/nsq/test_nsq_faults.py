"""Fault suite: nsqd killed for 30 s in the middle of a 90 s run at a 1 s interval."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from nsq_helpers import make_sink

from tests.brokers.nsqd import Nsqd, consume
from tests.support.faults import poll_ids, run_with_outage

pytestmark = [pytest.mark.nsq, pytest.mark.slow]


@pytest.mark.timeout(240)
async def test_every_poll_is_delivered_or_counted_through_an_nsqd_outage(
        nsqd_factory: Callable[..., Nsqd], topic: str) -> None:
    """Poll ids read back + payloads counted as dropped = polls made; SIGTERM ends within the grace."""
    nsqd = nsqd_factory(durable=True)  # every acknowledged message on disk: a SIGKILL loses none
    sink = make_sink(nsqd.tcp_address, topic, reconnect_interval_s="0.2", timeout_s="1", buffer_bytes="40000")
    run = await run_with_outage(sink, nsqd.kill, nsqd.restart, grace=5.0)
    assert run.shutdown_s <= 5.0 + 1.0
    assert run.dropped.get("buffer_full", 0) > 0, run.dropped
    count = nsqd.topic_message_count(topic)
    got: set[int] = set()
    for body in consume(nsqd.tcp_address, topic, count, timeout_s=60):
        got |= poll_ids(body)
    assert got <= set(range(1, run.polls + 1))
    assert len(got) + sum(run.dropped.values()) == run.polls, (len(got), run.dropped, run.polls)
