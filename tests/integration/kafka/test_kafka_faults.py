"""Fault suite: the Kafka broker killed for 30 s in the middle of a 90 s run at a 1 s interval."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import pytest
from kafka_helpers import consume, make_sink

from tests.support.faults import poll_ids, run_with_outage

if TYPE_CHECKING:
    from tests.brokers.kafka import KafkaBroker

pytestmark = [pytest.mark.kafka, pytest.mark.slow]


@pytest.mark.timeout(240)
async def test_every_poll_is_delivered_or_counted_through_a_kafka_outage(
        kafka_broker_factory: Callable[..., KafkaBroker], topic: str) -> None:
    """Poll ids read back + payloads counted as dropped = polls made; SIGTERM ends within the grace."""
    broker = kafka_broker_factory()
    # A buffer of a few polls, so the outage overflows it: drops happen and must be counted.
    sink = make_sink(broker.bootstrap, topic, request_timeout_ms="2000", buffer_bytes="40000")
    run = await run_with_outage(sink, broker.kill, broker.restart, grace=5.0)
    assert run.shutdown_s <= 5.0 + 1.0
    assert run.dropped.get("buffer_full", 0) > 0, run.dropped  # the outage really overflowed the buffer
    got: set[int] = set()
    for record in await consume(broker.bootstrap, topic, timeout_s=60):
        got |= poll_ids(record.value)
    assert got <= set(range(1, run.polls + 1))
    assert len(got) + sum(run.dropped.values()) == run.polls, (len(got), run.dropped, run.polls)
