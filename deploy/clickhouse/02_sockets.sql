-- One row per socket per poll: what the queries, the dashboard and the alerts read.
--
-- Parameter: ttl_days (rows older than this are dropped, whole daily partitions at a time).
-- Integer counters keep the record's field names (kernel units: rtt in µs, rates in bytes/s);
-- the converted columns are event_time (from timestamp_ns), state_name, and the addresses, which
-- are IPv6-typed with IPv4 stored IPv4-mapped (::ffff:a.b.c.d), so one column sorts and filters both.
CREATE TABLE IF NOT EXISTS xtcp.sockets
(
    event_time                            DateTime64(9, 'UTC') CODEC(DoubleDelta, ZSTD(1)),
    hostname                              LowCardinality(String),
    location                              LowCardinality(String),
    label                                 LowCardinality(String),
    tag                                   LowCardinality(String),
    netns                                 LowCardinality(String),
    daemon_version                        LowCardinality(String),
    poll_id                               UInt64,
    record_counter                        UInt64,
    poll_dump_interrupted                 Bool,
    inet_diag_msg_family_name             LowCardinality(String),
    inet_diag_msg_state                   UInt8,
    state_name                            LowCardinality(String),
    inet_diag_msg_socket_source           IPv6,
    inet_diag_msg_socket_source_port      UInt16,
    inet_diag_msg_socket_destination      IPv6,
    inet_diag_msg_socket_destination_port UInt16,
    -- The remote's /24 (IPv4) or /48 (IPv6), computed when read: grouping key of the network queries.
    destination_network                   String ALIAS if(
        IPv6CIDRToRange(inet_diag_msg_socket_destination, 96).1 = toIPv6('::ffff:0.0.0.0'),
        concat(replaceOne(toString(IPv6CIDRToRange(inet_diag_msg_socket_destination, 120).1), '::ffff:', ''), '/24'),
        concat(toString(IPv6CIDRToRange(inet_diag_msg_socket_destination, 48).1), '/48')),
    inet_diag_msg_socket_interface        UInt32,
    inet_diag_msg_socket_cookie           UInt64,
    inet_diag_msg_socket_dest_asn         UInt32,
    inet_diag_msg_socket_next_hop_asn     UInt32,
    inet_diag_msg_rqueue                  UInt32,
    inet_diag_msg_wqueue                  UInt32,
    inet_diag_msg_uid                     UInt32,
    inet_diag_msg_inode                   UInt32,
    congestion_algorithm_string           LowCardinality(String),
    tcp_info_length                       UInt16,
    tcp_info_ca_state                     UInt8,
    tcp_info_retransmits                  UInt8,
    tcp_info_rto                          UInt32,
    tcp_info_snd_mss                      UInt32,
    tcp_info_rcv_mss                      UInt32,
    tcp_info_unacked                      UInt32,
    tcp_info_sacked                       UInt32,
    tcp_info_lost                         UInt32,
    tcp_info_retrans                      UInt32,
    tcp_info_rtt                          UInt32,
    tcp_info_rtt_var                      UInt32,
    tcp_info_min_rtt                      UInt32,
    tcp_info_rcv_rtt                      UInt32,
    tcp_info_snd_ssthresh                 UInt32,
    tcp_info_snd_cwnd                     UInt32,
    tcp_info_reordering                   UInt32,
    tcp_info_total_retrans                UInt32,
    tcp_info_pacing_rate                  UInt64,
    tcp_info_delivery_rate                UInt64,
    tcp_info_bytes_acked                  UInt64,
    tcp_info_bytes_received               UInt64,
    tcp_info_bytes_sent                   UInt64,
    tcp_info_bytes_retrans                UInt64,
    tcp_info_segs_out                     UInt32,
    tcp_info_segs_in                      UInt32,
    tcp_info_data_segs_out                UInt32,
    tcp_info_data_segs_in                 UInt32,
    tcp_info_busy_time                    UInt64,
    tcp_info_rwnd_limited                 UInt64,
    tcp_info_sndbuf_limited               UInt64,
    tcp_info_delivered                    UInt32,
    tcp_info_delivered_ce                 UInt32,
    tcp_info_dsack_dups                   UInt32,
    tcp_info_reord_seen                   UInt32,
    tcp_info_snd_wnd                      UInt32,
    tcp_info_rcv_wnd                      UInt32,
    tcp_info_total_rto                    UInt32
)
ENGINE = MergeTree
PARTITION BY toDate(event_time)
-- "by location, then host, over time": the dashboard's filters are prefixes of this key.
ORDER BY (location, hostname, event_time)
TTL toDateTime(event_time) + INTERVAL {ttl_days:UInt32} DAY
SETTINGS ttl_only_drop_parts = 1;
