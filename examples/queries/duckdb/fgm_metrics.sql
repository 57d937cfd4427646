-- fgm_metrics: the raw rows of every file fgm.sql lists (see there). Loaded by run.py after it.
CREATE OR REPLACE TEMP VIEW fgm_metrics AS
SELECT * FROM read_parquet(getvariable('fgm_files'), hive_partitioning = true, union_by_name = true);
