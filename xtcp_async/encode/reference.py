"""The reference protobuf encoder: one generated message per socket.

Slow (~16 µs per socket) but obviously right: it is the oracle the fast wire encoder is tested
against, and the fallback when numpy's fast path cannot be used.
"""

from __future__ import annotations

from xtcp_async.encode.gen import xtcp_flat_record_pb2 as pb
from xtcp_async.netlink import constants as c
from xtcp_async.netlink.batch import DEST_PREFIX, DESTINATION, SOURCE, SocketBatch
from xtcp_async.netlink.fields import FIELDS

_INT_FIELDS = [f for f in FIELDS if f.group not in ("meta", "stage") and f.proto_type not in ("bytes", "string")
               and f.name != "congestion_algorithm_enum"]


def build_messages(batch: SocketBatch) -> list[pb.XtcpFlatRecord]:
    """One XtcpFlatRecord per socket, every field the kernel sent set (zeros included)."""
    m = batch.meta
    cols = [(f.name, batch.columns[f.name].tolist(), batch.present(f).tolist()) for f in _INT_FIELDS
            if f.name in batch.columns]
    prefix = batch.columns.get(DEST_PREFIX)
    src = batch.columns[SOURCE]
    dst = batch.columns[DESTINATION]
    fam = batch.columns["inet_diag_msg_family"].tolist()
    cong_present = (batch.lengths["congestion"] > 0).tolist()
    cong = batch.congestion_names()
    enums = batch.congestion_enums().tolist()
    read_ns = batch.read_ns.tolist()
    ti_len = batch.lengths["tcp_info"].tolist()
    rate = batch.stage_column("sample_rate_ppm").tolist()
    closed = batch.stage_column("closed").tolist()
    out: list[pb.XtcpFlatRecord] = []
    for i in range(batch.n):
        r = pb.XtcpFlatRecord(
            schema_version=m.schema_version, daemon_version=m.daemon_version,
            timestamp_ns=m.timestamp_ns, hostname=m.hostname, location=m.location,
            label=m.label, tag=m.tag, record_counter=m.record_counter_start + i,
            poll_id=m.poll_id, poll_dump_interrupted=m.dump_interrupted,
            socket_read_timestamp_ns=read_ns[i],
            inet_diag_msg_family_name=c.FAMILY_NAMES.get(fam[i], str(fam[i])),
            tcp_info_length=ti_len[i],
            inet_diag_msg_socket_source=src[i].tobytes(),
            inet_diag_msg_socket_destination=dst[i].tobytes(),
            sample_rate_ppm=rate[i], closed=bool(closed[i]),
        )
        if prefix is not None:
            r.inet_diag_msg_socket_dest_prefix = prefix[i].tobytes()
        for name, values, present in cols:
            if present[i]:
                setattr(r, name, values[i])
        if cong_present[i]:
            r.congestion_algorithm_string = cong[i]
            r.congestion_algorithm_enum = enums[i]
        out.append(r)
    return out


def encode_rows(batch: SocketBatch, *, list_entries: bool) -> list[bytes]:
    """Serialized records; with ``list_entries`` each is framed as an Envelope ``row`` entry."""
    rows = [r.SerializeToString() for r in build_messages(batch)]
    if not list_entries:
        return rows
    from xtcp_async.encode.framing import varint

    return [b"\x52" + varint(len(r)) + r for r in rows]
