//! `/api/study` over data written by the store's writer: the period of a
//! container's CPU cycle and the time and size of a memory level shift,
//! computed on the raw per-second samples across files.

use axum::http::StatusCode;
use chrono::Duration;

use crate::fixture::*;

/// WEB burns 1.5 cores for 20 s of every 60 s (a cron-like job), else 0.1;
/// DB's working set steps from 100 MiB to 300 MiB at second 700, with a
/// wobble of a few MiB.
fn values(id: &str, metric: &str, i: i64) -> Option<i64> {
    match metric {
        "cpu_usage_usec" if id == WEB => {
            // Counter: the sum of per-second use so far.
            let busy = |s: i64| if s % 60 < 20 { 1_500_000 } else { 100_000 };
            Some((0..i).map(busy).sum())
        }
        "memory_working_set_bytes" => {
            // Pseudo-random (quadratic residues of a prime): no cycle in 10 minutes.
            let wobble = ((i * i * 7919) % 1009 / 100 - 5) << 20;
            Some(if i < 700 { 100 << 20 } else { 300 << 20 } + wobble)
        }
        _ => default_values(id, metric, i),
    }
}

fn data() -> (
    tempfile::TempDir,
    axum::Router,
    chrono::DateTime<chrono::Utc>,
) {
    let dir = tempfile::tempdir().unwrap();
    let start = t(2025, 12, 30, 8, 0, 0);
    write_samples(dir.path(), &[WEB, DB], start, 1800, 90, &values);
    write_index(dir.path(), start, start + Duration::seconds(1799));
    let app = app(dir.path());
    (dir, app, start)
}

#[tokio::test]
async fn periodicity_finds_the_cycle_of_a_cpu_series() {
    let (_dir, app, start) = data();
    let json = get_json(
        &app,
        &format!("/api/study?kind=periodicity&container={WEB}&metric=cpu_usage_usec&from=2025-12-30T08:00:00Z&to=2025-12-30T08:29:59Z"),
    )
    .await;
    assert_eq!(json["samples"], 1799, "rates of every second but the first");
    assert_eq!(json["step_ms"], 1000);
    assert_eq!(json["display_unit"], "cores");
    let r = &json["result"];
    assert_eq!(r["periodic"], true, "{json}");
    let period = r["period_seconds"].as_f64().unwrap();
    assert!((period - 60.0).abs() < 0.5, "{period}");
    assert!(r["strength"].as_f64().unwrap() > 0.9, "{r}");
    // Markers at the busy phase of each cycle: every 60 s within the first 20 s.
    let peaks = r["peaks"].as_array().unwrap();
    assert!(peaks.len() >= 29, "{}", peaks.len());
    for p in peaks {
        let into = (p.as_i64().unwrap() - ms(start)) / 1000 % 60;
        assert!(into <= 21, "peak {into} s into its cycle");
    }
    // The memory series has no cycle.
    let flat = get_json(
        &app,
        &format!("/api/study?kind=periodicity&container={DB}&metric=memory_working_set_bytes&from=2025-12-30T08:00:00Z&to=2025-12-30T08:10:00Z"),
    )
    .await;
    assert_eq!(flat["result"]["periodic"], false, "{flat}");
}

#[tokio::test]
async fn changepoints_find_when_and_how_much_memory_stepped() {
    let (_dir, app, start) = data();
    let json = get_json(
        &app,
        &format!("/api/study?kind=changepoints&container={DB}&metric=memory_working_set_bytes&from=2025-12-30T08:00:00Z&to=2025-12-30T08:29:59Z"),
    )
    .await;
    let changes = json["result"]["changes"].as_array().unwrap();
    assert_eq!(changes.len(), 1, "{json}");
    let c = &changes[0];
    assert_eq!(c["time"], ms(start + Duration::seconds(700)));
    let shift = c["shift"].as_f64().unwrap();
    assert!(
        (shift - (200u64 << 20) as f64).abs() < (2u64 << 20) as f64,
        "{shift}"
    );
    let segments = json["result"]["segments"].as_array().unwrap();
    assert_eq!(segments.len(), 2);
    assert_eq!(segments[0]["from"], ms(start));
    assert_eq!(segments[1]["to"], ms(start + Duration::seconds(1799)));
}

#[tokio::test]
async fn study_parameters_are_checked() {
    let (_dir, app, _) = data();
    for (uri, expected) in [
        (
            format!("/api/study?kind=fourier&container={WEB}&metric=cpu_usage_usec"),
            "kind=",
        ),
        (
            "/api/study?kind=periodicity&metric=cpu_usage_usec".to_string(),
            "containers is required",
        ),
        (
            format!("/api/study?container={WEB},{DB}&metric=cpu_usage_usec"),
            "at most 1",
        ),
        (
            format!("/api/study?container={WEB}&metric=nope"),
            "unknown metric",
        ),
        (format!("/api/study?container={WEB}"), "metric is required"),
        (
            format!("/api/study?container={WEB}&metric=cpu_usage_usec&from=2025-11-01T00:00:00Z"),
            "at most 14 days",
        ),
    ] {
        let (status, body) = get(&app, &uri).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{uri}: {body}");
        assert!(body.contains(expected), "{uri}: {body}");
    }
}
