"""The single source of truth for every record field.

Each row says where a value comes from (a *group*: the inet_diag_msg header, one netlink
attribute, or the collector's own metadata), at which byte offset and in which integer layout,
and which protobuf field (number, name, type) it maps to. The decoder, the encoders and the
.proto file are all checked against this table by the tests.

Field numbers below 3000 are xtcp2's XtcpFlatRecord (schema_version 1) and must never change;
our own fields use 3000 and up (see proto/xtcp_flat_record.proto for the ranges).
"""

from __future__ import annotations

from dataclasses import dataclass

from xtcp_async.netlink import constants as c


@dataclass(frozen=True)
class Group:
    """Where a set of fields is read from: the inet_diag_msg or one attribute type."""

    name: str
    #: Attribute type (0: the inet_diag_msg header itself, -1: collector metadata).
    attr: int
    #: Largest payload we know how to decode; longer payloads are decoded this far and counted.
    size: int


@dataclass(frozen=True)
class Field:
    """One record field and how to read it from its group's bytes."""

    name: str
    number: int
    #: protobuf scalar type: uint32, uint64, int64, string, bytes, bool or an enum name.
    proto_type: str
    group: str
    offset: int = 0
    #: Width in bytes of the integer read at ``offset`` (0 for non-integers).
    size: int = 0
    #: Big-endian on the wire (ports); everything else is host order (little-endian here).
    big_endian: bool = False
    #: (shift, width) inside the integer for C bitfields.
    bits: tuple[int, int] | None = None

    @property
    def end(self) -> int:
        """The payload length a kernel must send for this field to be present."""
        return self.offset + self.size


MSG = Group("inet_diag_msg", 0, c.INET_DIAG_MSG_LEN)
META = Group("meta", -1, 0)
GROUPS: tuple[Group, ...] = (
    MSG,
    Group("mem_info", c.INET_DIAG_MEMINFO, 16),
    Group("tcp_info", c.INET_DIAG_INFO, 280),
    Group("vegas_info", c.INET_DIAG_VEGASINFO, 16),
    Group("congestion", c.INET_DIAG_CONG, 16),
    Group("tos", c.INET_DIAG_TOS, 1),
    Group("tclass", c.INET_DIAG_TCLASS, 1),
    Group("sk_mem_info", c.INET_DIAG_SKMEMINFO, 36),
    Group("shutdown", c.INET_DIAG_SHUTDOWN, 1),
    Group("dctcp_info", c.INET_DIAG_DCTCPINFO, 16),
    Group("skv6only", c.INET_DIAG_SKV6ONLY, 1),
    Group("mark", c.INET_DIAG_MARK, 4),
    Group("bbr_info", c.INET_DIAG_BBRINFO, 20),
    Group("class_id", c.INET_DIAG_CLASS_ID, 4),
    Group("cgroup", c.INET_DIAG_CGROUP_ID, 8),
    Group("sockopt", c.INET_DIAG_SOCKOPT, 2),
)
GROUP_BY_NAME = {g.name: g for g in GROUPS}
#: Attribute types we decode, by type.
GROUP_BY_ATTR = {g.attr: g for g in GROUPS if g.attr > 0}
#: Attribute types we know and deliberately do not decode (no record field for them).
KNOWN_UNDECODED_ATTRS = frozenset({
    c.INET_DIAG_PROTOCOL, c.INET_DIAG_LOCALS, c.INET_DIAG_PEERS, c.INET_DIAG_PAD,
    c.INET_DIAG_MD5SIG, c.INET_DIAG_ULP_INFO, c.INET_DIAG_SK_BPF_STORAGES,
})


def _u32s(group: str, first_number: int, names: str, start: int = 0) -> list[Field]:
    """Consecutive u32 fields with consecutive field numbers."""
    return [Field(n, first_number + i, "uint32", group, start + 4 * i, 4) for i, n in enumerate(names.split())]


_TI = "tcp_info"


def _ti(name: str, number: int, offset: int, size: int, bits: tuple[int, int] | None = None,
        proto_type: str | None = None) -> Field:
    ptype = proto_type or ("uint64" if size == 8 else "uint32")
    return Field(f"tcp_info_{name}", number, ptype, _TI, offset, size, bits=bits)


FIELDS: tuple[Field, ...] = (
    # --- collector metadata (xtcp2 numbers) ------------------------------------------------
    Field("schema_version", 1, "uint32", "meta"),
    Field("daemon_version", 2, "string", "meta"),
    Field("timestamp_ns", 10, "int64", "meta"),
    Field("hostname", 20, "string", "meta"),
    Field("location", 21, "string", "meta"),
    Field("label", 50, "string", "meta"),
    Field("tag", 51, "string", "meta"),
    Field("record_counter", 60, "uint64", "meta"),
    # --- struct inet_diag_msg (72 bytes) -----------------------------------------------------
    Field("inet_diag_msg_family", 1001, "uint32", "inet_diag_msg", 0, 1),
    Field("inet_diag_msg_state", 1002, "uint32", "inet_diag_msg", 1, 1),
    Field("inet_diag_msg_timer", 1003, "uint32", "inet_diag_msg", 2, 1),
    Field("inet_diag_msg_retrans", 1004, "uint32", "inet_diag_msg", 3, 1),
    Field("inet_diag_msg_socket_source_port", 1005, "uint32", "inet_diag_msg", 4, 2, big_endian=True),
    Field("inet_diag_msg_socket_destination_port", 1006, "uint32", "inet_diag_msg", 6, 2, big_endian=True),
    Field("inet_diag_msg_socket_source", 1007, "bytes", "inet_diag_msg", 8, 16),
    Field("inet_diag_msg_socket_destination", 1008, "bytes", "inet_diag_msg", 24, 16),
    Field("inet_diag_msg_socket_interface", 1009, "uint32", "inet_diag_msg", 40, 4),
    # cookie[0] | cookie[1] << 32 is exactly a little-endian u64 read of both words.
    Field("inet_diag_msg_socket_cookie", 1010, "uint64", "inet_diag_msg", 44, 8),
    Field("inet_diag_msg_expires", 1013, "uint32", "inet_diag_msg", 52, 4),
    Field("inet_diag_msg_rqueue", 1014, "uint32", "inet_diag_msg", 56, 4),
    Field("inet_diag_msg_wqueue", 1015, "uint32", "inet_diag_msg", 60, 4),
    Field("inet_diag_msg_uid", 1016, "uint32", "inet_diag_msg", 64, 4),
    Field("inet_diag_msg_inode", 1017, "uint32", "inet_diag_msg", 68, 4),
    # --- INET_DIAG_MEMINFO ---------------------------------------------------------------------
    *_u32s("mem_info", 1101, "mem_info_rmem mem_info_wmem mem_info_fmem mem_info_tmem"),
    # --- INET_DIAG_INFO: struct tcp_info, decoded by the length the kernel sent ----------------
    _ti("state", 1201, 0, 1),
    _ti("ca_state", 1202, 1, 1),
    _ti("retransmits", 1203, 2, 1),
    _ti("probes", 1204, 3, 1),
    _ti("backoff", 1205, 4, 1),
    _ti("options", 1206, 5, 1),
    # Byte 6 holds two 4-bit fields; GCC on little-endian puts the first declared
    # (tcpi_snd_wscale) in the low nibble. xTCP had these swapped.
    _ti("send_scale", 1207, 6, 1, bits=(0, 4)),
    _ti("rcv_scale", 1208, 6, 1, bits=(4, 4)),
    _ti("delivery_rate_app_limited", 1209, 7, 1, bits=(0, 1)),
    _ti("fast_open_client_failed", 1210, 7, 1, bits=(1, 2)),
    _ti("rto", 1215, 8, 4),
    _ti("ato", 1216, 12, 4),
    _ti("snd_mss", 1217, 16, 4),
    _ti("rcv_mss", 1218, 20, 4),
    _ti("unacked", 1219, 24, 4),
    _ti("sacked", 1220, 28, 4),
    _ti("lost", 1221, 32, 4),
    _ti("retrans", 1222, 36, 4),
    _ti("fackets", 1223, 40, 4),
    _ti("last_data_sent", 1224, 44, 4),
    _ti("last_ack_sent", 1225, 48, 4),
    _ti("last_data_recv", 1226, 52, 4),
    _ti("last_ack_recv", 1227, 56, 4),
    _ti("pmtu", 1228, 60, 4),
    _ti("rcv_ssthresh", 1229, 64, 4),
    _ti("rtt", 1230, 68, 4),
    _ti("rtt_var", 1231, 72, 4),
    _ti("snd_ssthresh", 1232, 76, 4),
    _ti("snd_cwnd", 1233, 80, 4),
    _ti("adv_mss", 1234, 84, 4),
    _ti("reordering", 1235, 88, 4),
    _ti("rcv_rtt", 1236, 92, 4),
    _ti("rcv_space", 1237, 96, 4),
    _ti("total_retrans", 1238, 100, 4),
    _ti("pacing_rate", 1239, 104, 8),
    _ti("max_pacing_rate", 1240, 112, 8),
    _ti("bytes_acked", 1241, 120, 8),
    _ti("bytes_received", 1242, 128, 8),
    _ti("segs_out", 1243, 136, 4),
    _ti("segs_in", 1244, 140, 4),
    _ti("not_sent_bytes", 1245, 144, 4),
    _ti("min_rtt", 1246, 148, 4),
    _ti("data_segs_in", 1247, 152, 4),
    _ti("data_segs_out", 1248, 156, 4),
    _ti("delivery_rate", 1249, 160, 8),
    _ti("busy_time", 1250, 168, 8),
    _ti("rwnd_limited", 1251, 176, 8),
    _ti("sndbuf_limited", 1252, 184, 8),
    _ti("delivered", 1253, 192, 4),
    _ti("delivered_ce", 1254, 196, 4),
    _ti("bytes_sent", 1255, 200, 8),
    _ti("bytes_retrans", 1256, 208, 8),
    _ti("dsack_dups", 1257, 216, 4),
    _ti("reord_seen", 1258, 220, 4),
    _ti("rcv_ooopack", 1259, 224, 4),
    _ti("snd_wnd", 1260, 228, 4),
    _ti("rcv_wnd", 1261, 232, 4),
    _ti("rehash", 1262, 236, 4),
    _ti("total_rto", 1263, 240, 2),
    _ti("total_rto_recoveries", 1264, 242, 2),
    _ti("total_rto_time", 1265, 244, 4),
    # ≈6.18: AccECN counters (280-byte tcp_info). Not in xtcp2: our range 3100-3199.
    _ti("received_ce", 3101, 248, 4),
    _ti("delivered_e1_bytes", 3102, 252, 4),
    _ti("delivered_e0_bytes", 3103, 256, 4),
    _ti("delivered_ce_bytes", 3104, 260, 4),
    _ti("received_e1_bytes", 3105, 264, 4),
    _ti("received_e0_bytes", 3106, 268, 4),
    _ti("received_ce_bytes", 3107, 272, 4),
    # The last word is `u16 accecn_fail_mode; u16 accecn_opt_seen` in 6.18's uapi and became a
    # bitfield (ecn_mode:2, accecn_opt_seen:2, accecn_fail_mode:4, options2:24) in 7.0's. The
    # size did not change, so the payload cannot tell them apart: we decode the 6.18 layout
    # (this project's kernel) and also ship the raw word for consumers on newer kernels.
    _ti("accecn_fail_mode", 3108, 276, 2),
    _ti("accecn_opt_seen", 3109, 278, 2),
    _ti("accecn_word", 3110, 276, 4),
    # --- INET_DIAG_CONG ---------------------------------------------------------------------
    Field("congestion_algorithm_string", 1300, "string", "congestion", 0, 0),
    Field("congestion_algorithm_enum", 1301, "CongestionAlgorithm", "congestion", 0, 0),
    Field("type_of_service", 1401, "uint32", "tos", 0, 1),
    Field("traffic_class", 1402, "uint32", "tclass", 0, 1),
    # --- INET_DIAG_SKMEMINFO: u32[SK_MEMINFO_VARS]; older kernels send fewer ---------------------
    *_u32s("sk_mem_info", 1501, "sk_mem_info_rmem_alloc sk_mem_info_rcv_buf sk_mem_info_wmem_alloc "
           "sk_mem_info_snd_buf sk_mem_info_fwd_alloc sk_mem_info_wmem_queued sk_mem_info_optmem "
           "sk_mem_info_backlog sk_mem_info_drops"),
    Field("shutdown_state", 1600, "uint32", "shutdown", 0, 1),
    *_u32s("vegas_info", 1701, "vegas_info_enabled vegas_info_rtt_cnt vegas_info_rtt vegas_info_min_rtt"),
    Field("dctcp_info_enabled", 1801, "uint32", "dctcp_info", 0, 2),
    Field("dctcp_info_ce_state", 1802, "uint32", "dctcp_info", 2, 2),
    *_u32s("dctcp_info", 1803, "dctcp_info_alpha dctcp_info_ab_ecn dctcp_info_ab_tot", start=4),
    *_u32s("bbr_info", 1901, "bbr_info_bw_lo bbr_info_bw_hi bbr_info_min_rtt bbr_info_pacing_gain "
           "bbr_info_cwnd_gain"),
    Field("class_id", 2001, "uint32", "class_id", 0, 4),
    Field("sock_opt", 2002, "uint32", "sockopt", 0, 2),
    Field("c_group", 2103, "uint64", "cgroup", 0, 8),
    # --- ours: collector metadata 3000-3099 ----------------------------------------------------
    Field("poll_id", 3001, "uint64", "meta"),
    Field("socket_read_timestamp_ns", 3002, "int64", "meta"),
    Field("inet_diag_msg_family_name", 3003, "string", "meta"),
    Field("tcp_info_length", 3004, "uint32", "meta"),
    Field("poll_dump_interrupted", 3005, "bool", "meta"),
    # --- ours: attributes xtcp2 lacks, 3200-3299 ------------------------------------------------
    Field("socket_mark", 3201, "uint32", "mark", 0, 4),
    Field("skv6only", 3202, "uint32", "skv6only", 0, 1),
    # --- ours: set by the column stages (xtcp_async/stages/), 3350-3399 ---------------------------
    Field("sample_rate_ppm", 3350, "uint32", "stage"),
    Field("closed", 3351, "bool", "stage"),
    # --- enrichment (issue 12): filled by column stages, not read from the kernel --------------
    # Group "asn" / "prefix": a batch carries lengths[group] only when the stage ran (ASN_LEN,
    # PREFIX_LEN per row), so without --asn-db / --prefix-len these fields are simply absent.
    Field("inet_diag_msg_socket_dest_asn", 1011, "uint64", "asn", 0, 8),  # xtcp2's, never filled there
    Field("inet_diag_msg_socket_dest_prefix", 3401, "bytes", "prefix", 0, 16),
    Field("inet_diag_msg_socket_dest_prefix_length", 3402, "uint32", "prefix", 16, 1),
)
#: Groups filled by enrichment stages (xtcp_async.enrich), and the row length that marks them present.
ENRICH_GROUPS = {"asn": 8, "prefix": 17}

FIELD_BY_NAME = {f.name: f for f in FIELDS}
#: Integer fields decoded straight from kernel bytes, in table order.
KERNEL_INT_FIELDS = tuple(f for f in FIELDS if f.group != "meta" and f.group not in ENRICH_GROUPS
                          and f.size > 0 and f.proto_type != "bytes")
#: Per-row fields the column stages add; a batch without the column has the default.
STAGE_DEFAULTS = {"sample_rate_ppm": 1_000_000, "closed": 0}

#: xtcp2's CongestionAlgorithm enum, keyed by the kernel's congestion control name.
CONGESTION_ENUM = {"cubic": 1, "dctcp": 2, "vegas": 3, "prague": 4, "bbr": 5, "bbr2": 6, "bbr3": 7}
CONGESTION_ENUM_NAMES = ("UNSPECIFIED", "CUBIC", "DCTCP", "VEGAS", "PRAGUE", "BBR1", "BBR2", "BBR3")
