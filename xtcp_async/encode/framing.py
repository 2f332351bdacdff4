"""Rows → payloads: split by row and byte caps, frame for the format.

Encoders hand over :class:`EncodedRows`: every row's bytes back to back, already framed the
way they sit inside a payload (a protobuf-list row carries its ``row = 10`` tag and length, a
jsonl row its newline). A payload is then one slice of that buffer (plus, for protobuf-list, the
ProtobufList varint in front), so splitting costs nothing per row.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

log = logging.getLogger(__name__)


def varint(value: int) -> bytes:
    """Protobuf base-128 varint of a non-negative integer."""
    out = bytearray()
    while value > 0x7F:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


@dataclass
class EncodedRows:
    """Rows of one format back to back; row i is ``data[offsets[i]:offsets[i+1]]``."""

    data: bytes
    offsets: npt.NDArray[np.int64]

    @property
    def n(self) -> int:
        return len(self.offsets) - 1

    @staticmethod
    def from_list(rows: list[bytes]) -> EncodedRows:
        offsets = np.zeros(len(rows) + 1, dtype=np.int64)
        if rows:
            np.cumsum([len(r) for r in rows], out=offsets[1:])
        return EncodedRows(b"".join(rows), offsets)


    @staticmethod
    def join(parts: list[EncodedRows]) -> EncodedRows:
        """Rows of several parts, in order, as one."""
        if len(parts) == 1:
            return parts[0]
        if not parts:
            return EncodedRows(b"", np.zeros(1, dtype=np.int64))
        offsets = [parts[0].offsets]
        base = int(parts[0].offsets[-1])
        for p in parts[1:]:
            offsets.append(p.offsets[1:] + base)
            base += int(p.offsets[-1])
        return EncodedRows(b"".join(p.data for p in parts), np.concatenate(offsets))


@dataclass
class Packed:
    """Payloads ready for a sink, and what could not be packed."""

    payloads: list[bytes] = field(default_factory=list)
    #: Rows bigger than the byte cap on their own: dropped, never sent truncated.
    too_large: int = 0


def pack(rows: EncodedRows, *, max_bytes: int, max_rows: int, list_framing: bool,
         one_row_per_payload: bool = False) -> Packed:
    """Split ``rows`` into payloads of at most ``max_rows`` rows and ``max_bytes`` bytes.

    ``list_framing`` puts the ClickHouse ProtobufList varint length in front of each payload
    (counted in ``max_bytes``).
    """
    out = Packed()
    offs = rows.offsets
    # A view: a payload's body is copied once, into the payload, not first into a slice.
    data = memoryview(rows.data)
    n = rows.n
    if one_row_per_payload:
        max_rows = 1
    # The outer varint takes at most this many bytes for a body within the cap.
    prefix = len(varint(max_bytes)) if list_framing else 0
    body_cap = max_bytes - prefix
    start = 0
    while start < n:
        limit = int(offs[start]) + body_cap
        # Last row end that still fits: offs[end] <= limit.
        end = int(np.searchsorted(offs, limit, side="right")) - 1
        end = min(end, start + max_rows, n)
        if end <= start:
            out.too_large += 1
            log.warning("record of %d bytes exceeds the payload cap of %d bytes: dropped",
                        int(offs[start + 1] - offs[start]), max_bytes)
            start += 1
            continue
        body = data[int(offs[start]):int(offs[end])]
        out.payloads.append(varint(len(body)) + body if list_framing else body.tobytes())
        start = end
    return out
