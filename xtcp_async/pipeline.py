"""The stages between the kernel and the sinks: poller → decoder → encoder → sink runners.

Each stage is a coroutine owned by the service's TaskGroup, connected by bounded queues.
A poll's items are followed by a :class:`PollEnd`, and the whole stream by ``None`` (no more
polls), so every stage knows when to flush.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import random
import struct
import time
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

import numpy as np

from xtcp_async import native
from xtcp_async.aggregate.records import encode_aggregates
from xtcp_async.config import Config
from xtcp_async.encode import EncodedRows, Packed, encode_rows, iter_payloads_of
from xtcp_async.errors import NetlinkError, PollTimeoutError
from xtcp_async.health_stages import HealthStages
from xtcp_async.netlink import constants as c
from xtcp_async.netlink.batch import PollMeta, SocketBatch
from xtcp_async.netlink.decode import decode_messages
from xtcp_async.netlink.fields import GROUP_BY_ATTR
from xtcp_async.netlink.origin import NO_ORIGIN, NetnsOrigin
from xtcp_async.netlink.socket import Chunk, DiagSocket, DumpStatus
from xtcp_async.netlink.source import DumpSource
from xtcp_async.ops.ratelimit import rate_limited
from xtcp_async.pending import PendingBatch, split_pending
from xtcp_async.sinks.runner import SinkRunner
from xtcp_async.stages.chain import StageChain
from xtcp_async.stats import Stats
from xtcp_async.turns import CpuTurns

if TYPE_CHECKING:
    from xtcp_async.netns.poller import NamespacePoller

log = logging.getLogger(__name__)

#: Encode at most this many rows between two yields to the event loop, so a 10k-row batch
#: never holds the loop for its whole encode (~15 µs/row for jsonl, a few µs for protobuf).
ENCODE_SLICE_ROWS = {"jsonl": 512, "protobuf-list": 3072, "protobuf-single": 3072}
if native.CORE is not None:  # issue 13: the compiled encoders: ~0.5 µs/row protobuf, ~1.8 µs/row jsonl
    ENCODE_SLICE_ROWS.update({"jsonl": 2048, "protobuf-list": 10240, "protobuf-single": 10240})

#: Payloads packed per turn of the encoder (one payload is at most --max-batch-bytes, 4 MiB by
#: default: ~1 ms of copying).
PAYLOADS_PER_TURN = 2

#: Decode once this many bytes of replies have arrived (≈4k sockets). Measured at 120k sockets
#: (docs/bench.md): 1 MiB was slower (the per-batch Python around each encode call adds up), 4 MiB
#: 2-4% faster but over the 100 MiB peak-RSS target.
DECODE_BYTES = 2 * 1024 * 1024


@dataclass
class PollInfo:
    """One poll: its id, start time, and whether any dump of it was interrupted."""

    poll_id: int
    timestamp_ns: int
    interrupted: bool = False
    #: A dump of this poll failed, timed out or was cut by shutdown: its rows are not all the
    #: sockets. Records emitted after this is known carry poll_dump_interrupted.
    failed: bool = False

    @property
    def incomplete(self) -> bool:
        return self.interrupted or self.failed


@dataclass
class PollChunk:
    poll: PollInfo
    chunk: Chunk
    #: issue 10: the namespace the chunk was dumped in (None: --netns self, nothing stamped).
    origin: NetnsOrigin | None = None


@dataclass
class PollEnd:
    poll: PollInfo


@dataclass
class PollBatch:
    """Decoded rows of one poll, with the poll they belong to (read again when they are encoded)."""

    poll: PollInfo
    batch: SocketBatch


ChunkItem = PollChunk | PollEnd | None
BatchItem = PollBatch | PollEnd | None


def warm_up(formats: Sequence[str]) -> None:
    """Run the decoder and each format's encoder once on made-up sockets before polling.

    Their first calls build tables and touch fresh memory (≈20 ms); paying that at start-up
    keeps it out of the first dump's event-loop stalls. The sockets carry every attribute, with
    small, large and zero values, so every encoder path is taken once.
    """
    msgs = []
    for family, fill in ((c.AF_INET, 0x01), (c.AF_INET6, 0xFF), (c.AF_INET, 0x00)):
        attrs = b""
        for group in GROUP_BY_ATTR.values():
            payload = b"cubic\0" if group.name == "congestion" else bytes([fill]) * group.size
            raw = struct.pack("<HH", 4 + len(payload), group.attr) + payload
            attrs += raw + b"\0" * ((-len(raw)) & 3)
        body = bytes([family, 1, 0, 0]) + bytes([fill]) * 68 + attrs
        msgs.append(struct.pack("<IHHII", 16 + len(body), c.SOCK_DIAG_BY_FAMILY, c.NLM_F_MULTI, 0, 0) + body)
    batch = decode_messages([b"".join(msgs * 4)]).batch
    for fmt in formats:
        encode_rows(batch, fmt)


class Poller:
    """Runs dumps on schedule and feeds their chunks to the decoder queue."""

    def __init__(self, cfg: Config, stats: Stats, out: asyncio.Queue[ChunkItem],
                 source: DumpSource | None = None) -> None:
        self.cfg = cfg.poll
        self.stats = stats
        self.out = out
        self.source: DumpSource = source if source is not None else DiagSocket()
        # issue 10: --netns all / NAME polls many namespaces (xtcp_async.netns); self: just `source`.
        self.namespaces: NamespacePoller | None = None
        if not self.cfg.netns.only_self:
            from xtcp_async.netns.poller import NamespacePoller

            self.namespaces = NamespacePoller(self.cfg, stats)
        self._stop = asyncio.Event()
        self._poll_id = 0
        self._dump_task: asyncio.Task[object] | None = None
        self._dumps_running = 0

    def stop(self) -> None:
        """Stop polling now (first signal): a dump under way is cut, its poll marked incomplete."""
        self._stop.set()
        if self._dump_task is not None:
            self._dump_task.cancel()

    async def run(self) -> None:
        try:
            if self.namespaces is None:
                self.source.open()
            next_start = time.monotonic()
            while not self._stop.is_set():
                await self.poll_once()
                if self.cfg.count is not None and self._poll_id >= self.cfg.count:
                    break
                jitter = random.uniform(-self.cfg.jitter, self.cfg.jitter) if self.cfg.jitter else 0.0
                next_start += self.cfg.interval_s * (1.0 + jitter)
                delay = next_start - time.monotonic()
                if delay < 0:  # a poll overran its slot: start now, do not try to catch up
                    next_start = time.monotonic()
                    delay = 0
                # asyncio.timeout, not wait_for: cancellation must always win (CPython gh-86296).
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(delay):
                        await self._stop.wait()
        finally:
            self.source.close()
            if self.namespaces is not None:
                self.namespaces.close()
        # Not in the finally: a cancelled poller must not block on a full queue on its way out.
        await self.out.put(None)

    async def poll_once(self) -> PollInfo:
        self._poll_id += 1
        info = PollInfo(poll_id=self._poll_id, timestamp_ns=time.time_ns())
        t0 = time.perf_counter()
        if self.namespaces is None:
            for family in self.cfg.families:
                if self._stop.is_set():
                    self._fail(info, "stopped by shutdown before this family was dumped", log_it=False)
                    break
                await self._cuttable(info, self._dump(info, self.source, family), f"dump:{family}")
        elif self._stop.is_set():
            self._fail(info, "stopped by shutdown before the namespaces were dumped", log_it=False)
        else:
            await self._cuttable(info, self.namespaces.poll(info, self._dump), "dump:netns")
        await self.out.put(PollEnd(info))
        self.stats.polls += 1
        if info.incomplete:
            self.stats.polls_incomplete += 1
        self.stats.last_poll_duration_s = time.perf_counter() - t0
        if not info.failed:
            self.stats.last_poll_ok = True
            self.stats.last_poll_error = None
        return info

    async def _cuttable(self, info: PollInfo, dump: Coroutine[object, object, object], name: str) -> None:
        """Run ``dump`` as its own task, so that stop() can cut it without cancelling the poller,
        which still has to send the poll's end down the pipeline."""
        self._dump_task = asyncio.create_task(dump, name=name)
        try:
            await asyncio.shield(self._dump_task)
        except asyncio.CancelledError:
            task = asyncio.current_task()
            if task is not None and task.cancelling():
                self._dump_task.cancel()
                raise  # the poller itself is cancelled (second signal): go now
            self._fail(info, "dump cut by shutdown", log_it=False)
        finally:
            self._dump_task = None

    async def _dump(self, info: PollInfo, source: DumpSource, family: int, origin: NetnsOrigin | None = None,
                    gone: Callable[[], bool] | None = None) -> bool:
        """One dump of ``family`` from ``source`` into the chunk queue; False when it failed.

        ``origin`` is stamped on its chunks (issue 10: the namespace), and ``gone`` says whether a
        failed dump's namespace has vanished: that is counted in ``netns_vanished``, not a failure.
        """
        fname = c.FAMILY_NAMES.get(family, str(family))
        status = DumpStatus(family=family)
        f0 = time.perf_counter()
        ok = False
        self._dumps_running += 1
        self.stats.dumping = True
        try:
            async for chunk in source.dump(family, states=self.cfg.states_mask, ext=c.EXT_ALL,
                                           timeout_s=self.cfg.poll_timeout_s, status=status,
                                           bytecode=self.cfg.bytecode):
                await self.out.put(PollChunk(info, chunk, origin))
            ok = True
        except NetlinkError as exc:
            if gone is not None and gone():
                self.stats.netns_vanished += 1
            elif isinstance(exc, PollTimeoutError):
                self.stats.poll_timeouts += 1
                self._fail(info, exc)
            else:
                self.stats.netlink_errors += 1
                self._fail(info, exc)
        finally:
            self._dumps_running -= 1
            self.stats.dumping = self._dumps_running > 0  # namespaces are dumped side by side
            self.stats.bytes_read += status.bytes_read
            self.stats.recvs += status.recvs
            self.stats.stale_messages += status.stale_messages
            self.stats.max_reader_callback_s = max(self.stats.max_reader_callback_s, source.max_callback_s)
            if status.interrupted:
                info.interrupted = True
                self.stats.dumps_interrupted += 1
        self.stats.dump_finished(fname, time.perf_counter() - f0, status.bytes_read)
        return ok

    def _fail(self, info: PollInfo, exc: Exception | str, *, log_it: bool = True) -> None:
        if not info.failed:
            self.stats.polls_failed += 1
        info.failed = True
        self.stats.last_poll_ok = False
        self.stats.last_poll_error = str(exc)
        if not log_it:
            return
        # A broken netlink socket or a host under load fails every poll: one line per kind of
        # failure per interval, with the count of the others (see xtcp_async.ops.ratelimit).
        log.error("poll %d: %s", info.poll_id, exc,
                  extra=rate_limited(f"poll:{type(exc).__name__}", every_s=max(self.cfg.interval_s, 10.0)))


class Decoder:
    """Chunks → SocketBatches stamped with their poll's metadata."""

    def __init__(self, cfg: Config, stats: Stats, inq: asyncio.Queue[ChunkItem],
                 out: asyncio.Queue[BatchItem], turns: CpuTurns | None = None) -> None:
        self.cfg = cfg
        self.stats = stats
        self.inq = inq
        self.out = out
        self.turns = turns or CpuTurns()
        self._record_counter = 0
        #: Column stages (sample → change-only), None when both are off (then they cost nothing).
        self.stages = StageChain(cfg.stages) if cfg.stages.active else None

    async def run(self) -> None:
        chunks: list[PollChunk] = []
        size = 0
        current: PollInfo | None = None
        while True:
            item = await self.inq.get()
            if item is None:
                await self.out.put(None)
                return
            if isinstance(item, PollChunk):
                current = item.poll
                chunks.append(item)
                size += len(item.chunk.data)
                if size < DECODE_BYTES:
                    continue
            else:
                current = item.poll
            if chunks:
                async with self.turns.turn():
                    batch = self._decode(chunks, current)
                await self.out.put(PollBatch(current, batch))
                chunks, size = [], 0
            if isinstance(item, PollEnd):
                if self.stages is not None:
                    closed = self.stages.on_poll_end(complete=not item.poll.failed,
                                                     meta=self._meta(item.poll, item.poll.interrupted))
                    if closed is not None:
                        self._record_counter += closed.n
                        await self.out.put(PollBatch(item.poll, closed))
                    self._stage_stats()
                await self.out.put(item)

    def _stage_stats(self) -> None:
        assert self.stages is not None
        st = self.stages
        self.stats.rows_sampled_out = st.rows_sampled_out
        self.stats.rows_unchanged = st.rows_unchanged
        self.stats.rows_closed = st.rows_closed
        self.stats.sockets_tracked = st.tracker.tracked if st.tracker is not None else 0

    def _meta(self, poll: PollInfo, interrupted: bool) -> PollMeta:
        s = self.cfg.settings
        return PollMeta(poll_id=poll.poll_id, timestamp_ns=poll.timestamp_ns, hostname=s.hostname,
                        location=s.location, label=s.label, tag=s.tag, daemon_version=self.cfg.daemon_version,
                        dump_interrupted=interrupted, record_counter_start=self._record_counter)

    def _decode(self, items: Sequence[PollChunk], poll: PollInfo) -> SocketBatch:
        chunks = [it.chunk for it in items]
        res = decode_messages([ch.data for ch in chunks], [ch.read_ns for ch in chunks])
        self.stats.decode_problems.update(res.problems)
        s = self.cfg.settings
        meta = PollMeta(poll_id=poll.poll_id, timestamp_ns=poll.timestamp_ns, hostname=s.hostname,
                        location=s.location, label=s.label, tag=s.tag, daemon_version=self.cfg.daemon_version,
                        dump_interrupted=poll.interrupted or res.dump_interrupted,
                        record_counter_start=self._record_counter)
        self.stats.sockets += res.batch.n
        batch = res.batch.with_meta(meta)
        if any(it.origin is not None for it in items):
            # Namespaces are stamped per chunk: a code per chunk, spread to its rows by numpy.
            table: dict[NetnsOrigin, int] = {}
            per_chunk = np.array([table.setdefault(it.origin or NO_ORIGIN, len(table)) for it in items],
                                 dtype=np.intp)
            batch = batch.with_origins(per_chunk[res.row_chunk], tuple(table))
        if self.stages is not None:
            batch = self.stages.on_batch(batch)
            self._stage_stats()
        self._record_counter += batch.n
        return batch


@dataclass
class SinkGroup:
    """Sinks that share a format; each gets payloads packed to its own byte cap."""

    format: str
    runners: list[tuple[SinkRunner, int]] = field(default_factory=list)


class Encoder:
    """SocketBatches → payloads, batched by rows and bytes, offered to every sink's runner.

    The encoder never waits on a sink: each runner takes its payloads without blocking and
    applies its own per-poll wait budget (see :mod:`xtcp_async.sinks.runner`), so a full or
    dead sink never delays the others or the next poll.
    """

    def __init__(self, cfg: Config, stats: Stats, inq: asyncio.Queue[BatchItem],
                 groups: list[SinkGroup], turns: CpuTurns | None = None, *,
                 stages: HealthStages | None = None, aggregate_groups: list[SinkGroup] | None = None) -> None:
        self.turns = turns or CpuTurns()
        self.stages = stages  # issue 12: enrichment per batch, aggregates per poll
        self.aggregate_groups = aggregate_groups or []
        self.max_rows = cfg.settings.max_batch_rows
        self.stats = stats
        self.inq = inq
        self.groups = groups
        self.formats = list(dict.fromkeys(g.format for g in groups))

    async def run(self) -> None:
        # Each decoded batch is encoded as it arrives (its columns are still in cache), never
        # concatenated with others; rows wait, encoded, until max_rows of them or the poll's end,
        # and payloads are packed across the batches (see xtcp_async.pending).
        pending: list[PendingBatch] = []
        poll: PollInfo | None = None
        rows = 0
        poll_rows = 0
        while True:
            item = await self.inq.get()
            if item is None:
                if pending and poll is not None:
                    await self._emit(pending, poll)
                return
            if isinstance(item, PollBatch):
                poll = item.poll
                batch = item.batch
                if self.stages is not None and batch.n:
                    batch = self.stages.batch(batch)
                if batch.n:
                    pending.append(await self._encode(batch, poll))
                    rows += batch.n
                    poll_rows += batch.n
                if rows >= self.max_rows:
                    cut = (rows // self.max_rows) * self.max_rows
                    head, pending = split_pending(pending, cut)
                    await self._emit(head, poll)
                    rows -= cut
                continue
            # PollEnd: a batch never spans two polls.
            if pending:
                await self._emit(pending, item.poll)
                pending, rows = [], 0
            self.stats.last_poll_sockets = poll_rows
            poll_rows = 0
            if self.stages is not None and self.stages.summarizing:
                await self._emit_aggregates(item.poll)

    async def _emit_aggregates(self, poll: PollInfo) -> None:
        """A poll's aggregate records to the sinks that asked for them (issue 12)."""
        assert self.stages is not None
        # Summarising a whole poll is tens of ms of numpy at 120k sockets: in a worker thread, so the
        # loop's stalls stay those of one decode or encode step. Nothing else touches the stages'
        # per-poll state meanwhile: this task is their only caller and it waits here.
        records = await asyncio.to_thread(self.stages.poll_end, poll.poll_id, poll.timestamp_ns)
        if not records:
            return
        for group in self.aggregate_groups:
            async with self.turns.turn():
                encoded = encode_aggregates(records, group.format)
            for runner, cap in group.runners:
                await self._offer(runner, cap, encoded, group.format, poll)

    async def _encode(self, batch: SocketBatch, poll: PollInfo) -> PendingBatch:
        """``batch`` encoded in every sink group's format, a slice per turn."""
        if poll.incomplete and not batch.meta.dump_interrupted:
            # The poll failed or was cut after these rows were decoded: say so on them.
            batch = batch.with_meta(replace(batch.meta, dump_interrupted=True))
        parts: dict[str, list[EncodedRows]] = {}
        for fmt in self.formats:
            step = ENCODE_SLICE_ROWS[fmt]
            parts[fmt] = []
            for start in range(0, batch.n, step):
                async with self.turns.turn():
                    parts[fmt].append(encode_rows(batch.slice(start, start + step), fmt))
        return PendingBatch(batch, parts)

    async def _emit(self, batches: list[PendingBatch], poll: PollInfo) -> None:
        if poll.incomplete:
            # Known incomplete since some of these rows were encoded: encode those again, marked.
            batches = [b if b.batch.meta.dump_interrupted else await self._encode(b.batch, poll) for b in batches]
        self.stats.batches_encoded += 1
        for group in self.groups:
            encoded = [p for b in batches for p in b.parts[group.format]]
            for runner, cap in group.runners:
                await self._offer(runner, cap, encoded, group.format, poll)

    async def _offer(self, runner: SinkRunner, cap: int, encoded: EncodedRows | list[EncodedRows], fmt: str,
                     poll: PollInfo) -> None:
        """Pack encoded rows into one sink's payloads and hand them over (never waits on the sink);
        every payload and every record too large for the sink is counted."""
        packed = Packed()
        payloads = iter_payloads_of(encoded, fmt, packed, max_bytes=cap, max_rows=self.max_rows)
        while True:
            # Copying 10k rows into payloads is ~28 MB of jsonl: a few payloads per turn, not all
            # of them in one (that was a 17-20 ms stall of the loop).
            async with self.turns.turn():
                ready = list(itertools.islice(payloads, PAYLOADS_PER_TURN))
            if not ready:
                break
            self.stats.payloads_encoded += len(ready)
            self.stats.bytes_encoded += sum(len(p) for p in ready)
            for payload in ready:
                runner.offer(payload, poll.poll_id)
        if packed.too_large:
            self.stats.records_too_large += packed.too_large
            runner.stats.drop("record_too_large", packed.too_large)
