"""The Kafka sink against a real broker: what is sent is acknowledged, then consumed back intact."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TYPE_CHECKING

import pytest
from kafka_helpers import consume, end_offset, index_of, make_sink, payloads, running, started, wait_until

from xtcp_async.errors import SinkError

if TYPE_CHECKING:
    from tests.brokers.kafka import KafkaBroker

pytestmark = pytest.mark.kafka


async def test_payloads_are_consumed_back_in_order(kafka_broker: KafkaBroker, topic: str) -> None:
    """Every payload given to the runner is one Kafka record, in order, with identical bytes."""
    sent = payloads(600, max_size=20_000)
    async with running(make_sink(kafka_broker.bootstrap, topic)) as runner:
        for payload in sent:
            runner.put(payload)
        await wait_until(lambda: runner.stats.payloads_delivered == len(sent), 60, "delivery")
        assert runner.stats.dropped == {}
        assert runner.stats.delivery_errors == 0
    got = [r.value for r in await consume(kafka_broker.bootstrap, topic)]
    assert got == sent


@pytest.mark.parametrize("compression", ["gzip", "snappy", "lz4", "zstd", "none"])
async def test_every_compression_type_round_trips(
    kafka_broker: KafkaBroker, topic: str, compression: str
) -> None:
    """Each compression codec the sink accepts is accepted by the broker and decoded by a consumer."""
    sent = [p * 3 for p in payloads(50, max_size=3000, seed=7)]  # repeated bytes: compressible
    sink = make_sink(kafka_broker.bootstrap, topic, compression=compression)
    async with started(sink):
        await sink.send_many(sent[:25])
        for payload in sent[25:]:
            await sink.send(payload)
    got = [r.value for r in await consume(kafka_broker.bootstrap, topic)]
    assert got == sent


async def test_send_returns_only_after_the_broker_stored_the_record(
    kafka_broker: KafkaBroker, topic: str
) -> None:
    """When send() returns the record is already in the partition log (acks=all, even with a linger)."""
    sink = make_sink(kafka_broker.bootstrap, topic, linger_ms="50")
    async with started(sink):
        for expected in range(1, 6):
            await sink.send(b"payload %d" % expected)
            assert await end_offset(kafka_broker.bootstrap, topic) == expected


async def test_payload_of_max_payload_bytes_is_delivered_and_one_more_byte_is_rejected(
    kafka_broker: KafkaBroker, topic: str
) -> None:
    """max_payload_bytes is exactly the largest value the producer accepts under max_request_size."""
    sink = make_sink(kafka_broker.bootstrap, topic, max_request_size="65536", key="hostname",
                     key_hostname="edge-01.example")
    assert 65_000 < sink.max_payload_bytes < 65_536
    async with started(sink):
        await sink.send(b"a" * sink.max_payload_bytes)
        with pytest.raises(SinkError) as info:
            await sink.send(b"b" * (sink.max_payload_bytes + 1))
        assert info.value.retriable is False
    [record] = await consume(kafka_broker.bootstrap, topic)
    assert len(record.value) == sink.max_payload_bytes


async def test_payloads_larger_than_batch_size_go_out_one_per_batch(
    kafka_broker: KafkaBroker, topic: str
) -> None:
    """A payload bigger than batch_size is still sent (alone in its batch), not refused."""
    sent = payloads(5, min_size=40_000, max_size=60_000, seed=3)
    sink = make_sink(kafka_broker.bootstrap, topic, batch_size="16384")
    async with started(sink):
        await sink.send_many(sent)
    assert [r.value for r in await consume(kafka_broker.bootstrap, topic)] == sent


@pytest.mark.parametrize(
    ("options", "key"), [({}, None), ({"key": "hostname", "key_hostname": "edge-01"}, b"edge-01")]
)
async def test_record_key_follows_the_key_option(
    kafka_broker: KafkaBroker, topic: str, options: dict[str, str], key: bytes | None
) -> None:
    """key=none sends records without a key; key=hostname puts the host name in every key."""
    sink = make_sink(kafka_broker.bootstrap, topic, **options)
    async with started(sink):
        await sink.send_many([b"one", b"two"])
    assert [r.key for r in await consume(kafka_broker.bootstrap, topic)] == [key, key]


async def test_client_id_and_acks_one_deliver(kafka_broker: KafkaBroker, topic: str) -> None:
    """acks=1 without idempotence and a custom client_id still deliver every payload."""
    sent = payloads(20, seed=11)
    sink = make_sink(kafka_broker.bootstrap, topic, acks="1", client_id="edge-collector", linger_ms="5")
    async with started(sink):
        await sink.send_many(sent)
    assert [r.value for r in await consume(kafka_broker.bootstrap, topic)] == sent


async def test_broker_down_at_start_is_retried_until_it_comes_up(
    kafka_broker_factory: Callable[..., KafkaBroker], topic: str, caplog: pytest.LogCaptureFixture
) -> None:
    """start() with no broker logs and returns; payloads wait in the runner and arrive once it is up."""
    broker = kafka_broker_factory(start=False)
    sent = payloads(30, seed=5)
    sink = make_sink(broker.bootstrap, topic)
    async with running(sink) as runner:
        assert not sink.connected
        assert "cannot connect" in caplog.text
        for payload in sent:
            runner.put(payload)
        await asyncio.sleep(0.5)
        assert runner.stats.payloads_delivered == 0
        assert runner.stats.delivery_errors > 0
        await asyncio.to_thread(broker.start)
        await wait_until(lambda: runner.stats.payloads_delivered == len(sent), 60, "delivery after start")
        assert sink.connected
    got = [r.value for r in await consume(broker.bootstrap, topic)]
    assert [index_of(p) for p in got] == list(range(len(sent)))


async def test_send_to_a_closed_port_fails_retriably(topic: str) -> None:
    """With nothing listening, send() raises a retriable SinkError instead of hanging or crashing."""
    from tests.brokers.kafka import free_port

    sink = make_sink(f"127.0.0.1:{free_port()}", topic, request_timeout_ms="2000")
    async with started(sink):
        with pytest.raises(SinkError) as info:
            await sink.send(b"x")
        assert info.value.retriable is True


async def test_close_is_idempotent_and_leaves_no_task_behind(kafka_broker: KafkaBroker, topic: str) -> None:
    """After close() (called twice) no aiokafka task is left on the loop."""
    before = asyncio.all_tasks()
    sink = make_sink(kafka_broker.bootstrap, topic)
    await sink.start()
    await sink.send(b"x")
    await sink.close()
    await sink.close()
    assert not sink.connected
    assert asyncio.all_tasks() - before == set()
