-- Which pods were CPU-throttled between fgm_from and fgm_to, on any node: throttled periods
-- and throttled time over the range (counters: last minus first per container).
WITH per_container AS (
    SELECT node, container_id,
           max(cpu_nr_throttled) - min(cpu_nr_throttled) AS throttled_periods,
           (max(cpu_throttled_usec) - min(cpu_throttled_usec)) / 1e6 AS throttled_seconds
    FROM fgm_metrics
    WHERE dt BETWEEN CAST(getvariable('fgm_from') AS DATE) - 1 AND CAST(getvariable('fgm_to') AS DATE)
      AND timestamp BETWEEN getvariable('fgm_from') AND getvariable('fgm_to')
    GROUP BY node, container_id
)
SELECT c.namespace, c.pod_name, c.container_name, p.node,
       p.throttled_periods, round(p.throttled_seconds, 3) AS throttled_seconds
FROM per_container p
LEFT JOIN fgm_containers c USING (node, container_id)
WHERE p.throttled_periods > 0
ORDER BY p.throttled_seconds DESC, p.node, c.pod_name;
