-- Hourly per-container summaries, every node, every sample once (loaded by run.py after
-- fgm_rates.sql). `metric` is a column of fgm_rates (cpu_cores, memory_working_set_bytes, ...),
-- `hour` the start of a clock hour (UTC).
--
-- fgm_summaries   one row per (node, container_id, hour, metric): count, sum, min, max.
--                 Mean = sum / count; over several hours SUM(count), SUM(sum), MIN(min), MAX(max).
-- fgm_histograms  one row per (node, container_id, hour, metric, bucket): count. Buckets of any
--                 rows merge with SUM(count) GROUP BY bucket; fgm_bucket_value(bucket) is the
--                 value a bucket stands for (within 1 %).
-- fgm_percentiles(metric, hour_from, hour_to, p)
--                 per (node, container_id): the p-percentile (0..1) of the metric over the hours
--                 hour_from <= hour < hour_to, from the histograms (within 1 % of the exact
--                 one), with the count, min and max of the samples.
CREATE OR REPLACE TEMP VIEW fgm_summaries AS
SELECT node, container_id, hour, metric, sum(count)::BIGINT AS count, sum(sum) AS sum,
       min(min) AS min, max(max) AS max
FROM fgm_summary_rows
WHERE bucket IS NULL
GROUP BY ALL;

CREATE OR REPLACE TEMP VIEW fgm_histograms AS
SELECT node, container_id, hour, metric, bucket, sum(count)::BIGINT AS count
FROM fgm_summary_rows
WHERE bucket IS NOT NULL
GROUP BY ALL;

-- The bucket where the running count, in bucket order, first reaches p x total, as the value it
-- stands for, kept within the samples' min and max (which only brings it closer).
CREATE OR REPLACE TEMP MACRO fgm_percentiles(metric_name, hour_from, hour_to, p) AS TABLE
WITH r AS (
    SELECT * FROM fgm_summary_rows
    WHERE metric = metric_name AND hour >= hour_from AND hour < hour_to
), h AS (
    SELECT node, container_id, bucket, sum(count) AS count
    FROM r WHERE bucket IS NOT NULL GROUP BY ALL
), s AS (
    SELECT node, container_id, min(min) AS min, max(max) AS max, sum(count)::BIGINT AS count
    FROM r WHERE bucket IS NULL GROUP BY ALL
), c AS (
    SELECT *,
           sum(count) OVER (PARTITION BY node, container_id ORDER BY bucket
                            ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS running,
           sum(count) OVER (PARTITION BY node, container_id) AS total
    FROM h
), v AS (
    SELECT node, container_id,
           fgm_bucket_value(min(bucket) FILTER (WHERE running::DOUBLE >= p::DOUBLE * total::DOUBLE))
               AS value
    FROM c GROUP BY ALL
)
SELECT v.node, v.container_id, greatest(least(v.value, s.max), s.min) AS value,
       s.count, s.min, s.max
FROM v JOIN s USING (node, container_id);

-- Whole hours: t_from on the hour, t_to on the hour or a second before one (hh:59:59), at
-- least an hour. fgm_hours_end(t_to) is the end (exclusive) of the hours of such a range.
CREATE OR REPLACE TEMP MACRO fgm_hours_end(t_to) AS date_trunc('hour', t_to + INTERVAL 1 SECOND);
CREATE OR REPLACE TEMP MACRO fgm_whole_hours(t_from, t_to) AS
    date_trunc('hour', t_from) = t_from
    AND (date_trunc('hour', t_to) = t_to
         OR date_trunc('hour', t_to + INTERVAL 1 SECOND) = t_to + INTERVAL 1 SECOND)
    AND fgm_hours_end(t_to) > t_from;
