"""Counters the service keeps; read by the metrics endpoint, /readyz and the exit report.

Plain attributes, no locks: everything runs on the event loop thread.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Stats:
    """What the pipeline has done since start-up."""

    polls: int = 0
    polls_failed: int = 0
    #: Polls whose rows are not every socket: a dump failed, timed out, was cut or interrupted.
    polls_incomplete: int = 0
    poll_timeouts: int = 0
    netlink_errors: int = 0
    dumps_interrupted: int = 0
    stale_messages: int = 0
    sockets: int = 0
    last_poll_sockets: int = 0
    bytes_read: int = 0
    recvs: int = 0
    decode_problems: Counter[str] = field(default_factory=Counter)
    batches_encoded: int = 0
    payloads_encoded: int = 0
    bytes_encoded: int = 0
    records_too_large: int = 0
    # --- column stages (--sample, --emit changed) ---
    rows_sampled_out: int = 0
    rows_unchanged: int = 0
    rows_closed: int = 0
    sockets_tracked: int = 0
    max_loop_stall_s: float = 0.0
    #: Longest stall seen while a dump was being read (the benchmark's figure).
    max_dump_stall_s: float = 0.0
    #: Share of that stall's span (monitor period + stall) this process spent on CPU, all threads:
    #: ~1 means our own code held the loop, near 0 that the OS ran something else.
    max_dump_stall_cpu_share: float = 0.0
    #: Share of this process's CPU over the longest stall's span (see max_dump_stall_cpu_share).
    max_loop_stall_cpu_share: float = 0.0
    #: Longest single decode/encode step (a CPU turn) and the task that took it.
    max_turn_s: float = 0.0
    max_turn_task: str = ""
    #: Most CPU time any single turn took (the event-loop thread's CPU over the turn).
    max_turn_cpu_s: float = 0.0
    #: Longest garbage-collector pass (gc.callbacks), and its generation.
    max_gc_pause_s: float = 0.0
    max_gc_generation: int = -1
    dumping: bool = False
    max_reader_callback_s: float = 0.0
    last_poll_ok: bool | None = None
    last_poll_error: str | None = None
    last_poll_duration_s: float = 0.0
    #: Called as fn(family_name, seconds, bytes_read) after every dump (metrics hook).
    dump_listeners: list[Callable[[str, float, int], None]] = field(default_factory=list)

    def dump_finished(self, family: str, seconds: float, bytes_read: int) -> None:
        for fn in self.dump_listeners:
            fn(family, seconds, bytes_read)

    def as_dict(self) -> dict[str, Any]:
        out = {k: v for k, v in self.__dict__.items() if k != "dump_listeners"}
        out["decode_problems"] = dict(self.decode_problems)
        return out
