//! Container filesystems on the real node (issue #25 point 2): a container writes 128 MiB into
//! its writable layer and the agent records the layer grown by at least that much beside an
//! identical container that wrote nothing, from the node's kubelet (`/stats/summary`, the
//! agent's `nodes/stats` right), in the recorded data and on `/metrics`.

use std::time::Duration;

use serde_json::Value;

use crate::data::newest_since;
use crate::kube_cli::{apply, eventually};
use crate::support::node::{NODE_NAME, World};
use crate::workloads;

const NS: &str = "fgm-shop";
const WRITTEN: i64 = 128 << 20;

fn writer_pod() -> String {
    format!(
        r#"
apiVersion: v1
kind: Pod
metadata: {{ name: writer, namespace: {NS} }}
spec:
  nodeSelector: {{ kubernetes.io/hostname: {NODE_NAME} }}
  terminationGracePeriodSeconds: 1
  containers:
    - name: writer
      image: localhost/fgm-stress:test
      imagePullPolicy: IfNotPresent
      # The image's user (65532) cannot create files in its root directory.
      securityContext: {{ runAsUser: 0 }}
      args: ["--write-file", "/layer.bin", "--write-bytes", "128Mi"]
    - name: idle
      image: localhost/fgm-stress:test
      imagePullPolicy: IfNotPresent
      args: ["--cpu", "0.01"]
"#
    )
}

pub fn container_filesystem_recorded(world: &World, monitor: &Value) {
    apply(world, &writer_pod());
    let short = |container: &str| {
        eventually(
            world,
            &format!("writer/{container} recorded by name"),
            Duration::from_secs(120),
            || workloads::recorded(world, NS, "writer", container),
        )
    };
    let (writer, idle) = (short("writer"), short("idle"));
    // The kubelet refreshes the layer's size from the runtime (about every 10 s) and the agent
    // asks every --fs-interval (30 s): two rounds at most.
    let (layer, idle_layer) = eventually(
        world,
        "the writer's layer recorded at 128 MiB or more",
        Duration::from_secs(150),
        || {
            let (_, written) =
                newest_since(&writer, "fs_usage_bytes", 0).ok_or("no fs_usage_bytes yet")?;
            let (_, idle) =
                newest_since(&idle, "fs_usage_bytes", 0).ok_or("no fs_usage_bytes of idle yet")?;
            if written < WRITTEN {
                return Err(format!("writer's layer {written} bytes"));
            }
            Ok((written, idle))
        },
    );
    let grown = layer - idle_layer;
    eprintln!(
        "figure: writable layer after writing 128 MiB: {layer} bytes (an identical idle container's: {idle_layer})"
    );
    assert!(
        grown >= WRITTEN,
        "the layer grew {grown} bytes over an identical container's, not the 128 MiB written"
    );
    let (_, inodes) = newest_since(&writer, "fs_inodes_used", 0).expect("layer inodes recorded");
    assert!(
        inodes >= 1,
        "the written file is an inode of the layer: {inodes}"
    );
    let (_, logs) = newest_since(&writer, "fs_log_bytes", 0).expect("log bytes recorded");
    assert!(
        logs > 0,
        "the writer logged what it wrote: {logs} log bytes"
    );

    // /metrics: the layer on the container's series.
    let body = crate::network::metrics(monitor);
    let served = body
        .lines()
        .filter(|l| l.starts_with("container_fs_usage_bytes{"))
        .find(|l| l.contains("container=\"writer\"") && l.contains("pod=\"writer\""))
        .and_then(|l| {
            l.rsplit_once('}')?
                .1
                .split_whitespace()
                .next()?
                .parse::<f64>()
                .ok()
        })
        .unwrap_or_else(|| panic!("container_fs_usage_bytes of writer/writer served"));
    assert!(served >= WRITTEN as f64, "served {served}");
}
