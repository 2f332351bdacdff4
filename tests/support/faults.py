"""A broker outage in the middle of a real service run (recorded sockets, real sink, real broker).

The service polls every second; the broker is killed (SIGKILL) at ``down_at`` s and restarted
``down_s`` later; at ``run_s`` the service gets SIGTERM. The caller then reads the topic back and
checks that every poll was either delivered or counted as dropped.
"""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass

from tests.support.replay import recorded_source
from xtcp_async.config import SinkConfig, load_config
from xtcp_async.encode.gen import xtcp_flat_record_pb2 as pb
from xtcp_async.service import Service, ServiceResult
from xtcp_async.sinks import Sink, parse_sink_url


@dataclass
class FaultRun:
    service: Service
    result: ServiceResult
    shutdown_s: float
    #: Polls that produced a payload (one each: 27 recorded sockets). A poll cut by the signal
    #: before its dump read anything has nothing to deliver and is not counted here.
    polls: int

    @property
    def dropped(self) -> dict[str, int]:
        return dict(self.service.runners[0].stats.dropped)


def poll_ids(payload: bytes) -> set[int]:
    """The poll ids of one protobuf-list payload."""
    from tests.unit.encode.test_roundtrip import split_list_payload

    return {row.poll_id for row in pb.Envelope.FromString(split_list_payload(payload)).row}


async def run_with_outage(sink: Sink, kill: Callable[[], None], restart: Callable[[], None], *,
                          run_s: float = 90.5, down_at: float = 30.0, down_s: float = 30.0,
                          grace: float = 5.0) -> FaultRun:
    """Run the service on ``sink`` through one outage; return how it ended."""
    # One payload per poll (27 recorded sockets, far under the row cap), so payloads = polls.
    cfg = load_config({"metrics_listen": "", "interval": 1.0, "poll_timeout": 0.5, "shutdown_grace": grace,
                       "max_batch_rows": 1000})
    service = Service(cfg, [(SinkConfig(parse_sink_url("memory://"), "protobuf-list"), sink)], recorded_source())
    task = asyncio.create_task(service.run())
    t0 = time.monotonic()
    await asyncio.sleep(down_at)
    await asyncio.to_thread(kill)
    await asyncio.sleep(max(0.0, t0 + down_at + down_s - time.monotonic()))
    await asyncio.to_thread(restart)
    await asyncio.sleep(max(0.0, t0 + run_s - time.monotonic()))
    s0 = time.monotonic()
    service.on_signal(signal.SIGTERM)
    result = await asyncio.wait_for(task, grace + 10)
    took = time.monotonic() - s0
    # The signal lands mid-interval (run_s = 90.5), so no poll is under way; should one be cut
    # before its first chunk anyway, it made no payload: count the polls that made one.
    assert service.stats.polls - 1 <= service.stats.payloads_encoded <= service.stats.polls
    return FaultRun(service, result, took, service.stats.payloads_encoded)
