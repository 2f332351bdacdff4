-- Bytes sent and acknowledged per congestion control algorithm over the last hour (each socket once, its last poll).
SELECT
    if(congestion_algorithm = '', '(none)', congestion_algorithm) AS congestion_algorithm,
    count() AS sockets,
    sum(bytes_sent) AS total_bytes_sent,
    sum(bytes_acked) AS total_bytes_acked,
    round(if(total_bytes_sent = 0, 0, sum(bytes_retrans) / total_bytes_sent), 6) AS retransmit_share
FROM
(
    SELECT
        hostname, inet_diag_msg_socket_cookie,
        argMax(congestion_algorithm_string, event_time) AS congestion_algorithm,
        argMax(tcp_info_bytes_sent, event_time) AS bytes_sent,
        argMax(tcp_info_bytes_acked, event_time) AS bytes_acked,
        argMax(tcp_info_bytes_retrans, event_time) AS bytes_retrans
    FROM xtcp.sockets
    WHERE event_time >= now() - INTERVAL 1 HOUR AND state_name != 'LISTEN'
    GROUP BY hostname, inet_diag_msg_socket_cookie
)
GROUP BY congestion_algorithm
ORDER BY total_bytes_sent DESC;
