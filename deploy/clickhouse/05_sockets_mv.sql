-- Parsed rows → xtcp.sockets: event time from timestamp_ns, addresses to IPv6 (IPv4 mapped).
-- The record carries addresses as 16 bytes with IPv4 in the first 4 (inet_diag's layout), so an
-- inet row is mapped to ::ffff:a.b.c.d here; an inet6 row is its 16 bytes as they are.
CREATE MATERIALIZED VIEW IF NOT EXISTS xtcp.sockets_mv TO xtcp.sockets AS
SELECT
    fromUnixTimestamp64Nano(timestamp_ns, 'UTC') AS event_time,
    hostname, location, label, tag, netns, daemon_version, poll_id, record_counter, poll_dump_interrupted,
    inet_diag_msg_family_name,
    inet_diag_msg_state,
    transform(inet_diag_msg_state, [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12],
              ['ESTABLISHED', 'SYN_SENT', 'SYN_RECV', 'FIN_WAIT1', 'FIN_WAIT2', 'TIME_WAIT', 'CLOSE',
               'CLOSE_WAIT', 'LAST_ACK', 'LISTEN', 'CLOSING', 'NEW_SYN_RECV'], 'UNKNOWN') AS state_name,
    toIPv6(IPv6NumToString(toFixedString(if(inet_diag_msg_family = 2,
        concat(unhex('00000000000000000000FFFF'), substring(inet_diag_msg_socket_source, 1, 4)),
        inet_diag_msg_socket_source), 16))) AS inet_diag_msg_socket_source,
    inet_diag_msg_socket_source_port,
    toIPv6(IPv6NumToString(toFixedString(if(inet_diag_msg_family = 2,
        concat(unhex('00000000000000000000FFFF'), substring(inet_diag_msg_socket_destination, 1, 4)),
        inet_diag_msg_socket_destination), 16))) AS inet_diag_msg_socket_destination,
    inet_diag_msg_socket_destination_port,
    inet_diag_msg_socket_interface, inet_diag_msg_socket_cookie,
    inet_diag_msg_socket_dest_asn, inet_diag_msg_socket_next_hop_asn,
    inet_diag_msg_rqueue, inet_diag_msg_wqueue, inet_diag_msg_uid, inet_diag_msg_inode,
    congestion_algorithm_string,
    tcp_info_length, tcp_info_ca_state, tcp_info_retransmits, tcp_info_rto, tcp_info_snd_mss, tcp_info_rcv_mss,
    tcp_info_unacked, tcp_info_sacked, tcp_info_lost, tcp_info_retrans, tcp_info_rtt, tcp_info_rtt_var,
    tcp_info_min_rtt, tcp_info_rcv_rtt, tcp_info_snd_ssthresh, tcp_info_snd_cwnd, tcp_info_reordering,
    tcp_info_total_retrans, tcp_info_pacing_rate, tcp_info_delivery_rate, tcp_info_bytes_acked,
    tcp_info_bytes_received, tcp_info_bytes_sent, tcp_info_bytes_retrans, tcp_info_segs_out, tcp_info_segs_in,
    tcp_info_data_segs_out, tcp_info_data_segs_in, tcp_info_busy_time, tcp_info_rwnd_limited,
    tcp_info_sndbuf_limited, tcp_info_delivered, tcp_info_delivered_ce, tcp_info_dsack_dups, tcp_info_reord_seen,
    tcp_info_snd_wnd, tcp_info_rcv_wnd, tcp_info_total_rto
FROM xtcp.sockets_queue
WHERE length(_error) = 0;
