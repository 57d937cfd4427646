//! `/api/processes` over real HTTP, on processes files written with the
//! store's own dataset writer (what the agent's `--processes` writes): CPU
//! order, (pid, start) identity across a recycled pid, the exit row's time,
//! filtering by container, bad requests, and a corrupt file skipped and named.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Duration as Span, Utc};
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use crate::fixture::*;
use crate::server::http_get;
use fine_grained_monitor::store::datasets::{self, Buffer, PROCESSES, Row};
use fine_grained_monitor::store::layout::Dataset;
use fine_grained_monitor::viewer;

/// One process of the fixture: its rows at seconds `from..to` of the data.
struct Proc {
    container: &'static str,
    pid: i64,
    /// Start time, in ms after the data's start (negative: before it).
    start_ms: i64,
    command: &'static str,
    /// CPU used per second, µs.
    cpu_per_sec: i64,
    rss: i64,
    from: i64,
    to: i64,
    /// An exit row one second after the last.
    exits: bool,
}

const PROCS: &[Proc] = &[
    Proc {
        container: WEB,
        pid: 100,
        start_ms: -3_600_000,
        command: "nginx: master process",
        cpu_per_sec: 10_000,
        rss: 8 << 20,
        from: 0,
        to: 270,
        exits: false,
    },
    Proc {
        container: WEB,
        pid: 200,
        start_ms: -3_600_000,
        command: "nginx: worker process",
        cpu_per_sec: 800_000,
        rss: 50 << 20,
        from: 0,
        to: 270,
        exits: false,
    },
    Proc {
        container: WEB,
        pid: 300,
        start_ms: 20_000,
        command: "sh -c backup",
        cpu_per_sec: 300_000,
        rss: 4 << 20,
        from: 20,
        to: 60,
        exits: true,
    },
    // The same pid again, a new process.
    Proc {
        container: WEB,
        pid: 300,
        start_ms: 99_500,
        command: "python job.py",
        cpu_per_sec: 500_000,
        rss: 30 << 20,
        from: 100,
        to: 270,
        exits: false,
    },
    Proc {
        container: DB,
        pid: 100,
        start_ms: -60_000,
        command: "postgres",
        cpu_per_sec: 2_000_000,
        rss: 200 << 20,
        from: 0,
        to: 270,
        exits: false,
    },
];

/// The CPU counter of `p` at second `i` of the data.
fn counter(p: &Proc, i: i64) -> i64 {
    p.cpu_per_sec * (i * 1000 - p.start_ms) / 1000
}

/// Writes the processes files of `[start, start + secs)`, rotated every `rotation` seconds.
fn write_processes(
    dir: &std::path::Path,
    start: DateTime<Utc>,
    secs: i64,
    rotation: i64,
) -> Vec<std::path::PathBuf> {
    let mut paths = Vec::new();
    for file_start in (0..secs).step_by(rotation as usize) {
        let mut buf = Buffer::new(&PROCESSES);
        for p in PROCS {
            let last = p.to.min(file_start + rotation);
            for i in p.from.max(file_start)..last {
                let event = if i == p.from && p.start_ms >= 0 {
                    "start"
                } else {
                    ""
                };
                buf.push(row(p, start, i, i, event));
            }
            if p.exits && p.to + 1 >= file_start && p.to + 1 < file_start + rotation {
                buf.push(row(p, start, p.to + 1, p.to - 1, "exit"));
            }
        }
        let file_t = start + Span::seconds(file_start);
        let (path, _) = datasets::write(dir, NODE, file_t, &mut buf)
            .unwrap()
            .unwrap();
        paths.push(path);
    }
    paths
}

/// `p`'s row at second `at`, with its values of second `values_of`.
fn row(p: &Proc, start: DateTime<Utc>, at: i64, values_of: i64, event: &str) -> Row {
    let pss = (values_of % 10 == 0).then_some(p.rss / 2);
    Row {
        timestamp_ms: ms(start) + at * 1000,
        container: p.container.into(),
        texts: vec![Arc::from(p.command), Arc::from(event)],
        ints: vec![
            Some(p.pid),
            Some(ms(start) + p.start_ms),
            Some(p.pid - 90),
            Some(1),
            Some(counter(p, values_of)),
            Some(p.rss + values_of),
            Some(4),
            pss,
            pss,
            None,
        ],
    }
}

async fn json(addr: std::net::SocketAddr, path: &str) -> Value {
    let (code, body) = http_get(addr, path).await;
    assert_eq!(code, 200, "{path}: {body}");
    serde_json::from_str(&body).unwrap()
}

#[tokio::test]
async fn a_containers_processes_over_http_by_cpu_with_recycled_pids_and_exits() {
    let dir = tempfile::tempdir().unwrap();
    let start = t(2025, 12, 30, 10, 0, 0);
    write_samples(dir.path(), &[WEB, DB], start, 270, 90, &default_values);
    write_index(dir.path(), start, start + Span::seconds(269));
    let files = write_processes(dir.path(), start, 270, 90);
    assert_eq!(files.len(), 3);
    assert_eq!(
        Dataset::parse_file_name(files[2].file_name().unwrap().to_str().unwrap()).map(|(d, _)| d),
        Some(Dataset::Processes)
    );

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let stop = CancellationToken::new();
    let server = tokio::spawn(viewer::serve(listener, options(dir.path()), stop.clone()));
    let mut ready = false;
    for _ in 0..200 {
        if http_get(addr, "/api/status")
            .await
            .1
            .contains("\"state\":\"ready\"")
        {
            ready = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert!(ready);

    // The first two intervals (the third starts at 180 s).
    let (from, to) = (ms(start), ms(start) + 179_000);
    let answer = json(
        addr,
        &format!("/api/processes?container={WEB}&from={from}&to={to}"),
    )
    .await;
    assert_eq!(answer["container"], WEB);
    assert_eq!(answer["truncated"], false);
    assert_eq!(
        answer["files_read"], 2,
        "only the files of the range: {answer}"
    );
    assert_eq!(answer["skipped_files"], serde_json::json!([]));
    let list = answer["processes"].as_array().unwrap();
    let commands: Vec<&str> = list
        .iter()
        .map(|p| p["command"].as_str().unwrap())
        .collect();
    assert_eq!(
        commands,
        [
            "nginx: worker process",
            "python job.py",
            "sh -c backup",
            "nginx: master process"
        ],
        "by CPU, DB's postgres not among them"
    );
    let cpu: Vec<f64> = list
        .iter()
        .map(|p| p["cpu_seconds"].as_f64().unwrap())
        .collect();
    // 0.8 cores for 179 s; from its start (0.5 s before its first row) to 179 s;
    // 39 s at 0.3 (its exit row repeats its last values); 0.01 cores.
    for (got, want) in cpu.iter().zip([143.2, 39.75, 11.7, 1.79]) {
        assert!((got - want).abs() < 1e-6, "{cpu:?}");
    }
    let worker = &list[0];
    assert_eq!(
        (
            worker["pid"].as_i64(),
            worker["nspid"].as_i64(),
            worker["ppid"].as_i64()
        ),
        (Some(200), Some(110), Some(1))
    );
    assert_eq!(worker["end_ms"], Value::Null);
    assert_eq!(worker["max_rss_bytes"], (50 << 20) + 179);
    assert_eq!(worker["last_pss_bytes"], 25 << 20);
    let samples = worker["samples"].as_array().unwrap();
    assert_eq!(samples.len(), 180);
    assert_eq!(
        samples[0]["cpu_cores"],
        Value::Null,
        "no rate for the first row"
    );
    assert!(
        samples[1..]
            .iter()
            .all(|s| (s["cpu_cores"].as_f64().unwrap() - 0.8).abs() < 1e-9)
    );
    assert_eq!(
        samples[1]["pss_bytes"],
        Value::Null,
        "PSS only every few rows"
    );
    assert_eq!(samples[10]["pss_bytes"], 25 << 20);

    // A recycled pid: two processes, told apart by their start time.
    let pid300: Vec<&Value> = list.iter().filter(|p| p["pid"] == 300).collect();
    assert_eq!(pid300.len(), 2);
    let (python, backup) = (pid300[0], pid300[1]);
    assert_eq!(python["start_ms"], ms(start) + 99_500);
    assert_eq!(backup["start_ms"], ms(start) + 20_000);
    assert_eq!(backup["end_ms"], ms(start) + 61_000, "the exit row's time");
    assert_eq!(python["end_ms"], Value::Null);

    // Another container: its own processes only.
    let db = json(
        addr,
        &format!("/api/processes?container={DB}&from={from}&to={to}"),
    )
    .await;
    let db_commands: Vec<&Value> = db["processes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| &p["command"])
        .collect();
    assert_eq!(db_commands, [&Value::from("postgres")]);

    // RFC 3339 times as elsewhere, and an unknown container: an empty list.
    let unknown = json(
        addr,
        "/api/processes?container=ffffffffffff&from=2025-12-30T10:00:00Z&to=2025-12-30T10:02:59Z",
    )
    .await;
    assert_eq!(unknown["processes"], serde_json::json!([]));
    assert_eq!(unknown["truncated"], false);

    // Bad requests: 400 with a message naming the problem.
    for (query, expected) in [
        (format!("container={WEB}&from={to}&to={from}"), "is after"),
        (
            format!("container={WEB}&from=yesterday"),
            "from=\"yesterday\" is not a time",
        ),
        ("container=../etc".to_string(), "is not a container id"),
        ("from=0".to_string(), "container is required"),
    ] {
        let (code, body) = http_get(addr, &format!("/api/processes?{query}")).await;
        assert_eq!(code, 400, "{query}: {body}");
        let error: Value = serde_json::from_str(&body).unwrap();
        assert!(
            error["error"].as_str().unwrap().contains(expected),
            "{query}: {body}"
        );
    }

    // A corrupt processes file: skipped and named, the others still answered.
    std::fs::write(&files[2], b"PAR1 not really parquet PAR1").unwrap();
    let whole = json(addr, &format!("/api/processes?container={WEB}")).await;
    let skipped = whole["skipped_files"].as_array().unwrap();
    assert_eq!(skipped.len(), 1, "{whole}");
    let path = skipped[0]["path"].as_str().unwrap();
    assert!(
        path.starts_with("dt=2025-12-30/identifier=node-a/processes-20251230T100300Z.parquet"),
        "{path}"
    );
    assert!(!skipped[0]["error"].as_str().unwrap().is_empty());
    assert_eq!(whole["files_read"], 2);
    assert_eq!(whole["processes"].as_array().unwrap().len(), 4);
    let status = json(addr, "/api/status").await;
    assert!(
        status["corrupt_files"]
            .to_string()
            .contains("processes-20251230T100300Z.parquet"),
        "{status}"
    );

    stop.cancel();
    tokio::time::timeout(Duration::from_secs(10), server)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
}
