-- fgm_rates: one row per container per sample, every node, every row once: the rates of the
-- interval ending at `timestamp` (dt and hour: the day and the start of the clock hour of the
-- row, UTC; node, timestamp, container_id, interval_ms, then cpu_cores ... cpu_limit_cores:
-- docs/export.md lists them with their units). Filter on `hour` besides `timestamp`
-- (hour BETWEEN date_trunc('hour', t_from) AND t_to): that skips the objects of other hours
-- without opening them.
-- fgm_summary_rows: the hourly summary rows (node, container_id, hour as the start of the clock
-- hour, metric; count/sum/min/max with bucket NULL, and histogram buckets) before aggregation;
-- fgm_summaries.sql aggregates them.
-- From the objects compaction wrote (fgm_rates_files, fgm_summaries_files, see fgm.sql) and,
-- for every other file of fgm_metrics, from fgm_derive.sql. Loaded by run.py after it.

-- Summary rows of the rates derived in fgm_derive.sql, as compaction writes them: per (node, container, hour,
-- metric) one row of count/sum/min/max (bucket NULL), and one per non-empty bucket.
CREATE OR REPLACE TEMP VIEW fgm_summary_values_derived_here AS
UNPIVOT (
    SELECT node, container_id, hour,
           COLUMNS(c -> c NOT IN ('dt', 'hour', 'node', 'container_id', 'timestamp', 'interval_ms'))::DOUBLE
    FROM fgm_rates_derived_here)
ON COLUMNS(* EXCLUDE (node, container_id, hour)) INTO NAME metric VALUE value;

CREATE OR REPLACE TEMP VIEW fgm_summary_rows_derived_here AS
SELECT node, container_id, hour, metric, NULL::INTEGER AS bucket, count(*) AS count,
       sum(value) AS sum, min(value) AS min, max(value) AS max
FROM fgm_summary_values_derived_here
WHERE value >= 0 AND isfinite(value)
GROUP BY ALL
UNION ALL
SELECT node, container_id, hour, metric, fgm_bucket(value) AS bucket, count(*) AS count,
       NULL::DOUBLE AS sum, NULL::DOUBLE AS min, NULL::DOUBLE AS max
FROM fgm_summary_values_derived_here
WHERE value >= 0 AND isfinite(value)
GROUP BY ALL;

-- The views: run.py runs the next part when compaction's objects are listed, else the last.
-- with files:
CREATE OR REPLACE TEMP VIEW fgm_rates AS
SELECT * EXCLUDE (hour), fgm_hour_start(dt, hour) AS hour
FROM read_parquet(getvariable('fgm_rates_files'), hive_partitioning = true,
                  hive_types = {'dt': DATE, 'hour': INTEGER})
UNION ALL BY NAME
SELECT * FROM fgm_rates_derived_here;

CREATE OR REPLACE TEMP VIEW fgm_summary_rows AS
SELECT node, container_id, fgm_hour_start(dt, hour) AS hour, metric, bucket, count, sum, min, max
FROM read_parquet(getvariable('fgm_summaries_files'), hive_partitioning = true,
                  hive_types = {'dt': DATE, 'hour': INTEGER})
UNION ALL
SELECT * FROM fgm_summary_rows_derived_here;

-- when there are no files:
CREATE OR REPLACE TEMP VIEW fgm_rates AS SELECT * FROM fgm_rates_derived_here;
CREATE OR REPLACE TEMP VIEW fgm_summary_rows AS SELECT * FROM fgm_summary_rows_derived_here;
