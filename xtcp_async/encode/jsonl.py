"""JSON lines: one object per socket, keys = proto field names, addresses as IP text,
enums by name, fields the kernel did not send left out."""

from __future__ import annotations

import json

from xtcp_async.netlink.batch import SocketBatch

_dumps = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode


def encode_rows(batch: SocketBatch) -> list[bytes]:
    """One newline-terminated JSON object per socket."""
    return [(_dumps(rec) + "\n").encode() for rec in batch.to_records()]
