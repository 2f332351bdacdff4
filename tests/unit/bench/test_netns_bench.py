"""Spec for `python -m bench netns`: the many-namespaces scene runs end to end (small, here)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.integration.live.harness import netns_unavailable_reason, skip_or_fail

REPO_ROOT = Path(__file__).resolve().parents[3]


@pytest.mark.root
@pytest.mark.slow
@pytest.mark.timeout(300)
def test_netns_bench_polls_every_namespace_it_made(tmp_path: Path) -> None:
    """Five namespaces × 6 sockets, both hash-table settings: every poll covers 5 + 1 namespaces and 30 sockets."""
    reason = netns_unavailable_reason()
    if reason:
        skip_or_fail(reason)
    out = tmp_path / "netns.json"
    subprocess.run([sys.executable, "-m", "bench", "netns", "--namespaces", "5", "--sockets", "6", "--repeat", "1",
                    "--polls", "1", "--interval", "0.5", "--open-sample", "5", "--out", str(out)],
                   cwd=REPO_ROOT, check=True, capture_output=True, timeout=240)
    scenes = json.loads(out.read_text())["scenes"]
    assert [s["child_ehash_entries"] for s in scenes] == [0, 1024]
    for scene in scenes:
        svc = scene["service"]
        assert (svc["namespaces_polled"], svc["sockets_per_poll"], svc["polls_failed"]) == ([6], [30], 0)
        assert set(scene["open_methods"]["methods"]) == {
            "a fresh thread per namespace (setns, socket, bind)",
            "one fresh thread for all of them (xtcp_async's way)",
            "forked helper, fd back over SCM_RIGHTS (per round trip)",
            "forked helper: its start-up + first round trip"}
