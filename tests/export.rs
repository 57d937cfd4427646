//! Export to a real S3-compatible server (SeaweedFS, built by
//! `tools/envtest/build.sh seaweedfs`): the agent binary uploads every rotated
//! file once under hive keys with the node, a crash between upload and record
//! does not upload again, wrong keys give a clear status while collection
//! goes on, and compaction keeps every row exactly once.
//!
//! One server for the whole binary, one bucket per test. The outage test
//! (server stopped and started) has a binary of its own: `export_outage.rs`.

// Test crate: a panic is the failure report.
#![allow(clippy::unwrap_used)]

mod s3_support;
mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::OnceLock;
use std::time::Duration;

use fine_grained_monitor::export::keys::{self, ObjectKind};
use fine_grained_monitor::s3::client::SHA256_META;
use fine_grained_monitor::s3::sigv4::sha256_hex;
use fine_grained_monitor::store::{datasets, events, layout};
use s3_support::{S3Server, data, start_agent, static_env};

const PREFIX: &str = "fgm/test";

fn server() -> &'static S3Server {
    static SERVER: OnceLock<S3Server> = OnceLock::new();
    SERVER.get_or_init(|| S3Server::start("export", None))
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// Keys the bucket should hold for `node`'s local files (metrics files, and the other
/// datasets' files under their own prefixes).
fn expected_data_keys(data: &Path, node: &str) -> BTreeMap<String, std::path::PathBuf> {
    let listing = layout::list_data_files(data, None).unwrap();
    let metrics = listing
        .files
        .into_iter()
        .filter(|f| f.node == node)
        .map(|f| (keys::data_key(PREFIX, node, f.start), f.path));
    let datasets = listing
        .datasets
        .into_iter()
        .filter(|(_, f)| f.node == node)
        .map(|(d, f)| (keys::dataset_key(PREFIX, d, node, f.start), f.path));
    metrics.chain(datasets).collect()
}

#[test]
fn rotated_files_and_events_appear_once_under_hive_keys() {
    let rt = runtime();
    let client = rt.block_on(server().bucket("appear"));
    let data = tempfile::tempdir().unwrap();
    // The day's pod events, as the enricher writes them.
    let now = chrono::Utc::now();
    let event = serde_json::json!({"time": now, "kind": "oom_killed", "namespace": "default",
        "pod": "web-0", "container": "app", "restart_count": 1});
    let events_path = events::events_file(data.path(), now.date_naive());
    std::fs::create_dir_all(events_path.parent().unwrap()).unwrap();
    std::fs::write(&events_path, format!("{event}\n")).unwrap();

    // A per-interface network file of an earlier interval, as the recorder writes it.
    let net_start = now - chrono::Duration::seconds(120);
    let mut net = datasets::Buffer::new(&datasets::NETWORK);
    net.push(datasets::Row {
        timestamp_ms: net_start.timestamp_millis(),
        container: "0123456789ab".into(),
        texts: vec!["pod-uid".into(), "eth0".into()],
        ints: vec![Some(1); datasets::NETWORK.ints.len()],
    });
    let (net_path, _) = datasets::write(data.path(), "node-a", net_start, &mut net)
        .unwrap()
        .expect("a network file");

    let agent = start_agent(
        server(),
        data.path(),
        "node-a",
        "appear",
        &static_env(),
        &[],
    );
    let status = agent.wait_status("three uploads", Duration::from_secs(60), |s| {
        s["uploadedFiles"].as_u64() >= Some(3)
    });
    assert_eq!(status["destination"], "s3://appear/fgm/test");
    assert_eq!(status["failing"], false);
    agent.stop();

    let expected = expected_data_keys(data.path(), "node-a");
    assert!(expected.len() >= 2, "rotations wrote files: {expected:?}");
    let listing = rt
        .block_on(client.list(&format!("{PREFIX}/"), None))
        .unwrap();
    let listed: BTreeSet<String> = listing.objects.iter().map(|o| o.key.clone()).collect();
    for (key, path) in &expected {
        assert!(
            listed.contains(key),
            "{key} missing from the bucket: {listed:?}"
        );
        // Metrics objects parse as such; the datasets' are under their own prefixes.
        match keys::parse_key(PREFIX, key) {
            Some(parsed) => assert_eq!(parsed.node, "node-a"),
            None => assert!(
                ["network", "devices", "processes"]
                    .iter()
                    .any(|d| key.starts_with(&format!("{PREFIX}/{d}/dt="))),
                "{key}"
            ),
        }
        assert!(
            key.contains("/dt=") && key.contains("/node=node-a/"),
            "{key}"
        );
        // Same bytes, and the checksum the agent sent is the one of the file.
        let body = rt.block_on(client.get_object(key, 64 << 20)).unwrap();
        assert_eq!(
            body,
            std::fs::read(path).unwrap(),
            "{key} holds the local file"
        );
        let head = rt.block_on(client.head_object(key)).unwrap().unwrap();
        assert_eq!(
            head.sha256.as_deref(),
            Some(sha256_hex(&body).as_str()),
            "{SHA256_META}"
        );
    }
    let events_key = keys::events_key(PREFIX, "node-a", now.date_naive());
    assert!(
        listed.contains(&events_key),
        "events beside the data: {listed:?}"
    );
    assert_eq!(
        rt.block_on(client.get_object(&events_key, 1 << 20))
            .unwrap(),
        std::fs::read(&events_path).unwrap()
    );
    // The day's container names beside them (no API here: ids and QoS only).
    let containers_key = keys::containers_key(PREFIX, "node-a", now.date_naive());
    let containers = rt
        .block_on(client.get_object(&containers_key, 1 << 20))
        .unwrap();
    let lines: Vec<serde_json::Value> = String::from_utf8_lossy(&containers)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 3, "the fixture's three containers: {lines:?}");
    assert!(
        lines
            .iter()
            .all(|l| l["container_id"].as_str().is_some_and(|id| id.len() == 12))
    );
    // The network file under its dataset's own prefix (no metrics glob reads it), same bytes.
    let net_key = keys::dataset_key(PREFIX, layout::Dataset::Network, "node-a", net_start);
    assert!(
        net_key.starts_with(&format!("{PREFIX}/network/dt=")),
        "{net_key}"
    );
    assert!(listed.contains(&net_key), "{net_key} missing: {listed:?}");
    assert_eq!(
        rt.block_on(client.get_object(&net_key, 1 << 20)).unwrap(),
        std::fs::read(&net_path).unwrap()
    );
    // Nothing else, nothing twice: the server counted one PUT per object
    // (plus the bucket's creation).
    assert_eq!(listed.len(), expected.len() + 2, "{listed:?}");
    assert_eq!(server().put_count("appear"), listed.len() as u64 + 1);
}

#[test]
fn a_crash_between_upload_and_record_uploads_nothing_again() {
    let rt = runtime();
    let client = rt.block_on(server().bucket("crash"));
    let data = tempfile::tempdir().unwrap();
    let agent = start_agent(server(), data.path(), "node-b", "crash", &static_env(), &[]);
    agent.wait_status("two uploads", Duration::from_secs(60), |s| {
        s["uploadedFiles"].as_u64() >= Some(2)
    });
    // SIGKILL at arbitrary moments of the upload cycle, then start again.
    agent.kill();
    for pause in [700u64, 1300, 450] {
        let agent = start_agent(server(), data.path(), "node-b", "crash", &static_env(), &[]);
        std::thread::sleep(Duration::from_millis(pause));
        agent.kill();
    }
    // The worst window: objects uploaded, the record lost (as if the agent died
    // right after each PUT, before the fsync'd line).
    let puts_before = server().put_count("crash");
    let listed_before = rt
        .block_on(client.list(&format!("{PREFIX}/"), None))
        .unwrap()
        .objects
        .len();
    std::fs::remove_dir_all(data.path().join("export")).unwrap();
    let agent = start_agent(server(), data.path(), "node-b", "crash", &static_env(), &[]);
    let status = agent.wait_status("backlog drained", Duration::from_secs(60), |s| {
        s["backlogFiles"] == 0 && s["uploadedFiles"].as_u64() >= Some(1)
    });
    agent.stop();
    let listing = rt
        .block_on(client.list(&format!("{PREFIX}/"), None))
        .unwrap();
    let listed: BTreeSet<String> = listing.objects.iter().map(|o| o.key.clone()).collect();
    let expected = expected_data_keys(data.path(), "node-b");
    let parquet: BTreeSet<String> = listed
        .iter()
        .filter(|k| k.ends_with(".parquet"))
        .cloned()
        .collect();
    assert_eq!(
        parquet,
        expected.keys().cloned().collect::<BTreeSet<_>>(),
        "every local file exactly once"
    );
    // Each object was PUT once over all the runs: new files only after the record loss.
    let new_objects = (listed.len() - listed_before) as u64;
    assert_eq!(
        server().put_count("crash"),
        puts_before + new_objects,
        "objects already in the bucket were recorded after a HEAD, not sent again ({status})"
    );
    assert_eq!(
        server().put_count("crash"),
        listed.len() as u64 + 1,
        "and the bucket's creation"
    );
}

#[test]
fn wrong_keys_give_a_clear_status_and_collection_goes_on() {
    let rt = runtime();
    let client = rt.block_on(server().bucket("denied"));
    let data = tempfile::tempdir().unwrap();
    let env = vec![
        ("AWS_ACCESS_KEY_ID", s3_support::ACCESS_KEY.to_string()),
        ("AWS_SECRET_ACCESS_KEY", "not-the-secret".to_string()),
    ];
    let agent = start_agent(server(), data.path(), "node-c", "denied", &env, &[]);
    let status = agent.wait_status("failing with AccessDenied", Duration::from_secs(60), |s| {
        s["failing"] == true && s["backlogFiles"].as_u64() >= Some(2)
    });
    assert_eq!(status["reason"], "AccessDenied", "{status}");
    let message = status["message"].as_str().unwrap();
    assert!(
        message.contains("SignatureDoesNotMatch") || message.contains("403"),
        "{message}"
    );
    let metrics = s3_support::http_get(agent.metrics_port, "/metrics").unwrap();
    assert!(
        metrics.contains("fgm_export_errors_total{reason=\"AccessDenied\"}"),
        "{}",
        metrics
            .lines()
            .filter(|l| l.contains("fgm_export"))
            .collect::<Vec<_>>()
            .join("\n")
    );
    assert!(metrics.contains("fgm_export_failing 1"));
    // Local collection goes on: files keep being written while uploads fail.
    let files_then = expected_data_keys(data.path(), "node-c").len();
    std::thread::sleep(Duration::from_millis(2500));
    let files_now = expected_data_keys(data.path(), "node-c").len();
    assert!(files_now >= files_then + 2, "{files_then} -> {files_now}");
    let health = s3_support::http_get(agent.metrics_port, "/healthz");
    assert!(
        health.is_some(),
        "the agent stays healthy while the export fails"
    );
    agent.stop();
    let listing = rt.block_on(client.list("", None)).unwrap();
    assert!(listing.objects.is_empty(), "{:?}", listing.objects);
}

/// Keys the bucket holds under the prefix, parsed (our objects only).
fn parsed_listing(
    rt: &tokio::runtime::Runtime,
    client: &fine_grained_monitor::s3::Client,
) -> Vec<keys::ParsedKey> {
    rt.block_on(client.list(&format!("{PREFIX}/"), None))
        .unwrap()
        .objects
        .iter()
        .filter_map(|o| keys::parse_key(PREFIX, &o.key))
        .collect()
}

#[test]
fn compaction_keeps_every_row_once() {
    let rt = runtime();
    let client = rt.block_on(server().bucket("compact"));
    // Two nodes, two hours of 90-second files, two days ago (spans long closed).
    let start = (chrono::Utc::now() - chrono::Duration::days(2))
        .date_naive()
        .and_hms_opt(22, 0, 0)
        .unwrap()
        .and_utc();
    for node in ["n1", "n2"] {
        let files = data::write_files(node, start, 80, 90, 12);
        for (file_start, bytes) in files {
            let key = keys::data_key(PREFIX, node, file_start);
            rt.block_on(client.put_object(&key, bytes.into(), "application/vnd.apache.parquet"))
                .unwrap();
        }
    }
    let before = rt.block_on(data::visible_checksums(&client, PREFIX));
    assert_eq!(
        before.values().map(|c| c.rows).sum::<u64>(),
        2 * 80 * 90 * 12
    );

    let args = data::compact_args(server(), "compact", PREFIX);
    let now = chrono::Utc::now();
    let report = rt
        .block_on(fine_grained_monitor::export::compact::run_with(
            &client, &args, now,
        ))
        .unwrap();
    // 22:00-22:59, 23:00-23:59 (+ the files crossing midnight) for two nodes.
    assert!(report.merged_files >= 4, "{report:?}");
    assert_eq!(report.input_files, 160);
    assert_eq!(
        report.deleted, 0,
        "replaced files stay until the grace period is over"
    );
    // Merged and raw files side by side: every row still counts once.
    let during = rt.block_on(data::visible_checksums(&client, PREFIX));
    assert_eq!(during, before, "no duplicates while both exist");
    // And once in the rates beside the merged files (tests/export_derived.rs checks their values).
    let rates_once = |d: &data::Derived| {
        assert_eq!(d.duplicate_rates, 0);
        let mut per: BTreeMap<(String, String), (u64, i64)> = BTreeMap::new();
        for (node, id, t) in d.rates.keys() {
            let e = per.entry((node.clone(), id.clone())).or_default();
            e.0 += 1;
            e.1 = e.1.wrapping_add(*t);
        }
        let want: BTreeMap<(String, String), (u64, i64)> = before
            .iter()
            .map(|(k, c)| (k.clone(), (c.rows, c.timestamp_sum)))
            .collect();
        assert_eq!(per, want, "every raw row once in the rates");
    };
    rates_once(&rt.block_on(data::committed_derived(&client, PREFIX)));
    let listing = parsed_listing(&rt, &client);
    assert_eq!(listing.len(), 160 + report.merged_files);
    let derived = rt.block_on(data::committed_derived(&client, PREFIX));

    // A later run deletes the replaced files; nothing to merge again.
    let later = now + chrono::Duration::hours(1);
    let report2 = rt
        .block_on(fine_grained_monitor::export::compact::run_with(
            &client, &args, later,
        ))
        .unwrap();
    assert_eq!(report2.merged_files, 0);
    assert_eq!(report2.deleted, 160);
    let after = rt.block_on(data::visible_checksums(&client, PREFIX));
    assert_eq!(after, before, "no gaps after the raw files are gone");
    let derived_after = rt.block_on(data::committed_derived(&client, PREFIX));
    rates_once(&derived_after);
    assert_eq!(
        derived_after.objects, derived.objects,
        "a later run rewrites nothing"
    );
    let listing = parsed_listing(&rt, &client);
    assert!(
        listing
            .iter()
            .all(|k| matches!(k.kind, ObjectKind::Merged { .. })),
        "{listing:?}"
    );
}

/// Rows of a network dataset by (node, container, interface, timestamp), with their count.
type NetworkRows = BTreeMap<(String, String, String, i64), u32>;

/// The rows of `dataset`'s objects a query reads (the visibility rule over one listing),
/// as (node, container, interface, timestamp) with their count.
fn visible_dataset_rows(
    rt: &tokio::runtime::Runtime,
    client: &fine_grained_monitor::s3::Client,
    dataset: layout::Dataset,
) -> (NetworkRows, Vec<keys::ParsedKey>) {
    use arrow_array::cast::AsArray;
    use arrow_array::types::TimestampMillisecondType;
    let listing: Vec<keys::ParsedKey> = rt
        .block_on(client.list(&format!("{PREFIX}/{}/", dataset.name()), None))
        .unwrap()
        .objects
        .iter()
        .filter_map(|o| keys::parse_dataset_key(PREFIX, dataset, &o.key))
        .collect();
    let mut rows = BTreeMap::new();
    for object in keys::visible(&listing) {
        let body = rt
            .block_on(client.get_object(&object.key, 1 << 30))
            .unwrap();
        let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(body)
            .unwrap()
            .build()
            .unwrap();
        for batch in reader {
            let batch = batch.unwrap();
            let ids = batch
                .column_by_name("container_id")
                .unwrap()
                .as_string::<i32>();
            let ifaces = batch
                .column_by_name("interface")
                .unwrap()
                .as_string::<i32>();
            let ts = batch
                .column_by_name("timestamp")
                .unwrap()
                .as_primitive::<TimestampMillisecondType>();
            for i in 0..batch.num_rows() {
                let key = (
                    object.node.clone(),
                    ids.value(i).to_string(),
                    ifaces.value(i).to_string(),
                    ts.value(i),
                );
                *rows.entry(key).or_insert(0) += 1;
            }
        }
    }
    (rows, listing)
}

/// The other datasets are compacted by the metrics' rule on their own prefixes: merged
/// files beside the raw ones, every row once while both exist and after the raw ones go.
#[test]
fn dataset_compaction_keeps_every_row_once() {
    let rt = runtime();
    let client = rt.block_on(server().bucket("compact-datasets"));
    let start = (chrono::Utc::now() - chrono::Duration::days(2))
        .date_naive()
        .and_hms_opt(22, 0, 0)
        .unwrap()
        .and_utc();
    let dir = tempfile::tempdir().unwrap();
    // 60 files of 90 s (22:00 to 23:30), 3 pods × 2 interfaces, a row every 10 s.
    for f in 0..60i64 {
        let file_start = start + chrono::Duration::seconds(90 * f);
        let mut buf = datasets::Buffer::new(&datasets::NETWORK);
        for s in (0..90).step_by(10) {
            for pod in ["s1", "s2", "s3"] {
                for iface in ["eth0", "lo"] {
                    buf.push(datasets::Row {
                        timestamp_ms: (file_start + chrono::Duration::seconds(s))
                            .timestamp_millis(),
                        container: pod.to_string(),
                        texts: vec![std::sync::Arc::from("uid"), std::sync::Arc::from(iface)],
                        ints: datasets::NETWORK
                            .ints
                            .iter()
                            .map(|_| Some(f * 90 + s))
                            .collect(),
                    });
                }
            }
        }
        let (path, _) = datasets::write(dir.path(), "n1", file_start, &mut buf)
            .unwrap()
            .unwrap();
        let key = keys::dataset_key(PREFIX, layout::Dataset::Network, "n1", file_start);
        let bytes = std::fs::read(path).unwrap();
        rt.block_on(client.put_object(&key, bytes.into(), "application/vnd.apache.parquet"))
            .unwrap();
    }
    let (before, _) = visible_dataset_rows(&rt, &client, layout::Dataset::Network);
    assert_eq!(before.len(), 60 * 9 * 6);
    assert!(before.values().all(|n| *n == 1));

    let args = data::compact_args(server(), "compact-datasets", PREFIX);
    let now = chrono::Utc::now();
    let report = rt
        .block_on(fine_grained_monitor::export::compact::run_with(
            &client, &args, now,
        ))
        .unwrap();
    // 22:00-22:59 (40 files) and 23:00-23:29 (20 files).
    assert_eq!(report.dataset_merged_files, 2, "{report:?}");
    assert_eq!(report.dataset_input_files, 60);
    assert_eq!(report.dataset_rows, 60 * 9 * 6);
    assert_eq!(
        report.dataset_deleted, 0,
        "replaced files stay for the grace period"
    );
    let (during, listing) = visible_dataset_rows(&rt, &client, layout::Dataset::Network);
    assert_eq!(
        during, before,
        "every row once while raw and merged files both exist"
    );
    let merged: Vec<&keys::ParsedKey> = listing
        .iter()
        .filter(|k| matches!(k.kind, ObjectKind::Merged { .. }))
        .collect();
    assert_eq!(merged.len(), 2);
    assert!(
        merged
            .iter()
            .all(|k| k.key.starts_with(&format!("{PREFIX}/network/dt="))
                && k.key.contains("/node=n1/merged-")),
        "{merged:?}"
    );
    // Not read as metrics: the metrics' listing has none of these.
    assert!(parsed_listing(&rt, &client).is_empty());

    let later = now + chrono::Duration::hours(1);
    let report2 = rt
        .block_on(fine_grained_monitor::export::compact::run_with(
            &client, &args, later,
        ))
        .unwrap();
    assert_eq!(report2.dataset_merged_files, 0);
    assert_eq!(report2.dataset_deleted, 60);
    let (after, listing) = visible_dataset_rows(&rt, &client, layout::Dataset::Network);
    assert_eq!(after, before, "no gaps after the raw files are gone");
    assert_eq!(listing.len(), 2, "{listing:?}");
}
