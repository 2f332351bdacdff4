"""The NSQ sink against a real nsqd: what is published is consumed back intact."""

from __future__ import annotations

import collections
from collections.abc import Callable
from pathlib import Path

import pytest
from nsq_helpers import make_sink, payloads, running, started, wait_until

from tests.brokers.nsqd import Nsqd, TlsFiles, consume

pytestmark = pytest.mark.nsq


async def test_published_payloads_are_consumed_back_intact(nsqd: Nsqd, topic: str) -> None:
    """Every payload given to the runner arrives in nsqd exactly once with identical bytes."""
    sent = payloads(300)
    async with running(make_sink(nsqd.tcp_address, topic)) as runner:
        for payload in sent:
            runner.put(payload)
        await wait_until(lambda: runner.stats.payloads_delivered == len(sent), 20, "delivery")
        assert runner.stats.dropped == {}
    assert nsqd.topic_message_count(topic) == len(sent)
    got = consume(nsqd.tcp_address, topic, len(sent))
    assert collections.Counter(got) == collections.Counter(sent)


async def test_many_batches_go_out_as_mpubs_within_the_body_limit(
        nsqd_factory: Callable[..., Nsqd], topic: str) -> None:
    """A send_many larger than nsqd's max body is cut into MPUBs nsqd accepts, none lost."""
    daemon = nsqd_factory(max_body_size=64 * 1024, max_msg_size=8 * 1024)
    sink = make_sink(daemon.tcp_address, topic, max_body_bytes=str(64 * 1024),
                     max_message_bytes=str(8 * 1024))
    sent = payloads(1500, min_size=1000, max_size=8 * 1024 - 4)
    async with started(sink):
        for start in range(0, len(sent), sink.max_send_many):
            await sink.send_many(sent[start : start + sink.max_send_many])
        assert sink.connected
    assert daemon.topic_message_count(topic) == len(sent)
    got = consume(daemon.tcp_address, topic, len(sent))
    assert collections.Counter(got) == collections.Counter(sent)


async def test_payload_over_message_size_is_refused_counted_and_never_sent(
        nsqd_factory: Callable[..., Nsqd], topic: str) -> None:
    """A payload over max_message_bytes is dropped with a count and the connection survives."""
    daemon = nsqd_factory(max_msg_size=1000)
    sink = make_sink(daemon.tcp_address, topic, max_message_bytes="1000")
    async with running(sink) as runner:
        runner.put(b"a" * 1000)
        await wait_until(lambda: runner.stats.payloads_delivered == 1, 10, "first delivery")
        conn_before = next(iter(sink._conns.values()))
        runner.put(b"b" * 1001)
        await wait_until(lambda: runner.stats.dropped.get("rejected") == 1, 10, "refusal")
        runner.put(b"c" * 10)
        await wait_until(lambda: runner.stats.payloads_delivered == 2, 10, "second delivery")
        # nsqd would have closed the connection on E_BAD_MESSAGE: it was never asked.
        assert next(iter(sink._conns.values())) is conn_before
        # Inside a batch the sink counts the refusal itself and delivers the others.
        await sink.send_many([b"d", b"e" * 2000, b"f"])
        assert sink.refused_payloads == 1
    assert daemon.topic_message_count(topic) == 4
    assert sorted(consume(daemon.tcp_address, topic, 4)) == [b"a" * 1000, b"c" * 10, b"d", b"f"]


async def test_publishes_over_tls_verified_by_the_ca(
        nsqd_factory: Callable[..., Nsqd], tls_files: TlsFiles, topic: str) -> None:
    """With tls=true the connection is upgraded to TLS, checked against ca_file, and delivers."""
    daemon = nsqd_factory(tls=tls_files)
    sink = make_sink(daemon.tcp_address, topic, tls="true", ca_file=str(tls_files.ca_file))
    sent = payloads(50)
    async with started(sink):
        await sink.send_many(sent)
        conn = next(iter(sink._conns.values()))
        assert conn.identify_response["tls_v1"] is True
        assert conn._writer.get_extra_info("ssl_object") is not None
    assert sorted(consume(daemon.tcp_address, topic, len(sent))) == sorted(sent)


async def test_tls_with_an_unknown_ca_never_delivers(
        nsqd_factory: Callable[..., Nsqd], tls_files: TlsFiles, tmp_path: Path, topic: str) -> None:
    """A server certificate the configured CA did not sign fails the send (retriable)."""
    from tests.brokers.nsqd import make_tls_files
    from xtcp_async.errors import SinkError

    other = make_tls_files(tmp_path / "other-ca")
    daemon = nsqd_factory(tls=tls_files)
    sink = make_sink(daemon.tcp_address, topic, tls="true", ca_file=str(other.ca_file), timeout_s="0.5")
    async with started(sink):
        with pytest.raises(SinkError, match="no connection") as info:
            await sink.send(b"x")
        assert info.value.retriable
        assert "CERTIFICATE_VERIFY_FAILED" in str(info.value)
    assert daemon.topic_message_count(topic) == 0


@pytest.mark.parametrize("compression", ["deflate", "snappy"])
async def test_compressed_connections_deliver_intact(nsqd: Nsqd, topic: str, compression: str) -> None:
    """With compression negotiated, PUB and MPUB (large too) arrive byte for byte."""
    sink = make_sink(nsqd.tcp_address, topic, compression=compression)
    sent = payloads(200, max_size=60_000)
    async with started(sink):
        await sink.send(sent[0])
        await sink.send_many(sent[1:])
        conn = next(iter(sink._conns.values()))
        assert conn.identify_response[compression] is True
    assert collections.Counter(consume(nsqd.tcp_address, topic, len(sent))) == collections.Counter(sent)
