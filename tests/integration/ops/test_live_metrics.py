"""A running service (live netlink, 0.5 s polls) scraped over HTTP, and /readyz through sink outages."""

from __future__ import annotations

import shutil
import signal
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.brokers.nsqd import Nsqd

from .conftest import Xtcp, eventually

#: Names a scrape must hold (sample names, as exposed).
EXPECTED = [
    "xtcp_polls_total", "xtcp_polls_failed_total", "xtcp_poll_timeouts_total", "xtcp_netlink_errors_total",
    "xtcp_dumps_interrupted_total", "xtcp_netlink_read_bytes_total", "xtcp_netlink_recvs_total",
    "xtcp_sockets_total", "xtcp_poll_sockets", "xtcp_poll_duration_seconds_bucket",
    "xtcp_poll_duration_seconds_count", "xtcp_batches_encoded_total", "xtcp_payloads_encoded_total",
    "xtcp_encoded_bytes_total", "xtcp_sink_payloads_delivered_total", "xtcp_sink_delivered_bytes_total",
    "xtcp_sink_delivery_errors_total", "xtcp_sink_buffer_bytes", "xtcp_queue_depth",
    "xtcp_event_loop_stall_max_seconds", "process_cpu_seconds_total", "process_resident_memory_bytes",
]

GROWING = [
    ("xtcp_polls_total", ()), ("xtcp_netlink_read_bytes_total", ()), ("xtcp_netlink_recvs_total", ()),
    ("xtcp_sockets_total", ()), ("xtcp_batches_encoded_total", ()), ("xtcp_payloads_encoded_total", ()),
    ("xtcp_encoded_bytes_total", ()), ("xtcp_poll_duration_seconds_count", (("family", "inet"),)),
    ("xtcp_poll_duration_seconds_count", (("family", "inet6"),)),
    ("xtcp_sink_payloads_delivered_total", (("sink", "0:null"),)),
    ("xtcp_sink_delivered_bytes_total", (("sink", "0:null"),)), ("process_cpu_seconds_total", ()),
]


def test_metrics_exist_and_counters_grow_between_scrapes(xtcp: Callable[..., Xtcp]) -> None:
    """Two scrapes of a live service: every expected metric is there and the counters grew."""
    proc = xtcp("--sink", "null://", all_states=True)
    eventually(lambda: proc.scrape()["xtcp_polls_total"][()] >= 1, what="the first poll")
    first = proc.scrape()
    time.sleep(1.6)  # three more polls
    second = proc.scrape()
    for name in EXPECTED:
        assert name in second, name
    for name, labels in GROWING:
        assert second[name][labels] > first[name][labels], name
    assert second["xtcp_poll_sockets"][()] >= 1  # at least the listener's own socket
    proc.signal(signal.SIGTERM)
    assert proc.wait(5) == 0
    stats = proc.stats()
    assert stats["sinks"]["0:null"]["payloads_delivered"] == stats["payloads_encoded"]


def test_readyz_follows_a_file_sink_losing_its_directory(xtcp: Callable[..., Xtcp], tmp_path: Path) -> None:
    """A file sink whose directory cannot be made (a file is in the way) makes /readyz 503; once it can,
    200; after rotation (SIGHUP) into a blocked path 503 again, and 200 once it is clear."""
    target_dir = tmp_path / "spool"
    target_dir.write_bytes(b"")  # a file where the directory should be
    proc = xtcp("--sink", f"file://{target_dir}/xtcp.jsonl")
    eventually(lambda: proc.get("/readyz")[0] == 503 and "sink 0:file failing" in proc.get("/readyz")[1],
               what="503 naming the file sink")
    _, body = proc.get("/readyz")
    assert "sink 0:file failing: file sink: cannot open" in body
    assert body.count("\n") == 1
    target_dir.unlink()
    eventually(lambda: proc.get("/readyz")[0] == 200, what="200 after the path was cleared")
    shutil.rmtree(target_dir)
    target_dir.write_bytes(b"")
    proc.signal(signal.SIGHUP)
    eventually(lambda: proc.get("/readyz")[0] == 503, what="503 after SIGHUP into a blocked path")
    errors_during_outage = proc.scrape()["xtcp_sink_delivery_errors_total"][(("sink", "0:file"),)]
    assert errors_during_outage >= 1
    target_dir.unlink()
    eventually(lambda: proc.get("/readyz")[0] == 200, what="200 after the second outage")
    assert (target_dir / "xtcp.jsonl").stat().st_size > 0


@pytest.mark.nsq
def test_readyz_follows_an_nsqd_outage(xtcp: Callable[..., Xtcp], nsqd: Nsqd) -> None:
    """/readyz is 200 while nsqd takes payloads, 503 naming the sink while nsqd is down, and 200
    again once it is back; the payloads buffered meanwhile are delivered."""
    proc = xtcp("--sink", f"nsq://{nsqd.tcp_address}/xtcp_ops?reconnect_interval_s=0.2&timeout_s=1")
    eventually(lambda: proc.get("/readyz")[0] == 200, what="ready with nsqd up")
    nsqd.kill()
    eventually(lambda: proc.get("/readyz")[0] == 503, what="503 with nsqd down")
    assert "sink 0:nsq" in proc.get("/readyz")[1]
    assert proc.scrape()["xtcp_sink_connected"][(("sink", "0:nsq"),)] == 0
    time.sleep(1.0)  # polls keep coming; their payloads wait in the runner's buffer
    assert proc.scrape()["xtcp_sink_buffer_payloads"][(("sink", "0:nsq"),)] >= 1
    nsqd.restart()
    eventually(lambda: proc.get("/readyz")[0] == 200, 20, what="ready again after nsqd returned")
    proc.signal(signal.SIGTERM)
    assert proc.wait(10) == 0
    stats = proc.stats()
    sink = stats["sinks"]["0:nsq"]
    assert sink["dropped"] == {}
    assert sink["payloads_delivered"] == stats["payloads_encoded"]
