-- Which containers read and wrote the most on which block device between fgm_from and fgm_to,
-- on any node: bytes over the range from each container's per-device counters (fgm_devices:
-- counters, so last minus first per container and device; the metrics' io_* columns are the
-- sums over devices).
WITH per_device AS (
    SELECT node, container_id, device,
           max(read_bytes) - min(read_bytes) AS read_bytes,
           max(write_bytes) - min(write_bytes) AS write_bytes
    FROM fgm_devices
    WHERE dt BETWEEN CAST(getvariable('fgm_from') AS DATE) - 1 AND CAST(getvariable('fgm_to') AS DATE)
      AND timestamp BETWEEN getvariable('fgm_from') AND getvariable('fgm_to')
    GROUP BY node, container_id, device
)
SELECT c.namespace, c.pod_name, c.container_name, d.node, d.device,
       d.read_bytes, d.write_bytes, d.read_bytes + d.write_bytes AS total_bytes
FROM per_device d
LEFT JOIN fgm_containers c USING (node, container_id)
WHERE d.read_bytes + d.write_bytes > 0
ORDER BY total_bytes DESC, d.node, c.pod_name, d.device
LIMIT 20;
