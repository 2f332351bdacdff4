-- RTT p50/p99 (ms) per location and remote network (/24 for IPv4, /48 for IPv6) over the last hour.
SELECT
    location,
    destination_network,
    count() AS samples,
    uniqExact(inet_diag_msg_socket_destination) AS remotes,
    round(quantile(0.5)(tcp_info_rtt) / 1000, 3) AS rtt_p50_ms,
    round(quantile(0.99)(tcp_info_rtt) / 1000, 3) AS rtt_p99_ms
FROM xtcp.sockets
WHERE event_time >= now() - INTERVAL 1 HOUR
  AND state_name = 'ESTABLISHED' AND tcp_info_rtt > 0
GROUP BY location, destination_network
ORDER BY rtt_p99_ms DESC
LIMIT 100;
