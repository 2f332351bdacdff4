-- RTT p50/p99 (ms) per location over the last hour, from established sockets that have an RTT sample.
SELECT
    location,
    count() AS samples,
    uniqExact(hostname) AS hosts,
    round(quantile(0.5)(tcp_info_rtt) / 1000, 3) AS rtt_p50_ms,
    round(quantile(0.99)(tcp_info_rtt) / 1000, 3) AS rtt_p99_ms
FROM xtcp.sockets
WHERE event_time >= now() - INTERVAL 1 HOUR
  AND state_name = 'ESTABLISHED' AND tcp_info_rtt > 0
GROUP BY location
ORDER BY rtt_p99_ms DESC;
