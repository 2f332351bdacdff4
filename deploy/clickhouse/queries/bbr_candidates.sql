-- Remote clients that would likely gain from BBR over the last hour: not on BBR, min RTT >= 50 ms and >= 1% of bytes retransmitted (loss-limited on a long path).
SELECT
    location,
    client,
    network AS destination_network,
    any(asn) AS remote_asn,
    any(algorithm) AS congestion_algorithm,
    round(min(min_rtt_us) / 1000, 3) AS min_rtt_ms,
    sum(bytes_sent) AS total_bytes_sent,
    round(if(total_bytes_sent = 0, 0, sum(bytes_retrans) / total_bytes_sent), 6) AS retransmit_share
FROM
(
    SELECT
        location, hostname, inet_diag_msg_socket_cookie,
        argMax(inet_diag_msg_socket_destination, event_time) AS client,
        argMax(destination_network, event_time) AS network,
        argMax(inet_diag_msg_socket_dest_asn, event_time) AS asn,
        argMax(congestion_algorithm_string, event_time) AS algorithm,
        argMax(tcp_info_min_rtt, event_time) AS min_rtt_us,
        argMax(tcp_info_bytes_sent, event_time) AS bytes_sent,
        argMax(tcp_info_bytes_retrans, event_time) AS bytes_retrans
    FROM xtcp.sockets
    WHERE event_time >= now() - INTERVAL 1 HOUR AND state_name = 'ESTABLISHED'
    GROUP BY location, hostname, inet_diag_msg_socket_cookie
)
WHERE NOT startsWith(algorithm, 'bbr') AND min_rtt_us > 0
GROUP BY location, client, network
HAVING min_rtt_ms >= 50 AND total_bytes_sent > 0 AND retransmit_share >= 0.01
ORDER BY total_bytes_sent DESC
LIMIT 100;
