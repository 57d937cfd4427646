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
