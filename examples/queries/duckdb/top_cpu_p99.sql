-- Top 10 containers by p99 CPU (cores) between fgm_from and fgm_to, across every node.
-- A range of whole hours (fgm_from on the hour, fgm_to on the hour or at hh:59:59) is answered
-- from the hourly histograms (fgm_percentiles: p99 within 1 % of the exact value, a few rows
-- per container and hour); any other range from the rates (fgm_rates: the exact p99 of the
-- samples whose interval ends in the range). Either way every sample counts once, compacted
-- or not.
WITH by_rates AS (
    SELECT node, container_id, quantile_cont(cpu_cores, 0.99) AS p99, max(cpu_cores) AS max,
           count(*) AS samples
    FROM fgm_rates
    WHERE NOT fgm_whole_hours(getvariable('fgm_from'), getvariable('fgm_to'))
      AND hour BETWEEN date_trunc('hour', getvariable('fgm_from')) AND getvariable('fgm_to')
      AND timestamp BETWEEN getvariable('fgm_from') AND getvariable('fgm_to')
      AND cpu_cores IS NOT NULL
    GROUP BY ALL
), by_hours AS (
    SELECT node, container_id, value AS p99, max, count AS samples
    FROM fgm_percentiles('cpu_cores', getvariable('fgm_from'),
                         fgm_hours_end(getvariable('fgm_to')), 0.99)
    WHERE fgm_whole_hours(getvariable('fgm_from'), getvariable('fgm_to'))
), top AS (
    SELECT * FROM by_rates
    UNION ALL
    SELECT * FROM by_hours
)
SELECT t.node, t.container_id, c.namespace, c.pod_name, c.container_name,
       round(t.p99, 4) AS p99_cores, round(t.max, 4) AS max_cores, t.samples
FROM top t
LEFT JOIN fgm_containers c USING (node, container_id)
ORDER BY p99_cores DESC, t.node, t.container_id
LIMIT 10;
