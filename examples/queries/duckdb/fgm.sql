-- The exported bucket as three views; run.py sets the variables first:
--   fgm_root  's3://bucket/prefix'   fgm_days  glob of the dt= directories ('*', '2026-12-0[1-3]', ...)
--
-- fgm_metrics    one row per container per second, every node: hive columns dt and node,
--                timestamp, container_id and the metric columns. Each row counts once,
--                also while compaction runs: from ONE listing, every merged file, and each
--                raw file that no merged file of its node covers (merged-<first>-<last>.parquet
--                replaces that node's raw metrics-<start>.parquet with first <= start <= last).
-- fgm_containers names of the containers (namespace, pod_name, container_name, labels) by
--                (node, container_id): fgm_containers.sql
-- fgm_events     pod failures (oom_killed, terminated, crash_loop_back_off, restart) by node:
--                fgm_events.sql
-- run.py runs the part of each file after "-- when there are no files:" when the glob matches
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

CREATE OR REPLACE TEMP VIEW fgm_metrics AS
SELECT * FROM read_parquet(getvariable('fgm_files'), hive_partitioning = true, union_by_name = true);
