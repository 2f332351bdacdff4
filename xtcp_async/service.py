"""The one place that wires everything from the Config and owns the tasks.

Shutdown order (first SIGTERM/SIGINT, or the last poll of --count/--once): stop polling →
the decoder and encoder flush what they hold (end markers travel down the queues) → every sink
runner drains within the grace period → sinks close, and whatever was not delivered is counted
and logged. A second signal cancels everything at once.
"""

from __future__ import annotations

import asyncio
import gc
import json
import logging
import signal
from dataclasses import dataclass
from pathlib import Path

from xtcp_async import native
from xtcp_async.config import Config, SinkConfig
from xtcp_async.errors import DeliveryError
from xtcp_async.logs import flush_rate_limited
from xtcp_async.loopmon import monitor_loop
from xtcp_async.pipeline import BatchItem, ChunkItem, CpuTurns, Decoder, Encoder, Poller, SinkGroup, warm_up
from xtcp_async.sinks import Sink, create_sink
from xtcp_async.sinks.runner import DEFAULT_BUFFER_BYTES, RunnerSettings, SinkRunner
from xtcp_async.stats import Stats

log = logging.getLogger(__name__)


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

    def __init__(self, cfg: Config, sinks: list[tuple[SinkConfig, Sink]] | None = None) -> None:
        self.cfg = cfg
        self.stats = Stats()
        self.sinks = sinks if sinks is not None else build_sinks(cfg)
        self.runners: list[SinkRunner] = []
        self.chunk_q: asyncio.Queue[ChunkItem] = asyncio.Queue(maxsize=64)
        self.batch_q: asyncio.Queue[BatchItem] = asyncio.Queue(maxsize=4)
        self.poller = Poller(cfg, self.stats, self.chunk_q)
        self._signals = 0
        self._main: asyncio.Task[ServiceResult] | None = None

    def _groups(self) -> list[SinkGroup]:
        groups: dict[str, SinkGroup] = {}
        max_bytes = self.cfg.settings.max_batch_bytes
        for i, (sc, sink) in enumerate(self.sinks):
            fmt = sc.format or type(sink).default_format
            cap = min(max_bytes, sink.max_payload_bytes or max_bytes)
            buffer_bytes = int(getattr(sink, "buffer_bytes", DEFAULT_BUFFER_BYTES))
            runner = SinkRunner(f"{i}:{sc.spec.scheme}", sink, RunnerSettings(
                buffer_bytes=buffer_bytes, drop_log_interval_s=self.cfg.poll.interval_s))
            self.runners.append(runner)
            groups.setdefault(fmt, SinkGroup(fmt)).runners.append((runner, cap))
        return list(groups.values())

    @property
    def signals(self) -> int:
        """How many stop signals arrived (1: graceful shutdown under way; 2+: cut short)."""
        return self._signals

    def on_signal(self, signum: int) -> None:
        """First signal: graceful stop; second: cancel everything now."""
        self._signals += 1
        if self._signals == 1:
            log.info("received %s: stopping polls and flushing sinks (again to exit at once)",
                     signal.Signals(signum).name)
            self.poller.stop()
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
        for _, sink in self.sinks:
            try:
                await asyncio.wait_for(sink.start(), self.cfg.poll.poll_timeout_s)
            except Exception as exc:  # a broker that is down must not stop start-up
                log.warning("sink %s: start failed, will retry on send: %s", type(sink).scheme, exc)
        grace = self.cfg.settings.shutdown_grace
        monitor: asyncio.Task[None] | None = None
        try:
            async with asyncio.TaskGroup() as tg:
                monitor = tg.create_task(monitor_loop(self.stats), name="loop-monitor")
                http = self._start_http(tg)
                for runner in self.runners:
                    runner.start(tg)
                turns = CpuTurns()
                pipeline = [
                    tg.create_task(self.poller.run(), name="poller"),
                    tg.create_task(Decoder(self.cfg, self.stats, self.chunk_q, self.batch_q, turns).run(),
                                   name="decoder"),
                    tg.create_task(Encoder(self.cfg, self.stats, self.batch_q, groups, turns).run(),
                                   name="encoder"),
                ]
                await asyncio.gather(*pipeline)
                drained = await asyncio.gather(*(r.drain(grace) for r in self.runners))
                if not all(drained):
                    log.warning("shutdown grace of %.1fs ran out with payloads still buffered", grace)
                monitor.cancel()
                if http is not None:
                    http.cancel()
                undelivered = 0
                for runner in self.runners:
                    undelivered += await runner.stop()
        except asyncio.CancelledError:
            undelivered = 0
            for runner in self.runners:
                undelivered += await asyncio.shield(runner.stop())
            return ServiceResult(undelivered, interrupted=True)
        return ServiceResult(undelivered, interrupted=self._signals > 0)

    def _start_http(self, tg: asyncio.TaskGroup) -> asyncio.Task[None] | None:
        """The metrics/health listener, when --metrics-listen is set (imported lazily)."""
        listen = self.cfg.settings.metrics_listen
        if not listen:
            return None
        try:
            from xtcp_async.ops.http import serve
        except ImportError as exc:
            log.warning("metrics listener disabled: %s", exc)
            return None
        return tg.create_task(serve(self, listen), name="http")

    def report(self) -> dict[str, object]:
        """Counters for --stats-json and the exit log."""
        out = self.stats.as_dict()
        out["sinks"] = {r.name: {**r.stats.__dict__, "dropped": dict(r.stats.dropped)} for r in self.runners}
        return out


def install_signal_handlers(service: Service) -> None:
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, service.on_signal, int(sig))
    loop.add_signal_handler(signal.SIGHUP, service.reopen_files)


async def run_service(cfg: Config, sinks: list[tuple[SinkConfig, Sink]] | None = None) -> int:
    """Run until done; return the process exit code (0 ok, 1 undelivered data under --once)."""
    service = Service(cfg, sinks)
    install_signal_handlers(service)
    result = await service.run()
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
