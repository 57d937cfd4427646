//! Query-ready history (issue #24) read the way it is meant to be: a
//! 5-minute question over a day of compacted data reads a small share of
//! the day's bytes (the objects of its hour, the row groups of its minutes),
//! measured by the S3 server itself (SeaweedFS counts the bytes it sends) and
//! shown by DuckDB's EXPLAIN ANALYZE. A byte count, never a time.

// Test crate: a panic is the failure report.
#![allow(clippy::unwrap_used)]

mod s3_support;
mod support;

use chrono::{Duration, Utc};
use fine_grained_monitor::export::compact;
use fine_grained_monitor::store::schema::METRICS;
use s3_support::queries::{Target, python};
use s3_support::{S3Server, data};

const BUCKET: &str = "share";
const PREFIX: &str = "fgm/share";

#[test]
fn a_five_minute_question_reads_a_small_share_of_a_day() {
    python();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let server = S3Server::start("share", None);
    let client = rt.block_on(server.bucket(BUCKET));
    // One node, ten containers, a whole day in half-hour files.
    let day = (Utc::now() - Duration::days(2))
        .date_naive()
        .and_hms_opt(0, 0, 0)
        .unwrap()
        .and_utc();
    let ids: Vec<String> = (1..=10).map(|c| format!("a{c:011x}")).collect();
    let ids: Vec<&str> = ids.iter().map(String::as_str).collect();
    // Every counter climbs unevenly, every gauge wanders: rates objects as full as real ones.
    let files = data::files_with("n1", day, 48, 1800, &ids, |c, s| {
        let c = c as i64;
        METRICS
            .iter()
            .enumerate()
            .map(|(m, def)| {
                let noise = (s * 7919 + c * 104_729 + m as i64 * 31) % 997;
                Some(if def.kind.as_str() == "counter" {
                    s * 1000 * (c + 1) + noise * 13
                } else {
                    (64 << 20) + c * (1 << 20) + noise * 4096
                })
            })
            .collect()
    });
    rt.block_on(data::upload(&client, PREFIX, "n1", files));
    let args = data::compact_args(&server, BUCKET, PREFIX);
    let now = Utc::now();
    rt.block_on(compact::run_with(&client, &args, now)).unwrap();
    // The replaced raw files gone: the day is merged files, rates and summaries.
    rt.block_on(compact::run_with(&client, &args, now + Duration::hours(1)))
        .unwrap();
    let listing = rt
        .block_on(client.list(&format!("{PREFIX}/"), None))
        .unwrap();
    let size = |part: &str| -> u64 {
        listing
            .objects
            .iter()
            .filter(|o| o.key.contains(part))
            .map(|o| o.size)
            .sum()
    };
    let (rates, day_total) = (size("/rates/"), size(".parquet"));
    let from = (day + Duration::hours(12)).to_rfc3339();
    let to = (day + Duration::hours(12) + Duration::minutes(5)).to_rfc3339();
    let target = Target {
        server: &server,
        bucket: BUCKET,
        prefix: PREFIX,
    };
    let sent_before = server.sent_bytes(BUCKET);
    let top = target.query("top_cpu_p99.sql", &from, &to);
    let read = server.sent_bytes(BUCKET) - sent_before;
    assert_eq!(top.len(), 10, "{top:?}");
    assert_eq!(top[0]["samples"], 301, "12:00:00..12:05:00, both ends in");
    let (_, profile) = target.run_py(
        std::path::Path::new("top_cpu_p99.sql"),
        &from,
        &to,
        &["--profile"],
    );
    let http: Vec<&str> = profile
        .lines()
        .filter(|l| l.contains("in:") || l.contains("#GET") || l.contains("Files Read"))
        .collect();
    eprintln!(
        "5 minutes of a day: the server sent {read} bytes of the day's {day_total} \
         ({:.1} %; rates objects {rates} bytes); EXPLAIN ANALYZE: {http:?}",
        read as f64 * 100.0 / day_total as f64
    );
    assert!(
        read * 10 < rates,
        "a 5-minute question reads {read} bytes, the day's rates are {rates}"
    );
}
