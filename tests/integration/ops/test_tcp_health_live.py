"""A running service's /metrics carries the TCP-health series, and SIGHUP reloads its ASN database."""

from __future__ import annotations

import signal
from collections.abc import Callable
from pathlib import Path

from tests.support.asn import write_pfx2as

from .conftest import Xtcp, eventually


def test_tcp_health_series_on_metrics(xtcp: Callable[..., Xtcp]) -> None:
    """After polls of the listening sockets, /metrics has them by state and family, the bytes and
    retransmit series, and the port series (with its "other")."""
    proc = xtcp("--sink", "null://")
    eventually(lambda: proc.scrape()["xtcp_polls_total"][()] >= 2, what="two polls")
    m = proc.scrape()
    listening = sum(v for k, v in m["xtcp_tcp_sockets"].items() if ("state", "listen") in k)
    assert listening >= 1
    assert sum(m["xtcp_tcp_sockets"].values()) >= m["xtcp_poll_sockets"][()] > 0
    for name in ("xtcp_tcp_retransmitted_segments", "xtcp_tcp_bytes_acked_delta_total",
                 "xtcp_tcp_bytes_received_delta_total"):
        assert name in m, name
    assert m["xtcp_tcp_listen_port_connections"][(("port", "other"),)] >= 0
    proc.signal(signal.SIGTERM)
    assert proc.wait(5) == 0


def test_sighup_reloads_the_asn_db_and_a_bad_one_is_kept(xtcp: Callable[..., Xtcp], tmp_path: Path) -> None:
    """SIGHUP with a good file logs the reload; with a broken file the service logs why, keeps running
    and keeps polling."""
    db = write_pfx2as(tmp_path / "pfx2as.txt")
    proc = xtcp("--sink", "null://", "--asn-db", str(db))
    eventually(lambda: proc.scrape()["xtcp_polls_total"][()] >= 1, what="the first poll")
    proc.signal(signal.SIGHUP)
    eventually(lambda: "--asn-db reloaded" in proc.log(), what="the reload")
    db.write_text("not a table\n")
    proc.signal(signal.SIGHUP)
    eventually(lambda: "reload failed, keeping the previous table" in proc.log(), what="the failed reload")
    polls = proc.scrape()["xtcp_polls_total"][()]
    eventually(lambda: proc.scrape()["xtcp_polls_total"][()] > polls, what="polls after the bad reload")
    proc.signal(signal.SIGTERM)
    assert proc.wait(5) == 0
