"""JSON lines: one object per socket, keys = proto field names, addresses as IP text,
enums by name, fields the kernel did not send left out.

Fast path: rows are grouped by which fields they carry (a dump has few such shapes: established
with full tcp_info, listeners, TIME-WAIT...), and each group is rendered with one %-template
applied to column lists, instead of building and serialising a dict per socket (≈100 µs).
``SocketBatch.to_records`` stays the reference the tests compare against.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np

from xtcp_async.netlink import constants as c
from xtcp_async.netlink.batch import DEST_PREFIX, DESTINATION, SOURCE, SocketBatch
from xtcp_async.netlink.fields import CONGESTION_ENUM_NAMES, FIELDS
from xtcp_async.netlink.origin import NetnsOrigin

_INT_FIELDS = [f for f in FIELDS if f.group not in ("meta", "stage") and f.size > 0 and f.proto_type != "bytes"]


def meta_head(batch: SocketBatch) -> str:
    """The per-batch fields every row starts with, as JSON without the closing brace."""
    m = batch.meta
    head = json.dumps({
        "schema_version": m.schema_version, "daemon_version": m.daemon_version,
        "timestamp_ns": m.timestamp_ns, "hostname": m.hostname, "location": m.location,
        "label": m.label, "tag": m.tag, "poll_id": m.poll_id, "poll_dump_interrupted": m.dump_interrupted,
    }, separators=(",", ":"), ensure_ascii=False)
    return head[:-1]


def _const_prefix(batch: SocketBatch) -> str:
    return meta_head(batch).replace("%", "%%")  # literal % escaped for templating


def origin_members(origin: NetnsOrigin) -> str:
    """The JSON members (with leading commas) of one namespace's known origin fields."""
    return "".join(f',"{k}":{json.dumps(v, ensure_ascii=False)}' for k, v in origin.values().items())


def _origin_column(batch: SocketBatch) -> Any:
    """Per row, the JSON members of its namespace/container/pod (rendered once per namespace)."""
    if batch.origin_codes is None:
        return None
    texts = [origin_members(o) for o in batch.origins]
    return np.array(texts, dtype=object)[batch.origin_codes]


def encode_rows(batch: SocketBatch) -> list[bytes]:
    """One newline-terminated JSON object per socket."""
    n = batch.n
    if not n:
        return []
    present = np.stack([batch.present(f) for f in _INT_FIELDS]) if _INT_FIELDS else np.zeros((0, n), bool)
    cong_present = batch.lengths["congestion"] > 0
    closed = batch.stage_column("closed") != 0
    shape = np.concatenate([present, cong_present[None, :], closed[None, :]]).T
    keys = np.ascontiguousarray(np.packbits(shape, axis=1))
    uniq, inverse = np.unique(keys.view(f"V{keys.shape[1]}").reshape(-1), return_inverse=True)
    inverse = inverse.reshape(-1)

    prefix = _const_prefix(batch)
    fam = batch.columns["inet_diag_msg_family"]
    fam_name = np.array([c.FAMILY_NAMES.get(int(x), str(int(x))) for x in range(256)], dtype=object)[fam]
    src = np.array(batch.addresses_text(SOURCE), dtype=object)
    dst = np.array(batch.addresses_text(DESTINATION), dtype=object)
    prefix_text = np.array(batch.addresses_text(DEST_PREFIX), dtype=object) if DEST_PREFIX in batch.columns else None
    cong = np.array(batch.congestion_names(), dtype=object)
    enum = np.array(CONGESTION_ENUM_NAMES, dtype=object)[batch.congestion_enums()]
    counter = np.arange(n, dtype=np.int64) + batch.meta.record_counter_start
    origin = _origin_column(batch)
    rate = batch.stage_column("sample_rate_ppm")

    out: list[bytes] = [b""] * n
    for g in range(len(uniq)):
        rows = np.nonzero(inverse == g)[0]
        first = int(rows[0])
        parts = [prefix, ',"record_counter":%d,"socket_read_timestamp_ns":%d,"inet_diag_msg_family_name":"%s"',
                 ',"tcp_info_length":%d,"' + SOURCE + '":"%s","' + DESTINATION + '":"%s"',
                 ',"sample_rate_ppm":%d' + (',"closed":true' if closed[first] else '')]
        cols: list[Any] = [counter[rows], batch.read_ns[rows], fam_name[rows], batch.lengths["tcp_info"][rows],
                           src[rows], dst[rows], rate[rows]]
        if origin is not None:
            parts.append("%s")
            cols.append(origin[rows])
        if prefix_text is not None:
            parts.append(',"' + DEST_PREFIX + '":"%s"')
            cols.append(prefix_text[rows])
        for i, f in enumerate(_INT_FIELDS):
            if present[i, first]:
                parts.append(f',"{f.name}":%d')
                cols.append(batch.columns[f.name][rows])
        if cong_present[first]:
            # Kernel cc names are short identifiers; json.dumps guards the odd byte anyway.
            parts.append(',"congestion_algorithm_string":%s,"congestion_algorithm_enum":"%s"')
            cols.append(np.array([json.dumps(x) for x in cong[rows].tolist()], dtype=object))
            cols.append(enum[rows])
        template = "".join(parts) + "}\n"
        lists = [col.tolist() for col in cols]
        for r, values in zip(rows.tolist(), zip(*lists, strict=True), strict=True):
            out[r] = (template % values).encode()
    return out
