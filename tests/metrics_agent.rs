//! End to end: the real agent samples a fixture cgroup tree whose counters
//! move every few milliseconds, its Prometheus endpoint is scraped over
//! loopback while it runs, and every scraped value is checked against the row
//! the agent wrote to Parquet for the same container and the same timestamp.

mod metrics_support;

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use arrow_array::{Array, Int64Array, StringArray, TimestampMillisecondArray};
use fine_grained_monitor::store::index::Index;
use fine_grained_monitor::store::layout::index_path;
use fine_grained_monitor::store::reader::read_file;
use fine_grained_monitor::store::schema::{METRICS, metric_index};
use metrics_support::agent_run::AgentRun;
use metrics_support::{ExpoSample, http_get, parse_text};

/// The cAdvisor family each column must appear as, and the factor to seconds
/// (written out here, independently of the renderer's table).
const EXPECTED: &[(&str, &str, f64)] = &[
    ("container_cpu_usage_seconds_total", "cpu_usage_usec", 1e-6),
    ("container_cpu_user_seconds_total", "cpu_user_usec", 1e-6),
    (
        "container_cpu_system_seconds_total",
        "cpu_system_usec",
        1e-6,
    ),
    ("container_cpu_cfs_periods_total", "cpu_nr_periods", 1.0),
    (
        "container_cpu_cfs_throttled_periods_total",
        "cpu_nr_throttled",
        1.0,
    ),
    (
        "container_cpu_cfs_throttled_seconds_total",
        "cpu_throttled_usec",
        1e-6,
    ),
    ("container_memory_usage_bytes", "memory_current_bytes", 1.0),
    (
        "container_memory_working_set_bytes",
        "memory_working_set_bytes",
        1.0,
    ),
    ("container_memory_rss", "memory_anon_bytes", 1.0),
    ("container_memory_cache", "memory_file_bytes", 1.0),
    (
        "container_spec_memory_limit_bytes",
        "memory_limit_bytes",
        1.0,
    ),
    ("container_oom_events_total", "memory_oom_kill_events", 1.0),
    ("container_threads", "pids_current", 1.0),
    ("container_processes", "pids_processes", 1.0),
    ("container_fs_reads_bytes_total", "io_read_bytes", 1.0),
    ("container_fs_writes_bytes_total", "io_write_bytes", 1.0),
    ("container_fs_reads_total", "io_read_ops", 1.0),
    ("container_fs_writes_total", "io_write_ops", 1.0),
    (
        "container_pressure_cpu_waiting_seconds_total",
        "cpu_pressure_some_usec",
        1e-6,
    ),
    (
        "container_pressure_cpu_stalled_seconds_total",
        "cpu_pressure_full_usec",
        1e-6,
    ),
    (
        "container_pressure_memory_waiting_seconds_total",
        "memory_pressure_some_usec",
        1e-6,
    ),
    (
        "container_pressure_memory_stalled_seconds_total",
        "memory_pressure_full_usec",
        1e-6,
    ),
    (
        "container_pressure_io_waiting_seconds_total",
        "io_pressure_some_usec",
        1e-6,
    ),
    (
        "container_pressure_io_stalled_seconds_total",
        "io_pressure_full_usec",
        1e-6,
    ),
    (
        "container_memory_mapped_file",
        "memory_mapped_file_bytes",
        1.0,
    ),
    ("container_memory_swap", "memory_swap_bytes", 1.0),
    ("container_memory_max_usage_bytes", "memory_peak_bytes", 1.0),
    ("container_memory_kernel_usage", "memory_kernel_bytes", 1.0),
    (
        "container_memory_file_dirty_bytes",
        "memory_dirty_bytes",
        1.0,
    ),
    (
        "container_memory_file_writeback_bytes",
        "memory_writeback_bytes",
        1.0,
    ),
    (
        "container_memory_total_active_file_bytes",
        "memory_active_file_bytes",
        1.0,
    ),
    (
        "container_memory_total_inactive_file_bytes",
        "memory_inactive_file_bytes",
        1.0,
    ),
    (
        "container_memory_workingset_refault_anon_total",
        "memory_workingset_refault_anon",
        1.0,
    ),
    (
        "container_memory_workingset_refault_file_total",
        "memory_workingset_refault_file",
        1.0,
    ),
    ("container_memory_pgscan_total", "memory_pgscan", 1.0),
    ("container_memory_pgsteal_total", "memory_pgsteal", 1.0),
    (
        "container_memory_events_high_total",
        "memory_high_events",
        1.0,
    ),
    (
        "container_memory_events_max_total",
        "memory_max_events",
        1.0,
    ),
    ("container_spec_cpu_period", "cpu_period_usec", 1.0),
    ("container_spec_cpu_quota", "cpu_quota_usec", 1.0),
    ("container_spec_cpu_shares", "cpu_shares", 1.0),
    ("container_threads_max", "pids_max", 1.0),
];

type Rows = HashMap<(i64, String), Vec<Option<i64>>>;

/// Every row of every completed data file, keyed by (timestamp ms, short id).
fn parquet_rows(data_dir: &std::path::Path) -> Rows {
    let mut rows = Rows::new();
    let mut stack = vec![data_dir.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
            let path = entry.unwrap_or_else(|e| panic!("{e}")).path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            if path.extension().and_then(|e| e.to_str()) != Some("parquet") {
                continue;
            }
            // Metrics files only (not the network, devices or processes datasets beside them).
            let name = path
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or_default();
            if fine_grained_monitor::store::layout::Dataset::parse_file_name(name).is_some() {
                continue;
            }
            for batch in read_file(&path, None).unwrap_or_else(|e| panic!("{e}")) {
                let col = |name: &str| {
                    batch
                        .column_by_name(name)
                        .unwrap_or_else(|| panic!("{} has no column {name}", path.display()))
                };
                let ts = col("timestamp")
                    .as_any()
                    .downcast_ref::<TimestampMillisecondArray>()
                    .unwrap_or_else(|| panic!("timestamp type"));
                let ids = col("container_id")
                    .as_any()
                    .downcast_ref::<StringArray>()
                    .unwrap_or_else(|| panic!("container_id type"));
                let metrics: Vec<&Int64Array> = METRICS
                    .iter()
                    .map(|m| {
                        col(m.name)
                            .as_any()
                            .downcast_ref::<Int64Array>()
                            .unwrap_or_else(|| panic!("{} type", m.name))
                    })
                    .collect();
                for r in 0..batch.num_rows() {
                    let values = metrics
                        .iter()
                        .map(|a| (!a.is_null(r)).then(|| a.value(r)))
                        .collect();
                    rows.insert((ts.value(r), ids.value(r).to_string()), values);
                }
            }
        }
    }
    rows
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scraped_values_match_the_parquet_rows_of_the_same_sample() {
    // Counters move between (and during) cycles: only the same sample can match.
    let run = AgentRun::start(
        3,
        Duration::from_millis(200),
        Duration::from_secs(1),
        Duration::from_millis(23),
    )
    .await;
    let addr = run.addr;
    let fixture = run.fixture.clone();
    let data_dir = run.data_dir.clone();

    // Scrape while it runs: several distinct samples.
    let mut scraped: Vec<ExpoSample> = Vec::new();
    let mut timestamps = std::collections::BTreeSet::new();
    for _ in 0..100 {
        tokio::time::sleep(Duration::from_millis(90)).await;
        let resp = tokio::task::spawn_blocking(move || http_get(addr, "/metrics", None))
            .await
            .unwrap_or_else(|e| panic!("{e}"))
            .unwrap_or_else(|e| panic!("scrape: {e}"));
        assert_eq!(resp.status, 200, "{}", resp.body);
        let samples: Vec<ExpoSample> = parse_text(&resp.body)
            .into_iter()
            .filter(|s| s.name.starts_with("container_"))
            .collect();
        if samples.is_empty() {
            continue;
        }
        timestamps.extend(samples.iter().filter_map(|s| s.timestamp_ms));
        scraped.extend(samples);
        if timestamps.len() >= 5 {
            break;
        }
    }
    assert!(
        timestamps.len() >= 5,
        "fewer than 5 samples scraped: {timestamps:?}"
    );

    let _data = run.stop().await;
    let scraped = per_device_summed(scraped);

    let rows = parquet_rows(&data_dir);
    let index = Index::load(&index_path(&data_dir))
        .unwrap_or_else(|e| panic!("{e}"))
        .unwrap_or_else(|| panic!("no index.json"));
    let mut checked = 0;
    for s in &scraped {
        let id = s
            .labels
            .get("id")
            .unwrap_or_else(|| panic!("no id label: {s:?}"));
        let container = fixture
            .containers
            .iter()
            .find(|c| format!("/{}", c.cgroup_path) == *id)
            .unwrap_or_else(|| panic!("id {id} is not a fixture cgroup"));
        let ts = s
            .timestamp_ms
            .unwrap_or_else(|| panic!("no timestamp: {s:?}"));
        let row = rows
            .get(&(ts, container.short_id.clone()))
            .unwrap_or_else(|| panic!("no Parquet row for {} at {ts}", container.short_id));
        let (_, column, factor) = EXPECTED
            .iter()
            .find(|(name, _, _)| *name == s.name)
            .unwrap_or_else(|| panic!("unexpected family {}", s.name));
        let stored = row[metric_index(column).unwrap_or_else(|| panic!("column {column}"))];
        let weight = row[metric_index("cpu_weight").unwrap_or_else(|| panic!("cpu_weight"))];
        let expected = match (stored, *column) {
            (Some(v), _) => v as f64 * factor,
            (None, "memory_limit_bytes" | "pids_max") => 0.0,
            // v2: cAdvisor's conversion of cpu.weight to shares.
            (None, "cpu_shares") => match weight {
                Some(w) => (2 + ((w - 1) * 262_142) / 9_999) as f64,
                None => panic!("{} served without cpu_shares or cpu_weight", s.name),
            },
            (None, _) => panic!("{} served but {column} is null in Parquet", s.name),
        };
        let got: f64 = s
            .value
            .parse()
            .unwrap_or_else(|e| panic!("{}: {e}", s.value));
        assert!(
            (got - expected).abs() <= expected.abs() * 1e-12,
            "{}{:?} at {ts}: served {got}, Parquet {expected}",
            s.name,
            s.labels
        );
        // Labels: what index.json knows of the container, nothing invented.
        let entry = &index.containers[&container.short_id];
        assert_eq!(s.labels.get("namespace"), entry.namespace.as_ref(), "{s:?}");
        assert_eq!(s.labels.get("pod"), entry.pod_name.as_ref(), "{s:?}");
        assert_eq!(
            s.labels.get("container"),
            entry.container_name.as_ref(),
            "{s:?}"
        );
        checked += 1;
    }
    // Every family of every container in every scraped sample was there.
    let per_sample = scraped
        .iter()
        .filter(|s| s.name == "container_cpu_usage_seconds_total")
        .count();
    assert_eq!(
        checked,
        per_sample * EXPECTED.len(),
        "families missing in some scrape"
    );
    assert!(per_sample >= 5 * 3, "{per_sample}");
    let named = scraped
        .iter()
        .filter(|s| s.labels.get("pod").map(String::as_str) == Some("checkout-7d9f"))
        .count();
    assert!(
        named >= 5 * EXPECTED.len(),
        "the first container carries its pod labels"
    );
}

/// The disk families are served per device (a `device` label, as cAdvisor's); the Parquet
/// row holds their sum: each (family, series without `device`, timestamp) summed (every
/// sample once: two scrapes of one interval serve it twice), and the
/// per-device values checked to be whole numbers on the way.
fn per_device_summed(samples: Vec<ExpoSample>) -> Vec<ExpoSample> {
    type Series = (String, Vec<(String, String)>, Option<i64>);
    let mut out: Vec<ExpoSample> = Vec::new();
    // One value per series and timestamp (two scrapes within an interval serve the same
    // sample), the device series then summed over devices.
    let mut seen = std::collections::BTreeSet::new();
    let mut per_device: BTreeMap<(Series, String), f64> = BTreeMap::new();
    for mut s in samples {
        let key: Series = (
            s.name.clone(),
            s.labels.clone().into_iter().collect(),
            s.timestamp_ms,
        );
        if !seen.insert(key) {
            continue;
        }
        let Some(device) = s.labels.remove("device") else {
            out.push(s);
            continue;
        };
        let v: f64 = s
            .value
            .parse()
            .unwrap_or_else(|e| panic!("{}: {e}", s.value));
        assert_eq!(v.fract(), 0.0, "{} per device: {v}", s.name);
        let labels = s.labels.into_iter().collect();
        per_device.insert(((s.name, labels, s.timestamp_ms), device), v);
    }
    let mut sums: BTreeMap<Series, f64> = BTreeMap::new();
    for ((series, _), v) in per_device {
        *sums.entry(series).or_default() += v;
    }
    for ((name, labels, timestamp_ms), v) in sums {
        out.push(ExpoSample {
            name,
            labels: labels.into_iter().collect(),
            value: v.to_string(),
            timestamp_ms,
        });
    }
    out
}
