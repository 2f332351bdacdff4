"""What ``xtcp-async top`` shows, computed from one poll's columns (pure).

The same per-group statistics as the aggregate records (xtcp_async.aggregate.compute), grouped by
remote prefix, by remote ASN (with --asn-db) and by listening port, then ranked.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from xtcp_async.aggregate.columns import PollColumns
from xtcp_async.aggregate.deltas import Deltas
from xtcp_async.aggregate.poll import PollSummary, records_of
from xtcp_async.aggregate.records import AggregateSettings
from xtcp_async.netlink import constants as c
from xtcp_async.netlink.batch import PollMeta

#: A network needs this many sockets with an RTT sample to be ranked (one slow socket is noise).
MIN_SOCKETS = 3
_STATS = ("sockets", "rtt_sockets", "rtt_p50", "rtt_p99", "retransmits", "segs_out", "retransmit_share",
          "bytes_acked_delta", "bytes_received_delta")


def _groups(cols: PollColumns, deltas: Deltas, key: str) -> list[dict[str, Any]]:
    """One aggregate record per value of ``key``, over the sockets that are not listeners."""
    live = np.nonzero(cols.state != c.TCP_STATES["listen"])[0]
    sub = Deltas(deltas.acked[live], deltas.received[live], deltas.seen[live])
    summary = PollSummary(cols.take(live), sub)
    return records_of(summary, PollMeta(), AggregateSettings((key,), max_groups=1_000_000))


def _port_groups(summary: PollSummary) -> list[dict[str, Any]]:
    """Per listening port, its connections (the listeners themselves are needed to find the ports,
    then taken out of the counts)."""
    cols = summary.cols
    recs = records_of(summary, PollMeta(), AggregateSettings(("port",), max_groups=1_000_000))
    lports, lcounts = np.unique(cols.sport[cols.state == c.TCP_STATES["listen"]], return_counts=True)
    listeners = dict(zip(lports.tolist(), lcounts.tolist(), strict=True))
    out = []
    for r in recs:
        port = r.get("local_port", 0)
        r["sockets"] -= listeners.get(port, 0)
        if port and r["sockets"]:
            out.append(r)
    return out


def _slim(rec: dict[str, Any], key: str) -> dict[str, Any]:
    out = {key: rec.get(key, 0 if key in ("asn", "local_port") else "")}
    out.update({k: rec.get(k, 0) for k in _STATS})
    return out


def top_view(summary: PollSummary, *, n: int = 5, with_asn: bool = False) -> dict[str, Any]:
    """The summary as plain data (what --json prints)."""
    cols = summary.cols
    values, counts = np.unique(cols.state, return_counts=True)
    states = {c.TCP_STATE_NAMES.get(int(s), str(int(s))): int(n) for s, n in zip(values, counts, strict=True)}
    states = dict(sorted(states.items(), key=lambda kv: (-kv[1], kv[0])))
    view: dict[str, Any] = {
        "sockets": cols.n,
        "states": states,
    }
    keyed = [("prefix", "prefix")] + ([("asn", "asn")] if with_asn else [])
    for key, field in keyed:
        recs = [r for r in _groups(cols, summary.deltas, key) if r.get("rtt_sockets", 0) >= MIN_SOCKETS]
        by_rtt = sorted(recs, key=lambda r: (-r.get("rtt_p99", 0), -r["sockets"]))[:n]
        by_retrans = sorted(recs, key=lambda r: (-r.get("retransmit_share", 0.0), -r["sockets"]))[:n]
        view[f"worst_{key}_by_rtt_p99"] = [_slim(r, field) for r in by_rtt]
        view[f"worst_{key}_by_retransmit_share"] = [_slim(r, field) for r in by_retrans if r.get("retransmits")]
    ports = _port_groups(summary)
    view["busiest_ports"] = [_slim(r, "local_port")
                             for r in sorted(ports, key=lambda r: (-r["sockets"], r["local_port"]))[:n]]
    return view
