"""Broker outages: a killed broker's backlog arrives after restart; a full buffer drops the oldest."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

import pytest
from kafka_helpers import consume, index_of, make_sink, payloads, running, wait_until

from tests.brokers.kafka import KAFKA_VERSIONS

if TYPE_CHECKING:
    from tests.brokers.kafka import KafkaBroker

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

BrokerFactory = Callable[..., "KafkaBroker"]


@pytest.mark.parametrize("version", KAFKA_VERSIONS)
async def test_broker_killed_mid_run_then_restarted_loses_nothing(
    kafka_broker_factory: BrokerFactory, topic: str, version: str, record_property: Callable[[str, object], None]
) -> None:
    """Payloads produced before, during and after a SIGKILL outage all arrive once it is back, in order
    of first arrival; the sink reports itself disconnected meanwhile; duplicates are counted."""
    broker = kafka_broker_factory(version)
    sent = payloads(200, max_size=8000, seed=9)
    sink = make_sink(broker.bootstrap, topic, request_timeout_ms="1000")
    restart: asyncio.Task[None] | None = None
    outage = {"delivered_at_kill": -1, "buffered_at_restart": -1}
    async with running(sink) as runner:
        for i, payload in enumerate(sent):
            runner.put(payload)
            await asyncio.sleep(0.01)
            if i == 60:
                await wait_until(lambda: runner.stats.payloads_delivered > 30, 30, "delivery before the kill")
                broker.kill()
                outage["delivered_at_kill"] = runner.stats.payloads_delivered
            if i == 120:  # ~0.6 s of produced-while-down payloads, then the broker comes back
                outage["buffered_at_restart"] = runner.buffered_payloads
                await wait_until(lambda: not sink.connected, 10, "the sink to notice the outage")
                restart = asyncio.create_task(asyncio.to_thread(broker.restart))
        assert restart is not None
        await restart
        await wait_until(lambda: runner.stats.payloads_delivered == len(sent), 90, "delivery after restart")
        assert runner.stats.dropped == {}
        # Proof the outage really held payloads back (else the test proves nothing).
        assert outage["buffered_at_restart"] >= 50
    got = [index_of(r.value) for r in await consume(broker.bootstrap, topic)]
    first_seen = list(dict.fromkeys(got))
    assert first_seen == list(range(len(sent)))
    duplicates = len(got) - len(first_seen)
    record_property("kafka_outage_duplicates", duplicates)
    print(f"kafka {version}: {len(got)} records for {len(sent)} payloads, {duplicates} duplicate(s), "
          f"{runner.stats.delivery_errors} failed attempt(s), {outage}")


async def test_full_buffer_drops_the_oldest_and_says_how_many(
    kafka_broker_factory: BrokerFactory, topic: str, caplog: pytest.LogCaptureFixture
) -> None:
    """With the broker down a 10-payload buffer keeps the newest 10 of 50; stats and log count 40 drops,
    and the kept ones arrive after the restart."""
    broker = kafka_broker_factory()
    size = 1000
    sent = [i.to_bytes(4, "big") + bytes(size - 4) for i in range(50)]
    sink = make_sink(broker.bootstrap, topic, buffer_bytes=str(10 * size), request_timeout_ms="3000")
    caplog.set_level(logging.WARNING, logger="xtcp_async.sinks.runner")
    async with running(sink, drop_log_interval_s=0.0) as runner:
        runner.put(b"warm-up")
        await wait_until(lambda: runner.stats.payloads_delivered == 1, 30, "warm-up delivery")
        broker.kill()
        for payload in sent:  # no await in between: the runner sees only what survives
            runner.put(payload)
        assert runner.stats.dropped == {"buffer_full": 40}
        assert runner.buffered_payloads == 10
        assert "{'buffer_full': 40}" in caplog.text
        await asyncio.sleep(0.5)
        await asyncio.to_thread(broker.restart)
        await wait_until(lambda: runner.stats.payloads_delivered == 11, 60, "delivery of the kept payloads")
    got = [r.value for r in await consume(broker.bootstrap, topic)]
    assert got[0] == b"warm-up"
    assert list(dict.fromkeys(index_of(v) for v in got[1:])) == list(range(40, 50))


async def test_shutdown_with_the_broker_gone_reports_what_was_not_delivered(
    kafka_broker_factory: BrokerFactory, topic: str
) -> None:
    """drain() gives up after its grace period, stop() counts the rest as dropped and close() is bounded."""
    broker = kafka_broker_factory()
    sink = make_sink(broker.bootstrap, topic, request_timeout_ms="30000")
    sink.close_timeout_s = 1.0
    async with running(sink) as runner:
        runner.put(b"first")
        await wait_until(lambda: runner.stats.payloads_delivered == 1, 30, "first delivery")
        broker.kill()
        for payload in payloads(5, seed=2):
            runner.put(payload)
        assert await runner.drain(1.0) is False
        started = time.monotonic()
        assert await runner.stop() == 5
        assert time.monotonic() - started < 5.0
        assert runner.stats.dropped == {"shutdown": 5}
