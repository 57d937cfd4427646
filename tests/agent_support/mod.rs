//! Shared by the agent's integration tests: run an agent for a while, read
//! back what it wrote.

#![allow(dead_code)]

pub mod real_cgroups;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use arrow_array::{Array, Int64Array, StringArray, TimestampMillisecondArray};
use fine_grained_monitor::agent::{Agent, AgentConfig, DiscoveryMode, SelfMetrics};
use fine_grained_monitor::store::index::Index;
use fine_grained_monitor::store::{layout, reader, schema};
use tokio_util::sync::CancellationToken;

/// A config for tests: fast interval and rotation, everything explicit.
pub fn config(data_dir: &Path, cgroup_root: &Path, mode: DiscoveryMode) -> AgentConfig {
    AgentConfig {
        data_dir: data_dir.to_path_buf(),
        node_name: "test-node".into(),
        interval: Duration::from_millis(50),
        rotation: Duration::from_secs(1),
        cgroup_root: Some(cgroup_root.to_path_buf()),
        proc_root: PathBuf::from("/proc"),
        retention_max_age: Duration::from_secs(7 * 86_400),
        retention_max_bytes: None,
        discovery: mode,
        scope: fine_grained_monitor::agent::Scope::All,
        scan_every: 1,
        limits_every: 1,
        lock_wait: Duration::from_secs(5),
        tail_sync: Duration::from_secs(10),
        kubelet: None,
        processes: None,
    }
}

/// Runs an agent for `run_for`, then stops it cleanly.
pub async fn run_agent(config: AgentConfig, run_for: Duration) -> SelfMetrics {
    let stop = CancellationToken::new();
    let metrics = SelfMetrics::new();
    let handle = Agent::start(config, None, metrics.clone(), stop.clone()).expect("agent starts");
    tokio::time::sleep(run_for).await;
    stop.cancel();
    handle
        .task
        .await
        .expect("agent task joins")
        .expect("agent stops cleanly");
    metrics
}

/// One row read back: timestamp (ms) and metric values by name.
#[derive(Debug, Clone)]
pub struct Row {
    pub timestamp_ms: i64,
    pub values: BTreeMap<String, Option<i64>>,
}

impl Row {
    pub fn get(&self, metric: &str) -> Option<i64> {
        *self
            .values
            .get(metric)
            .unwrap_or_else(|| panic!("no column {metric}"))
    }
}

/// Every finished data file's rows, by short container id, in time order.
pub fn read_rows(data_dir: &Path) -> BTreeMap<String, Vec<Row>> {
    let listing = layout::list_data_files(data_dir, None).expect("data dir lists");
    let mut out: BTreeMap<String, Vec<Row>> = BTreeMap::new();
    for file in &listing.files {
        let batches = reader::read_file(&file.path, None)
            .unwrap_or_else(|e| panic!("{} reads: {e}", file.path.display()));
        for batch in batches {
            let ts = batch
                .column_by_name(schema::TIMESTAMP)
                .and_then(|c| c.as_any().downcast_ref::<TimestampMillisecondArray>())
                .expect("timestamp column");
            let ids = batch
                .column_by_name(schema::CONTAINER_ID)
                .and_then(|c| c.as_any().downcast_ref::<StringArray>())
                .expect("container_id column");
            let metrics: Vec<(&str, &Int64Array)> = schema::METRICS
                .iter()
                .map(|m| {
                    let col = batch
                        .column_by_name(m.name)
                        .and_then(|c| c.as_any().downcast_ref::<Int64Array>())
                        .unwrap_or_else(|| panic!("column {}", m.name));
                    (m.name, col)
                })
                .collect();
            for i in 0..batch.num_rows() {
                let values = metrics
                    .iter()
                    .map(|(name, col)| (name.to_string(), (!col.is_null(i)).then(|| col.value(i))))
                    .collect();
                out.entry(ids.value(i).to_string()).or_default().push(Row {
                    timestamp_ms: ts.value(i),
                    values,
                });
            }
        }
    }
    for rows in out.values_mut() {
        rows.sort_by_key(|r| r.timestamp_ms);
    }
    out
}

pub fn read_index(data_dir: &Path) -> Index {
    Index::load(&layout::index_path(data_dir))
        .expect("index.json parses")
        .expect("index.json exists")
}

/// Path of a checked-in fixture tree.
pub fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/cgroup")
        .join(name)
}
