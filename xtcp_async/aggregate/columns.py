"""The few columns a poll's summaries need, cut out of each batch and joined at the poll's end.

Aggregates need every socket of a poll at once (exact percentiles), but not every field: keeping
these ~20 columns instead of whole batches holds ≈10 MB at 120k sockets.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

import numpy as np
import numpy.typing as npt

from xtcp_async.enrich.stage import ASN, PREFIX_LENGTH
from xtcp_async.netlink.batch import DEST_PREFIX, SocketBatch
from xtcp_async.netlink.fields import FIELD_BY_NAME

Arr = npt.NDArray[Any]

#: tcp_info fields the summaries read, by column name.
TCP_FIELDS = ("rtt", "min_rtt", "total_retrans", "segs_out", "bytes_acked", "bytes_received",
              "delivery_rate", "delivery_rate_app_limited", "busy_time", "rwnd_limited", "sndbuf_limited")
#: Column that tells a batch's sockets apart by network namespace, when namespaces are polled.
NETNS = "netns_inode"


@dataclass
class PollColumns:
    """Columns of all (or some) sockets of one poll; ``has_*`` masks say where a tcp_info field exists."""

    family: Arr
    state: Arr
    sport: Arr
    cookie: Arr
    congestion: Arr
    asn: Arr
    prefix: Arr
    prefix_len: Arr
    netns: Arr
    tcp_info_len: Arr
    rtt: Arr
    min_rtt: Arr
    total_retrans: Arr
    segs_out: Arr
    bytes_acked: Arr
    bytes_received: Arr
    delivery_rate: Arr
    delivery_rate_app_limited: Arr
    busy_time: Arr
    rwnd_limited: Arr
    sndbuf_limited: Arr
    #: The rate (ppm) --sample kept the row at (issue 11's column; 1e6 where sampling is off).
    sample_ppm: Arr

    @property
    def n(self) -> int:
        return len(self.family)

    def has(self, name: str) -> npt.NDArray[np.bool_]:
        """Rows whose tcp_info is long enough to carry ``tcp_info_<name>``."""
        return np.asarray(self.tcp_info_len >= FIELD_BY_NAME[f"tcp_info_{name}"].end)

    @staticmethod
    def of(batch: SocketBatch) -> PollColumns:
        """The columns of ``batch`` (copies, so the batch's buffers can be freed)."""
        n = batch.n
        cols = batch.columns

        def col(name: str, dtype: Any = None) -> Arr:
            # The decoder's own widths (u32 for most tcp_info fields): ~110 bytes a socket, not 190.
            got = cols.get(name)
            if got is None:
                return np.zeros(n, dtype=dtype or np.uint64)
            return np.array(got, dtype=dtype or got.dtype)

        prefix = cols.get(DEST_PREFIX)
        return PollColumns(
            family=col("inet_diag_msg_family", np.uint8), state=col("inet_diag_msg_state", np.uint8),
            sport=col("inet_diag_msg_socket_source_port", np.uint16),
            cookie=col("inet_diag_msg_socket_cookie"), congestion=np.array(batch.congestion, dtype="S16"),
            # No prefix column without --prefix-len: (n, 0), nothing held.
            asn=col(ASN), prefix=np.zeros((n, 0), np.uint8) if prefix is None else np.array(prefix, np.uint8),
            prefix_len=col(PREFIX_LENGTH, np.uint8), netns=_netns(batch, col),
            tcp_info_len=np.array(batch.lengths["tcp_info"], dtype=np.int32),
            sample_ppm=np.array(cols["sample_rate_ppm"], dtype=np.uint32) if "sample_rate_ppm" in cols
            else np.full(n, 1_000_000, dtype=np.uint32),
            **{name: col(f"tcp_info_{name}") for name in TCP_FIELDS},
        )

    @staticmethod
    def concat(parts: list[PollColumns]) -> PollColumns:
        if len(parts) == 1:
            return parts[0]
        if not parts:
            return PollColumns.of(_empty())
        return PollColumns(**{f.name: np.concatenate([getattr(p, f.name) for p in parts]) for f in fields(PollColumns)})

    def take(self, rows: Arr) -> PollColumns:
        """The rows ``rows`` (an index or mask array)."""
        return PollColumns(**{f.name: getattr(self, f.name)[rows] for f in fields(PollColumns)})


def _netns(batch: SocketBatch, col: Any) -> Arr:
    """Each row's network namespace inode: from the batch's origins when namespaces are polled
    (issue 10 tags rows with ``origin_codes`` into ``origins``), else a ``netns_inode`` column, else 0."""
    codes = getattr(batch, "origin_codes", None)
    origins = getattr(batch, "origins", ())
    if codes is not None and origins:
        inodes: Arr = np.array([int(getattr(o, NETNS, 0)) for o in origins], dtype=np.uint64)
        picked: Arr = inodes[codes]
        return picked
    out: Arr = np.asarray(col(NETNS))
    return out


def _empty() -> SocketBatch:
    from xtcp_async.netlink.batch import empty_batch

    return empty_batch()


class ColumnBuffer:
    """A poll's columns appended batch by batch into buffers kept from poll to poll.

    Why not a list of per-batch copies joined at the poll's end: ~60 batches × 21 small arrays per
    poll at 120k sockets, plus the join, left the allocator's heap ~100 MB larger than the data
    (measured: peak RSS 226 MB against 107 MB without summaries). Buffers that only grow (by
    doubling) and are reused by every poll hold the columns once, ~120 bytes a socket.
    """

    def __init__(self) -> None:
        self._bufs: dict[str, Arr] = {}
        self.n = 0

    def add(self, part: PollColumns) -> None:
        if not part.n:
            return
        end = self.n + part.n
        for f in fields(PollColumns):
            src = getattr(part, f.name)
            buf = self._bufs.get(f.name)
            if buf is None or len(buf) < end or buf.shape[1:] != src.shape[1:] or buf.dtype != src.dtype:
                cap = max(end, 2 * (len(buf) if buf is not None else 0), 4096)
                grown = np.empty((cap, *src.shape[1:]), dtype=src.dtype)
                if buf is not None and self.n and buf.shape[1:] == src.shape[1:]:
                    grown[:self.n] = buf[:self.n]
                self._bufs[f.name] = buf = grown
            buf[self.n:end] = src
        self.n = end

    def take(self) -> PollColumns:
        """The poll's columns (views into the buffers, valid until the next ``add``); starts over."""
        if not self.n:
            return PollColumns.of(_empty())
        cols = PollColumns(**{f.name: self._bufs[f.name][:self.n] for f in fields(PollColumns)})
        self.n = 0
        return cols
