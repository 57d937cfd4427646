-- fgm_network, fgm_devices, fgm_processes: the other per-node datasets, one view each, created
-- by run.py when a query names it (this file with __DATASET__ replaced by network, devices or
-- processes). Hive columns dt and node, then timestamp, container_id and the dataset's columns
-- (docs/data-format.md). Each row counts once by fgm_metrics' rule, on the dataset's own
-- prefix: from ONE listing, every merged file, and each raw file that no merged file of its
-- node covers (compaction writes <dataset>/dt=D/node=N/merged-<first>-<last>.parquet before it
-- deletes the <dataset>-<start>.parquet files with first <= start <= last).
--   fgm_network    one row per pod interface per second (the pod's sandbox is container_id;
--                  loopback included: filter interface <> 'lo' for traffic off the pod)
--   fgm_devices    one row per container and block device per second (read/write bytes, ops)
--   fgm_processes  the processes kept per container (opt-in), one row per process per sample

CREATE OR REPLACE TEMP TABLE fgm___DATASET___objects AS
SELECT file,
       regexp_extract(file, '/node=([^/]+)/', 1) AS node,
       regexp_extract(file, '/__DATASET__-([0-9]{8}T[0-9]{6}Z)\.parquet$', 1) AS raw_start,
       regexp_extract(file, '/merged-([0-9]{8}T[0-9]{6}Z)-[0-9]{8}T[0-9]{6}Z\.parquet$', 1) AS merged_first,
       regexp_extract(file, '/merged-[0-9]{8}T[0-9]{6}Z-([0-9]{8}T[0-9]{6}Z)\.parquet$', 1) AS merged_last
FROM glob(getvariable('fgm_root') || '/__DATASET__/dt=' || getvariable('fgm_days') || '/node=*/*.parquet');

SET VARIABLE fgm___DATASET___files = (
    SELECT coalesce(list(o.file ORDER BY o.file), [])
    FROM fgm___DATASET___objects o
    WHERE o.merged_first <> ''
       OR (o.raw_start <> '' AND NOT EXISTS (
            SELECT 1 FROM fgm___DATASET___objects m
            WHERE m.node = o.node AND m.merged_first <> ''
              AND o.raw_start BETWEEN m.merged_first AND m.merged_last)));
