"""SocketBatch: the sockets of one poll (or part of one), held as columns.

Why columns: per-socket Python objects cost 10-20 µs each, seconds per poll at 120k sockets.
One numpy array per field lets the decoder and the encoders work on whole columns.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import numpy.typing as npt

from xtcp_async.netlink import constants as c
from xtcp_async.netlink.fields import (
    CONGESTION_ENUM,
    CONGESTION_ENUM_NAMES,
    FIELD_BY_NAME,
    FIELDS,
    GROUP_BY_ATTR,
    KERNEL_INT_FIELDS,
    STAGE_DEFAULTS,
    Field,
)
from xtcp_async.netlink.origin import NO_ORIGIN, NetnsOrigin

U8Array = npt.NDArray[np.uint8]
IntArray = npt.NDArray[np.integer[Any]]
BoolArray = npt.NDArray[np.bool_]

SOURCE = "inet_diag_msg_socket_source"
DESTINATION = "inet_diag_msg_socket_destination"
#: The remote address cut to its prefix (enrichment, issue 12); a column only when --prefix-len is on.
DEST_PREFIX = "inet_diag_msg_socket_dest_prefix"


@dataclass(frozen=True)
class PollMeta:
    """What every record of one poll shares (stamped on by the service, not the decoder)."""

    poll_id: int = 0
    timestamp_ns: int = 0
    hostname: str = ""
    location: str = ""
    label: str = ""
    tag: str = ""
    daemon_version: str = ""
    schema_version: int = 1
    dump_interrupted: bool = False
    #: record_counter of this batch's first row (xtcp2 counts records since start-up).
    record_counter_start: int = 0


@dataclass
class SocketBatch:
    """Columns of ``n`` sockets.

    ``columns`` maps field name → array of length ``n`` (addresses: ``(n, 16)`` uint8).
    ``lengths`` maps group name → payload length per row, 0 where the kernel sent no such
    attribute; a field is present in a row when its group's length covers it (a 232-byte
    tcp_info has no ``tcp_info_rcv_wnd``). ``congestion`` holds the cc names, ``read_ns`` the
    time each socket's bytes were read.
    """

    n: int
    columns: dict[str, IntArray]
    lengths: dict[str, IntArray]
    congestion: npt.NDArray[np.bytes_]
    read_ns: npt.NDArray[np.int64]
    meta: PollMeta = field(default_factory=PollMeta)
    #: issue 10: per row, an index into ``origins`` (the row's namespace, container, pod);
    #: None when rows carry no origin (``--netns self``).
    origin_codes: npt.NDArray[np.intp] | None = None
    origins: tuple[NetnsOrigin, ...] = ()

    def present(self, f: Field) -> BoolArray:
        """Which rows carry field ``f``."""
        if f.group == "meta":
            return np.ones(self.n, dtype=bool)
        if f.group == "inet_diag_msg":
            return np.ones(self.n, dtype=bool)
        if f.group == "stage":
            return np.asarray(self.stage_column(f.name) != 0)
        lens = self.lengths.get(f.group)
        if lens is None:
            return np.zeros(self.n, dtype=bool)
        if f.group == "congestion":
            return lens > 0
        return lens >= f.end

    def stage_column(self, name: str) -> IntArray:
        """A column the column stages add (sample_rate_ppm, closed), or its default in every row."""
        col = self.columns.get(name)
        if col is None:
            return np.full(self.n, STAGE_DEFAULTS[name], dtype=np.uint32)
        return col

    def with_meta(self, meta: PollMeta) -> SocketBatch:
        return replace(self, meta=meta)

    def with_origins(self, codes: npt.NDArray[np.intp], origins: tuple[NetnsOrigin, ...]) -> SocketBatch:
        """This batch with each row's origin: ``origins[codes[i]]`` for row ``i``."""
        return replace(self, origin_codes=codes, origins=origins)

    def slice(self, start: int, stop: int) -> SocketBatch:
        """Rows ``start:stop`` (views, no copy); record_counter follows the rows."""
        stop = min(stop, self.n)
        meta = replace(self.meta, record_counter_start=self.meta.record_counter_start + start)
        return SocketBatch(
            n=max(0, stop - start),
            columns={k: v[start:stop] for k, v in self.columns.items()},
            lengths={k: v[start:stop] for k, v in self.lengths.items()},
            congestion=self.congestion[start:stop],
            read_ns=self.read_ns[start:stop],
            meta=meta,
            origin_codes=None if self.origin_codes is None else self.origin_codes[start:stop],
            origins=self.origins,
        )

    def row_origins(self) -> list[NetnsOrigin]:
        """The origin of each row (NO_ORIGIN where none was stamped)."""
        if self.origin_codes is None:
            return [NO_ORIGIN] * self.n
        table = self.origins
        return [table[i] for i in self.origin_codes.tolist()]

    @staticmethod
    def concat(batches: list[SocketBatch]) -> SocketBatch:
        """One batch of all rows (meta of the first)."""
        if len(batches) == 1:
            return batches[0]
        if not batches:
            return empty_batch()
        keys = batches[0].columns.keys()
        return SocketBatch(
            n=sum(b.n for b in batches),
            columns={k: np.concatenate([b.columns[k] for b in batches]) for k in keys},
            lengths={k: np.concatenate([b.lengths[k] for b in batches]) for k in batches[0].lengths},
            congestion=np.concatenate([b.congestion for b in batches]),
            read_ns=np.concatenate([b.read_ns for b in batches]),
            meta=batches[0].meta,
            **_concat_origins(batches),
        )

    def congestion_names(self) -> list[str]:
        """The cc name of each row ('' where absent)."""
        return [s.decode("ascii", "replace") for s in self.congestion.tolist()]

    def congestion_enums(self) -> npt.NDArray[np.uint32]:
        """xtcp2's CongestionAlgorithm number per row (0 where unknown or absent)."""
        uniq, inverse = np.unique(self.congestion, return_inverse=True)
        table = np.array([CONGESTION_ENUM.get(u.decode("ascii", "replace"), 0) for u in uniq.tolist()],
                         dtype=np.uint32)
        return table[inverse.reshape(-1)] if self.n else np.zeros(0, dtype=np.uint32)

    def addresses_text(self, name: str) -> list[str]:
        """Source or destination addresses as text, as ss prints them (inet_ntop: IPv4 dotted,
        v4-mapped IPv6 as ::ffff:a.b.c.d). Formatted once per distinct address."""
        if not self.n:
            return []
        fam = self.columns["inet_diag_msg_family"].astype(np.uint64)
        raw = np.ascontiguousarray(self.columns[name])
        # Key = family + 16 address bytes, so one distinct text per (family, address).
        keyed = np.concatenate([raw, fam.astype(np.uint8)[:, None]], axis=1)
        uniq, inverse = np.unique(keyed.view(f"V{keyed.shape[1]}").reshape(-1), return_inverse=True)
        texts = []
        for u in uniq.tolist():
            b = bytes(u)
            if b[16] == c.AF_INET:
                texts.append(socket.inet_ntop(socket.AF_INET, b[:4]))
            else:
                texts.append(socket.inet_ntop(socket.AF_INET6, b[:16]))
        table = np.array(texts, dtype=object)
        out: list[str] = table[inverse.reshape(-1)].tolist()
        return out

    def to_records(self) -> list[dict[str, Any]]:
        """One dict per socket keyed by proto field name; absent fields omitted.

        Addresses are IP text and the congestion enum its name: the JSON form. This is the
        reference view used by tests and the jsonl encoder; it is per-row Python, not fast.
        """
        rows: list[dict[str, Any]] = [{} for _ in range(self.n)]
        if not self.n:
            return rows
        m = self.meta
        per_batch: dict[str, Any] = {
            "schema_version": m.schema_version, "daemon_version": m.daemon_version,
            "timestamp_ns": m.timestamp_ns, "hostname": m.hostname, "location": m.location,
            "label": m.label, "tag": m.tag, "poll_id": m.poll_id,
            "poll_dump_interrupted": m.dump_interrupted,
        }
        src = self.addresses_text(SOURCE)
        dst = self.addresses_text(DESTINATION)
        cong = self.congestion_names()
        enums = self.congestion_enums()
        fam = self.columns["inet_diag_msg_family"].tolist()
        read_ns = self.read_ns.tolist()
        ti_len = self.lengths["tcp_info"].tolist()
        columns = [(f.name, self.columns[f.name].tolist(), self.present(f).tolist())
                   for f in FIELDS if f.name in self.columns and f.proto_type != "bytes" and f.group != "stage"]
        cong_present = (self.lengths["congestion"] > 0).tolist()
        origins = self.row_origins()
        prefix = self.addresses_text(DEST_PREFIX) if DEST_PREFIX in self.columns else None
        rate = self.stage_column("sample_rate_ppm").tolist()
        closed = self.stage_column("closed").tolist()
        for i, row in enumerate(rows):
            row.update(per_batch)
            row.update(origins[i].values())
            row["record_counter"] = m.record_counter_start + i
            row["socket_read_timestamp_ns"] = read_ns[i]
            row["inet_diag_msg_family_name"] = c.FAMILY_NAMES.get(fam[i], str(fam[i]))
            row["tcp_info_length"] = ti_len[i]
            row[SOURCE] = src[i]
            row[DESTINATION] = dst[i]
            if prefix is not None:
                row[DEST_PREFIX] = prefix[i]
            for name, values, present in columns:
                if present[i]:
                    row[name] = values[i]
            row["sample_rate_ppm"] = rate[i]
            if closed[i]:
                row["closed"] = True
            if cong_present[i]:
                row["congestion_algorithm_string"] = cong[i]
                row["congestion_algorithm_enum"] = CONGESTION_ENUM_NAMES[int(enums[i])]
        return rows


def _concat_origins(batches: list[SocketBatch]) -> dict[str, Any]:
    """origin_codes/origins of the rows of ``batches`` joined: one merged table, codes remapped."""
    if all(b.origin_codes is None for b in batches):
        return {}
    table: dict[NetnsOrigin, int] = {}
    parts = []
    for b in batches:
        own = b.origins if b.origin_codes is not None else (NO_ORIGIN,)
        remap = np.array([table.setdefault(o, len(table)) for o in own], dtype=np.intp)
        codes = b.origin_codes if b.origin_codes is not None else np.zeros(b.n, dtype=np.intp)
        parts.append(remap[codes])
    return {"origin_codes": np.concatenate(parts), "origins": tuple(table)}


def empty_batch() -> SocketBatch:
    """A batch of no sockets with every column present (the decoders' keys, from the field table)."""
    columns: dict[str, IntArray] = {f.name: np.zeros(0, dtype=field_dtype(f)) for f in KERNEL_INT_FIELDS}
    kernel_groups = {"inet_diag_msg", *(g.name for g in GROUP_BY_ATTR.values())}
    for f in FIELDS:
        if f.group in kernel_groups and f.proto_type == "bytes" and f.size > 0:
            columns[f.name] = np.zeros((0, f.size), dtype=np.uint8)
    lengths: dict[str, IntArray] = {g.name: np.zeros(0, dtype=np.int32) for g in GROUP_BY_ATTR.values()}
    lengths["inet_diag_msg"] = np.zeros(0, dtype=np.int32)
    return SocketBatch(0, columns, lengths, np.zeros(0, dtype="S16"), np.zeros(0, dtype=np.int64))


def field_dtype(f: Field) -> type[np.unsignedinteger[Any]]:
    """The numpy type of an integer field's column."""
    return np.uint64 if f.proto_type in ("uint64", "int64") or f.size == 8 else np.uint32


assert FIELD_BY_NAME[SOURCE].size == 16
