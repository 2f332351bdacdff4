"""The pipeline on known sockets (a recorded 6.18 dump): cuts, polls, turns, and sinks fed on their own."""

from __future__ import annotations

import asyncio
import signal
import time

import pytest

from tests.support.replay import recorded_source
from tests.unit.encode.test_roundtrip import split_list_payload
from xtcp_async.config import Config, SinkConfig, load_config
from xtcp_async.encode.gen import xtcp_flat_record_pb2 as pb
from xtcp_async.errors import ConfigError, SinkError, XtcpError
from xtcp_async.netlink import constants as c
from xtcp_async.netlink.decode import decode_messages
from xtcp_async.netlink.socket import Chunk
from xtcp_async.pipeline import DECODE_BYTES, Decoder, Encoder, PollBatch, PollChunk, PollEnd, PollInfo
from xtcp_async.service import Service, StageCrashed
from xtcp_async.sinks import Sink, parse_sink_url
from xtcp_async.sinks.base import BaseSink
from xtcp_async.sinks.memory import MemorySink
from xtcp_async.stats import Stats
from xtcp_async.turns import CpuTurns

#: Sockets in the recorded dump (AF_INET 18, AF_INET6 9).
SOCKETS = 27


class DeadSink(BaseSink):
    """A broker that is down: every send fails (retriable) after a short connect attempt."""

    def __init__(self, buffer_bytes: int) -> None:
        self.buffer_bytes = buffer_bytes
        self.closed = False

    async def send(self, payload: bytes) -> None:
        await asyncio.sleep(0.01)
        raise SinkError("connection refused", retriable=True)

    async def close(self) -> None:
        self.closed = True


class StuckSink(DeadSink):
    """A broker that accepted the connection and never answers."""

    async def send(self, payload: bytes) -> None:
        await asyncio.Event().wait()


def _cfg(**flags: object) -> Config:
    base: dict[str, object] = {"metrics_listen": "", "max_batch_rows": 5, "interval": 0.3, "poll_timeout": 0.2}
    base.update(flags)
    return load_config(base)


def _sinks(*sinks: Sink) -> list[tuple[SinkConfig, Sink]]:
    return [(SinkConfig(parse_sink_url("memory://"), "protobuf-list"), s) for s in sinks]


def _rows(payloads: list[bytes]) -> list[pb.XtcpFlatRecord]:
    return [row for p in payloads for row in pb.Envelope.FromString(split_list_payload(p)).row]


async def test_batches_are_cut_at_max_rows_and_never_span_two_polls() -> None:
    """Every payload has at most max_batch_rows records, all of one poll; each poll has every socket once."""
    cfg = _cfg(count=3, max_batch_rows=10, shutdown_grace=2)
    sink = MemorySink()
    service = Service(cfg, _sinks(sink), recorded_source())
    await service.run()
    per_payload = [_rows([p]) for p in sink.payloads]
    assert all(0 < len(rows) <= 10 for rows in per_payload)
    assert all(len({r.poll_id for r in rows}) == 1 for rows in per_payload)
    by_poll: dict[int, int] = {}
    for rows in per_payload:
        by_poll[rows[0].poll_id] = by_poll.get(rows[0].poll_id, 0) + len(rows)
    assert by_poll == {1: SOCKETS, 2: SOCKETS, 3: SOCKETS}
    counters = [r.record_counter for rows in per_payload for r in rows]
    assert counters == list(range(3 * SOCKETS))


async def test_decoder_groups_chunks_up_to_its_byte_size_and_flushes_at_poll_end() -> None:
    """Chunks are decoded together until DECODE_BYTES, and whatever is left at a poll's end is decoded then."""
    chunks = recorded_source().dumps[c.AF_INET]
    data = b"".join(chunks)
    # Enough copies of the dump's messages to pass the byte threshold once, with a remainder.
    part = data[:-20]
    big = [Chunk(part, 0)] * (DECODE_BYTES // len(part) + 1) + [Chunk(data, 0)]
    inq: asyncio.Queue[object] = asyncio.Queue()
    outq: asyncio.Queue[object] = asyncio.Queue()
    poll = PollInfo(1, 123)
    for ch in big:
        inq.put_nowait(PollChunk(poll, ch))
    inq.put_nowait(PollEnd(poll))
    inq.put_nowait(None)
    await Decoder(_cfg(), Stats(), inq, outq).run()  # type: ignore[arg-type]
    items = []
    while not outq.empty():
        items.append(outq.get_nowait())
    assert [type(i).__name__ for i in items] == ["PollBatch", "PollBatch", "PollEnd", "NoneType"]
    per_copy, last = decode_messages([big[0].data]).batch.n, decode_messages([data]).batch.n
    first, second = items[0], items[1]
    assert isinstance(first, PollBatch) and isinstance(second, PollBatch)
    assert first.batch.n == per_copy * (len(big) - 1) and second.batch.n == last
    assert first.batch.meta.timestamp_ns == 123 and second.batch.meta.record_counter_start == first.batch.n


async def test_cpu_turns_alternate_between_two_tasks() -> None:
    """Two tasks that each take turns back to back alternate, one step per turn."""
    turns = CpuTurns()
    order: list[str] = []

    async def worker(name: str) -> None:
        for _ in range(3):
            async with turns.turn():
                order.append(name)

    await asyncio.gather(worker("a"), worker("b"))
    assert order == ["a", "b", "a", "b", "a", "b"]


async def test_dead_full_sink_never_delays_a_healthy_one() -> None:
    """Beside a dead sink whose buffer is full, a healthy sink gets every poll on time, and polling never waits."""
    cfg = _cfg(count=12, interval=0.25, poll_timeout=0.2, shutdown_grace=0.5)
    healthy = MemorySink()
    dead = DeadSink(buffer_bytes=3000)
    service = Service(cfg, _sinks(healthy, dead), recorded_source())
    arrivals: dict[int, float] = {}
    t0 = time.monotonic()

    async def watch() -> None:
        seen = 0
        while True:
            for p in healthy.payloads[seen:]:
                for row in _rows([p]):
                    arrivals.setdefault(row.poll_id, time.monotonic() - t0)
            seen = len(healthy.payloads)
            await asyncio.sleep(0.01)

    watcher = asyncio.create_task(watch())
    try:
        await asyncio.wait_for(service.run(), 10)
    finally:
        watcher.cancel()
    elapsed = time.monotonic() - t0
    assert sorted(arrivals) == list(range(1, 13))
    # Poll k starts at (k-1)·interval; its rows reach the healthy sink well before the next poll.
    late = {k: round(t - (k - 1) * 0.25, 3) for k, t in arrivals.items() if t - (k - 1) * 0.25 > 0.2}
    assert not late, f"polls reached the healthy sink late: {late}"
    assert len(_rows(healthy.payloads)) == 12 * SOCKETS
    # The dead sink's buffer filled and its oldest payloads were dropped and counted; at exit the
    # rest was counted too: nothing vanished.
    dead_stats = service.runners[1].stats
    assert dead_stats.dropped.get("buffer_full", 0) > 0
    assert sum(dead_stats.dropped.values()) == service.stats.payloads_encoded // 2
    assert elapsed < 12 * 0.25 + 0.5 + 1.0


async def test_dead_sink_buffer_waits_one_budget_per_poll_then_drops_oldest() -> None:
    """A dead sink's full buffer costs each poll at most one interval of waiting; the drops are counted per reason."""
    cfg = _cfg(count=6, interval=0.2, poll_timeout=0.15, shutdown_grace=0.2)
    dead = DeadSink(buffer_bytes=3000)
    service = Service(cfg, _sinks(dead), recorded_source())
    t0 = time.monotonic()
    await asyncio.wait_for(service.run(), 10)
    assert time.monotonic() - t0 < 6 * 0.2 + 0.2 + 1.0
    dropped = service.runners[0].stats.dropped
    assert set(dropped) <= {"buffer_full", "shutdown"} and dropped["buffer_full"] > 0
    assert sum(dropped.values()) == service.stats.payloads_encoded


@pytest.mark.parametrize("kinds", [("dead",), ("stuck",), ("slow",), ("dead", "stuck", "slow", "healthy")])
async def test_shutdown_ends_within_the_grace_whatever_the_sinks(kinds: tuple[str, ...]) -> None:
    """From the first signal to the end of run(): at most --shutdown-grace + 1 s; undelivered counted per sink."""
    grace = 1.0
    cfg = _cfg(interval=0.2, poll_timeout=0.15, shutdown_grace=grace)
    make = {"dead": lambda: DeadSink(3000), "stuck": lambda: StuckSink(3000),
            "slow": lambda: MemorySink(delay_s=0.5), "healthy": MemorySink}
    sinks = [make[k]() for k in kinds]
    # A slow kernel: each poll takes a while, so the signal lands in the middle of a dump.
    service = Service(cfg, _sinks(*sinks), recorded_source(delay_s=0.02))
    task = asyncio.create_task(service.run())
    while service.stats.polls < 3:
        await asyncio.sleep(0.02)
    t0 = time.monotonic()
    service.on_signal(signal.SIGTERM)
    result = await asyncio.wait_for(task, grace + 3)
    assert time.monotonic() - t0 <= grace + 1.0
    report = service.report()
    sinks_report = report["sinks"]
    assert isinstance(sinks_report, dict)
    held = sum(r.stats.dropped.get("shutdown", 0) for r in service.runners)
    assert result.undelivered == held
    for runner, kind in zip(service.runners, kinds, strict=True):
        delivered = runner.stats.payloads_delivered
        lost = sum(runner.stats.dropped.values())
        assert delivered + lost == service.stats.payloads_encoded // len(kinds), kind
        if kind in ("dead", "stuck"):
            assert runner.stats.dropped.get("shutdown", 0) > 0


async def test_second_signal_cancels_a_poller_blocked_on_a_full_queue(monkeypatch: pytest.MonkeyPatch) -> None:
    """With the encoder stuck and every queue full, a second signal still ends the run at once."""

    async def stuck_emit(*_: object) -> None:
        await asyncio.Event().wait()

    monkeypatch.setattr(Encoder, "_emit", stuck_emit)
    cfg = _cfg(interval=0.02, poll_timeout=0.015, shutdown_grace=30, max_batch_rows=1)
    service = Service(cfg, _sinks(MemorySink()), recorded_source())
    task = asyncio.create_task(service.run())
    deadline = time.monotonic() + 5
    while not service.chunk_q.full():
        assert time.monotonic() < deadline, "the chunk queue never filled"
        await asyncio.sleep(0.02)
    service.on_signal(signal.SIGTERM)  # the poller is blocked on the full queue: graceful cannot finish
    await asyncio.sleep(0.2)
    assert not task.done()
    t0 = time.monotonic()
    service.on_signal(signal.SIGTERM)
    result = await asyncio.wait_for(task, 3)
    assert time.monotonic() - t0 < 1.0
    assert result.interrupted


async def test_timed_out_poll_is_marked_on_its_records_and_counted() -> None:
    """A poll whose inet6 dump times out ships the rows read so far with poll_dump_interrupted set, and is counted."""
    cfg = _cfg(count=2, interval=0.3, poll_timeout=0.1, shutdown_grace=1, max_batch_rows=1000)
    sink = MemorySink()
    service = Service(cfg, _sinks(sink), recorded_source(hang=[c.AF_INET6]))
    await service.run()
    rows = _rows(sink.payloads)
    assert len(rows) == 2 * SOCKETS  # the inet6 dump's chunks all came; its end never did
    assert all(r.poll_dump_interrupted for r in rows)
    assert service.stats.polls_incomplete == 2 and service.stats.poll_timeouts == 2


async def test_complete_poll_is_not_marked() -> None:
    """A poll whose dumps all finished carries poll_dump_interrupted = false on every record."""
    cfg = _cfg(count=1, shutdown_grace=1, max_batch_rows=1000)
    sink = MemorySink()
    service = Service(cfg, _sinks(sink), recorded_source())
    await service.run()
    rows = _rows(sink.payloads)
    assert len(rows) == SOCKETS and not any(r.poll_dump_interrupted for r in rows)
    assert service.stats.polls_incomplete == 0


async def test_a_crashed_stage_ends_the_service_with_one_error(monkeypatch: pytest.MonkeyPatch) -> None:
    """A bug in a stage ends run() with one StageCrashed error (the CLI prints one line), not a hang."""

    def broken_decode(*_: object) -> object:
        raise KeyError("boom")

    monkeypatch.setattr(Decoder, "_decode", broken_decode)
    cfg = _cfg(interval=0.1, poll_timeout=0.05, shutdown_grace=1)
    sink = MemorySink()
    service = Service(cfg, _sinks(sink), recorded_source())
    with pytest.raises(StageCrashed, match="KeyError") as info:
        await asyncio.wait_for(service.run(), 5)
    assert isinstance(info.value, XtcpError) and "\n" not in str(info.value)
    assert sink.closed


class MisconfiguredSink(BaseSink):
    """A sink that finds a configuration problem only when it starts (a refused SASL mechanism)."""

    async def start(self) -> None:
        raise ConfigError("sink kafka: option sasl_mechanism: the broker does not accept SCRAM-SHA-512")

    async def send(self, payload: bytes) -> None:
        await asyncio.sleep(0)


async def test_configuration_problem_found_at_sink_start_ends_the_service_as_a_config_error() -> None:
    """A ConfigError from a sink's start ends run() with that error (the CLI makes it one line, exit 2)."""
    cfg = _cfg(interval=0.1, poll_timeout=0.05, shutdown_grace=1)
    service = Service(cfg, _sinks(MisconfiguredSink()), recorded_source())
    with pytest.raises(ConfigError, match="sasl_mechanism"):
        await asyncio.wait_for(service.run(), 5)
