-- For every OOM kill between fgm_from and fgm_to, on any node: the container's working set
-- and limit in 10-second steps over the 5 minutes before the kill.
WITH kills AS (
    SELECT node, container_id, namespace, pod, container, "time" AS killed_at
    FROM fgm_events
    WHERE kind = 'oom_killed' AND "time" BETWEEN getvariable('fgm_from') AND getvariable('fgm_to')
)
SELECT k.node, k.namespace, k.pod, k.container, k.killed_at::VARCHAR AS killed_at,
       time_bucket(INTERVAL 10 SECOND, m.timestamp)::VARCHAR AS t,
       max(m.memory_working_set_bytes) AS working_set_bytes,
       max(m.memory_limit_bytes) AS limit_bytes
FROM kills k
JOIN fgm_metrics m
  ON m.node = k.node AND m.container_id = k.container_id
 AND m.dt BETWEEN CAST(k.killed_at AS DATE) - 1 AND CAST(k.killed_at AS DATE)
 AND m.timestamp BETWEEN k.killed_at - INTERVAL 5 MINUTE AND k.killed_at
GROUP BY ALL
ORDER BY killed_at, k.node, t;
