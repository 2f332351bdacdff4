-- Share of bytes sent that were retransmissions, per location, over sockets seen in the last hour.
-- The kernel's counters are totals since each socket opened, so each socket counts once (its last poll).
SELECT
    location,
    count() AS sockets,
    sum(bytes_sent) AS bytes_sent,
    sum(bytes_retrans) AS bytes_retrans,
    round(if(bytes_sent = 0, 0, bytes_retrans / bytes_sent), 6) AS retransmit_share
FROM
(
    SELECT
        location, hostname, inet_diag_msg_socket_cookie,
        argMax(tcp_info_bytes_sent, event_time) AS bytes_sent,
        argMax(tcp_info_bytes_retrans, event_time) AS bytes_retrans
    FROM xtcp.sockets
    WHERE event_time >= now() - INTERVAL 1 HOUR AND state_name != 'LISTEN'
    GROUP BY location, hostname, inet_diag_msg_socket_cookie
)
GROUP BY location
ORDER BY retransmit_share DESC;
