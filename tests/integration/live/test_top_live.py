"""`xtcp-async top` against the live traffic namespace: it refreshes until Ctrl-C and counts what ss lists."""

from __future__ import annotations

import json
import select
import signal
import subprocess
import time
from collections import Counter

import pytest

from .harness import Netns, Traffic, collector_argv
from .ss_line import parse_text

pytestmark = pytest.mark.root


def test_top_refreshes_until_ctrl_c_and_counts_every_socket(netns: Netns, traffic: Traffic) -> None:
    """Two --json refreshes arrive an interval apart; each counts the sockets ss -tan lists, by state;
    SIGINT ends it with exit 0."""
    del traffic
    proc = netns.popen([*collector_argv(), "top", "--json", "--interval", "0.3"], stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE)
    assert proc.stdout is not None
    views = []
    deadline = time.monotonic() + 30
    while len(views) < 2 and time.monotonic() < deadline:
        ready, _, _ = select.select([proc.stdout], [], [], max(0.0, deadline - time.monotonic()))
        if ready:
            views.append(json.loads(proc.stdout.readline()))
    listed = parse_text(netns.run(["ss", "-tanOH"]))
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=20) == 0
    assert len(views) == 2
    want = Counter(s.key[0] for s in listed)
    assert views[-1]["sockets"] == len(listed) > 20
    assert sum(views[-1]["states"].values()) == sum(want.values())
    assert views[-1]["busiest_ports"]
