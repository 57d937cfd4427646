-- Which pods received and sent the most between fgm_from and fgm_to, on any node: bytes over
-- the range from each pod's network counters (its sandbox's rows: every interface of the pod's
-- network namespace but loopback; counters, so last minus first per sandbox, and a pod whose
-- sandbox was replaced sums its sandboxes). Host-network pods have no network figures.
WITH per_sandbox AS (
    SELECT node, container_id,
           max(network_receive_bytes) - min(network_receive_bytes) AS receive_bytes,
           max(network_transmit_bytes) - min(network_transmit_bytes) AS transmit_bytes
    FROM fgm_metrics
    WHERE dt BETWEEN CAST(getvariable('fgm_from') AS DATE) - 1 AND CAST(getvariable('fgm_to') AS DATE)
      AND timestamp BETWEEN getvariable('fgm_from') AND getvariable('fgm_to')
      AND network_receive_bytes IS NOT NULL
    GROUP BY node, container_id
)
SELECT c.namespace, c.pod_name, p.node,
       sum(p.receive_bytes) AS receive_bytes, sum(p.transmit_bytes) AS transmit_bytes,
       sum(p.receive_bytes + p.transmit_bytes) AS total_bytes
FROM per_sandbox p
LEFT JOIN fgm_containers c USING (node, container_id)
GROUP BY c.namespace, c.pod_name, p.node
ORDER BY total_bytes DESC, p.node, c.pod_name
LIMIT 20;
