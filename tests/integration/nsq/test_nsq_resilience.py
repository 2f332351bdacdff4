"""The NSQ sink when nsqd goes away, comes late, or the sink is closed."""

from __future__ import annotations

import asyncio
import collections
from collections.abc import Callable

import pytest
from nsq_helpers import make_sink, payloads, running, socket_fds, wait_until

from tests.brokers.nsqd import Nsqd, consume
from xtcp_async.sinks.nsq_protocol import ConnectOptions, NsqConnection, pub

pytestmark = pytest.mark.nsq


async def test_payloads_buffered_while_nsqd_is_killed_arrive_after_its_restart(nsqd: Nsqd, topic: str) -> None:
    """Killing nsqd mid-run and restarting it on the same port and data dir loses nothing."""
    before, during = payloads(100, seed=1), payloads(100, seed=2)
    during = [b"late" + p for p in during]
    async with running(make_sink(nsqd.tcp_address, topic, reconnect_interval_s="0.1")) as runner:
        for payload in before:
            runner.put(payload)
        await wait_until(lambda: runner.stats.payloads_delivered == len(before), 20, "first half")
        await nsqd.akill()
        for payload in during:
            runner.put(payload)
        await asyncio.sleep(0.5)
        assert runner.stats.payloads_delivered == len(before)
        assert runner.buffered_payloads == len(during)
        await nsqd.astart()
        await wait_until(lambda: runner.stats.payloads_delivered == len(before) + len(during), 20,
                         "delivery after restart")
        assert runner.stats.dropped == {}
    got = consume(nsqd.tcp_address, topic, len(before) + len(during))
    assert collections.Counter(got) == collections.Counter(before + during)


async def test_nsqd_down_at_start_up_then_started_gets_everything(
        nsqd_factory: Callable[..., Nsqd], topic: str) -> None:
    """start() succeeds without nsqd; payloads wait in the buffer and go out once it is up."""
    daemon = nsqd_factory(start=False)
    sink = make_sink(daemon.tcp_address, topic, reconnect_interval_s="0.1", timeout_s="0.2")
    sent = payloads(50)
    async with running(sink) as runner:
        for payload in sent:
            runner.put(payload)
        await asyncio.sleep(0.5)
        assert not sink.connected
        assert runner.stats.payloads_delivered == 0
        assert runner.last_error is not None
        await daemon.astart()
        await wait_until(lambda: runner.stats.payloads_delivered == len(sent), 20, "delivery")
        assert sink.connected
    assert collections.Counter(consume(daemon.tcp_address, topic, len(sent))) == collections.Counter(sent)


async def test_close_leaves_no_task_timer_or_socket(nsqd: Nsqd, topic: str) -> None:
    """After close(), connected or not, the sink owns no task and no socket any more."""
    tasks_before = asyncio.all_tasks()
    sockets_before = socket_fds()
    sink = make_sink(nsqd.tcp_address, topic)
    await sink.start()
    await sink.send(b"x")
    assert socket_fds() - sockets_before, "a connection should be open while running"
    await sink.close()
    await sink.close()  # idempotent
    assert asyncio.all_tasks() == tasks_before
    assert socket_fds() == sockets_before

    # Also while nsqd is down and the supervisor is between reconnect attempts.
    await nsqd.akill()
    sink = make_sink(nsqd.tcp_address, topic, reconnect_interval_s="30")
    await sink.start()
    await asyncio.sleep(0.2)
    await sink.close()
    assert asyncio.all_tasks() == tasks_before
    assert socket_fds() == sockets_before
    loop = asyncio.get_running_loop()
    assert not loop._scheduled  # type: ignore[attr-defined]  # no timer left behind


async def test_idle_connection_answers_heartbeats_and_stays_usable(nsqd: Nsqd, topic: str) -> None:
    """nsqd drops clients that miss two heartbeats; an idle connection answers them with NOP."""
    options = ConnectOptions(client_id="t", hostname="t", user_agent="test", heartbeat_interval_ms=1000)
    conn = await NsqConnection.open("127.0.0.1", nsqd.tcp_port, options)
    try:
        await asyncio.sleep(2.6)  # nsqd would have closed it after 2 s without the NOPs
        assert conn.is_open
        assert await conn.request(pub(topic, b"after idle")) == b"OK"
    finally:
        await conn.close()
    assert consume(nsqd.tcp_address, topic, 1) == [b"after idle"]
