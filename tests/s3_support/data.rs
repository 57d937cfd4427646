//! Data for the bucket tests: files made by the project's own writer, and a
//! per-container checksum of what a query over the bucket would read.

use std::collections::BTreeMap;

use arrow_array::Array;
use arrow_array::cast::AsArray;
use arrow_array::types::{Int64Type, TimestampMillisecondType};
use bytes::Bytes;
use chrono::{DateTime, Utc};
use fine_grained_monitor::export::compact::CompactArgs;
use fine_grained_monitor::export::{BucketArgs, keys};
use fine_grained_monitor::s3;
use fine_grained_monitor::store::datasets;
use fine_grained_monitor::store::schema::METRICS;
use fine_grained_monitor::store::writer::SampleBuffer;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

use super::{REGION, S3Server};

/// `count` consecutive files of `node` from `start`, each `span_secs` one-second
/// samples of `containers` containers, encoded by the agent's writer.
pub fn write_files(
    node: &str,
    start: DateTime<Utc>,
    count: usize,
    span_secs: i64,
    containers: usize,
) -> Vec<(DateTime<Utc>, Vec<u8>)> {
    let ids: Vec<String> = (0..containers)
        .map(|c| format!("{:012x}", 0xabc000 + c as u64 * 7919 + node.len() as u64))
        .collect();
    let mut out = Vec::with_capacity(count);
    let mut values = vec![Some(0i64); METRICS.len()];
    for f in 0..count {
        let file_start = start + chrono::Duration::seconds(f as i64 * span_secs);
        let mut buf = SampleBuffer::new();
        for s in 0..span_secs {
            let t = file_start.timestamp_millis() + s * 1000;
            for (c, id) in ids.iter().enumerate() {
                for (m, v) in values.iter_mut().enumerate() {
                    // Counters climb, gauges wander: distinct values per container and metric.
                    *v = Some((t / 1000) * (m as i64 + 1) + (c as i64) * 1_000 + (s % 17));
                }
                buf.push(t, id, &values);
            }
        }
        let mut bytes = Vec::new();
        buf.encode(&mut bytes, node).expect("encode");
        out.push((file_start, bytes));
    }
    out
}

/// Rows and value sums of one container.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Checksum {
    pub rows: u64,
    pub timestamp_sum: i64,
    pub value_sum: i64,
}

/// Per (node, container) checksum of every Parquet object a query reads under
/// `prefix` (one listing, [`keys::visible`]).
pub async fn visible_checksums(
    client: &s3::Client,
    prefix: &str,
) -> BTreeMap<(String, String), Checksum> {
    let listing = client
        .list(&format!("{prefix}/"), None)
        .await
        .expect("list");
    let parsed: Vec<keys::ParsedKey> = listing
        .objects
        .iter()
        .filter_map(|o| keys::parse_key(prefix, &o.key))
        .collect();
    let mut sums: BTreeMap<(String, String), Checksum> = BTreeMap::new();
    for key in keys::visible(&parsed) {
        let body: Bytes = client.get_object(&key.key, 256 << 20).await.expect("get");
        let reader = ParquetRecordBatchReaderBuilder::try_new(body)
            .expect("parquet")
            .build()
            .expect("reader");
        for batch in reader {
            let batch = batch.expect("batch");
            let ids = batch
                .column_by_name("container_id")
                .expect("container_id column")
                .as_string::<i32>();
            let ts = batch
                .column_by_name("timestamp")
                .expect("timestamp column")
                .as_primitive::<TimestampMillisecondType>();
            for i in 0..batch.num_rows() {
                let entry = sums
                    .entry((key.node.clone(), ids.value(i).to_string()))
                    .or_default();
                entry.rows += 1;
                entry.timestamp_sum = entry.timestamp_sum.wrapping_add(ts.value(i));
                for m in METRICS {
                    if let Some(col) = batch.column_by_name(m.name) {
                        let col = col.as_primitive::<Int64Type>();
                        if col.is_valid(i) {
                            entry.value_sum = entry.value_sum.wrapping_add(col.value(i));
                        }
                    }
                }
            }
        }
    }
    sums
}

/// `compact` settings for `bucket` on `server` (hourly, 15 min settle, 30 min grace).
pub fn compact_args(server: &S3Server, bucket: &str, prefix: &str) -> CompactArgs {
    CompactArgs {
        export_bucket: Some(bucket.into()),
        export_prefix: prefix.into(),
        bucket: BucketArgs {
            export_endpoint: Some(server.endpoint.clone()),
            export_region: REGION.into(),
            export_path_style: true,
            export_ca_file: None,
            export_sts_endpoint: None,
            export_timeout: "30s".parse().expect("a duration"),
        },
        span: "1h".parse().expect("a duration"),
        settle: "15m".parse().expect("a duration"),
        delete_after: "30m".parse().expect("a duration"),
        lookback: "8d".parse().expect("a duration"),
        node: None,
    }
}

/// `count` files of `span_secs` one-second samples from `start`, each container's
/// values from `values(container index, seconds since start)` (METRICS order).
pub fn files_with(
    node: &str,
    start: DateTime<Utc>,
    count: usize,
    span_secs: i64,
    ids: &[&str],
    values: impl Fn(usize, i64) -> Vec<Option<i64>>,
) -> Vec<(DateTime<Utc>, Vec<u8>)> {
    let mut out = Vec::with_capacity(count);
    for f in 0..count {
        let file_start = start + chrono::Duration::seconds(f as i64 * span_secs);
        let mut buf = SampleBuffer::new();
        for s in 0..span_secs {
            let since = f as i64 * span_secs + s;
            let t = start.timestamp_millis() + since * 1000;
            for (c, id) in ids.iter().enumerate() {
                buf.push(t, id, &values(c, since));
            }
        }
        let mut bytes = Vec::new();
        buf.encode(&mut bytes, node).expect("encode");
        out.push((file_start, bytes));
    }
    out
}

/// Uploads `files` of `node` under `prefix` as the agent names them.
pub async fn upload(
    client: &s3::Client,
    prefix: &str,
    node: &str,
    files: Vec<(DateTime<Utc>, Vec<u8>)>,
) {
    for (start, bytes) in files {
        client
            .put_object(
                &keys::data_key(prefix, node, start),
                bytes.into(),
                "application/vnd.apache.parquet",
            )
            .await
            .expect("upload");
    }
}

/// `count` consecutive files of `spec`'s dataset from `start`, each of `span_secs`
/// seconds, with the rows `rows(second since start)` gives for each second, written by
/// the agent's dataset writer; uploaded under the dataset's keys for `node`.
#[allow(dead_code)] // not every test binary uploads datasets
pub async fn upload_dataset(
    client: &s3::Client,
    prefix: &str,
    node: &str,
    spec: &'static datasets::Spec,
    (start, count, span_secs): (DateTime<Utc>, usize, i64),
    rows: impl Fn(i64) -> Vec<datasets::Row>,
) {
    let dir = tempfile::tempdir().expect("tempdir");
    for f in 0..count as i64 {
        let file_start = start + chrono::Duration::seconds(f * span_secs);
        let mut buf = datasets::Buffer::new(spec);
        for s in 0..span_secs {
            for row in rows(f * span_secs + s) {
                buf.push(row);
            }
        }
        let Some((path, _)) =
            datasets::write(dir.path(), node, file_start, &mut buf).expect("dataset file written")
        else {
            continue;
        };
        client
            .put_object(
                &keys::dataset_key(prefix, spec.dataset, node, file_start),
                std::fs::read(path).expect("dataset file").into(),
                "application/vnd.apache.parquet",
            )
            .await
            .expect("upload");
    }
}

/// What the committed rates and summaries objects under `prefix` hold (those
/// whose merged file is listed, [`derived::committed`]).
#[derive(Debug, Default)]
pub struct Derived {
    /// (node, container, timestamp ms) -> the RATE_COLUMNS values, as doubles.
    pub rates: BTreeMap<(String, String, i64), Vec<Option<f64>>>,
    /// Rates rows seen more than once.
    pub duplicate_rates: usize,
    /// (node, container, hour ms, metric) -> summed rows.
    pub summaries: BTreeMap<(String, String, i64, String), Summary>,
    /// Keys of the committed objects.
    pub objects: Vec<String>,
}

/// Count, sum, min, max and buckets of one (node, container, hour, metric),
/// from every summaries row that has them.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Summary {
    pub count: u64,
    pub sum: f64,
    pub min: f64,
    pub max: f64,
    pub buckets: BTreeMap<i32, u64>,
}

/// Reads every committed rates and summaries object under `prefix`.
pub async fn committed_derived(client: &s3::Client, prefix: &str) -> Derived {
    use arrow_array::types::{Float64Type, Int32Type};
    use fine_grained_monitor::export::derived::{self, rates::RATE_COLUMNS};
    let listing = client
        .list(&format!("{prefix}/"), None)
        .await
        .expect("list");
    let main: Vec<keys::ParsedKey> = listing
        .objects
        .iter()
        .filter_map(|o| keys::parse_key(prefix, &o.key))
        .collect();
    let all: Vec<derived::DerivedKey> = listing
        .objects
        .iter()
        .filter_map(|o| derived::parse(prefix, &o.key))
        .collect();
    let mut out = Derived::default();
    for d in derived::committed(&all, &main) {
        out.objects.push(d.key.clone());
        let body: Bytes = client.get_object(&d.key, 256 << 20).await.expect("get");
        let reader = ParquetRecordBatchReaderBuilder::try_new(body)
            .expect("parquet")
            .build()
            .expect("reader");
        for batch in reader {
            let b = batch.expect("batch");
            let ids = b
                .column_by_name("container_id")
                .expect("container_id")
                .as_string::<i32>();
            match d.dataset {
                derived::Dataset::Rates => {
                    let ts = b
                        .column_by_name("timestamp")
                        .expect("timestamp")
                        .as_primitive::<TimestampMillisecondType>();
                    for i in 0..b.num_rows() {
                        let values = RATE_COLUMNS
                            .iter()
                            .map(|c| {
                                let col = b.column_by_name(c.name).expect("rate column");
                                if !col.is_valid(i) {
                                    None
                                } else if let Some(f) = col.as_primitive_opt::<Float64Type>() {
                                    Some(f.value(i))
                                } else {
                                    Some(col.as_primitive::<Int64Type>().value(i) as f64)
                                }
                            })
                            .collect();
                        let key = (d.node.clone(), ids.value(i).to_string(), ts.value(i));
                        if out.rates.insert(key, values).is_some() {
                            out.duplicate_rates += 1;
                        }
                    }
                }
                derived::Dataset::Summaries => {
                    let col = |n: &str| b.column_by_name(n).expect("summaries column").clone();
                    let metric = col("metric");
                    let metric = metric.as_string::<i32>();
                    let bucket = col("bucket");
                    let bucket = bucket.as_primitive::<Int32Type>();
                    let count = col("count");
                    let count = count.as_primitive::<Int64Type>();
                    let (sum, min, max) = (col("sum"), col("min"), col("max"));
                    let f = |a: &arrow_array::ArrayRef, i| a.as_primitive::<Float64Type>().value(i);
                    for i in 0..b.num_rows() {
                        let key = (
                            d.node.clone(),
                            ids.value(i).to_string(),
                            d.hour.timestamp_millis(),
                            metric.value(i).to_string(),
                        );
                        let e = out.summaries.entry(key).or_default();
                        let n = count.value(i) as u64;
                        if bucket.is_null(i) {
                            let first = e.count == 0;
                            e.count += n;
                            e.sum += f(&sum, i);
                            e.min = if first {
                                f(&min, i)
                            } else {
                                e.min.min(f(&min, i))
                            };
                            e.max = if first {
                                f(&max, i)
                            } else {
                                e.max.max(f(&max, i))
                            };
                        } else {
                            *e.buckets.entry(bucket.value(i)).or_default() += n;
                        }
                    }
                }
            }
        }
    }
    out
}
