-- The exported bucket as views; run.py sets the variables first:
--   fgm_root  's3://bucket/prefix'   fgm_days  glob of the dt= directories ('*', '2026-12-0[1-3]', ...)
--   fgm_from, fgm_to  the range of the question (TIMESTAMPTZ)
-- This file lists the bucket ONCE and decides which objects the views read; the views are in
-- the files named below, and run.py creates those the query names (creating a view reads the
-- footers of its files).
--
-- fgm_metrics    (fgm_metrics.sql) one row per container per second, every node: hive columns
--                dt and node, timestamp, container_id and the metric columns. Each row counts
--                once, also while compaction runs: from ONE listing, every merged file, and each
--                raw file that no merged file of its node covers (merged-<first>-<last>.parquet
--                replaces that node's raw metrics-<start>.parquet with first <= start <= last).
-- fgm_rates, fgm_summaries, fgm_histograms, fgm_percentiles
--                (fgm_derive.sql, fgm_rates.sql, fgm_summaries.sql) the same rows as rates and
--                hourly summaries, each once: from the objects compaction writes for a merged
--                file (rates/dt=D/hour=H/node=N/rates-<first>-<last>.parquet, summaries/… alike,
--                listed AFTER the files above), counted only when that merged file is in this
--                listing; the rows of the other files of fgm_metrics that overlap fgm_from..fgm_to
--                (raw files not compacted yet) are derived in SQL (fgm_derive.sql).
-- fgm_containers names of the containers (namespace, pod_name, container_name, labels) by
--                (node, container_id): fgm_containers.sql
-- fgm_events     pod failures (oom_killed, terminated, crash_loop_back_off, restart) by node:
--                fgm_events.sql
-- run.py runs the part of a file after "-- when there are no files:" when the glob matches
-- nothing (a bucket without events, say), so the views exist either way.

CREATE OR REPLACE TEMP TABLE fgm_objects AS
SELECT file,
       regexp_extract(file, '/node=([^/]+)/', 1) AS node,
       regexp_extract(file, '/metrics-([0-9]{8}T[0-9]{6}Z)\.parquet$', 1) AS raw_start,
       regexp_extract(file, '/merged-([0-9]{8}T[0-9]{6}Z)-[0-9]{8}T[0-9]{6}Z\.parquet$', 1) AS merged_first,
       regexp_extract(file, '/merged-[0-9]{8}T[0-9]{6}Z-([0-9]{8}T[0-9]{6}Z)\.parquet$', 1) AS merged_last
FROM glob(getvariable('fgm_root') || '/dt=' || getvariable('fgm_days') || '/node=*/*.parquet');

SET VARIABLE fgm_files = (
    SELECT coalesce(list(o.file ORDER BY o.file), [])
    FROM fgm_objects o
    WHERE o.merged_first <> ''
       OR (o.raw_start <> '' AND NOT EXISTS (
            SELECT 1 FROM fgm_objects m
            WHERE m.node = o.node AND m.merged_first <> ''
              AND o.raw_start BETWEEN m.merged_first AND m.merged_last)));

-- The rates and summaries objects, listed after the data files: compaction writes them before
-- the merged file they belong to, so a merged file listed above has them listed here.
CREATE OR REPLACE TEMP TABLE fgm_derived_objects AS
SELECT file,
       regexp_extract(file, '/(rates|summaries)/dt=[^/]+/hour=[0-9]+/node=[^/]+/[^/]+$', 1) AS dataset,
       regexp_extract(file, '/node=([^/]+)/', 1) AS node,
       regexp_extract(file, '/(?:rates|summaries)-([0-9]{8}T[0-9]{6}Z)-[0-9]{8}T[0-9]{6}Z\.parquet$', 1) AS first,
       regexp_extract(file, '/(?:rates|summaries)-[0-9]{8}T[0-9]{6}Z-([0-9]{8}T[0-9]{6}Z)\.parquet$', 1) AS last
FROM (SELECT file FROM glob(getvariable('fgm_root') || '/rates/dt=' || getvariable('fgm_days') || '/hour=*/node=*/*.parquet')
      UNION ALL
      SELECT file FROM glob(getvariable('fgm_root') || '/summaries/dt=' || getvariable('fgm_days') || '/hour=*/node=*/*.parquet'));

-- Merged files with rates AND summaries listed (an object of each per hour of their rows, all
-- written before the merged file): their rows are read from those.
CREATE OR REPLACE TEMP TABLE fgm_derived_files AS
SELECT m.file AS merged, d.dataset, d.file
FROM fgm_objects m
JOIN fgm_derived_objects d ON d.node = m.node AND d.first = m.merged_first AND d.last = m.merged_last
WHERE m.merged_first <> '';

CREATE OR REPLACE TEMP TABLE fgm_derived AS
SELECT merged FROM fgm_derived_files GROUP BY merged
HAVING count(*) FILTER (WHERE dataset = 'rates') > 0
   AND count(*) FILTER (WHERE dataset = 'summaries') > 0;

-- Newest first: DuckDB takes a view's columns from the first file, and run.py checks its format.
SET VARIABLE fgm_rates_files = (
    SELECT coalesce(list(file ORDER BY file DESC), []) FROM fgm_derived_files
    WHERE dataset = 'rates' AND merged IN (SELECT merged FROM fgm_derived));
SET VARIABLE fgm_summaries_files = (
    SELECT coalesce(list(file ORDER BY file DESC), []) FROM fgm_derived_files
    WHERE dataset = 'summaries' AND merged IN (SELECT merged FROM fgm_derived));

-- The other files of fgm_metrics (raw files not compacted yet, merged files written before
-- compaction wrote rates) whose rows overlap the range, and the file before each such run (its
-- last samples give the first rows their rates): fgm_derive.sql derives their rates. A node's
-- files do not overlap in time, so a file's rows end where the node's next file starts.
SET VARIABLE fgm_underived_files = (
    WITH visible AS (
        SELECT o.file, o.node,
               CASE WHEN o.merged_first <> '' THEN o.merged_first ELSE o.raw_start END AS start
        FROM fgm_objects o
        WHERE list_contains(getvariable('fgm_files'), o.file)
    ), bounds AS (
        SELECT *, lead(start) OVER (PARTITION BY node ORDER BY start) AS next
        FROM visible
    ), overlap AS (
        SELECT *,
               start <= strftime(getvariable('fgm_to'), '%Y%m%dT%H%M%SZ')
               AND (next IS NULL OR next > strftime(getvariable('fgm_from'), '%Y%m%dT%H%M%SZ'))
                   AS in_range
        FROM bounds
    ), wanted AS (
        SELECT *, in_range OR coalesce(lead(in_range) OVER (PARTITION BY node ORDER BY start), false)
                      AS keep
        FROM overlap
    )
    SELECT coalesce(list(file ORDER BY file), [])
    FROM wanted
    WHERE keep AND file NOT IN (SELECT merged FROM fgm_derived));
