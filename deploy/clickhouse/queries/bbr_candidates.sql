-- Remote clients that would likely gain from BBR over the last hour: not on BBR, min RTT >= 50 ms and >= 1% of bytes retransmitted (loss-limited on a long path).
SELECT
    location,
    inet_diag_msg_socket_destination AS client,
    destination_network,
    any(inet_diag_msg_socket_dest_asn) AS remote_asn,
    any(congestion_algorithm_string) AS congestion_algorithm,
    round(min(tcp_info_min_rtt) / 1000, 3) AS min_rtt_ms,
    sum(bytes_sent) AS total_bytes_sent,
    round(if(total_bytes_sent = 0, 0, sum(bytes_retrans) / total_bytes_sent), 6) AS retransmit_share
FROM
(
    SELECT
        location, hostname, inet_diag_msg_socket_cookie,
        argMax(inet_diag_msg_socket_destination, event_time) AS inet_diag_msg_socket_destination,
        argMax(destination_network, event_time) AS destination_network,
        argMax(inet_diag_msg_socket_dest_asn, event_time) AS inet_diag_msg_socket_dest_asn,
        argMax(congestion_algorithm_string, event_time) AS congestion_algorithm_string,
        argMax(tcp_info_min_rtt, event_time) AS tcp_info_min_rtt,
        argMax(tcp_info_bytes_sent, event_time) AS bytes_sent,
        argMax(tcp_info_bytes_retrans, event_time) AS bytes_retrans
    FROM xtcp.sockets
    WHERE event_time >= now() - INTERVAL 1 HOUR AND state_name = 'ESTABLISHED'
    GROUP BY location, hostname, inet_diag_msg_socket_cookie
)
WHERE NOT startsWith(congestion_algorithm_string, 'bbr') AND tcp_info_min_rtt > 0
GROUP BY location, client, destination_network
HAVING min_rtt_ms >= 50 AND total_bytes_sent > 0 AND retransmit_share >= 0.01
ORDER BY total_bytes_sent DESC
LIMIT 100;
