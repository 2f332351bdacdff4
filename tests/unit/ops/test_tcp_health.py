"""TCP-health series: right values from a poll's sockets, and a series count that traffic cannot grow."""

from __future__ import annotations

from collections import Counter
from dataclasses import replace

import numpy as np
from prometheus_client import CollectorRegistry, generate_latest

from tests.support.asn import capture_batch
from xtcp_async.aggregate.columns import PollColumns
from xtcp_async.aggregate.deltas import DeltaState
from xtcp_async.aggregate.poll import summarize
from xtcp_async.enrich.stage import Enricher
from xtcp_async.health_stages import HealthStages
from xtcp_async.netlink import constants as c
from xtcp_async.ops.tcp_health import (
    CC_LABELS,
    RETRANS_BUCKETS,
    RTT_BUCKETS,
    STATE_GROUPS,
    TcpHealth,
    TcpHealthCollector,
)

PORTS = 3


def scene(copies: int, listening_ports: int, seed: int = 1) -> PollColumns:
    """The recorded dump's sockets repeated ``copies`` times, each copy with its own remote addresses,
    cookies and network namespace; listeners spread over ``listening_ports`` ports, each with clients."""
    base = PollColumns.of(capture_batch())
    rnd = np.random.default_rng(seed)
    parts = []
    for i in range(copies):
        p = base.take(np.arange(base.n))
        p.cookie = p.cookie + np.uint64(i * 1_000_003)
        p.netns = np.full(base.n, 4026531840 + i, dtype=np.uint64)
        p.prefix = rnd.integers(0, 256, size=(base.n, 16), dtype=np.uint8)
        p.asn = rnd.integers(1, 400_000, size=base.n).astype(np.uint64)
        port = np.uint16(20000 + i % listening_ports)
        p.sport = np.where(p.state == c.TCP_STATES["listen"], port, p.sport).astype(np.uint16)
        p.sport[p.state == c.TCP_STATES["established"]] = port
        parts.append(p)
    return PollColumns.concat(parts)


def series(cols: PollColumns, max_ports: int = PORTS) -> tuple[list[str], TcpHealth]:
    """The exposition lines (samples only) after two polls of ``cols``."""
    health = TcpHealth(max_ports=max_ports)
    state = DeltaState.empty()
    for _ in range(2):
        summary, state = summarize(cols, state)
        health.observe(summary)
    registry = CollectorRegistry(auto_describe=True)
    registry.register(TcpHealthCollector(health))
    text = generate_latest(registry).decode()
    return [line for line in text.splitlines() if line and not line.startswith("#")], health


def test_series_count_does_not_grow_with_sockets_addresses_or_namespaces() -> None:
    """50× the sockets, each copy with other remote addresses, ASNs and namespace: the same series."""
    small, _ = series(scene(PORTS + 5, PORTS + 5))
    large, _ = series(scene(400, PORTS + 5, seed=2))
    assert len(large) == len(small)
    assert {s.split(" ")[0] for s in large} == {s.split(" ")[0] for s in small}
    many_ports, _ = series(scene(60, 60, seed=3))
    bound = (13 * 2 + 2 * len(STATE_GROUPS) * len(CC_LABELS) * (max(len(RTT_BUCKETS), len(RETRANS_BUCKETS)) + 3)
             + 3 + PORTS + 1)
    assert len(many_ports) <= bound
    assert sum(1 for s in many_ports if s.startswith("xtcp_tcp_listen_port_connections")) == PORTS + 1


def test_values_follow_the_poll() -> None:
    """Socket counts by state and family, histogram counts, retransmits and port counts equal the rows'."""
    cols = scene(1, 2)
    lines, health = series(cols, max_ports=1)
    want = Counter((c.TCP_STATE_NAMES[int(s)], {2: "inet", 10: "inet6"}[int(f)])
                   for s, f in zip(cols.state, cols.family, strict=True))
    assert {k: v for k, v in health.sockets.items() if v} == dict(want)
    established_bbr = int(np.count_nonzero((cols.state == 1) & (cols.congestion == b"bbr") & cols.has("rtt")
                                           & (cols.rtt > 0)))
    assert established_bbr > 0
    count_line = 'xtcp_tcp_rtt_seconds_count{cc="bbr",state_group="established"}'
    assert f"{count_line} {2.0 * established_bbr}" in lines  # two polls
    assert health.retransmitted_segments == int(cols.total_retrans[cols.has("total_retrans")].sum())
    conns = Counter(int(p) for p, s in zip(cols.sport, cols.state, strict=True) if s == 1)
    top_port, top_n = conns.most_common(1)[0]
    assert health.ports == [(str(top_port), top_n), ("other", sum(conns.values()) - top_n)]


def test_bytes_deltas_count_between_polls() -> None:
    """The bytes counters add what sockets present in consecutive polls acknowledged and received."""
    cols = scene(1, 1)
    health = TcpHealth()
    first, state = summarize(cols, DeltaState.empty())
    health.observe(first)
    later = replace(cols, bytes_acked=cols.bytes_acked + np.uint64(10),
                    bytes_received=cols.bytes_received + np.uint64(3))
    second, _ = summarize(later, state)
    health.observe(second)
    counted = int(np.count_nonzero(cols.has("bytes_received")))
    assert (health.bytes_acked_delta, health.bytes_received_delta) == (10 * counted, 3 * counted)


def test_stages_feed_the_summary_to_listeners() -> None:
    """With summaries on, each poll's end hands its summary to the registered listeners."""
    stages = HealthStages(Enricher(None, None), summarize=True)
    health = TcpHealth()
    stages.summary_listeners.append(health.observe)
    stages.batch(capture_batch())
    assert stages.poll_end(1, 0) == []  # no aggregate records without --aggregate
    assert health.polls == 1 and sum(health.sockets.values()) == capture_batch().n
