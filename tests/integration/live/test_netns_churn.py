"""Namespace churn: created and deleted every 100 ms while ``--netns all`` polls every 0.2 s for 60 s.
No error escapes, open fds and netlink sockets return to their baseline, and no socket of ours
keeps a deleted namespace alive (netns_churn.py says how that is checked)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from .harness import netns_unavailable_reason, skip_or_fail

pytestmark = [pytest.mark.root, pytest.mark.slow]

DRIVER = Path(__file__).with_name("netns_churn.py")
SECONDS = 60


@pytest.fixture(scope="module")
def report() -> dict[str, Any]:
    """The churn driver's report, run in its own net, mount and pid namespaces."""
    reason = netns_unavailable_reason()
    if reason:
        skip_or_fail(reason)
    proc = subprocess.run(["unshare", "--net", "--mount", "--pid", "--fork", "--mount-proc",
                           sys.executable, str(DRIVER), str(SECONDS)],
                          capture_output=True, text=True, timeout=SECONDS + 90, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return out


@pytest.mark.timeout(SECONDS + 120)
def test_churn_runs_its_course_without_errors(report: dict[str, Any]) -> None:
    """Hundreds of namespaces come and go over ~300 polls; no error is logged and no poll fails."""
    assert report["made"] >= 0.8 * SECONDS / 0.1  # (the kernel reuses freed namespaces' inodes)
    assert report["polls_during_churn"] >= 0.5 * SECONDS / 0.2
    assert report["most_namespaces_polled"] >= 1 + 2 * 3  # its own, and both kinds of churned ones
    assert report["errors"] == []
    st = report["stats"]
    assert st["polls_failed"] == 0 and st["netlink_errors"] == 0 and report["undelivered"] == 0
    assert st["netns_rescans"] >= report["polls_during_churn"]


@pytest.mark.timeout(SECONDS + 120)
def test_fds_and_netlink_sockets_return_to_baseline(report: dict[str, Any]) -> None:
    """After the churn the service holds the fds and netlink sockets it held before it; after it, none of its own."""
    assert report["fds_after_churn"] == report["fds_steady"]
    assert sorted(report["netlink_ns_after_churn"]) == sorted(report["netlink_ns_steady"])
    assert report["fds_after_service"] == report["fds_before_service"]


@pytest.mark.timeout(SECONDS + 120)
def test_no_deleted_namespace_stays_pinned(report: dict[str, Any]) -> None:
    """Every netlink socket of ours is in the collector's own namespace; none is in a deleted one."""
    assert set(report["netlink_ns_after_churn"]) == {report["self_ns"]}
    assert report["deleted_still_pinned"] == []
    assert report["deleted_still_held"] == []
