//! The shipped DuckDB queries (examples/queries) against data in a real S3
//! server (SeaweedFS), made by the agent's own writer and laid out as the
//! agent uploads it: each answers the question it is for, and gives the same
//! answer after compaction (merged files replacing raw ones, rates and
//! summaries beside them); the views' own derivation of rates and summaries
//! (rows not compacted yet) gives what compaction writes; the Spark script
//! gives DuckDB's answers.
//!
//! Needs DuckDB and its httpfs extension from PyPI in `target/py`
//! (`tools/setup.sh` installs examples/queries/requirements.txt there; or
//! point FGM_PYTHON at a Python that has them).

// Test crate: a panic is the failure report.
#![allow(clippy::unwrap_used)]

mod s3_support;
mod support;

use std::path::{Path, PathBuf};
use std::process::Command;

use chrono::{DateTime, Utc};
use fine_grained_monitor::export::keys;
use fine_grained_monitor::store::datasets;
use fine_grained_monitor::store::schema::{METRICS, metric_index};
use s3_support::queries::{Target, python, rows};
use s3_support::{S3Server, data};

const PREFIX: &str = "fgm/prod";
const BUCKET: &str = "queries";

fn target(server: &S3Server) -> Target<'_> {
    Target {
        server,
        bucket: BUCKET,
        prefix: PREFIX,
    }
}

/// Runs a shipped query; its rows as JSON objects.
fn query(server: &S3Server, file: &str, from: &str, to: &str) -> Vec<serde_json::Value> {
    target(server).query(file, from, to)
}

const LIMIT: i64 = 512 << 20;

/// Six containers a node: `hot` burns 2 cores, `throttled` is throttled every
/// second, `leaky` climbs to its memory limit and is OOM-killed at the end,
/// `odd` has noisy counters, a reset and null values; the rest idle at 0.1 core.
fn values(c: usize, since: i64, node_bias: i64) -> Vec<Option<i64>> {
    let mut v = vec![Some(0i64); METRICS.len()];
    let set =
        |v: &mut Vec<Option<i64>>, name: &str, x: i64| v[metric_index(name).unwrap()] = Some(x);
    // Network counters are a pod's, on its sandbox's rows: null elsewhere. `idle-a` stands in
    // for a sandbox receiving 1 MB/s (plus the node's bias in kB/s) and sending 1 kB/s.
    for name in [
        "network_receive_bytes",
        "network_receive_packets",
        "network_transmit_bytes",
        "network_transmit_packets",
    ] {
        v[metric_index(name).unwrap()] = None;
    }
    if c == 5 {
        return odd(v, since);
    }
    let cores_milli = match c {
        0 => 2000 + node_bias,
        _ => 100 + c as i64,
    };
    set(&mut v, "cpu_usage_usec", since * cores_milli * 1000);
    set(&mut v, "cpu_nr_throttled", if c == 1 { since } else { 0 });
    set(
        &mut v,
        "cpu_throttled_usec",
        if c == 1 { since * 50_000 } else { 0 },
    );
    let ws = if c == 2 {
        100 * (1 << 20) + since * (LIMIT - (100 << 20)) / 1800
    } else {
        64 << 20
    };
    set(&mut v, "memory_working_set_bytes", ws);
    set(&mut v, "memory_limit_bytes", LIMIT);
    if c == 3 {
        set(
            &mut v,
            "network_receive_bytes",
            since * (1_000_000 + node_bias * 1000),
        );
        set(&mut v, "network_transmit_bytes", since * 1000);
    }
    v
}

/// The `odd` container: what compaction's rates and the SQL views must derive alike.
fn odd(mut v: Vec<Option<i64>>, since: i64) -> Vec<Option<i64>> {
    let mut set = |name: &str, x: Option<i64>| v[metric_index(name).unwrap()] = x;
    let cpu = if since < 900 {
        since * 300_000 + since * 7919 % 200_000
    } else {
        (since - 900) * 250_000 + since * 31 % 1000
    };
    set("cpu_usage_usec", Some(cpu));
    set("cpu_user_usec", Some(cpu * 2 / 3));
    set("cpu_nr_periods", Some(since * 10));
    let hole = (300..303).contains(&since);
    set(
        "io_read_bytes",
        (!hole).then_some(since * 8192 + since * since % 4096),
    );
    set("io_write_ops", Some(since * 3 + since % 5));
    set(
        "cpu_pressure_some_usec",
        Some(since * 1234 + since * since % 977),
    );
    set("memory_oom_kill_events", Some(since / 600));
    set(
        "memory_working_set_bytes",
        Some((64 << 20) + since * 7919 % 5_000_000),
    );
    set("pids_current", Some(5 + since % 7));
    set("cpu_quota_usec", Some(150_000));
    set("cpu_period_usec", Some(100_000));
    v
}

fn ids(node: &str) -> Vec<String> {
    (0..6)
        .map(|c| format!("{:x}{c:011x}", node.len() + 10))
        .collect()
}

async fn load_day(server: &S3Server, start: DateTime<Utc>) -> s3_support::data::Checksum {
    let client = server.bucket(BUCKET).await;
    let names = ["hot", "throttled", "leaky", "idle-a", "idle-b", "odd"];
    for (bias, node) in [(0, "node-1"), (50, "node-22")] {
        let ids = ids(node);
        let id_refs: Vec<&str> = ids.iter().map(String::as_str).collect();
        let files = data::files_with(node, start, 20, 90, &id_refs, |c, s| values(c, s, bias));
        data::upload(&client, PREFIX, node, files).await;
        // IO per device: `hot` writes to vda (1 MB/s on node-1, 2 MB/s on node-22), `leaky`
        // reads 0.5 MB/s from vdb.
        let (hot, leaky) = (ids[0].clone(), ids[2].clone());
        let write_rate = 1_000_000 * (1 + bias / 50);
        data::upload_dataset(
            &client,
            PREFIX,
            node,
            &datasets::DEVICES,
            (start, 20, 90),
            |s| {
                let row = |container: &str, device: &str, minor: i64, read: i64, write: i64| {
                    datasets::Row {
                        timestamp_ms: (start + chrono::Duration::seconds(s)).timestamp_millis(),
                        container: container.to_string(),
                        texts: vec![std::sync::Arc::from(device)],
                        ints: vec![
                            Some(253),
                            Some(minor),
                            Some(read),
                            Some(write),
                            Some(s),
                            Some(s),
                        ],
                    }
                };
                vec![
                    row(&hot, "/dev/vda", 0, 0, write_rate * s),
                    row(&leaky, "/dev/vdb", 16, 500_000 * s, 0),
                ]
            },
        )
        .await;
        let day = start.date_naive();
        let containers: String = ids
            .iter()
            .zip(names)
            .map(|(id, name)| {
                format!(
                    "{}\n",
                    serde_json::json!({"container_id": id, "namespace": "shop",
                        "pod_name": format!("{name}-{node}"), "container_name": name,
                        "qos_class": "Burstable", "labels": {"app": name},
                        "first_seen": start})
                )
            })
            .collect();
        client
            .put_object(
                &keys::containers_key(PREFIX, node, day),
                containers.into(),
                "application/x-ndjson",
            )
            .await
            .unwrap();
        let kill = serde_json::json!({"time": start + chrono::Duration::seconds(1799), "kind": "oom_killed",
            "namespace": "shop", "pod": format!("leaky-{node}"), "container": "leaky",
            "container_id": ids[2], "restart_count": 1, "reason": "OOMKilled", "exit_code": 137});
        client
            .put_object(
                &keys::events_key(PREFIX, node, day),
                format!("{kill}\n").into(),
                "application/x-ndjson",
            )
            .await
            .unwrap();
    }
    data::visible_checksums(&client, PREFIX)
        .await
        .values()
        .fold(Default::default(), |acc: data::Checksum, c| {
            data::Checksum {
                rows: acc.rows + c.rows,
                timestamp_sum: acc.timestamp_sum.wrapping_add(c.timestamp_sum),
                value_sum: acc.value_sum.wrapping_add(c.value_sum),
            }
        })
}

/// Answers of the shipped queries over `from..to` (not whole hours: from the
/// rates), `hours` (whole hours: from the hourly summaries) and the minutes
/// before the OOM kills.
fn check_answers(
    server: &S3Server,
    (from, to): (&str, &str),
    hours: (&str, &str),
    kill_window: (&str, &str),
) -> Vec<Vec<serde_json::Value>> {
    let top = query(server, "top_cpu_p99.sql", from, to);
    let top_hours = query(server, "top_cpu_p99.sql", hours.0, hours.1);
    for top in [&top, &top_hours] {
        assert_eq!(top.len(), 10, "{top:?}");
        assert_eq!(
            top[0]["pod_name"], "hot-node-22",
            "the hottest container of all nodes first: {top:?}"
        );
        assert_eq!(top[0]["node"], "node-22");
        let p99 = top[0]["p99_cores"].as_f64().unwrap();
        assert!((p99 - 2.05).abs() <= 2.05 * 0.01, "{p99}");
        assert_eq!(top[1]["pod_name"], "hot-node-1");
        // Every second but the first has a rate (the first has no previous sample).
        assert_eq!(top[0]["samples"], 1799);
    }

    let climb = query(server, "oom_memory_climb.sql", kill_window.0, kill_window.1);
    let kills: std::collections::BTreeSet<String> = climb
        .iter()
        .map(|r| r["node"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        kills.len(),
        2,
        "one kill per node, found from any node: {climb:?}"
    );
    let one: Vec<&serde_json::Value> = climb.iter().filter(|r| r["node"] == "node-1").collect();
    assert!(
        one.len() >= 30,
        "5 minutes in 10-second steps: {}",
        one.len()
    );
    let ws: Vec<i64> = one
        .iter()
        .map(|r| r["working_set_bytes"].as_i64().unwrap())
        .collect();
    assert!(ws.windows(2).all(|w| w[0] <= w[1]), "memory climbs: {ws:?}");
    assert!(
        *ws.last().unwrap() > LIMIT * 99 / 100,
        "up to the limit: {ws:?}"
    );
    assert_eq!(one[0]["limit_bytes"].as_i64(), Some(LIMIT));

    let throttled = query(server, "throttled_pods.sql", from, to);
    assert_eq!(throttled.len(), 2, "{throttled:?}");
    assert!(throttled.iter().all(|r| r["container_name"] == "throttled"));

    let network = query(server, "top_pods_network.sql", from, to);
    assert_eq!(
        network.len(),
        2,
        "one pod with network figures per node: {network:?}"
    );
    assert_eq!(
        network[0]["pod_name"], "idle-a-node-22",
        "the busier node's first: {network:?}"
    );
    assert_eq!(network[1]["pod_name"], "idle-a-node-1");
    let (rx, tx) = (
        network[0]["receive_bytes"].as_f64().unwrap(),
        network[0]["transmit_bytes"].as_f64().unwrap(),
    );
    // The range's seconds times the rates, one interval short at most at each end.
    let secs = (DateTime::parse_from_rfc3339(to).unwrap()
        - DateTime::parse_from_rfc3339(from).unwrap())
    .num_seconds() as f64;
    assert!(
        (rx / 1_050_000.0 - secs).abs() <= 2.0,
        "{rx} bytes over {secs} s"
    );
    assert!(
        (tx / 1000.0 - secs).abs() <= 2.0,
        "{tx} bytes over {secs} s"
    );
    let devices = query(server, "top_io_devices.sql", from, to);
    assert_eq!(
        devices.len(),
        4,
        "two containers with IO per node: {devices:?}"
    );
    assert_eq!(devices[0]["pod_name"], "hot-node-22", "{devices:?}");
    assert_eq!(devices[0]["device"], "/dev/vda");
    assert_eq!(devices[1]["pod_name"], "hot-node-1");
    assert_eq!(devices[2]["device"], "/dev/vdb");
    assert_eq!(devices[2]["read_bytes"].as_f64(), Some(500_000.0 * secs));
    assert_eq!(devices[0]["write_bytes"].as_f64(), Some(2_000_000.0 * secs));
    assert_eq!(devices[0]["read_bytes"].as_f64(), Some(0.0));
    vec![top, top_hours, climb, throttled, network, devices]
}

/// What the rate and summary views hold over `from..to`, in a form to compare:
/// per (node, container, column) count, min, max and sum of fgm_rates; every
/// row of fgm_summaries and fgm_histograms; the columns of fgm_rates.
fn derived_views(server: &S3Server, from: &str, to: &str) -> Vec<Vec<serde_json::Value>> {
    let dir = tempfile::tempdir().unwrap();
    let sql = [
        "WITH v AS (UNPIVOT (SELECT node, container_id, \
           COLUMNS(* EXCLUDE (dt, hour, node, container_id, timestamp))::DOUBLE FROM fgm_rates) \
           ON COLUMNS(* EXCLUDE (node, container_id)) INTO NAME col VALUE value) \
         SELECT node, container_id, col, count(value) AS n, min(value) AS lo, max(value) AS hi, \
           sum(value) AS s FROM v GROUP BY ALL ORDER BY ALL",
        "SELECT node, container_id, count(*) AS rows, count(DISTINCT timestamp) AS times, \
           min(timestamp)::VARCHAR AS first FROM fgm_rates GROUP BY ALL ORDER BY ALL",
        "SELECT node, container_id, hour::VARCHAR AS hour, metric, count, min, max, sum \
         FROM fgm_summaries ORDER BY ALL",
        "SELECT node, container_id, hour::VARCHAR AS hour, metric, bucket, count \
         FROM fgm_histograms ORDER BY ALL",
        "SELECT column_name, column_type FROM (DESCRIBE SELECT * FROM fgm_rates) ORDER BY ALL",
    ];
    sql.iter()
        .enumerate()
        .map(|(i, q)| {
            let file = dir.path().join(format!("q{i}.sql"));
            std::fs::write(&file, q).unwrap();
            query(server, file.to_str().unwrap(), from, to)
        })
        .collect()
}

/// The views derived in SQL (before compaction) and read from compaction's
/// objects (after) agree: the same rows, the same values (sums to rounding).
fn assert_same_views(before: &[Vec<serde_json::Value>], after: &[Vec<serde_json::Value>]) {
    assert_eq!(before.len(), after.len());
    for (b, a) in before.iter().zip(after) {
        assert_eq!(b.len(), a.len(), "{b:?}\n{a:?}");
        for (rb, ra) in b.iter().zip(a) {
            let (ob, oa) = (rb.as_object().unwrap(), ra.as_object().unwrap());
            for (k, vb) in ob {
                let va = &oa[k];
                match (k.as_str(), vb.as_f64(), va.as_f64()) {
                    ("s" | "sum", Some(x), Some(y)) => {
                        assert!(
                            (x - y).abs() <= 1e-9 * x.abs().max(1.0),
                            "{k}: {rb} vs {ra}"
                        )
                    }
                    _ => assert_eq!(vb, va, "{k}: {rb} vs {ra}"),
                }
            }
        }
    }
    assert!(before[0].len() > 12 * 20, "every column of every container");
    assert!(
        before[3].len() > before[2].len(),
        "buckets of every summary"
    );
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// The data's start: yesterday 14:00 UTC (hours long closed, so compaction merges them).
fn yesterday_at_two_pm() -> DateTime<Utc> {
    (Utc::now() - chrono::Duration::days(1))
        .date_naive()
        .and_hms_opt(14, 0, 0)
        .unwrap()
        .and_utc()
}

#[test]
fn shipped_duckdb_queries_answer_over_the_bucket_before_and_after_compaction() {
    python();
    let rt = runtime();
    let server = S3Server::start("queries", None);
    let start = yesterday_at_two_pm();
    let before_sums = rt.block_on(load_day(&server, start));
    assert_eq!(before_sums.rows, 2 * 6 * 1800);
    let t = |secs: i64| (start + chrono::Duration::seconds(secs)).to_rfc3339();
    let (from, to) = (t(0), t(1799));
    let (hours, window) = ((t(0), t(3599)), (t(1700), t(1800)));
    let answers = || {
        check_answers(
            &server,
            (&from, &to),
            (&hours.0, &hours.1),
            (&window.0, &window.1),
        )
    };
    let before = answers();
    let views_before = derived_views(&server, &from, &to);

    // One node compacted, the other not: its rates and summaries come from compaction's
    // objects, the other's are derived in SQL, the answers stay.
    let client = server.admin_client(BUCKET);
    let mut args = data::compact_args(&server, BUCKET, PREFIX);
    args.node = Some("node-1".into());
    let report = rt
        .block_on(fine_grained_monitor::export::compact::run_with(
            &client,
            &args,
            Utc::now(),
        ))
        .unwrap();
    assert_eq!(report.input_files, 20, "{report:?}");
    assert_eq!(answers(), before, "same answers half compacted");
    assert_same_views(&views_before, &derived_views(&server, &from, &to));

    // Compaction: merged files written, raw ones still there (grace period), then gone.
    args.node = None;
    let report = rt
        .block_on(fine_grained_monitor::export::compact::run_with(
            &client,
            &args,
            Utc::now(),
        ))
        .unwrap();
    assert_eq!(report.input_files, 20, "{report:?}");
    let during = answers();
    assert_eq!(
        during, before,
        "same answers while merged and raw files coexist"
    );
    let later = Utc::now() + chrono::Duration::hours(1);
    let report = rt
        .block_on(fine_grained_monitor::export::compact::run_with(
            &client, &args, later,
        ))
        .unwrap();
    assert_eq!(report.deleted, 40);
    let after = answers();
    assert_eq!(after, before, "same answers from merged files only");
    assert_same_views(&views_before, &derived_views(&server, &from, &to));

    // A bucket where no pod ever failed has no events.jsonl: the views still exist.
    for node in ["node-1", "node-22"] {
        rt.block_on(client.delete_object(&keys::events_key(PREFIX, node, start.date_naive())))
            .unwrap();
    }
    assert!(query(&server, "oom_memory_climb.sql", &window.0, &window.1).is_empty());
    assert_eq!(query(&server, "top_cpu_p99.sql", &from, &to), before[0]);
}

/// Spark (PySpark + S3A) over the same bucket gives DuckDB's answers: whole
/// hours before compaction (rates and histograms derived by the script),
/// then mid-compaction both a range of minutes (compaction's rates) and
/// whole hours (its summaries). Needs pyspark in target/py and the S3A jars
/// in target/spark-jars (tools/setup.sh), and Java 17+.
#[test]
fn the_shipped_spark_query_reads_the_same_bucket() {
    let python = python();
    let has_pyspark = Command::new(&python)
        .args(["-c", "import pyspark"])
        .status()
        .is_ok_and(|s| s.success());
    let jars = std::env::var_os("FGM_SPARK_JARS")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target/spark-jars"));
    let has_jars = std::fs::read_dir(&jars).is_ok_and(|d| {
        d.flatten()
            .any(|e| e.file_name().to_string_lossy().starts_with("hadoop-aws-"))
    });
    assert!(
        has_pyspark && has_jars,
        "Spark needs pyspark in {} and the S3A jars in {} (hadoop-aws, the AWS SDK bundle): run tools/setup.sh",
        python.display(),
        jars.display()
    );
    let rt = runtime();
    let server = S3Server::start("spark", None);
    let start = yesterday_at_two_pm();
    rt.block_on(load_day(&server, start));
    let t = |secs: i64| (start + chrono::Duration::seconds(secs)).to_rfc3339();
    let key = |r: &serde_json::Value| {
        (
            r["node"].as_str().unwrap().to_string(),
            r["container_id"].as_str().unwrap().to_string(),
            (r["p99_cores"].as_f64().unwrap() * 1000.0).round() as i64,
            r["samples"].as_i64().unwrap(),
        )
    };
    let compare = |from: &str, to: &str, when: &str| {
        let duck = query(&server, "top_cpu_p99.sql", from, to);
        let mut cmd = Command::new(&python);
        cmd.arg(s3_support::queries::examples().join("spark/top_cpu_p99.py"))
            .arg("--jars-dir")
            .arg(&jars);
        let spark = rows(&target(&server).run(&mut cmd, from, to, "spark").0);
        assert_eq!(duck.len(), 10);
        assert_eq!(
            spark.iter().map(key).collect::<Vec<_>>(),
            duck.iter().map(key).collect::<Vec<_>>(),
            "Spark and DuckDB agree {when}, {from}..{to}"
        );
    };
    compare(&t(0), &t(3599), "before compaction");
    let client = server.admin_client(BUCKET);
    let args = data::compact_args(&server, BUCKET, PREFIX);
    rt.block_on(fine_grained_monitor::export::compact::run_with(
        &client,
        &args,
        Utc::now(),
    ))
    .unwrap();
    compare(&t(0), &t(1799), "mid-compaction");
    compare(&t(0), &t(3599), "mid-compaction");
}
