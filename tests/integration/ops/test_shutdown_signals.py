"""SIGTERM while a sink is slow: exit within the grace period with every held payload delivered or
reported as dropped; a second signal exits at once.

The slow sink is a real one: nsqd stopped with SIGSTOP keeps its TCP connections open and
its kernel accepts bytes, but nothing is acknowledged, exactly like a broker stuck in a long
GC pause or on a dead disk.
"""

from __future__ import annotations

import json
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.brokers.nsqd import Nsqd, free_port

from .conftest import Xtcp, eventually

pytestmark = [pytest.mark.nsq, pytest.mark.slow]

#: What a SIGTERM'd process may need beyond --shutdown-grace: finishing the poll under way
#: (--poll-timeout 0.4) plus closing sinks and interpreter exit on a busy 2-core machine.
EXIT_SLACK_S = 2.0


def nsq_sink(nsqd: Nsqd, topic: str) -> str:
    return f"nsq://{nsqd.tcp_address}/{topic}?reconnect_interval_s=0.2&timeout_s=1"


def accounted(stats: dict[str, Any], sink: str) -> tuple[int, int, dict[str, int]]:
    """(encoded for the sink, delivered, dropped by reason) from --stats-json."""
    s = stats["sinks"][sink]
    return stats["payloads_encoded"], s["payloads_delivered"], s["dropped"]


def test_sigterm_with_a_stuck_broker_exits_within_grace_and_reports_what_was_dropped(
        xtcp: Callable[..., Xtcp], nsqd: Nsqd) -> None:
    """nsqd frozen: SIGTERM exits 0 within the grace period; every payload encoded is either
    delivered or counted as dropped (reason shutdown), and the log says how many."""
    grace = 2.0
    proc = xtcp("--sink", nsq_sink(nsqd, "stuck"), "--shutdown-grace", str(grace))
    eventually(lambda: proc.scrape()["xtcp_sink_payloads_delivered_total"][(("sink", "0:nsq"),)] >= 2,
               what="deliveries while nsqd is up")
    assert nsqd.proc is not None
    nsqd.proc.send_signal(signal.SIGSTOP)
    eventually(lambda: proc.scrape()["xtcp_sink_buffer_payloads"][(("sink", "0:nsq"),)] >= 3,
               what="payloads piling up behind the frozen nsqd")
    t0 = time.monotonic()
    proc.signal(signal.SIGTERM)
    code = proc.wait(grace + EXIT_SLACK_S)
    took = time.monotonic() - t0
    assert code == 0, proc.log()
    assert took >= grace * 0.9  # it did wait for the sink, not give up at once
    encoded, delivered, dropped = accounted(proc.stats(), "0:nsq")
    assert dropped.get("shutdown", 0) >= 3
    assert delivered + sum(dropped.values()) == encoded
    assert f"{dropped['shutdown']} payload(s) could not be delivered before shutdown" in proc.log()
    nsqd.proc.send_signal(signal.SIGCONT)
    # What nsqd has is at least what was acknowledged; a payload on the wire when the process
    # gave up may still land (reported as dropped, delivered anyway: at-least-once).
    eventually(lambda: nsqd.topic_message_count("stuck") >= delivered, what="nsqd to hold the acked payloads")


def test_sigterm_while_the_broker_is_slow_flushes_everything_once_it_answers(
        xtcp: Callable[..., Xtcp], nsqd: Nsqd) -> None:
    """nsqd frozen, SIGTERM, then nsqd resumes inside the grace period: every payload held is
    delivered, none dropped, and the process exits 0 as soon as the buffer is empty."""
    grace = 8.0
    proc = xtcp("--sink", nsq_sink(nsqd, "slow"), "--shutdown-grace", str(grace))
    eventually(lambda: proc.get("/readyz")[0] == 200, what="ready")
    assert nsqd.proc is not None
    nsqd.proc.send_signal(signal.SIGSTOP)
    eventually(lambda: proc.scrape()["xtcp_sink_buffer_payloads"][(("sink", "0:nsq"),)] >= 3,
               what="payloads piling up behind the frozen nsqd")
    t0 = time.monotonic()
    proc.signal(signal.SIGTERM)
    time.sleep(0.5)
    nsqd.proc.send_signal(signal.SIGCONT)
    code = proc.wait(grace + EXIT_SLACK_S)
    took = time.monotonic() - t0
    assert code == 0, proc.log()
    assert took < grace  # done when the buffer emptied, not when the grace ran out
    encoded, delivered, dropped = accounted(proc.stats(), "0:nsq")
    assert dropped == {}
    assert delivered == encoded
    assert nsqd.topic_message_count("slow") >= delivered


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_second_signal_exits_at_once(xtcp: Callable[..., Xtcp], nsqd: Nsqd, sig: signal.Signals) -> None:
    """With a long grace period and a frozen broker, a second signal ends the process in about a
    second, still counting the held payloads as dropped in --stats-json."""
    proc = xtcp("--sink", nsq_sink(nsqd, "second"), "--shutdown-grace", "60")
    eventually(lambda: proc.get("/readyz")[0] == 200, what="ready")
    assert nsqd.proc is not None
    nsqd.proc.send_signal(signal.SIGSTOP)
    eventually(lambda: proc.scrape()["xtcp_sink_buffer_payloads"][(("sink", "0:nsq"),)] >= 2,
               what="payloads piling up behind the frozen nsqd")
    proc.signal(sig)
    time.sleep(0.5)
    assert proc.wait(0) is None  # the first signal waits for the sink
    t0 = time.monotonic()
    proc.signal(sig)
    code = proc.wait(EXIT_SLACK_S)
    assert code is not None, "still running after the second signal"
    assert time.monotonic() - t0 < EXIT_SLACK_S
    assert "again: exiting now" in proc.log()
    encoded, delivered, dropped = accounted(proc.stats(), "0:nsq")
    assert dropped.get("shutdown", 0) >= 2
    assert delivered + sum(dropped.values()) == encoded


def test_dead_broker_with_a_full_buffer_never_slows_a_healthy_file_sink(
        xtcp: Callable[..., Xtcp], tmp_path: Path) -> None:
    """A dead NSQ sink whose small buffer is full, beside a file sink: the file sink gets every poll
    on schedule, and SIGTERM exits within --shutdown-grace + 1 s with the dead sink's losses counted."""
    dead_port = free_port()  # nothing listens there
    out = tmp_path / "records.jsonl"
    grace = 2.0
    proc = xtcp("--sink", f"nsq://127.0.0.1:{dead_port}/t?buffer_bytes=3000&reconnect_interval_s=0.2&timeout_s=1",
                "--sink", f"file://{out}?format=jsonl", "--max-batch-rows", "5", "--shutdown-grace", str(grace))
    time.sleep(6.0)
    polls = proc.scrape()["xtcp_polls_total"][()]
    t0 = time.monotonic()
    proc.signal(signal.SIGTERM)
    code = proc.wait(grace + 3)
    took = time.monotonic() - t0
    assert code == 0, proc.log()
    assert took <= grace + 1.0, f"shutdown took {took:.2f}s"
    poll_ids = {json.loads(line)["poll_id"] for line in out.read_text().splitlines()}
    # Every poll made (interval 0.5 s over ~6 s) reached the healthy sink.
    assert polls >= 10 and len(poll_ids) >= polls
    stats = proc.stats()
    encoded, delivered, dropped = accounted(stats, "0:nsq")
    assert delivered == 0 and dropped.get("buffer_full", 0) > 0
    assert sum(dropped.values()) == encoded // 2  # two sinks: each got half of what was encoded
