use std::collections::BTreeMap;

use arrow_array::cast::AsArray;
use arrow_array::types::{Float64Type, Int32Type, Int64Type, TimestampMillisecondType};
use arrow_array::{Array, RecordBatch};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::file::reader::{FileReader, SerializedFileReader};
use parquet::file::statistics::Statistics;

use super::*;
use crate::export::derived::{histogram, summary};
use crate::store::schema::{METRICS, metric_index};
use crate::store::writer::SampleBuffer;

const T0: i64 = 1_767_348_000_000; // 2026-01-02T10:00:00Z

type Row = (i64, String, Vec<Option<i64>>);

/// A data file of `rows` (time ms, container, values in METRICS order), as the agent writes it.
fn file(rows: &[Row]) -> Bytes {
    let mut buf = SampleBuffer::new();
    for (t, id, v) in rows {
        buf.push(*t, id, v);
    }
    let mut out = Vec::new();
    buf.encode(&mut out, "n").unwrap();
    Bytes::from(out)
}

fn set(v: &mut [Option<i64>], name: &str, x: Option<i64>) {
    v[metric_index(name).unwrap()] = x;
}

/// Samples of two containers over `secs` seconds from `from` (s after T0),
/// with a counter reset, a null hole, a missing second and an OOM kill.
fn samples(from: i64, secs: i64) -> Vec<Row> {
    let mut out = Vec::new();
    for s in from..from + secs {
        for (c, id) in ["c-a", "c-b"].iter().enumerate() {
            if c == 1 && s == 30 {
                continue; // c-b missed a second: its next rate covers two
            }
            let mut v = vec![None; METRICS.len()];
            let mut cpu = s * (250_000 + 100_000 * c as i64) + (s * s % 7) * 1_000;
            if c == 0 && s >= 40 {
                cpu -= 40 * 250_000; // the counter went back: a reset at 40 s
            }
            set(&mut v, "cpu_usage_usec", Some(cpu));
            set(&mut v, "io_read_bytes", (s != 12).then_some(s * 4096));
            set(&mut v, "memory_oom_kill_events", Some(i64::from(s >= 50)));
            set(&mut v, "memory_working_set_bytes", Some(1_000 + s * 10));
            out.push((T0 + s * 1000, id.to_string(), v));
        }
    }
    out
}

/// The rates of `rows` by (container, time), recomputed plainly:
/// (cpu_cores, io_read_bytes_per_s, oom_kill_events, working set).
type Expect = BTreeMap<(String, i64), (Option<f64>, Option<f64>, Option<i64>, Option<i64>)>;

fn recompute(rows: &[Row]) -> Expect {
    let mut by: BTreeMap<String, Vec<&Row>> = BTreeMap::new();
    for r in rows {
        by.entry(r.1.clone()).or_default().push(r);
    }
    let mut out = BTreeMap::new();
    let get = |r: &Row, n: &str| r.2[metric_index(n).unwrap()];
    for (id, mut rs) in by {
        rs.sort_by_key(|r| r.0);
        for (i, r) in rs.iter().enumerate() {
            let prev = i.checked_sub(1).map(|p| rs[p]);
            let d = |n: &str| {
                let (p, c) = (get(prev?, n)?, get(r, n)?);
                (c >= p).then_some(c - p)
            };
            let dt = prev.map(|p| (r.0 - p.0) as f64);
            let cpu = d("cpu_usage_usec").map(|x| x as f64 / (dt.unwrap() * 1000.0));
            let io = d("io_read_bytes").map(|x| x as f64 * 1000.0 / dt.unwrap());
            out.insert(
                (id.clone(), r.0),
                (
                    cpu,
                    io,
                    d("memory_oom_kill_events"),
                    get(r, "memory_working_set_bytes"),
                ),
            );
        }
    }
    out
}

fn batches(bytes: &[u8]) -> Vec<RecordBatch> {
    ParquetRecordBatchReaderBuilder::try_new(Bytes::from(bytes.to_vec()))
        .unwrap()
        .build()
        .unwrap()
        .collect::<Result<Vec<_>, _>>()
        .unwrap()
}

fn read_rates(bytes: &[u8]) -> Expect {
    let mut out = BTreeMap::new();
    let mut last = (i64::MIN, String::new());
    for b in batches(bytes) {
        let t = b.column(0).as_primitive::<TimestampMillisecondType>();
        let ids = b.column(1).as_string::<i32>();
        let f = |n: &str| b.column_by_name(n).unwrap().as_primitive::<Float64Type>();
        let i = |n: &str| b.column_by_name(n).unwrap().as_primitive::<Int64Type>();
        let (cpu, io) = (f("cpu_cores"), f("io_read_bytes_per_s"));
        let (oom, ws) = (i("oom_kill_events"), i("memory_working_set_bytes"));
        let opt_f = |a: &arrow_array::Float64Array, r| a.is_valid(r).then(|| a.value(r));
        let opt_i = |a: &arrow_array::Int64Array, r| a.is_valid(r).then(|| a.value(r));
        for r in 0..b.num_rows() {
            let key = (t.value(r), ids.value(r).to_string());
            assert!(
                key > last,
                "sorted by (timestamp, container): {last:?} then {key:?}"
            );
            last = key.clone();
            let row = (opt_f(cpu, r), opt_f(io, r), opt_i(oom, r), opt_i(ws, r));
            assert!(out.insert((key.1, key.0), row).is_none(), "once");
        }
    }
    out
}

#[test]
fn rates_match_a_plain_recomputation_with_resets_holes_and_gaps() {
    let all = samples(0, 400);
    // Three files of the span (split by time), as the agent rotates them.
    let part = |a: i64, b: i64| -> Vec<Row> {
        all.iter()
            .filter(|r| r.0 >= T0 + a * 1000 && r.0 < T0 + b * 1000)
            .cloned()
            .collect()
    };
    let inputs = vec![
        ("f1".to_string(), file(&part(0, 90))),
        ("f2".to_string(), file(&part(90, 180))),
        ("f3".to_string(), file(&part(180, 400))),
    ];
    let hours = derive(&inputs, None, "n").unwrap();
    assert_eq!(hours.len(), 1, "10:00-10:06: one hour");
    let d = &hours[0];
    assert_eq!(d.hour_ms, T0);
    assert_eq!(d.rows, all.len(), "one rates row per raw row");
    let got = read_rates(&d.rates);
    let want = recompute(&all);
    assert_eq!(got.len(), want.len());
    for (k, w) in &want {
        assert_eq!(got.get(k), Some(w), "{k:?}");
    }
    // The cases the data holds, spelled out.
    let at = |id: &str, s: i64| got[&(id.to_string(), T0 + s * 1000)];
    assert_eq!(
        at("c-a", 0).0,
        None,
        "a container's first sample has no rate"
    );
    assert_eq!(
        at("c-a", 40).0,
        None,
        "a reset gives null, not a negative rate"
    );
    assert!(at("c-a", 41).0.is_some(), "and rates go on after it");
    assert_eq!(at("c-a", 12).1, None, "a null counter: no rate into it");
    assert_eq!(at("c-a", 13).1, None, "nor out of it");
    assert_eq!(at("c-a", 50).2, Some(1), "the OOM kill in its interval");
    assert_eq!(at("c-a", 51).2, Some(0));
    let gap = at("c-b", 31).0.unwrap();
    assert!((gap - 0.35).abs() < 0.01, "the rate over a 2 s gap: {gap}");
    assert!(
        at("c-a", 90).0.is_some(),
        "file boundaries do not break rates"
    );
    // Every row of a row group lies in one 5-minute slot; stats in the footer.
    let reader = SerializedFileReader::new(Bytes::from(d.rates.clone())).unwrap();
    let meta = reader.metadata();
    assert_eq!(meta.num_row_groups(), 2, "0-300 s and 300-400 s");
    assert_eq!(d.rate_row_groups, 2);
    for rg in meta.row_groups() {
        let Some(Statistics::Int64(s)) = rg.column(0).statistics() else {
            panic!("timestamp statistics");
        };
        let (lo, hi) = (*s.min_opt().unwrap(), *s.max_opt().unwrap());
        assert_eq!(
            lo.div_euclid(ROW_GROUP_SPAN_MS),
            hi.div_euclid(ROW_GROUP_SPAN_MS)
        );
    }
    let kv = meta.file_metadata().key_value_metadata().unwrap();
    let get = |k: &str| kv.iter().find(|e| e.key == k).and_then(|e| e.value.clone());
    assert_eq!(
        get(schema::FORMAT_VERSION_KEY).as_deref(),
        Some(FORMAT_VERSION)
    );
    assert_eq!(get(DATASET_KEY).as_deref(), Some("rates"));
    assert_eq!(get(HOUR_KEY).as_deref(), Some("2026-01-02T10:00:00Z"));
}

#[test]
fn the_seed_gives_the_first_rows_their_rates() {
    let all = samples(0, 20);
    let (before, span): (Vec<Row>, Vec<Row>) = all.iter().cloned().partition(|r| r.0 < T0 + 10_000);
    let seed = ("prev".to_string(), file(&before));
    let inputs = vec![("f".to_string(), file(&span))];
    let with = read_rates(&derive(&inputs, Some(&seed), "n").unwrap()[0].rates);
    let without = read_rates(&derive(&inputs, None, "n").unwrap()[0].rates);
    let first = ("c-a".to_string(), T0 + 10_000);
    assert_eq!(with[&first], recompute(&all)[&first]);
    assert!(with[&first].0.is_some());
    assert_eq!(without[&first].0, None);
    assert_eq!(with.len(), span.len(), "the seed's rows are not written");
}

/// Summaries rows of one hour's file: (container, hour, metric) -> (stats, buckets).
type Sums = BTreeMap<(String, i64, String), ((i64, f64, f64, f64), Vec<(i32, u64)>)>;

fn read_summaries(out: &mut Sums, hour: i64, bytes: &[u8]) {
    for b in batches(bytes) {
        let ids = b.column(0).as_string::<i32>();
        let metrics = b.column(1).as_string::<i32>();
        let buckets = b.column(2).as_primitive::<Int32Type>();
        let counts = b.column(3).as_primitive::<Int64Type>();
        let f = |i: usize| b.column(i).as_primitive::<Float64Type>().clone();
        let (sum, min, max) = (f(4), f(5), f(6));
        for r in 0..b.num_rows() {
            let key = (ids.value(r).to_string(), hour, metrics.value(r).to_string());
            let e = out.entry(key).or_default();
            if buckets.is_null(r) {
                e.0 = (counts.value(r), sum.value(r), min.value(r), max.value(r));
            } else {
                e.1.push((buckets.value(r), counts.value(r) as u64));
            }
        }
    }
}

#[test]
fn summaries_match_the_rates_they_summarise() {
    // 10:59:00 .. 11:01:00: two clock hours.
    let all = samples(3540, 120);
    let inputs = vec![("f".to_string(), file(&all))];
    let hours = derive(&inputs, None, "n").unwrap();
    assert_eq!(
        hours
            .iter()
            .map(|h| (h.hour_ms - T0, h.rows))
            .collect::<Vec<_>>(),
        vec![(0, 2 * 60), (3_600_000, 2 * 60)],
        "one file per clock hour of the rows, each with that hour's rows"
    );
    let mut rates = Expect::new();
    let mut sums = Sums::new();
    for h in &hours {
        rates.extend(read_rates(&h.rates));
        read_summaries(&mut sums, h.hour_ms, &h.summaries);
    }
    assert_eq!(
        hours.iter().map(|h| h.summary_rows).sum::<usize>(),
        sums.values().map(|s| 1 + s.1.len()).sum::<usize>()
    );
    for (id, hour) in [("c-a", T0), ("c-a", T0 + 3_600_000), ("c-b", T0)] {
        let values: Vec<f64> = rates
            .iter()
            .filter(|((c, t), _)| c == id && summary::hour_of(*t) == hour)
            .filter_map(|(_, r)| r.0)
            .collect();
        let key = (id.to_string(), hour, "cpu_cores".to_string());
        let ((count, sum, min, max), buckets) = &sums[&key];
        assert_eq!(*count as usize, values.len());
        assert!((sum - values.iter().sum::<f64>()).abs() < 1e-9);
        assert_eq!(*min, values.iter().copied().fold(f64::INFINITY, f64::min));
        assert_eq!(*max, values.iter().copied().fold(0.0, f64::max));
        assert_eq!(buckets.iter().map(|b| b.1).sum::<u64>(), *count as u64);
        let mut sorted = values.clone();
        sorted.sort_by(f64::total_cmp);
        let exact = sorted[(0.99 * sorted.len() as f64).ceil() as usize - 1];
        let p99 = histogram::percentile(buckets.iter().copied(), 0.99).unwrap();
        assert!((p99 - exact).abs() / exact <= histogram::RELATIVE_ACCURACY);
    }
    // Gauges are summarised too; columns never set have no rows.
    assert!(sums.contains_key(&("c-a".into(), T0, "memory_working_set_bytes".into())));
    assert!(!sums.keys().any(|k| k.2 == "io_write_bytes_per_s"));
    let reader = SerializedFileReader::new(Bytes::from(hours[0].summaries.clone())).unwrap();
    let metrics_with_rows: std::collections::BTreeSet<&str> = sums
        .keys()
        .filter(|k| k.1 == T0)
        .map(|k| k.2.as_str())
        .collect();
    assert_eq!(
        reader.metadata().num_row_groups(),
        metrics_with_rows.len(),
        "one row group per metric"
    );
}

#[test]
fn unreadable_input_is_named() {
    let inputs = vec![("broken.parquet".to_string(), Bytes::from_static(b"nope"))];
    let e = derive(&inputs, None, "n").unwrap_err().to_string();
    assert!(e.contains("broken.parquet"), "{e}");
}
