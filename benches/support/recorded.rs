//! Recorded data for the benchmarks, written with the store's own writer: container ids and
//! their index, and hours of a node's files with a story in them (busy, throttled, reading,
//! growing containers among quiet ones). Shared by `viewer` and `cluster_top`.

#![allow(dead_code)] // each benchmark uses a part

use std::path::Path;

use chrono::{DateTime, Duration as Span, Utc};
use fine_grained_monitor::store::index::{ContainerEntry, Index};
use fine_grained_monitor::store::layout;
use fine_grained_monitor::store::schema::METRICS;
use fine_grained_monitor::store::writer::{SampleBuffer, write_data_file};

/// Seconds per data file, as the agent's default rotation.
pub const ROTATION: i64 = 90;

pub fn ids(n: usize) -> Vec<String> {
    (0..n)
        .map(|i| format!("{:012x}", 0xbe00_0000_0000u64 + i as u64))
        .collect()
}

pub fn index_for(ids: &[String], earliest: DateTime<Utc>, latest: DateTime<Utc>) -> Index {
    let mut index = Index::empty(latest, ROTATION as u64);
    index.extend_range(earliest, latest);
    for (i, id) in ids.iter().enumerate() {
        index.containers.insert(
            id.clone(),
            ContainerEntry {
                full_id: format!("{id}{}", "0".repeat(52)),
                pod_uid: Some(format!("uid-{i}")),
                qos_class: "Burstable".into(),
                first_seen: earliest,
                last_seen: latest,
                pod_name: Some(format!("app-{i}-7d9f8b6c5-x{i:03}")),
                namespace: Some(["default", "shop", "kube-system"][i % 3].into()),
                labels: Some([("app".to_string(), format!("app-{i}"))].into()),
                container_name: Some(format!("app-{i}")),
                cgroup_path: None,
                runtime: Some("containerd".into()),
                sandbox: false,
                requests: None,
            },
        );
    }
    index
}

pub fn overview_buffer(ids: &[String], start: DateTime<Utc>, secs: i64) -> SampleBuffer {
    let mut buf = SampleBuffer::new();
    for s in 0..secs {
        let t = start + Span::seconds(s);
        let abs = t.timestamp();
        for (n, id) in ids.iter().enumerate() {
            let n = n as i64;
            let row: Vec<Option<i64>> = METRICS
                .iter()
                .map(|m| match m.name {
                    "cpu_usage_usec" => Some(abs * (5_000 + n * 3_000) + (abs * 7919 + n) % 3_000),
                    "cpu_nr_periods" => Some(abs * 10),
                    "cpu_nr_throttled" if n % 10 == 0 => Some(abs * 3),
                    "cpu_throttled_usec" if n % 10 == 0 => Some(abs * 30_000),
                    "cpu_quota_usec" if n % 10 == 0 => Some(100_000),
                    "cpu_period_usec" => Some(100_000),
                    "memory_limit_bytes" if n % 10 == 0 => Some(1 << 30),
                    "io_read_bytes" | "io_pressure_some_usec" if n % 7 == 0 => {
                        Some(abs * (1000 + n))
                    }
                    name if name.starts_with("memory") && name.ends_with("bytes") => {
                        Some((64 << 20) + n * (1 << 20) + (abs % 300) * 4096)
                    }
                    "memory_limit_bytes" | "cpu_quota_usec" | "pids_max" => None,
                    _ => Some(0),
                })
                .collect();
            buf.push(t.timestamp_millis(), id, &row);
        }
    }
    buf
}

/// `hours` of `containers` containers in 90 s files, written on two threads.
pub fn overview_data(dir: &Path, end: DateTime<Utc>, containers: usize, hours: i64) -> Vec<String> {
    let ids = ids(containers);
    let first = end - Span::hours(hours);
    let starts: Vec<DateTime<Utc>> = (0..hours * 3600 / ROTATION)
        .map(|k| first + Span::seconds(ROTATION * k))
        .collect();
    std::thread::scope(|scope| {
        for part in starts.chunks(starts.len().div_ceil(2)) {
            let ids = &ids;
            scope.spawn(move || {
                for &t in part {
                    write_data_file(dir, "node-1", t, &overview_buffer(ids, t, ROTATION))
                        .expect("write");
                }
            });
        }
    });
    index_for(&ids, first, end - Span::seconds(1))
        .save(&layout::index_path(dir))
        .expect("index");
    ids
}
