-- Rates and summaries of the rows compaction has not derived yet (raw files not compacted,
-- merged files from before compaction wrote rates), computed here exactly as compaction
-- computes them (src/export/derived/rates.rs, histogram.rs): the same columns, the same
-- arithmetic, so a query gives the same answer before and after compaction. Loaded by run.py
-- after fgm.sql; fgm_rates.sql and fgm_summaries.sql build the views on top.
--
-- A row's rates cover the interval from the container's previous sample to this one. A counter
-- that went down (a reset) or whose neighbour is null gives NULL, never a negative value; a
-- container's first sample has none. Here the first row of each container after the compacted
-- part has none either (its previous sample sits in a merged file).

CREATE OR REPLACE TEMP MACRO fgm_delta(cur, prev) AS CASE WHEN cur >= prev THEN cur - prev END;
-- Counter in µs per elapsed µs (cores, stalled or throttled share); dt is interval_ms.
CREATE OR REPLACE TEMP MACRO fgm_usec_per_usec(cur, prev, dt) AS
    fgm_delta(cur, prev)::DOUBLE / (dt::DOUBLE * 1000);
CREATE OR REPLACE TEMP MACRO fgm_per_second(cur, prev, dt) AS
    fgm_delta(cur, prev)::DOUBLE * 1000 / dt::DOUBLE;
CREATE OR REPLACE TEMP MACRO fgm_delta_ratio(a, a_prev, b, b_prev, dt) AS
    CASE WHEN dt IS NOT NULL AND fgm_delta(b, b_prev) > 0
         THEN fgm_delta(a, a_prev)::DOUBLE / fgm_delta(b, b_prev)::DOUBLE END;
CREATE OR REPLACE TEMP MACRO fgm_interval_delta(cur, prev, dt) AS
    CASE WHEN dt IS NOT NULL THEN fgm_delta(cur, prev) END;

-- Log-bucket histograms, 1 % relative accuracy: bucket i holds (γ^(i-1), γ^i] with
-- γ = 1.01/0.99; -2147483648 holds zeros. A bucket stands for 2γ^i/(γ+1), within 1 % of
-- every value in it.
CREATE OR REPLACE TEMP MACRO fgm_bucket(v) AS
    CASE WHEN v = 0 THEN -2147483648
         WHEN v > 0 AND isfinite(v) THEN ceil(ln(v) / ln(1.01::DOUBLE / 0.99::DOUBLE))::INTEGER END;
CREATE OR REPLACE TEMP MACRO fgm_bucket_value(b) AS
    CASE WHEN b = -2147483648 THEN 0::DOUBLE
         ELSE 2 * pow(1.01::DOUBLE / 0.99::DOUBLE, b) / (1.01::DOUBLE / 0.99::DOUBLE + 1) END;

-- The start of the clock hour of the partitions dt=…/hour=… of the objects compaction writes.
-- The views expose it as their `hour` column: a filter on it prunes objects from their keys,
-- without opening them.
CREATE OR REPLACE TEMP MACRO fgm_hour_start(dt, hour) AS (dt + to_hours(hour))::TIMESTAMPTZ;

-- The rows to derive: run.py runs the next part when fgm_underived_files is not empty, else the
-- last part (no rows, with the columns of compaction's rates objects).
-- with files:
CREATE OR REPLACE TEMP VIEW fgm_underived_metrics AS
SELECT * FROM read_parquet(getvariable('fgm_underived_files'), hive_partitioning = true,
                           union_by_name = true);

CREATE OR REPLACE TEMP VIEW fgm_rates_derived_here AS
WITH s AS (
    SELECT *,
           lag(timestamp) OVER w AS timestamp_prev,
           lag(cpu_usage_usec) OVER w AS cpu_usage_usec_prev,
           lag(cpu_user_usec) OVER w AS cpu_user_usec_prev,
           lag(cpu_system_usec) OVER w AS cpu_system_usec_prev,
           lag(cpu_nr_periods) OVER w AS cpu_nr_periods_prev,
           lag(cpu_nr_throttled) OVER w AS cpu_nr_throttled_prev,
           lag(cpu_throttled_usec) OVER w AS cpu_throttled_usec_prev,
           lag(io_read_bytes) OVER w AS io_read_bytes_prev,
           lag(io_write_bytes) OVER w AS io_write_bytes_prev,
           lag(io_read_ops) OVER w AS io_read_ops_prev,
           lag(io_write_ops) OVER w AS io_write_ops_prev,
           lag(cpu_pressure_some_usec) OVER w AS cpu_pressure_some_usec_prev,
           lag(cpu_pressure_full_usec) OVER w AS cpu_pressure_full_usec_prev,
           lag(memory_pressure_some_usec) OVER w AS memory_pressure_some_usec_prev,
           lag(memory_pressure_full_usec) OVER w AS memory_pressure_full_usec_prev,
           lag(io_pressure_some_usec) OVER w AS io_pressure_some_usec_prev,
           lag(io_pressure_full_usec) OVER w AS io_pressure_full_usec_prev,
           lag(memory_oom_events) OVER w AS memory_oom_events_prev,
           lag(memory_oom_kill_events) OVER w AS memory_oom_kill_events_prev
    FROM fgm_underived_metrics
    WINDOW w AS (PARTITION BY node, container_id ORDER BY timestamp)
), i AS (
    SELECT *,
           CASE WHEN epoch_ms(timestamp) > epoch_ms(timestamp_prev)
                THEN epoch_ms(timestamp) - epoch_ms(timestamp_prev) END AS interval_ms
    FROM s
)
SELECT CAST(timestamp AS DATE) AS dt, date_trunc('hour', timestamp) AS hour, node, timestamp,
       container_id, interval_ms,
       fgm_usec_per_usec(cpu_usage_usec, cpu_usage_usec_prev, interval_ms) AS cpu_cores,
       fgm_usec_per_usec(cpu_user_usec, cpu_user_usec_prev, interval_ms) AS cpu_user_cores,
       fgm_usec_per_usec(cpu_system_usec, cpu_system_usec_prev, interval_ms) AS cpu_system_cores,
       fgm_delta_ratio(cpu_nr_throttled, cpu_nr_throttled_prev, cpu_nr_periods, cpu_nr_periods_prev,
                       interval_ms) AS cpu_throttled_share,
       fgm_usec_per_usec(cpu_throttled_usec, cpu_throttled_usec_prev, interval_ms)
           AS cpu_throttled_seconds_per_s,
       fgm_per_second(io_read_bytes, io_read_bytes_prev, interval_ms) AS io_read_bytes_per_s,
       fgm_per_second(io_write_bytes, io_write_bytes_prev, interval_ms) AS io_write_bytes_per_s,
       fgm_per_second(io_read_ops, io_read_ops_prev, interval_ms) AS io_read_ops_per_s,
       fgm_per_second(io_write_ops, io_write_ops_prev, interval_ms) AS io_write_ops_per_s,
       fgm_usec_per_usec(cpu_pressure_some_usec, cpu_pressure_some_usec_prev, interval_ms)
           AS cpu_pressure_some_share,
       fgm_usec_per_usec(cpu_pressure_full_usec, cpu_pressure_full_usec_prev, interval_ms)
           AS cpu_pressure_full_share,
       fgm_usec_per_usec(memory_pressure_some_usec, memory_pressure_some_usec_prev, interval_ms)
           AS memory_pressure_some_share,
       fgm_usec_per_usec(memory_pressure_full_usec, memory_pressure_full_usec_prev, interval_ms)
           AS memory_pressure_full_share,
       fgm_usec_per_usec(io_pressure_some_usec, io_pressure_some_usec_prev, interval_ms)
           AS io_pressure_some_share,
       fgm_usec_per_usec(io_pressure_full_usec, io_pressure_full_usec_prev, interval_ms)
           AS io_pressure_full_share,
       fgm_interval_delta(memory_oom_events, memory_oom_events_prev, interval_ms) AS oom_events,
       fgm_interval_delta(memory_oom_kill_events, memory_oom_kill_events_prev, interval_ms)
           AS oom_kill_events,
       memory_current_bytes, memory_working_set_bytes, memory_anon_bytes, memory_file_bytes,
       memory_swap_bytes, memory_limit_bytes, pids_current, pids_processes,
       CASE WHEN cpu_period_usec > 0 THEN cpu_quota_usec::DOUBLE / cpu_period_usec::DOUBLE END
           AS cpu_limit_cores
FROM i;

-- when there are no files:
CREATE OR REPLACE TEMP VIEW fgm_rates_derived_here AS
SELECT * EXCLUDE (hour), fgm_hour_start(dt, hour) AS hour
FROM read_parquet(getvariable('fgm_rates_files'), hive_partitioning = true,
                  hive_types = {'dt': DATE, 'hour': INTEGER})
WHERE false;
