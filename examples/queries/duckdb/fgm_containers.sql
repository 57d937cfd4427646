-- Names of the containers by (node, container_id), from the containers.jsonl files
-- (newest day wins). Loaded by run.py after fgm.sql.
CREATE OR REPLACE TEMP VIEW fgm_containers AS
SELECT node, container_id,
       arg_max(namespace, dt) AS namespace,
       arg_max(pod_name, dt) AS pod_name,
       arg_max(container_name, dt) AS container_name,
       arg_max(qos_class, dt) AS qos_class,
       arg_max(labels, dt) AS labels
FROM read_json(getvariable('fgm_root') || '/dt=' || getvariable('fgm_days') || '/node=*/containers.jsonl',
               hive_partitioning = true, format = 'newline_delimited',
               columns = {container_id: 'VARCHAR', namespace: 'VARCHAR', pod_name: 'VARCHAR',
                          container_name: 'VARCHAR', qos_class: 'VARCHAR', labels: 'JSON'})
GROUP BY node, container_id;

-- when there are no files:
CREATE OR REPLACE TEMP VIEW fgm_containers AS
SELECT NULL::VARCHAR AS node, NULL::VARCHAR AS container_id, NULL::VARCHAR AS namespace,
       NULL::VARCHAR AS pod_name, NULL::VARCHAR AS container_name, NULL::VARCHAR AS qos_class,
       NULL::JSON AS labels
WHERE false;
