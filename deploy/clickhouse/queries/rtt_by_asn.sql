-- RTT p50/p99 (ms) per location and remote ASN over the last hour (ASN 0: not looked up yet).
SELECT
    location,
    inet_diag_msg_socket_dest_asn AS remote_asn,
    count() AS samples,
    uniqExact(destination_network) AS networks,
    round(quantile(0.5)(tcp_info_rtt) / 1000, 3) AS rtt_p50_ms,
    round(quantile(0.99)(tcp_info_rtt) / 1000, 3) AS rtt_p99_ms
FROM xtcp.sockets
WHERE event_time >= now() - INTERVAL 1 HOUR
  AND state_name = 'ESTABLISHED' AND tcp_info_rtt > 0
GROUP BY location, remote_asn
ORDER BY rtt_p99_ms DESC
LIMIT 100;
