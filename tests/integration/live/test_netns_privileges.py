"""Without privileges ``--netns all`` still reports its own namespace; what it cannot enter or read is
counted and logged once, and it never exits for it."""

from __future__ import annotations

import json
import subprocess
from collections import Counter
from pathlib import Path

import pytest

from .harness import Netns, collector_argv, netns, netns_unavailable_reason, read_jsonl, skip_or_fail, start_traffic
from .ss_line import parse_text, record_key

pytestmark = pytest.mark.root

#: Root's uid with every capability gone (empty bounding set: exec cannot grant any back).
NO_CAPS = ["setpriv", "--inh-caps=-all", "--bounding-set=-all"]


@pytest.mark.timeout(180)
def test_without_capabilities_own_namespace_is_reported_and_the_rest_counted(tmp_path: Path) -> None:
    """A cap-less collector in namespace A polls A exactly like ss, counts B as unenterable, logs each kind once."""
    reason = netns_unavailable_reason()
    if reason:
        skip_or_fail(reason)
    with netns() as own, netns() as other:
        t_own, t_other = start_traffic(own), start_traffic(other)
        try:
            out, stats = tmp_path / "out.jsonl", tmp_path / "stats.json"
            proc = subprocess.run(
                own.argv([*NO_CAPS, *collector_argv(), "--netns", "all", "--count", "3", "--interval", "0.5",
                          "--sink", f"file://{out}?format=jsonl", "--metrics-listen", "",
                          "--stats-json", str(stats)]),
                capture_output=True, text=True, timeout=120, check=False)
            listed = parse_text(own.run(["ss", "-tanOH"]))
        finally:
            t_own.stop()
            t_other.stop()
        assert proc.returncode == 0, proc.stderr
        _check(own, other, read_jsonl(out), listed, json.loads(stats.read_text()), proc.stderr)


def _check(own: Netns, other: Netns, records: list[dict[str, object]], listed: list[object],
           st: dict[str, object], stderr: str) -> None:
    first_poll = [r for r in records if r["poll_id"] == 1]
    assert Counter(map(record_key, first_poll)) == Counter(s.key for s in listed)  # type: ignore[attr-defined]
    assert {r["netns"] for r in records} == {own.name}
    assert other.name not in {r["netns"] for r in records}
    assert st["polls"] == 3 and st["polls_failed"] == 0
    assert isinstance(st["netns_unenterable"], int) and st["netns_unenterable"] >= 1  # at least `other`
    assert isinstance(st["netns_enter_failures"], int) and st["netns_enter_failures"] >= 3  # counted every rescan
    assert isinstance(st["netns_unreadable_processes"], int) and st["netns_unreadable_processes"] >= 1
    warnings = [line for line in stderr.splitlines() if "netns:" in line]
    assert len([w for w in warnings if "cannot enter" in w]) == 1, stderr
    assert len([w for w in warnings if "cannot read the network namespace" in w]) == 1, stderr
