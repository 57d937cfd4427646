-- Top 10 containers by p99 CPU (cores) between fgm_from and fgm_to, across every node, from
-- the raw counters (fgm_metrics): cpu_usage_usec is a counter, the rate is taken between
-- consecutive samples of a container in the range. The way to derive any rate yourself;
-- top_cpu_p99.sql answers the same question much faster from compaction's rates and summaries.
WITH samples AS (
    SELECT node, container_id,
           (cpu_usage_usec - lag(cpu_usage_usec) OVER w) * 1000.0
             / nullif(epoch_ms(timestamp) - epoch_ms(lag(timestamp) OVER w), 0) / 1e6 AS cores
    FROM fgm_metrics
    WHERE dt BETWEEN CAST(getvariable('fgm_from') AS DATE) - 1 AND CAST(getvariable('fgm_to') AS DATE)
      AND timestamp BETWEEN getvariable('fgm_from') AND getvariable('fgm_to')
    WINDOW w AS (PARTITION BY node, container_id ORDER BY timestamp)
)
SELECT s.node, s.container_id, c.namespace, c.pod_name, c.container_name,
       round(quantile_cont(s.cores, 0.99), 4) AS p99_cores,
       round(max(s.cores), 4) AS max_cores,
       count(*) AS samples
FROM samples s
LEFT JOIN fgm_containers c USING (node, container_id)
WHERE s.cores IS NOT NULL AND s.cores >= 0
GROUP BY ALL
ORDER BY p99_cores DESC, s.node, s.container_id
LIMIT 10;
