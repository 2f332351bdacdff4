-- Sockets per TCP state over the last hour, per minute (the average per poll, summed over hosts).
SELECT minute, state_name, round(sum(per_host), 1) AS sockets
FROM
(
    SELECT minute, hostname, state_name, sum(n) / any(polls) AS per_host
    FROM
    (
        SELECT
            toStartOfMinute(event_time) AS minute, hostname, poll_id, state_name, count() AS n,
            uniqExact(poll_id) OVER (PARTITION BY minute, hostname) AS polls
        FROM xtcp.sockets
        WHERE event_time >= now() - INTERVAL 1 HOUR
        GROUP BY minute, hostname, poll_id, state_name
    )
    GROUP BY minute, hostname, state_name
)
GROUP BY minute, state_name
ORDER BY minute, state_name;
