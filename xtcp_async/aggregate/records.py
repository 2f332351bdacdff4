"""One poll's aggregate records: dicts keyed by XtcpAggregateRecord field names, and their encodings.

A poll has at most --aggregate-max-groups groups (default 1000), so one generated message per
group is cheap here (~20 µs each), unlike per-socket rows.
"""

from __future__ import annotations

import json
import socket
from dataclasses import dataclass
from typing import Any

from xtcp_async.aggregate.columns import PollColumns
from xtcp_async.aggregate.compute import GroupStats
from xtcp_async.aggregate.groups import Groups, service_ports
from xtcp_async.encode.framing import EncodedRows, varint
from xtcp_async.netlink import constants as c
from xtcp_async.netlink.batch import PollMeta

#: AggregateEnvelope ``row = 10``, length-delimited (the same tag byte as Envelope's rows).
ROW_TAG = b"\x52"


@dataclass(frozen=True)
class AggregateSettings:
    """What the aggregate records of a run are grouped by and stamped with."""

    keys: tuple[str, ...]
    max_groups: int


def _prefix_text(family: int, raw: bytes, length: int) -> str:
    """As ss and the jsonl rows print addresses (inet_ntop: ``::ffff:a.b.c.d`` for mapped IPv4)."""
    if not raw:
        return ""  # the batch had no prefix column (no --prefix-len)
    if family == c.AF_INET:
        return f"{socket.inet_ntop(socket.AF_INET, raw[:4])}/{length}"
    return f"{socket.inet_ntop(socket.AF_INET6, raw)}/{length}"


def aggregate_records(cols: PollColumns, groups: Groups, stats: GroupStats, meta: PollMeta,
                      settings: AggregateSettings) -> list[dict[str, Any]]:
    """One dict per group: poll metadata, the group's key values, its statistics."""
    head: dict[str, Any] = {
        "schema_version": meta.schema_version, "daemon_version": meta.daemon_version,
        "timestamp_ns": meta.timestamp_ns, "hostname": meta.hostname, "location": meta.location,
        "label": meta.label, "tag": meta.tag, "poll_id": meta.poll_id, "group_by": ",".join(settings.keys),
    }
    ports = service_ports(cols) if "port" in settings.keys else None
    stat_lists = {k: v.tolist() for k, v in stats.columns.items()}
    out: list[dict[str, Any]] = []
    for gi in range(groups.count):
        rec = dict(head)
        row = int(groups.first[gi])
        if groups.other and gi == groups.count - 1:
            rec["other"] = True
            rec["groups_folded"] = groups.folded
        else:
            keys = settings.keys
            if "netns" in keys:
                rec["netns_inode"] = int(cols.netns[row])
            if "asn" in keys:
                rec["asn"] = int(cols.asn[row])
            if "prefix" in keys:
                rec["prefix"] = _prefix_text(int(cols.family[row]), cols.prefix[row].tobytes(),
                                             int(cols.prefix_len[row]))
            if ports is not None:
                rec["local_port"] = int(ports[row])
            if "cc" in keys:
                rec["congestion_algorithm"] = cols.congestion[row].decode("ascii", "replace")
            if "state" in keys:
                state = int(cols.state[row])
                rec["state"] = c.TCP_STATE_NAMES.get(state, str(state))
        for k, values in stat_lists.items():
            rec[k] = values[gi]
        out.append(rec)
    return out


def encode_aggregates(records: list[dict[str, Any]], fmt: str) -> EncodedRows:
    """The records framed as they sit in a payload of ``fmt`` (see xtcp_async.encode.framing)."""
    if fmt == "jsonl":
        return EncodedRows.from_list([(json.dumps(r, separators=(",", ":")) + "\n").encode() for r in records])
    from xtcp_async.encode.gen import xtcp_flat_record_pb2 as pb

    rows = [pb.XtcpAggregateRecord(**r).SerializeToString() for r in records]
    if fmt == "protobuf-list":
        rows = [ROW_TAG + varint(len(r)) + r for r in rows]
    return EncodedRows.from_list(rows)
