//! The truth test (issue #29): what the agent records from inside its pod, column by column,
//! equals what the host reads from the same cgroup files at the same moment, and what the
//! agent's `/metrics` serves equals what it recorded.
//!
//! The host side is the crate's own collector run by this test as root in the host's
//! namespaces (host `/proc`, host mounts): the same parsers, so a difference can only come from
//! what the pod's namespaces and user change (a PID namespace hiding `cgroup.procs`, a file
//! the agent's user cannot read). It reads every 100 ms; each recorded value must lie within
//! the host's readings of the interval around its timestamp ("the change one sample allows";
//! for limits and peaks, which the agent re-reads every 30 cycles, of those 30 cycles).
//! The filesystem columns come from the node's kubelet, not from cgroup files: the test asks
//! the same kubelet (`/stats/summary` through the API server) every second, and each recorded
//! value must be one the kubelet gave within the agent's `--fs-interval` (30 s) before it.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::time::{Duration, Instant};

use arrow_array::{Array, Int64Array, StringArray, TimestampMillisecondArray};
use chrono::Utc;
use fine_grained_monitor::agent::DiscoveryMode;
use fine_grained_monitor::agent::collector::Collector;
use fine_grained_monitor::agent::kubelet;
use fine_grained_monitor::agent::mountinfo;
use fine_grained_monitor::agent::network::PodNetwork;
use fine_grained_monitor::agent::prometheus::cadvisor::{Convert, FAMILIES};
use fine_grained_monitor::agent::sampler::{self, ReadErrors};
use fine_grained_monitor::agent::{ContainerSample, slots};
use fine_grained_monitor::store::reader::read_file;
use fine_grained_monitor::store::schema::{CONTAINER_ID, METRICS, TIMESTAMP, metric_index};
use serde_json::Value;

use crate::data;
use crate::support::node::World;

/// Columns the agent cannot read from inside its pod, with the reason (docs/agent.md lists
/// them). Empty: every column is read as the host reads it.
pub const UNREADABLE_IN_POD: &[(&str, &str)] = &[];

/// The agent's interval in the README's NodeMonitor (1 s) and its limits re-read period.
const INTERVAL_MS: i64 = 1000;
const LIMITS_EVERY: i64 = 30;
/// How far back a recorded filesystem value may come from: the agent asks the kubelet every
/// 30 s (`--fs-interval`), plus the request's own time.
const FS_REACH_MS: i64 = 36_000;

/// One host reading of a container: time and values in schema order.
type Reading = (i64, Vec<Option<i64>>);

/// Reads the workload containers as the host sees them for `for_how_long`, scraping the
/// agent's /metrics once a second meanwhile; then compares with what the agent recorded.
pub fn agent_records_what_the_host_reads(world: &World, monitor: &Value, workloads: &[String]) {
    let hierarchies = mountinfo::from_mountinfo_file(Path::new("/proc/self/mountinfo"))
        .expect("the host's cgroup hierarchies");
    let slow: Vec<usize> = sampler::plan(&hierarchies)
        .iter()
        .flat_map(|f| f.source.slow_slots().iter().copied())
        .collect();
    let mut host = Collector::new(hierarchies, DiscoveryMode::Kubernetes, "/proc".into(), 1, 1);
    let ip = monitor["status"]["podIP"].as_str().expect("pod IP");
    let index = data::index().expect("index.json");
    let full_ids: BTreeMap<String, String> = workloads
        .iter()
        .map(|short| {
            let full = index["containers"][short]["full_id"]
                .as_str()
                .unwrap_or_else(|| panic!("{short} in index.json"))
                .to_string();
            (full, short.clone())
        })
        .collect();

    let mut readings: HashMap<String, Vec<Reading>> = HashMap::new();
    let mut scrapes = Vec::new();
    let mut errors = ReadErrors::default();
    let began = Instant::now();
    let mut next_scrape = Instant::now();
    // Long enough that a limit or peak recorded at the end was re-read inside the readings.
    let reading_for = Duration::from_millis((FS_REACH_MS + 10 * INTERVAL_MS) as u64);
    let fs_columns: Vec<usize> = kubelet::columns().into_iter().flatten().collect();
    // (pod UID, container name) of each workload, as the kubelet names them.
    let names: HashMap<String, (String, String)> = workloads
        .iter()
        .map(|short| {
            let entry = &index["containers"][short];
            let text = |f: &str| entry[f].as_str().unwrap_or_default().to_string();
            (short.clone(), (text("pod_uid"), text("container_name")))
        })
        .collect();
    let mut kubelet_says = kubelet::FsByContainer::new();
    // The pods' network as the host reads it (the truth set's pods are not on the host's network).
    let mut network = PodNetwork::new(std::path::Path::new("/proc"));
    while began.elapsed() < reading_for {
        let now = Utc::now();
        let mut cycle = host.collect(now, &mut errors);
        network.sample(&mut cycle, &|path| host.pids_of(path), &|_| Some(false));
        for sample in &mut cycle.containers {
            if let Some(short) = full_ids.get(&sample.full_id) {
                let (uid, name) = &names[short];
                if let Some(stats) = kubelet::lookup(&kubelet_says, uid, name) {
                    kubelet::apply(stats, &kubelet::columns(), &mut sample.values);
                }
                readings
                    .entry(short.clone())
                    .or_default()
                    .push((now.timestamp_millis(), sample.values.clone()));
            }
        }
        if Instant::now() >= next_scrape {
            next_scrape += Duration::from_secs(1);
            if let Some(text) = scrape(ip) {
                scrapes.push(text);
            }
            if let Some(summary) = kubelet_summary(world) {
                kubelet_says = summary;
            }
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let window = (
        readings.values().flatten().map(|r| r.0).min().unwrap_or(0),
        readings.values().flatten().map(|r| r.0).max().unwrap_or(0),
    );
    // The agent's 5 s files holding the window are complete a rotation later.
    let recorded = crate::kube_cli::eventually(
        world,
        "the agent's files cover the host's readings",
        Duration::from_secs(30),
        || {
            let rows = recorded_rows(workloads);
            let covered = workloads.iter().all(|w| {
                rows.get(w)
                    .is_some_and(|r| r.iter().any(|(t, _)| *t >= window.1))
            });
            if covered {
                Ok(rows)
            } else {
                Err("not yet".to_string())
            }
        },
    );

    let mut compared = 0;
    let mut mismatches = Vec::new();
    let mut null_both: BTreeMap<&str, usize> = BTreeMap::new();
    for short in workloads {
        let host_rows = &readings[short];
        let rows = &recorded[short];
        let inside: Vec<&(i64, Vec<Option<i64>>)> = rows
            .iter()
            .filter(|(t, _)| *t >= window.0 + INTERVAL_MS && *t <= window.1 - INTERVAL_MS)
            .collect();
        assert!(
            inside.len() >= 30,
            "{short}: {} recorded samples inside the host's window",
            inside.len()
        );
        for (t, values) in inside {
            for (m, def) in METRICS.iter().enumerate() {
                let reach = if fs_columns.contains(&m) {
                    FS_REACH_MS
                } else if slow.contains(&m) {
                    (LIMITS_EVERY + 1) * INTERVAL_MS
                } else {
                    INTERVAL_MS
                };
                if *t - reach < window.0 {
                    continue; // read before the host started reading
                }
                let around: Vec<Option<i64>> = host_rows
                    .iter()
                    .filter(|(h, _)| *h >= t - reach && *h <= t + INTERVAL_MS)
                    .map(|(_, v)| v[m])
                    .collect();
                let agent = values[m];
                compared += 1;
                // A byte gauge (memory) may dip between two host readings a second apart
                // and come back: a few pages of slack, not more.
                let slack = if def.kind == fine_grained_monitor::store::schema::MetricKind::Gauge
                    && def.unit == "bytes"
                {
                    GAUGE_BYTES_SLACK
                } else {
                    0
                };
                let verdict = judge(agent, &around, slack);
                match verdict {
                    Verdict::Equal => {}
                    Verdict::BothNull => *null_both.entry(def.name).or_default() += 1,
                    Verdict::Differs(why) => {
                        let allowed = UNREADABLE_IN_POD.iter().any(|(c, _)| *c == def.name)
                            && agent.is_none();
                        if !allowed {
                            mismatches.push(format!("{short} {} at {t}: {why}", def.name));
                        }
                    }
                }
            }
        }
    }
    eprintln!(
        "figure: truth test: {compared} recorded values of {} columns x {} containers within the host's readings; null on both sides: {:?}",
        METRICS.len(),
        workloads.len(),
        null_both.keys().collect::<Vec<_>>()
    );
    assert!(
        mismatches.is_empty(),
        "{} recorded values differ from the host's (first 30):\n{}",
        mismatches.len(),
        mismatches
            .iter()
            .take(30)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    );
    let processes = slots::PROCESSES;
    for short in workloads {
        let last = recorded[short].last().expect("rows");
        assert!(
            last.1[processes].is_some_and(|n| n >= 1),
            "{short}: pids_processes {:?}, the workload runs a process",
            last.1[processes]
        );
    }
    metrics_serve_what_was_recorded(&scrapes, &index, workloads, &recorded);
}

/// The node's kubelet's `/stats/summary`, through the API server's node proxy (as admin).
fn kubelet_summary(world: &World) -> Option<kubelet::FsByContainer> {
    let path = format!(
        "/api/v1/nodes/{}/proxy/stats/summary",
        crate::support::node::NODE_NAME
    );
    let out = crate::kube_cli::run(world.cp.kubectl().args(["get", "--raw", &path]));
    if !out.status.success() {
        return None;
    }
    kubelet::parse_summary(&out.stdout).ok()
}

enum Verdict {
    Equal,
    BothNull,
    Differs(String),
}

/// How far below or above the host's readings around it a byte gauge may be (64 pages).
const GAUGE_BYTES_SLACK: i64 = 256 << 10;

/// A recorded value against the host's readings around it, `slack` either side.
fn judge(agent: Option<i64>, around: &[Option<i64>], slack: i64) -> Verdict {
    let host: Vec<i64> = around.iter().flatten().copied().collect();
    match agent {
        None if host.is_empty() => Verdict::BothNull,
        None => Verdict::Differs(format!("null, the host reads {host:?}")),
        Some(v) if host.is_empty() => Verdict::Differs(format!("{v}, the host reads null")),
        Some(v) => {
            let (lo, hi) = (host.iter().min(), host.iter().max());
            match (lo, hi) {
                (Some(lo), Some(hi)) if *lo - slack <= v && v <= *hi + slack => Verdict::Equal,
                _ => Verdict::Differs(format!("{v} outside the host's {lo:?}..={hi:?}")),
            }
        }
    }
}

/// Every completed row of these containers: (timestamp ms, values in schema order).
/// Each container's recorded rows: (timestamp ms, every metric column).
type Recorded = HashMap<String, Vec<(i64, Vec<Option<i64>>)>>;

fn recorded_rows(shorts: &[String]) -> Recorded {
    let mut out: Recorded = HashMap::new();
    for file in data::parquet_files() {
        let Ok(batches) = read_file(&file, None) else {
            continue;
        };
        for batch in batches {
            let ts = batch
                .column_by_name(TIMESTAMP)
                .and_then(|c| c.as_any().downcast_ref::<TimestampMillisecondArray>())
                .expect("timestamp column");
            let ids = batch
                .column_by_name(CONTAINER_ID)
                .and_then(|c| c.as_any().downcast_ref::<StringArray>())
                .expect("container_id column");
            let columns: Vec<Option<&Int64Array>> = METRICS
                .iter()
                .map(|m| {
                    batch
                        .column_by_name(m.name)
                        .and_then(|c| c.as_any().downcast_ref::<Int64Array>())
                })
                .collect();
            for row in 0..batch.num_rows() {
                let id = ids.value(row);
                if !shorts.iter().any(|s| s == id) {
                    continue;
                }
                let values = columns
                    .iter()
                    .map(|c| c.and_then(|c| (!c.is_null(row)).then(|| c.value(row))))
                    .collect();
                out.entry(id.to_string())
                    .or_default()
                    .push((ts.value(row), values));
            }
        }
    }
    for rows in out.values_mut() {
        rows.sort_by_key(|r| r.0);
        rows.dedup_by_key(|r| r.0);
    }
    out
}

fn scrape(ip: &str) -> Option<String> {
    use std::io::{Read, Write};
    let addr: std::net::SocketAddr = format!("{ip}:9810").parse().ok()?;
    let mut stream = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(2)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    stream
        .write_all(b"GET /metrics HTTP/1.1\r\nHost: agent\r\nConnection: close\r\n\r\n")
        .ok()?;
    let mut text = String::new();
    stream.read_to_string(&mut text).ok()?;
    Some(text)
}

/// Every `/metrics` sample of the workload containers equals the recorded value of the same
/// cycle (same timestamp), converted as the family says.
fn metrics_serve_what_was_recorded(
    scrapes: &[String],
    index: &Value,
    workloads: &[String],
    recorded: &Recorded,
) {
    let by_id: HashMap<String, &String> = workloads
        .iter()
        .map(|short| {
            let path = index["containers"][short]["cgroup_path"]
                .as_str()
                .expect("cgroup_path in index.json");
            (format!("/{}", path.trim_start_matches('/')), short)
        })
        .collect();
    let mut checked = 0;
    let mut processes_served = 0;
    // Per-device disk families: their devices' sum per (container, family, cycle).
    let mut device_sums: HashMap<(String, &'static str, i64), f64> = HashMap::new();
    for text in scrapes {
        for line in text.lines().filter(|l| l.starts_with("container_")) {
            let Some((name, rest)) = line.split_once('{') else {
                continue;
            };
            let Some((labels, value_ts)) = rest.rsplit_once('}') else {
                continue;
            };
            let Some(id) = labels
                .split("id=\"")
                .nth(1)
                .and_then(|r| r.split('"').next())
            else {
                continue;
            };
            let Some(short) = by_id.get(id) else {
                continue;
            };
            let mut parts = value_ts.split_whitespace();
            let (Some(value), Some(ts)) = (parts.next(), parts.next()) else {
                continue;
            };
            let (Ok(value), Ok(ts)) = (value.parse::<f64>(), ts.parse::<i64>()) else {
                continue;
            };
            let Some(family) = FAMILIES.iter().find(|f| f.name == name) else {
                continue;
            };
            if family.convert == Convert::PerDevice {
                *device_sums
                    .entry(((*short).clone(), family.source, ts))
                    .or_default() += value;
                continue;
            }
            let Some((_, values)) = recorded[*short].iter().find(|(t, _)| *t == ts) else {
                continue; // a cycle whose file is not complete yet
            };
            let column = metric_index(family.source).expect("family column");
            let sample = ContainerSample {
                short_id: (*short).clone(),
                full_id: String::new(),
                cgroup_path: id.to_string(),
                values: values.clone(),
                pod_uid: None,
                sandbox: false,
                devices: Vec::new(),
            };
            let expected: f64 = family
                .value(&sample, column)
                .map(|v| v.to_string())
                .and_then(|v| v.parse().ok())
                .unwrap_or(f64::NAN);
            assert!(
                (expected - value).abs() <= 1e-9 * expected.abs().max(1.0),
                "/metrics {name} of {short} at {ts}: served {value}, recorded {expected}"
            );
            checked += 1;
            if name == "container_processes" {
                processes_served += 1;
                assert!(value >= 1.0, "container_processes of {short}: {value}");
            }
        }
    }
    for ((short, column, ts), sum) in &device_sums {
        let Some((_, values)) = recorded[short].iter().find(|(t, _)| t == ts) else {
            continue;
        };
        let recorded_sum = values[metric_index(column).expect("column")].unwrap_or(0) as f64;
        assert_eq!(
            *sum, recorded_sum,
            "{short} {column} at {ts}: devices' sum on /metrics"
        );
    }
    assert!(
        checked > 50 && processes_served > 0,
        "/metrics samples compared with recorded cycles: {checked} ({processes_served} container_processes)"
    );
    eprintln!("figure: truth test: {checked} /metrics samples equal the recorded cycle's values");
}
