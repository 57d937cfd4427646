//! `/api/overview` over data written by the store's writer: rankings with
//! exact figures across file boundaries and range edges, limits, events,
//! search, the summary cache, and bad parameters.

use axum::http::StatusCode;
use chrono::Duration;
use serde_json::Value;

use crate::fixture::*;
use fine_grained_monitor::store::events::{self, EventKind, PodEvent};

/// WEB: 0.5 cores of a 2-core quota, 100 MiB of a 1 GiB limit. DB: 0.25
/// cores, 300 MiB, its kernel OOM counter steps at second 700. PAUSE (the
/// sandbox, shown on request): 1.5 cores, throttled in 40% of its periods,
/// reading 2 MB/s, stalled 20% on IO.
fn values(id: &str, metric: &str, i: i64) -> Option<i64> {
    let (cores, mem) = match id {
        WEB => (0.5, 100 << 20),
        DB => (0.25, 300 << 20),
        _ => (1.5, 50 << 20),
    };
    let hot = id == PAUSE;
    Some(match metric {
        "cpu_usage_usec" => (cores * 1e6) as i64 * i,
        "memory_working_set_bytes" => mem,
        "memory_limit_bytes" if id == WEB => 1 << 30,
        "cpu_quota_usec" if id == WEB => 200_000,
        "cpu_period_usec" => 100_000,
        "cpu_nr_periods" => 10 * i,
        "cpu_nr_throttled" if hot => 4 * i,
        "io_read_bytes" if hot => 2_000_000 * i,
        "io_pressure_some_usec" if hot => 200_000 * i,
        "memory_oom_kill_events" if id == DB => i64::from(i >= 700),
        "memory_limit_bytes" | "cpu_quota_usec" => return None,
        _ => 0,
    })
}

fn write(dir: &std::path::Path) -> chrono::DateTime<chrono::Utc> {
    let start = t(2025, 12, 30, 10, 0, 0);
    // 20 minutes in 90 s files: the 15-minute default range starts mid-file.
    write_samples(dir, &[WEB, DB, PAUSE], start, 1200, 90, &values);
    write_index(dir, start, start + Duration::seconds(1199));
    let event = |secs: i64, kind| PodEvent {
        time: start + Duration::seconds(secs),
        kind,
        namespace: "shop".into(),
        pod: "db-0".into(),
        pod_uid: None,
        container: "postgres".into(),
        container_id: None,
        restart_count: 1,
        reason: Some("OOMKilled".into()),
        exit_code: Some(137),
        message: None,
    };
    events::append(
        dir,
        &[
            event(60, EventKind::OomKilled),
            event(900, EventKind::OomKilled),
            event(901, EventKind::Restart),
        ],
    )
    .unwrap();
    start
}

fn ranking<'a>(json: &'a Value, category: &str) -> Vec<(&'a str, f64)> {
    json["rankings"][category]["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["id"].as_str().unwrap(), r["value"].as_f64().unwrap()))
        .collect()
}

fn row<'a>(json: &'a Value, id: &str) -> &'a Value {
    json["rows"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["id"] == id)
        .unwrap_or_else(|| panic!("no row {id} in {json}"))
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-9 * b.abs().max(1.0)
}

#[tokio::test]
async fn the_last_15_minutes_ranked_with_exact_figures() {
    let dir = tempfile::tempdir().unwrap();
    let start = write(dir.path());
    let app = app(dir.path());
    let json = get_json(&app, "/api/overview").await;
    // Default: the 15 minutes up to the newest data.
    assert_eq!(json["from"], "2025-12-30T10:04:59Z");
    assert_eq!(json["to"], "2025-12-30T10:19:59Z");
    assert_eq!(json["containers"], 2, "the sandbox is hidden by default");
    let cpu = ranking(&json, "cpu");
    assert_eq!(cpu.iter().map(|r| r.0).collect::<Vec<_>>(), vec![WEB, DB]);
    assert!(close(cpu[0].1, 0.5) && close(cpu[1].1, 0.25), "{cpu:?}");
    let mem = ranking(&json, "memory");
    assert_eq!(mem[0], (DB, (300u64 << 20) as f64));
    let web = &row(&json, WEB)["stats"];
    assert!(
        close(web["cpu_pct_of_limit"].as_f64().unwrap(), 25.0),
        "{web}"
    );
    assert_eq!(web["cpu_limit_cores"], 2.0);
    assert!(close(
        web["memory_pct_of_limit"].as_f64().unwrap(),
        100.0 / 1024.0 * 100.0
    ));
    assert_eq!(web["seconds"], 900.0);
    assert_eq!(web["samples"], 901);
    assert_eq!(row(&json, WEB)["pod_name"], "web-0");
    // Nothing throttled, under pressure or reading: those rankings are empty.
    for category in ["throttling", "io", "pressure"] {
        assert!(ranking(&json, category).is_empty(), "{category}");
    }
    // DB: one OOM kill by the kernel and two by the API in range (10:15, and
    // 10:01 is before it), and a restart: shown and first among the troubled.
    let db = row(&json, DB);
    assert_eq!(db["stats"]["oom_kills"], 1);
    assert_eq!(db["events"]["oom_killed"], 1);
    assert_eq!(db["events"]["restart"], 1);
    assert_eq!(db["oom_kills"], 1);
    assert_eq!(json["troubled"][0]["id"], DB);
    let listed: Vec<&str> = json["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    assert_eq!(listed, vec!["oom_killed", "restart"]);
    assert_eq!(json["events"][0]["containers"][0], DB);
    // Sparklines: 15 s slots, 0.5 cores in every one; the first slot
    // (10:04:45-10:05:00) holds only the range's first sample, no step.
    assert_eq!(json["slot_ms"], 15_000);
    let row0 = &json["rankings"]["cpu"]["rows"][0];
    assert_eq!(row0["spark_start"], ms(start + Duration::seconds(285)));
    let spark = row0["spark"].as_array().unwrap();
    assert_eq!(spark.len(), 61);
    assert!(spark[0].is_null(), "{spark:?}");
    assert!(
        spark[1..].iter().all(|v| close(v.as_f64().unwrap(), 0.5)),
        "{spark:?}"
    );
}

#[tokio::test]
async fn throttling_io_and_pressure_rank_the_busy_container() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path());
    let app = app(dir.path());
    let json = get_json(
        &app,
        "/api/overview?include_sandbox=true&from=2025-12-30T10:00:00Z&to=2025-12-30T10:19:59Z",
    )
    .await;
    assert_eq!(json["containers"], 3);
    let first = |c| ranking(&json, c)[0];
    assert_eq!(first("cpu").0, PAUSE);
    assert!(close(first("cpu").1, 1.5));
    assert_eq!(first("throttling").0, PAUSE);
    assert!(close(first("throttling").1, 40.0));
    assert!(close(first("io").1, 2e6));
    assert!(close(first("pressure").1, 20.0));
    assert_eq!(ranking(&json, "throttling").len(), 1);
    // The whole range: all three OOM events, the one at 10:01 too.
    assert_eq!(row(&json, DB)["events"]["oom_killed"], 2);
    assert_eq!(row(&json, DB)["oom_kills"], 2);
    // 20 minutes: 30 s slots.
    assert_eq!(json["slot_ms"], 30_000);
}

#[tokio::test]
async fn search_filters_and_cached_summaries_give_the_same_answer() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path());
    let app = app(dir.path());
    let uri = "/api/overview?from=2025-12-30T10:02:00Z&to=2025-12-30T10:12:30Z";
    let cold = get_json(&app, uri).await;
    let warm = get_json(&app, uri).await;
    assert_eq!(cold, warm, "a cached summary answers like a decoded file");
    let cpu = ranking(&warm, "cpu");
    assert!(close(cpu[0].1, 0.5), "{cpu:?}");
    // A range with other edges over the same cache.
    let other = get_json(
        &app,
        "/api/overview?from=2025-12-30T10:03:17Z&to=2025-12-30T10:11:01Z",
    )
    .await;
    assert_eq!(row(&other, WEB)["stats"]["seconds"], 464.0);
    let only = get_json(&app, "/api/overview?q=postgres").await;
    assert_eq!(only["containers"], 1);
    assert_eq!(only["rows"][0]["id"], DB);
    let none = get_json(&app, "/api/overview?q=app=nothing").await;
    assert_eq!(none["containers"], 0);
    assert!(none["events"].as_array().unwrap().is_empty());
}

#[tokio::test]
async fn overview_parameters_are_checked() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path());
    let app = app(dir.path());
    for (uri, expected) in [
        ("/api/overview?top=0", "top="),
        ("/api/overview?top=101", "from 1 to 100"),
        ("/api/overview?include_sandbox=perhaps", "include_sandbox"),
        ("/api/overview?from=later", "is not a time"),
        ("/api/overview?to=-8334601228800000", "out of range"),
    ] {
        let (status, body) = get(&app, uri).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{uri}: {body}");
        assert!(body.contains(expected), "{uri}: {body}");
    }
}

/// Rewrites a data file without its footer summary: what files of earlier versions look like.
fn strip_summary(path: &std::path::Path) {
    use fine_grained_monitor::store::{reader, writer};
    let batches = reader::read_file(path, None).unwrap();
    let mut out = Vec::new();
    let mut w = parquet::arrow::ArrowWriter::try_new(
        &mut out,
        batches[0].schema(),
        Some(writer::writer_properties(NODE)),
    )
    .unwrap();
    for b in &batches {
        w.write(b).unwrap();
    }
    w.close().unwrap();
    std::fs::write(path, out).unwrap();
    assert!(reader::read_footer_summary(path).unwrap().is_none());
}

/// The overview of a long range ranks from the files' footers without reading rows, and says
/// the same as it does from the rows of files without footer summaries (issue #24).
#[tokio::test]
async fn footer_summaries_rank_a_long_range_as_the_rows_do() {
    let with = tempfile::tempdir().unwrap();
    let without = tempfile::tempdir().unwrap();
    let start = t(2025, 12, 30, 0, 0, 0);
    let secs = 6 * 3600;
    for dir in [with.path(), without.path()] {
        let paths = write_samples(dir, &[WEB, DB, PAUSE], start, secs, 90, &values);
        write_index(dir, start, start + Duration::seconds(secs - 1));
        if dir == without.path() {
            paths.iter().for_each(|p| strip_summary(p));
        } else {
            let stored = fine_grained_monitor::store::reader::read_footer_summary(&paths[3])
                .unwrap()
                .expect("the writer stores a summary");
            assert_eq!(stored.containers.len(), 3);
        }
    }
    // The whole range but its first and last minutes: edge files are read, the rest from footers.
    let q = format!(
        "/api/overview?from={}&to={}&include_sandbox=true",
        ms(start + Duration::seconds(60)),
        ms(start + Duration::seconds(secs - 60))
    );
    let a = get_json(&app(with.path()), &q).await;
    let b = get_json(&app(without.path()), &q).await;
    assert_eq!(a["slot_ms"], 600_000, "6 h: 10-minute sparkline slots");
    assert_same_rankings(&a, &b);
    assert_eq!(row(&a, DB)["oom_kills"], row(&b, DB)["oom_kills"]);
}

/// Both overviews rank the same containers in the same order with the same
/// figures and sparklines (within float summation order).
fn assert_same_rankings(a: &Value, b: &Value) {
    for category in ["cpu", "memory", "throttling", "io", "pressure"] {
        let (ra, rb) = (ranking(a, category), ranking(b, category));
        assert_eq!(ra.len(), rb.len(), "{category}");
        for ((ia, va), (ib, vb)) in ra.iter().zip(&rb) {
            assert_eq!(ia, ib, "{category} order");
            assert!(
                (va - vb).abs() <= 1e-6 * va.abs().max(1.0),
                "{category} {ia}: {va} vs {vb}"
            );
        }
        let spark = |j: &Value| j["rankings"][category]["rows"][0]["spark"].clone();
        let (sa, sb) = (spark(a), spark(b));
        for (x, y) in sa.as_array().unwrap().iter().zip(sb.as_array().unwrap()) {
            match (x.as_f64(), y.as_f64()) {
                (Some(x), Some(y)) => assert!(
                    (x - y).abs() <= 1e-4 * x.abs().max(1.0),
                    "{category} spark {x} vs {y}"
                ),
                (x, y) => assert_eq!(x, y),
            }
        }
    }
}

/// Pods rank by network through their sandbox's row (hidden from the other rankings), and a
/// chart of a pod's network for any of its containers reads the sandbox's (issue #25).
#[tokio::test]
async fn pods_rank_by_network_and_any_container_charts_its_pods_network() {
    let dir = tempfile::tempdir().unwrap();
    let start = t(2025, 12, 30, 10, 0, 0);
    let net = |id: &str, metric: &str, i: i64| match (id, metric) {
        (PAUSE, "network_receive_bytes") => Some(3_000_000 * i),
        (PAUSE, "network_transmit_bytes") => Some(1_000_000 * i),
        (_, m) if m.starts_with("network_") => None,
        _ => values(id, metric, i),
    };
    write_samples(dir.path(), &[WEB, DB, PAUSE], start, 600, 90, &net);
    write_index(dir.path(), start, start + Duration::seconds(599));
    let app = app(dir.path());
    let q = format!(
        "/api/overview?from={}&to={}",
        ms(start),
        ms(start + Duration::seconds(599))
    );
    let json = get_json(&app, &q).await;
    let net_rank = ranking(&json, "network");
    assert_eq!(net_rank.len(), 1, "{}", json["rankings"]["network"]);
    assert_eq!(net_rank[0].0, PAUSE, "the web-0 pod, by its sandbox");
    assert!((net_rank[0].1 - 4_000_000.0).abs() < 1.0, "{net_rank:?}");
    assert_eq!(json["rankings"]["network"]["unit"], "bytes/s");
    let pod = row(&json, PAUSE);
    assert_eq!(pod["pod_name"], "web-0");
    assert_eq!(pod["sandbox"], true);
    assert!(
        ranking(&json, "cpu").iter().all(|(id, _)| *id != PAUSE),
        "the sandbox stays out of the container rankings"
    );
    // The pod's network charted for its app container: the sandbox's rows.
    let q = format!(
        "/api/timeseries?containers={WEB}&metric=network_receive_bytes&from={}&to={}",
        ms(start),
        ms(start + Duration::seconds(599))
    );
    let json = get_json(&app, &q).await;
    let (t, v) = series(&json, WEB);
    assert!(t.len() > 500, "{json}");
    assert!(v.iter().flatten().all(|x| (*x - 3_000_000.0).abs() < 1.0));
}

/// Hour summaries written by the agent rank a long range as the footers do; the overview uses
/// one only while it lists exactly the hour's files (issue #24).
#[tokio::test]
async fn hour_summaries_rank_as_the_footers_do_and_only_while_they_match_the_files() {
    use fine_grained_monitor::store::{hours, layout, summary::codec};
    let with = tempfile::tempdir().unwrap();
    let without = tempfile::tempdir().unwrap();
    let start = t(2025, 12, 30, 0, 0, 0);
    let secs = 6 * 3600;
    let mut paths = Vec::new();
    for dir in [with.path(), without.path()] {
        paths = write_samples(dir, &[WEB, DB, PAUSE], start, secs, 90, &values);
        write_index(dir, start, start + Duration::seconds(secs - 1));
    }
    // Five closed hours; the sixth (the newest file's) stays open.
    assert_eq!(hours::summarise_all(with.path(), NODE).unwrap(), 5);
    let q = format!(
        "/api/overview?from={}&to={}&include_sandbox=true",
        ms(start + Duration::seconds(60)),
        ms(start + Duration::seconds(secs - 60))
    );
    let a = get_json(&app(with.path()), &q).await;
    let b = get_json(&app(without.path()), &q).await;
    assert_same_rankings(&a, &b);
    assert_eq!(row(&a, DB)["oom_kills"], row(&b, DB)["oom_kills"]);
    // Used: an hour summary that says WEB burned 100 more core-hours moves WEB's figure.
    let hour = start + Duration::hours(2);
    let path = layout::hour_summary_path(with.path(), NODE, hour);
    let mut stored = hours::read(&path).expect("written");
    let mut joined = codec::decode(&stored.summary).unwrap();
    let web = joined
        .containers
        .iter_mut()
        .find(|(id, _)| id == WEB)
        .unwrap();
    web.1.counters[0].increase += 3.6e11;
    stored.summary = codec::encode(&joined);
    std::fs::write(&path, serde_json::to_vec(&stored).unwrap()).unwrap();
    let tampered = get_json(&app(with.path()), &q).await;
    let cpu = |j: &Value| {
        ranking(j, "cpu")
            .into_iter()
            .find(|r| r.0 == WEB)
            .map(|r| r.1)
            .unwrap()
    };
    assert!(
        cpu(&tampered) > cpu(&b) + 1.0,
        "{} vs {}",
        cpu(&tampered),
        cpu(&b)
    );
    // Stale once a file of its hour is gone (retention): that hour is joined from footers.
    let gone = paths
        .iter()
        .position(|p| p.ends_with("metrics-20251230T020130Z.parquet"))
        .expect("a file of 02:00");
    for dir in [with.path(), without.path()] {
        let rel = paths[gone].strip_prefix(without.path()).unwrap();
        std::fs::remove_file(dir.join(rel)).unwrap();
    }
    let a = get_json(&app(with.path()), &q).await;
    let b = get_json(&app(without.path()), &q).await;
    assert_same_rankings(&a, &b);
}
