"""TCP-health series for /metrics, from each poll's summary (issue 12).

Cardinality is bounded by configuration, never by traffic: ``state`` (the 13 kernel states) ×
``family`` (2); ``state_group`` (3) × ``cc`` (the kernel's congestion-control names xtcp2 knows,
plus reno, else ``other``: 9); ``port`` (at most --metrics-ports listening ports, plus ``other``).
Remote addresses, ASNs and namespaces never become labels.

Histograms count every measured socket (one with an RTT sample) once per poll, so
``rate(..._count)`` is sockets×polls per second and ``histogram_quantile`` over a window is the
distribution of the sockets seen in it.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

from xtcp_async.aggregate.groups import service_ports
from xtcp_async.aggregate.poll import PollSummary
from xtcp_async.netlink import constants as c
from xtcp_async.netlink.fields import CONGESTION_ENUM

PREFIX = "xtcp_tcp"
#: RTT buckets in seconds: loopback (tens of µs) to a bad satellite path.
RTT_BUCKETS = (0.0001, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
#: Retransmitted share of segments sent, per socket.
RETRANS_BUCKETS = (0.0001, 0.001, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0)
STATE_GROUPS = {"established": ("established",),
                "opening": ("syn-sent", "syn-recv", "new-syn-recv"),
                "closing": ("fin-wait-1", "fin-wait-2", "time-wait", "close-wait", "last-ack", "closing", "close")}
CC_LABELS = (*CONGESTION_ENUM, "reno", "other")
FAMILIES = {c.AF_INET: "inet", c.AF_INET6: "inet6"}

#: state number → index in STATE_GROUPS (-1: not grouped, e.g. listen).
_GROUP_OF = np.full(256, -1, dtype=np.int64)
for _i, _names in enumerate(STATE_GROUPS.values()):
    for _n in _names:
        _GROUP_OF[c.TCP_STATES[_n]] = _i


@dataclass
class _Hist:
    """Cumulative bucket counts of one label set."""

    counts: npt.NDArray[np.int64]
    total: float = 0.0


@dataclass
class TcpHealth:
    """What the last polls showed, kept for scrapes; ``observe`` is the stages' summary listener."""

    max_ports: int = 20
    polls: int = 0
    sockets: dict[tuple[str, str], int] = field(default_factory=dict)
    rtt: dict[tuple[str, str], _Hist] = field(default_factory=dict)
    retrans: dict[tuple[str, str], _Hist] = field(default_factory=dict)
    retransmitted_segments: int = 0
    bytes_acked_delta: int = 0
    bytes_received_delta: int = 0
    ports: list[tuple[str, int]] = field(default_factory=list)

    def observe(self, s: PollSummary) -> None:
        """Fold one poll in (a few numpy passes over its columns).

        Runs in the encoder's worker thread while scrapes run on the loop: everything is computed
        first and then published attribute by attribute (each assignment is atomic), so a scrape
        sees whole values, at worst of two consecutive polls.
        """
        cols = s.cols
        sockets = {}
        for fam, fname in FAMILIES.items():
            for sname, snum in c.TCP_STATES.items():
                sockets[(sname, fname)] = int(np.count_nonzero((cols.family == fam) & (cols.state == snum)))
        group = _GROUP_OF[cols.state.astype(np.int64)]
        cc = self._cc_codes(cols.congestion)
        measured = cols.has("rtt") & (cols.rtt > 0) & (group >= 0)
        rtt = self._fold(self.rtt, RTT_BUCKETS, group, cc, measured, cols.rtt.astype(np.float64) / 1e6)
        segs = cols.segs_out.astype(np.float64)
        sent = cols.has("segs_out") & (segs > 0) & (group >= 0)
        ratio = np.divide(cols.total_retrans.astype(np.float64), segs, out=np.zeros(cols.n), where=segs > 0)
        retrans = self._fold(self.retrans, RETRANS_BUCKETS, group, cc, sent, ratio)
        ports = self._top_ports(service_ports(cols), cols.state)
        self.sockets, self.rtt, self.retrans, self.ports = sockets, rtt, retrans, ports
        self.retransmitted_segments = int(cols.total_retrans[cols.has("total_retrans")].sum())
        self.bytes_acked_delta += int(s.deltas.acked.sum())
        self.bytes_received_delta += int(s.deltas.received.sum())
        self.polls += 1

    @staticmethod
    def _cc_codes(names: npt.NDArray[np.bytes_]) -> npt.NDArray[np.int64]:
        uniq, inverse = np.unique(names, return_inverse=True)
        table = np.array([CC_LABELS.index(u.decode("ascii", "replace")) if u.decode("ascii", "replace")
                          in CC_LABELS else len(CC_LABELS) - 1 for u in uniq.tolist()], dtype=np.int64)
        return table[inverse.reshape(-1)] if len(names) else np.zeros(0, dtype=np.int64)

    @staticmethod
    def _fold(prev: dict[tuple[str, str], _Hist], buckets: tuple[float, ...], group: npt.NDArray[np.int64],
              cc: npt.NDArray[np.int64], mask: npt.NDArray[np.bool_],
              values: npt.NDArray[np.float64]) -> dict[tuple[str, str], _Hist]:
        """New cumulative histograms: ``prev`` plus this poll's observations (``prev`` untouched)."""
        into = {k: _Hist(h.counts.copy(), h.total) for k, h in prev.items()}
        groups = list(STATE_GROUPS)
        edges = np.array(buckets)
        rows = np.nonzero(mask)[0]
        key = group[rows] * len(CC_LABELS) + cc[rows]
        # The keys present, ascending, as np.unique gives them; bincount because the keys are a few
        # small ints (one pass, no sort), and numpy 2.3's plain np.unique imports numpy.ma (~4.5 ms
        # of the first poll, issue 13).
        for k in np.flatnonzero(np.bincount(key)).tolist():
            sel = rows[key == k]
            v = values[sel]
            # Bucket i counts values <= edges[i] (Prometheus' "le"); the last slot is +Inf.
            per = np.bincount(np.searchsorted(edges, v, side="left"), minlength=len(edges) + 1)
            label = (groups[k // len(CC_LABELS)], CC_LABELS[k % len(CC_LABELS)])
            h = into.setdefault(label, _Hist(np.zeros(len(edges) + 1, dtype=np.int64)))
            h.counts += per
            h.total += float(v.sum())
        return into

    def _top_ports(self, service: npt.NDArray[np.uint16], state: npt.NDArray[np.uint8]) -> list[tuple[str, int]]:
        """Connections per listening port, the --metrics-ports busiest by name and the rest as 'other'."""
        conn = service[(service > 0) & (state != c.TCP_STATES["listen"])]
        ports, counts = np.unique(conn, return_counts=True)
        order = np.lexsort((ports, -counts))
        top = order[:self.max_ports]
        out = [(str(int(ports[i])), int(counts[i])) for i in top]
        out.append(("other", int(counts[order[self.max_ports:]].sum())))
        return out


class TcpHealthCollector(Collector):
    """Renders :class:`TcpHealth` at scrape time."""

    def __init__(self, health: TcpHealth) -> None:
        self.health = health

    def collect(self) -> Iterator[Metric]:
        h = self.health
        sockets = GaugeMetricFamily(f"{PREFIX}_sockets", "TCP sockets in the last poll, by state and family.",
                                    labels=["state", "family"])
        for (state, fam), n in sorted(h.sockets.items()):
            sockets.add_metric([state, fam], n)
        yield sockets
        yield self._hist(f"{PREFIX}_rtt_seconds", "Smoothed RTT of sockets with an RTT sample, one observation "
                         "per socket per poll.", h.rtt, RTT_BUCKETS)
        yield self._hist(f"{PREFIX}_retransmit_ratio", "Per socket, retransmitted segments over segments sent "
                         "(tcpi_total_retrans / tcpi_segs_out), one observation per socket per poll.",
                         h.retrans, RETRANS_BUCKETS)
        yield GaugeMetricFamily(f"{PREFIX}_retransmitted_segments", "Sum of tcpi_total_retrans over the last "
                                "poll's sockets.", value=h.retransmitted_segments)
        yield CounterMetricFamily(f"{PREFIX}_bytes_acked_delta", "Bytes acknowledged between consecutive polls, "
                                  "over sockets present in both.", value=h.bytes_acked_delta)
        yield CounterMetricFamily(f"{PREFIX}_bytes_received_delta", "Bytes received between consecutive polls, "
                                  "over sockets present in both.", value=h.bytes_received_delta)
        ports = GaugeMetricFamily(f"{PREFIX}_listen_port_connections", "Connections on a listening port in the "
                                  "last poll: the --metrics-ports busiest, the rest summed as port=\"other\".",
                                  labels=["port"])
        for port, n in h.ports:
            ports.add_metric([port], n)
        yield ports

    @staticmethod
    def _hist(name: str, doc: str, hists: dict[tuple[str, str], _Hist], buckets: tuple[float, ...]) -> Metric:
        fam = HistogramMetricFamily(name, doc, labels=["state_group", "cc"])
        for (group, cc), hist in sorted(hists.items()):
            cum = np.cumsum(hist.counts).tolist()
            fam.add_metric([group, cc], [*((str(b), cum[i]) for i, b in enumerate(buckets)), ("+Inf", cum[-1])],
                           sum_value=hist.total)
        return fam
