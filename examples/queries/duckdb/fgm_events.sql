-- Pod failure events of every node, from the events.jsonl files. Loaded by run.py after fgm.sql.
CREATE OR REPLACE TEMP VIEW fgm_events AS
SELECT node, "time"::TIMESTAMPTZ AS "time", kind, namespace, pod, container, container_id,
       restart_count, reason, exit_code
FROM read_json(getvariable('fgm_root') || '/dt=' || getvariable('fgm_days') || '/node=*/events.jsonl',
               hive_partitioning = true, format = 'newline_delimited',
               columns = {"time": 'VARCHAR', kind: 'VARCHAR', namespace: 'VARCHAR', pod: 'VARCHAR',
                          container: 'VARCHAR', container_id: 'VARCHAR', restart_count: 'INTEGER',
                          reason: 'VARCHAR', exit_code: 'INTEGER'});

-- when there are no files:
CREATE OR REPLACE TEMP VIEW fgm_events AS
SELECT NULL::VARCHAR AS node, NULL::TIMESTAMPTZ AS "time", NULL::VARCHAR AS kind,
       NULL::VARCHAR AS namespace, NULL::VARCHAR AS pod, NULL::VARCHAR AS container,
       NULL::VARCHAR AS container_id, NULL::INTEGER AS restart_count, NULL::VARCHAR AS reason,
       NULL::INTEGER AS exit_code
WHERE false;
