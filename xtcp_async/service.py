"""The one place that wires everything from the Config and owns the tasks.

Shutdown order (first SIGTERM/SIGINT, or the last poll of --count/--once): stop polling (a dump
under way is cut and its poll marked incomplete) → the decoder and encoder flush what they hold
(end markers travel down the queues) → every sink runner drains → sinks close, and whatever was
not delivered is counted and logged. ``--shutdown-grace S`` bounds all of it: S seconds from the
signal to the end of draining, then at most ~0.5 s to close the sinks. A second signal cancels
everything at once.
"""

from __future__ import annotations

import asyncio
import gc
import json
import logging
import os
import signal
import sys
import threading
from dataclasses import dataclass
from pathlib import Path

from xtcp_async import native
from xtcp_async.config import Config, SinkConfig
from xtcp_async.errors import DeliveryError, XtcpError
from xtcp_async.health_stages import HealthStages
from xtcp_async.logs import flush_rate_limited
from xtcp_async.loopmon import gc_pauses, monitor_loop
from xtcp_async.netlink.source import DumpSource
from xtcp_async.pipeline import BatchItem, ChunkItem, Decoder, Encoder, Poller, SinkGroup, warm_up
from xtcp_async.sinks import Sink, create_sink
from xtcp_async.sinks.runner import DEFAULT_BUFFER_BYTES, RunnerSettings, SinkRunner
from xtcp_async.stats import Stats
from xtcp_async.turns import CpuTurns

log = logging.getLogger(__name__)


#: Seconds the sinks' close may take after the grace; the whole shutdown ends within grace + 1 s.
CLOSE_TIMEOUT_S = 0.5
#: Closing sinks after a second signal: about "at once".
CLOSE_TIMEOUT_CUT_S = 0.2


class StageCrashed(XtcpError):
    """A pipeline stage died of an unexpected exception (a bug): the service ends with one line."""


@dataclass
class ServiceResult:
    """How the run ended."""

    undelivered: int
    interrupted: bool


def build_sinks(cfg: Config) -> list[tuple[SinkConfig, Sink]]:
    """Construct every configured sink (no I/O yet; option errors are ConfigError)."""
    return [(sc, create_sink(sc.spec)) for sc in cfg.sinks]


class Service:
    """Runs the pipeline until the polls are done or a signal arrives."""

    def __init__(self, cfg: Config, sinks: list[tuple[SinkConfig, Sink]] | None = None,
                 source: DumpSource | None = None, stages: HealthStages | None = None) -> None:
        self.cfg = cfg
        self.stages = stages if stages is not None else HealthStages.from_config(cfg)
        #: issue 12: sinks with ?records=aggregates|both, by format (filled with the row groups)
        self.aggregate_groups: dict[str, SinkGroup] = {}
        self.stats = Stats()
        self.sinks = sinks if sinks is not None else build_sinks(cfg)
        self.runners: list[SinkRunner] = []
        self.chunk_q: asyncio.Queue[ChunkItem] = asyncio.Queue(maxsize=64)
        self.batch_q: asyncio.Queue[BatchItem] = asyncio.Queue(maxsize=4)
        self.poller = Poller(cfg, self.stats, self.chunk_q, source)
        self._signals = 0
        self._main: asyncio.Task[ServiceResult] | None = None
        #: Loop time by which draining must end (set by the first signal or the last poll).
        self._deadline: float | None = None
        self._pipeline: list[asyncio.Task[None]] = []
        self._cut_handle: asyncio.TimerHandle | None = None

    def _groups(self) -> list[SinkGroup]:
        groups: dict[str, SinkGroup] = {}
        self.aggregate_groups = {}
        max_bytes = self.cfg.settings.max_batch_bytes
        for i, (sc, sink) in enumerate(self.sinks):
            fmt = sc.format or type(sink).default_format
            cap = min(max_bytes, sink.max_payload_bytes or max_bytes)
            buffer_bytes = int(getattr(sink, "buffer_bytes", DEFAULT_BUFFER_BYTES))
            runner = SinkRunner(f"{i}:{sc.spec.scheme}", sink, RunnerSettings(
                buffer_bytes=buffer_bytes, drop_log_interval_s=self.cfg.poll.interval_s,
                wait_budget_s=self.cfg.poll.interval_s, start_timeout_s=self.cfg.poll.poll_timeout_s,
                close_timeout_s=CLOSE_TIMEOUT_S))
            self.runners.append(runner)
            if sc.spec.records != "aggregates":
                groups.setdefault(fmt, SinkGroup(fmt)).runners.append((runner, cap))
            if sc.spec.records != "rows":
                self.aggregate_groups.setdefault(fmt, SinkGroup(fmt)).runners.append((runner, cap))
        return list(groups.values())

    @property
    def signals(self) -> int:
        """How many stop signals arrived (1: graceful shutdown under way; 2+: cut short)."""
        return self._signals

    def on_signal(self, signum: int) -> None:
        """First signal: graceful stop; second: cancel everything now."""
        self._signals += 1
        if self._signals == 1:
            grace = self.cfg.settings.shutdown_grace
            log.info("received %s: stopping polls and flushing sinks within %.1fs (again to exit at once)",
                     signal.Signals(signum).name, grace)
            self.poller.stop()
            self._set_deadline(grace)
        elif self._main is not None:
            log.warning("received %s again: exiting now", signal.Signals(signum).name)
            self._main.cancel()

    def reopen_files(self) -> None:
        """SIGHUP: file sinks reopen their files (log rotation)."""
        for _, sink in self.sinks:
            reopen = getattr(sink, "reopen", None)
            if callable(reopen):
                reopen()
        log.info("SIGHUP: reopened file sinks")
        self.stages.reload()

    def _set_deadline(self, grace: float) -> None:
        """Draining must end ``grace`` seconds from now; a pipeline still flushing then is cut."""
        if self._deadline is not None:
            return
        loop = asyncio.get_running_loop()
        self._deadline = loop.time() + grace
        self._cut_handle = loop.call_at(self._deadline, self._cut_pipeline)

    def _cut_pipeline(self) -> None:
        running = [t for t in self._pipeline if not t.done()]
        if running:
            log.warning("shutdown grace ran out while %s still flushing: cut",
                        ", ".join(t.get_name() for t in running))
            for t in running:
                t.cancel()

    async def run(self) -> ServiceResult:
        self._main = asyncio.current_task()
        groups = self._groups()
        if native.CORE is None:  # issue 13: say once that the slower numpy paths run
            log.warning("decoding and encoding with numpy: %s", native.WHY_NOT)
        warm_up([g.format for g in groups])
        # Everything alive now (modules, protobuf descriptors, sink clients) lives for the whole
        # run; a full GC pass over it takes ~20 ms and would land in some poll as a loop stall.
        gc.collect()
        gc.freeze()
        try:
            with gc_pauses(self.stats):
                return await self._run_tasks(groups)
        finally:
            if self._cut_handle is not None:
                self._cut_handle.cancel()

    async def _run_tasks(self, groups: list[SinkGroup]) -> ServiceResult:
        try:
            async with asyncio.TaskGroup() as tg:
                monitor = tg.create_task(monitor_loop(self.stats, idle_period_s=0.1), name="loop-monitor")
                http = self._start_http(tg)
                for runner in self.runners:
                    runner.start(tg)  # each starts its own sink, so a slow broker delays nothing else
                turns = CpuTurns(self.stats)
                self._pipeline = [
                    tg.create_task(self.poller.run(), name="poller"),
                    tg.create_task(Decoder(self.cfg, self.stats, self.chunk_q, self.batch_q, turns).run(),
                                   name="decoder"),
                    tg.create_task(Encoder(self.cfg, self.stats, self.batch_q, groups, turns, stages=self.stages,
                                           aggregate_groups=list(self.aggregate_groups.values())).run(),
                                   name="encoder"),
                ]
                # Stages that were cut at the deadline end cancelled; the rest is still drained.
                await asyncio.wait(self._pipeline)
                for t in self._pipeline:
                    if not t.cancelled() and t.exception() is not None:
                        raise t.exception()  # type: ignore[misc]
                self._set_deadline(self.cfg.settings.shutdown_grace)
                assert self._deadline is not None
                remaining = self._deadline - asyncio.get_running_loop().time()
                drained = await asyncio.gather(*(r.drain(remaining) for r in self.runners))
                if not all(drained):
                    log.warning("shutdown grace of %.1fs ran out with payloads still buffered",
                                self.cfg.settings.shutdown_grace)
                monitor.cancel()
                if http is not None:
                    http.cancel()
                undelivered = sum(await asyncio.gather(*(r.stop() for r in self.runners)))
        except asyncio.CancelledError:
            undelivered = await asyncio.shield(self._stop_runners(CLOSE_TIMEOUT_CUT_S))
            return ServiceResult(undelivered, interrupted=True)
        except BaseExceptionGroup as group:
            await asyncio.shield(self._stop_runners(CLOSE_TIMEOUT_CUT_S))
            raise _one_error(group) from None
        return ServiceResult(undelivered, interrupted=self._signals > 0)

    async def _stop_runners(self, close_timeout_s: float) -> int:
        counts = await asyncio.gather(*(r.stop(close_timeout_s) for r in self.runners), return_exceptions=True)
        return sum(c for c in counts if isinstance(c, int))

    def _start_http(self, tg: asyncio.TaskGroup) -> asyncio.Task[None] | None:
        """The metrics/health listener, when --metrics-listen is set (imported lazily)."""
        listen = self.cfg.settings.metrics_listen
        if not listen:
            return None
        from xtcp_async.ops.http import serve  # prometheus-client is a core dependency

        return tg.create_task(serve(self, listen), name="http")

    def report(self) -> dict[str, object]:
        """Counters for --stats-json and the exit log."""
        out = self.stats.as_dict()
        out["sinks"] = {r.name: {**r.stats.__dict__, "dropped": dict(r.stats.dropped)} for r in self.runners}
        return out


def _one_error(group: BaseExceptionGroup) -> BaseException:
    """The TaskGroup's failure as one error the CLI prints as one line."""
    leaves: list[BaseException] = []

    def walk(exc: BaseException) -> None:
        if isinstance(exc, BaseExceptionGroup):
            for sub in exc.exceptions:
                walk(sub)
        else:
            leaves.append(exc)

    walk(group)
    for exc in leaves:
        if isinstance(exc, XtcpError):
            return exc
    for exc in leaves:
        if not isinstance(exc, Exception):
            return exc  # KeyboardInterrupt, SystemExit: as they are
    first = leaves[0]
    log.debug("stage crash", exc_info=first)
    return StageCrashed(f"internal error, the service stops: {type(first).__name__}: {first}")


class HardExit:
    """A last resort that ends the process when shutdown overruns its bound.

    Everything in the service is cancellable, but a sink's client library is not ours: if one
    ignores cancellation or blocks the loop, this thread still ends the process on time (the
    exit report is lost then, so it says so on stderr).
    """

    def __init__(self) -> None:
        self._timer: threading.Timer | None = None

    def arm(self, seconds: float, code: int, why: str) -> None:
        self.disarm()

        def fire() -> None:
            sys.stderr.write(f"xtcp-async: {why}; exiting now (code {code})\n")
            sys.stderr.flush()
            os._exit(code)

        self._timer = threading.Timer(seconds, fire)
        self._timer.daemon = True
        self._timer.start()

    def disarm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None


def install_signal_handlers(service: Service, hard_exit: HardExit | None = None) -> None:
    loop = asyncio.get_running_loop()

    def on_signal(signum: int) -> None:
        service.on_signal(signum)
        if hard_exit is not None:
            if service.signals == 1:
                hard_exit.arm(service.cfg.settings.shutdown_grace + 0.95, 1,
                              f"shutdown overran --shutdown-grace {service.cfg.settings.shutdown_grace}s")
            else:
                hard_exit.arm(0.9, 130, "second signal: shutdown did not end at once")

    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, on_signal, int(sig))
    loop.add_signal_handler(signal.SIGHUP, service.reopen_files)


async def run_service(cfg: Config, sinks: list[tuple[SinkConfig, Sink]] | None = None, *,
                      source: DumpSource | None = None, hard_exit: bool = False,
                      stages: HealthStages | None = None) -> int:
    """Run until done; return the process exit code (0 ok, 1 undelivered data under --once).

    ``hard_exit`` (the CLI sets it) arms a thread that ends the process if shutdown overruns
    --shutdown-grace by a second, whatever a client library does.
    """
    service = Service(cfg, sinks, source, stages)
    guard = HardExit() if hard_exit else None
    install_signal_handlers(service, guard)
    try:
        result = await service.run()
    finally:
        if guard is not None:
            guard.disarm()
    flush_rate_limited()  # errors held back by the rate limiter are counted before exit
    report = service.report()
    if cfg.settings.stats_json:
        Path(cfg.settings.stats_json).write_text(json.dumps(report, indent=1, default=str))
    if result.undelivered:
        log.error("%d payload(s) were not delivered (per sink: %s)", result.undelivered,
                  {r.name: dict(r.stats.dropped) for r in service.runners})
    if cfg.poll.count is not None and result.undelivered and not result.interrupted:
        raise DeliveryError(f"{result.undelivered} payload(s) could not be delivered within "
                            f"--shutdown-grace {cfg.settings.shutdown_grace}s")
    # cli.py documents 130 for "a second signal cut shutdown short".
    return 130 if service.signals > 1 else 0
