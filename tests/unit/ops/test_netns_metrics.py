"""The namespace counters are on /metrics as plain totals, with no per-namespace label."""

from __future__ import annotations

from collections.abc import Callable

from tests.unit.ops.test_metrics import scrape
from xtcp_async.service import Service


def test_namespace_counts_are_unlabelled_series(make_service: Callable[..., Service]) -> None:
    """Polled, unenterable, enter failures, vanished and unreadable processes read Stats at scrape time."""
    service = make_service()
    s = service.stats
    s.netns_polled, s.netns_unenterable, s.netns_enter_failures = 301, 4, 12
    s.netns_vanished, s.netns_unreadable_processes, s.netns_rescans = 3, 17, 9
    got = scrape(service)
    assert got["xtcp_netns_polled"] == {(): 301}
    assert got["xtcp_netns_unenterable"] == {(): 4}
    assert got["xtcp_netns_enter_failures_total"] == {(): 12}
    assert got["xtcp_netns_vanished_total"] == {(): 3}
    assert got["xtcp_netns_unreadable_processes"] == {(): 17}
    assert got["xtcp_netns_rescans_total"] == {(): 9}
