"""Protobuf wire bytes for a SocketBatch.

For now this delegates to the reference encoder; the columnar numpy encoder (issue 5) replaces
the body of :func:`encode_rows` and is tested byte-for-byte-equivalent against it.
"""

from __future__ import annotations

from xtcp_async.encode import reference
from xtcp_async.encode.framing import EncodedRows
from xtcp_async.netlink.batch import SocketBatch


def encode_rows(batch: SocketBatch, *, list_entries: bool) -> EncodedRows:
    """Serialized XtcpFlatRecords; ``list_entries`` frames each as an Envelope ``row``."""
    return EncodedRows.from_list(reference.encode_rows(batch, list_entries=list_entries))
