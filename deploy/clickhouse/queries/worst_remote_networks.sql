-- The 20 remote networks with the highest p99 RTT over the last hour, with their retransmit share.
SELECT
    destination_network,
    any(inet_diag_msg_socket_dest_asn) AS remote_asn,
    uniqExact(inet_diag_msg_socket_cookie) AS sockets,
    round(quantile(0.99)(tcp_info_rtt) / 1000, 3) AS rtt_p99_ms,
    round(if(sum(tcp_info_bytes_sent) = 0, 0, sum(tcp_info_bytes_retrans) / sum(tcp_info_bytes_sent)), 6)
        AS retransmit_share
FROM xtcp.sockets
WHERE event_time >= now() - INTERVAL 1 HOUR
  AND state_name = 'ESTABLISHED' AND tcp_info_rtt > 0
GROUP BY destination_network
ORDER BY rtt_p99_ms DESC, retransmit_share DESC
LIMIT 20;
