//! Compaction's rates and summaries (issue #24) through a real S3 server
//! (SeaweedFS): they agree with a plain recomputation from the raw rows
//! (counter resets, null values, missing seconds, spans and midnight
//! crossed), and every raw row is in them exactly once, also when a run died
//! before its merged file, when compaction runs again, when raw files arrive
//! late, and after the raw files are gone.

// Test crate: a panic is the failure report.
#![allow(clippy::unwrap_used)]

mod s3_support;
mod support;

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};
use fine_grained_monitor::export::compact::{self, Report};
use fine_grained_monitor::export::derived::{self, Dataset, histogram, rates::RATE_COLUMNS};
use fine_grained_monitor::export::keys;
use fine_grained_monitor::store::schema::{METRICS, metric_index};
use fine_grained_monitor::store::writer::SampleBuffer;
use s3_support::{S3Server, data};

const PREFIX: &str = "fgm/derived";
const BUCKET: &str = "derived";
const ROTATION: i64 = 70;
const CONTAINERS: usize = 3;

/// Raw sample of container `c` at `s` seconds after the start, or `None`
/// when the container missed that second.
fn sample(c: usize, s: i64) -> Option<Vec<Option<i64>>> {
    if c == 2 && (2000..2010).contains(&s) {
        return None; // ten seconds missed
    }
    let mut v = vec![None; METRICS.len()];
    let mut set = |name: &str, x: Option<i64>| v[metric_index(name).unwrap()] = x;
    let c64 = c as i64;
    // A climbing counter with uneven steps; container 0's restarts at 1000 s.
    let mut cpu = s * 100_000 * (c64 + 1) + (s * 7919 % 50_000);
    if c == 0 && s >= 1000 {
        cpu = (s - 1000) * 90_000;
    }
    set("cpu_usage_usec", Some(cpu));
    set("cpu_nr_periods", Some(s * 10));
    set("cpu_nr_throttled", Some(s * 3 * c64));
    set("cpu_throttled_usec", Some(s * 1000 * c64));
    let hole = c == 1 && (1500..1503).contains(&s);
    set("io_read_bytes", (!hole).then_some(s * 4096 * (c64 + 1)));
    set(
        "memory_oom_kill_events",
        Some(if c == 2 { s / 1000 } else { 0 }),
    );
    set(
        "memory_working_set_bytes",
        Some(100_000_000 + s * 7919 % 1_000_000),
    );
    if c == 1 {
        set("cpu_quota_usec", Some(50_000));
        set("cpu_period_usec", Some(100_000));
    }
    Some(v)
}

fn ids(node: &str) -> Vec<String> {
    (0..CONTAINERS)
        .map(|c| format!("{:x}{c:011x}", 0xd0 + node.len()))
        .collect()
}

/// (node, container, timestamp ms) -> the raw values (METRICS order).
type Raw = BTreeMap<(String, String, i64), Vec<Option<i64>>>;
type RawRow<'a> = (&'a (String, String, i64), &'a Vec<Option<i64>>);

/// Files `from..to` (indices) of `node`, uploaded; their rows added to `raw`.
async fn upload(
    client: &fine_grained_monitor::s3::Client,
    node: &str,
    start: DateTime<Utc>,
    files: std::ops::Range<i64>,
    raw: &mut Raw,
) {
    for f in files {
        let file_start = start + Duration::seconds(f * ROTATION);
        let mut buf = SampleBuffer::new();
        for s in f * ROTATION..(f + 1) * ROTATION {
            let t = start.timestamp_millis() + s * 1000;
            for (c, id) in ids(node).iter().enumerate() {
                if let Some(v) = sample(c, s) {
                    buf.push(t, id, &v);
                    raw.insert((node.to_string(), id.clone(), t), v);
                }
            }
        }
        let mut bytes = Vec::new();
        buf.encode(&mut bytes, node).unwrap();
        client
            .put_object(
                &keys::data_key(PREFIX, node, file_start),
                bytes.into(),
                "application/vnd.apache.parquet",
            )
            .await
            .unwrap();
    }
}

/// The rates of `raw`, recomputed plainly per container in time order:
/// RATE_COLUMNS order, the columns this test checks (others None).
fn recompute(raw: &Raw) -> BTreeMap<(String, String, i64), Vec<Option<f64>>> {
    let get = |v: &[Option<i64>], n: &str| v[metric_index(n).unwrap()];
    let mut out = BTreeMap::new();
    let mut prev: Option<RawRow> = None;
    for (key, v) in raw {
        let p = prev.filter(|(k, _)| k.0 == key.0 && k.1 == key.1);
        let dt = p.map(|(k, _)| (key.2 - k.2) as f64);
        let d = |n: &str| -> Option<i64> {
            let (pv, cv) = (get(p?.1, n)?, get(v, n)?);
            (cv >= pv).then_some(cv - pv)
        };
        let mut row = vec![None; RATE_COLUMNS.len()];
        let mut put = |name: &str, x: Option<f64>| {
            row[RATE_COLUMNS.iter().position(|c| c.name == name).unwrap()] = x;
        };
        put(
            "cpu_cores",
            d("cpu_usage_usec").map(|x| x as f64 / (dt.unwrap() * 1000.0)),
        );
        put(
            "cpu_throttled_share",
            match (d("cpu_nr_throttled"), d("cpu_nr_periods")) {
                (Some(a), Some(b)) if b > 0 => Some(a as f64 / b as f64),
                _ => None,
            },
        );
        put(
            "io_read_bytes_per_s",
            d("io_read_bytes").map(|x| x as f64 * 1000.0 / dt.unwrap()),
        );
        put(
            "oom_kill_events",
            d("memory_oom_kill_events").map(|x| x as f64),
        );
        put(
            "memory_working_set_bytes",
            get(v, "memory_working_set_bytes").map(|x| x as f64),
        );
        put(
            "cpu_limit_cores",
            get(v, "cpu_quota_usec")
                .zip(get(v, "cpu_period_usec"))
                .map(|(q, p)| q as f64 / p as f64),
        );
        out.insert(key.clone(), row);
        prev = Some((key, v));
    }
    out
}

const CHECKED: [&str; 6] = [
    "cpu_cores",
    "cpu_throttled_share",
    "io_read_bytes_per_s",
    "oom_kill_events",
    "memory_working_set_bytes",
    "cpu_limit_cores",
];

/// The committed rates and summaries hold every raw row once, with the
/// recomputed values; summaries are those of the rates, p99 within 1 %.
fn check(got: &data::Derived, raw: &Raw) {
    assert_eq!(got.duplicate_rates, 0, "no rates row twice");
    let want = recompute(raw);
    assert_eq!(
        got.rates.keys().collect::<Vec<_>>(),
        want.keys().collect::<Vec<_>>(),
        "one rates row per raw row, no more"
    );
    let mut firsts = 0;
    for (key, w) in &want {
        let g = &got.rates[key];
        for name in CHECKED {
            let i = RATE_COLUMNS.iter().position(|c| c.name == name).unwrap();
            assert_eq!(g[i], w[i], "{name} at {key:?}");
        }
        if g[0].is_none() && w[0].is_none() {
            firsts += 1;
        }
    }
    // No rate for a container's first sample, the reset, the null's
    // neighbours; every other row has its rate, across spans and midnight.
    let first_cpu_nulls = 2 * CONTAINERS + 2;
    assert_eq!(
        firsts, first_cpu_nulls,
        "cpu_cores is null only where it must be"
    );
    // Summaries: per (node, container, hour), those of the rates.
    let mut by_hour: BTreeMap<(String, String, i64, &str), Vec<f64>> = BTreeMap::new();
    for ((node, id, t), row) in &got.rates {
        for name in ["cpu_cores", "memory_working_set_bytes"] {
            let i = RATE_COLUMNS.iter().position(|c| c.name == name).unwrap();
            if let Some(v) = row[i] {
                let hour = t - t.rem_euclid(3_600_000);
                by_hour
                    .entry((node.clone(), id.clone(), hour, name))
                    .or_default()
                    .push(v);
            }
        }
    }
    for ((node, id, hour, name), mut values) in by_hour {
        let s = &got.summaries[&(node.clone(), id.clone(), hour, name.to_string())];
        assert_eq!(s.count as usize, values.len(), "{node} {id} {hour} {name}");
        let sum: f64 = values.iter().sum();
        assert!((s.sum - sum).abs() <= 1e-9 * sum.abs().max(1.0));
        values.sort_by(f64::total_cmp);
        assert_eq!((s.min, s.max), (values[0], values[values.len() - 1]));
        assert_eq!(s.buckets.values().sum::<u64>(), s.count);
        let exact = values[(0.99 * values.len() as f64).ceil() as usize - 1];
        let p99 = histogram::percentile(s.buckets.iter().map(|(b, c)| (*b, *c)), 0.99).unwrap();
        assert!(
            (p99 - exact).abs() <= histogram::RELATIVE_ACCURACY * exact,
            "p99 {p99} vs {exact}"
        );
    }
}

async fn run(
    server: &S3Server,
    client: &fine_grained_monitor::s3::Client,
    at: DateTime<Utc>,
) -> Report {
    let args = data::compact_args(server, BUCKET, PREFIX);
    compact::run_with(client, &args, at).await.unwrap()
}

#[test]
fn rates_and_summaries_hold_every_raw_row_once_through_compaction() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let server = S3Server::start("derived", None);
    let client = rt.block_on(server.bucket(BUCKET));
    // 22:58:20 to 00:08:20: three spans, an hour and midnight crossed, rotation not aligned.
    let start = (Utc::now() - Duration::days(2))
        .date_naive()
        .and_hms_opt(22, 58, 20)
        .unwrap()
        .and_utc();
    let mut raw = Raw::new();
    for node in ["n1", "n22"] {
        rt.block_on(upload(&client, node, start, 0..60, &mut raw));
    }
    let now = Utc::now();
    let first = rt.block_on(run(&server, &client, now));
    assert_eq!(
        (first.merged_files, first.input_files),
        (6, 120),
        "{first:?}"
    );
    assert_eq!(
        first.seeded, 4,
        "every span but each node's first starts from the one before"
    );
    let got = rt.block_on(data::committed_derived(&client, PREFIX));
    check(&got, &raw);
    // An object per clock hour of a span's rows: 22h and 23h (its last file runs over), 23h
    // and 00h, 00h.
    let rates_objects = got.objects.iter().filter(|k| k.contains("/rates/")).count();
    assert_eq!(rates_objects, 2 * 5, "{:?}", got.objects);

    // A run that died before its merged file: the derived objects it wrote count for nothing,
    // the raw files count instead, and the next run writes the same keys again.
    let n1_23h = keys::merged_key(
        PREFIX,
        "n1",
        start + Duration::seconds(2 * ROTATION),
        start + Duration::seconds(52 * ROTATION),
    );
    let listing = rt
        .block_on(client.list(&format!("{PREFIX}/"), None))
        .unwrap();
    assert!(listing.objects.iter().any(|o| o.key == n1_23h), "{n1_23h}");
    rt.block_on(client.delete_object(&n1_23h)).unwrap();
    let partial = rt.block_on(data::committed_derived(&client, PREFIX));
    assert!(partial.rates.len() < got.rates.len());
    let visible = rt.block_on(data::visible_checksums(&client, PREFIX));
    assert_eq!(
        visible.values().map(|c| c.rows).sum::<u64>() as usize,
        raw.len(),
        "the raw files are back"
    );
    let again = rt.block_on(run(&server, &client, now));
    assert_eq!(again.merged_files, 1);
    let redone = rt.block_on(data::committed_derived(&client, PREFIX));
    assert_eq!(redone.objects, got.objects, "the same keys");
    check(&redone, &raw);

    // Raw files that arrive after their span was merged: merged on their own, rates go on.
    rt.block_on(upload(&client, "n22", start, 60..62, &mut raw));
    let late = rt.block_on(run(&server, &client, Utc::now()));
    assert_eq!((late.merged_files, late.seeded), (1, 1), "{late:?}");
    check(&rt.block_on(data::committed_derived(&client, PREFIX)), &raw);

    // An orphan (its merged file never written), and the grace period over: the replaced raw
    // files and the orphan go, every row stays, once.
    let orphan = derived::key(
        PREFIX,
        Dataset::Rates,
        "n1",
        start,
        start,
        start + Duration::seconds(1),
    );
    rt.block_on(client.put_object(
        &orphan,
        bytes::Bytes::from_static(b"x"),
        "application/octet-stream",
    ))
    .unwrap();
    let later = rt.block_on(run(&server, &client, Utc::now() + Duration::hours(2)));
    assert_eq!(later.orphans_deleted, 1, "{later:?}");
    assert_eq!(later.deleted, 122);
    let listing = rt
        .block_on(client.list(&format!("{PREFIX}/"), None))
        .unwrap();
    assert!(!listing.objects.iter().any(|o| o.key == orphan));
    check(&rt.block_on(data::committed_derived(&client, PREFIX)), &raw);
    let raw_left = listing
        .objects
        .iter()
        .filter_map(|o| keys::parse_key(PREFIX, &o.key))
        .filter(|k| matches!(k.kind, keys::ObjectKind::Raw { .. }))
        .count();
    assert_eq!(raw_left, 0);
}
