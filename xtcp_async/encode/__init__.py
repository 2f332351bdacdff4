"""SocketBatch → payload bytes, in one of the formats; the only package that knows protobuf.

``encode(batch, fmt, max_bytes=..., max_rows=...)`` is the entry point the service uses.
"""

from __future__ import annotations

from collections.abc import Iterator

from xtcp_async import native
from xtcp_async.encode.framing import EncodedRows, Packed, iter_payloads, varint
from xtcp_async.netlink.batch import SocketBatch
from xtcp_async.sinks.base import FORMATS


def encode_rows(batch: SocketBatch, fmt: str, *, path: str = "auto") -> EncodedRows:
    """Every row of ``batch`` in format ``fmt``, framed as it sits inside a payload.

    ``path``: "c" (the compiled core), "numpy", or "auto" (the core where it is built).
    """
    if path == "auto":
        path = native.PATH
    if fmt == "jsonl":
        if path == "c":
            if native.CORE is None:
                raise RuntimeError(f"the compiled encoder is not available: {native.WHY_NOT}")
            from xtcp_async.encode.cjsonl import encode_rows_native as jsonl_native

            return jsonl_native(native.CORE, batch)
        from xtcp_async.encode import jsonl

        return EncodedRows.from_list(jsonl.encode_rows(batch))
    if fmt in ("protobuf-list", "protobuf-single"):
        if path == "c":
            if native.CORE is None:
                raise RuntimeError(f"the compiled encoder is not available: {native.WHY_NOT}")
            from xtcp_async.encode.cwire import encode_rows_native

            return encode_rows_native(native.CORE, batch, list_entries=fmt == "protobuf-list")
        from xtcp_async.encode import wire

        return wire.encode_rows(batch, list_entries=fmt == "protobuf-list")
    raise ValueError(f"unknown format {fmt!r} (allowed: {', '.join(FORMATS)})")


def pack_rows(rows: EncodedRows | list[EncodedRows], fmt: str, *, max_bytes: int, max_rows: int) -> Packed:
    """Split encoded rows (one part or several, in order) into payloads for format ``fmt`` within the caps."""
    out = Packed()
    out.payloads = list(iter_payloads_of(rows, fmt, out, max_bytes=max_bytes, max_rows=max_rows))
    return out


def iter_payloads_of(rows: EncodedRows | list[EncodedRows], fmt: str, out: Packed, *, max_bytes: int,
                     max_rows: int) -> Iterator[bytes]:
    """:func:`pack_rows` one payload at a time; records too large for the cap counted in ``out``."""
    return iter_payloads(rows, out, max_bytes=max_bytes, max_rows=max_rows, list_framing=fmt == "protobuf-list",
                         one_row_per_payload=fmt == "protobuf-single")


def encode(batch: SocketBatch, fmt: str, *, max_bytes: int, max_rows: int) -> Packed:
    """``batch`` as payloads of format ``fmt``, each within ``max_bytes`` and ``max_rows``."""
    return pack_rows(encode_rows(batch, fmt), fmt, max_bytes=max_bytes, max_rows=max_rows)


__all__ = ["EncodedRows", "Packed", "encode", "encode_rows", "iter_payloads_of", "pack_rows", "varint"]
