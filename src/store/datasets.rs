//! The per-node datasets beside the metrics files: one Parquet file per
//! rotation with the same start time, rotation, retention and export, rows
//! of `timestamp`, `container_id`, a few text columns that say what a row is
//! about (an interface, a device), then integer columns:
//!
//! ```text
//! dt=YYYY-MM-DD/identifier=<node>/network-YYYYMMDDTHHMMSSZ.parquet   every pod's interfaces
//! dt=YYYY-MM-DD/identifier=<node>/devices-YYYYMMDDTHHMMSSZ.parquet   each container's IO per block device
//! dt=YYYY-MM-DD/identifier=<node>/processes-YYYYMMDDTHHMMSSZ.parquet each container's kept processes (opt-in)
//! ```
//!
//! Rows are sorted by (container, key columns, text columns, time): a
//! process's rows (pid, start) or an interface's are together. Counters are raw, as
//! in the metrics files (field metadata `fgm.kind`, `fgm.unit`); the footer
//! says the dataset (`fgm.dataset`) and its version (`fgm.format_version`).
//! The open interval's rows are held in memory only: a crash of the agent
//! loses them (the metrics tail keeps the sums).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow_array::builder::{Int64Builder, StringBuilder};
use arrow_array::{ArrayRef, RecordBatch, TimestampMillisecondArray};
use arrow_schema::{DataType, Field, Schema, TimeUnit};
use chrono::{DateTime, Utc};
use parquet::arrow::ArrowWriter;
use parquet::basic::Compression;
use parquet::file::metadata::KeyValue;
use parquet::file::properties::WriterProperties;

use super::layout::Dataset;
use super::reader::NULL_VALUE;
use super::schema::{self, MetricKind};
use super::writer::{WriteError, write_atomically};

/// The columns of a dataset after `timestamp` and `container_id`.
#[derive(Debug)]
pub struct Spec {
    pub dataset: Dataset,
    /// Version of these columns (footer `fgm.format_version`).
    pub version: &'static str,
    pub texts: &'static [&'static str],
    /// Name, kind and unit of each integer column.
    pub ints: &'static [(&'static str, MetricKind, &'static str)],
    /// Integer columns (positions in `ints`) rows are sorted by before the texts.
    pub keys: &'static [usize],
}

/// Every interface of every pod's network namespace (`/proc/<pid>/net/dev`),
/// loopback included; the row's container is the pod's sandbox.
pub const NETWORK: Spec = Spec {
    dataset: Dataset::Network,
    version: "1",
    texts: &["pod_uid", "interface"],
    ints: &[
        ("receive_bytes", MetricKind::Counter, "bytes"),
        ("receive_packets", MetricKind::Counter, "count"),
        ("receive_errors", MetricKind::Counter, "count"),
        ("receive_drops", MetricKind::Counter, "count"),
        ("transmit_bytes", MetricKind::Counter, "bytes"),
        ("transmit_packets", MetricKind::Counter, "count"),
        ("transmit_errors", MetricKind::Counter, "count"),
        ("transmit_drops", MetricKind::Counter, "count"),
    ],
    keys: &[],
};

/// Each container's IO per block device (v2 `io.stat`, v1
/// `blkio.throttle.io_service{_bytes,d}_recursive`).
pub const DEVICES: Spec = Spec {
    dataset: Dataset::Devices,
    version: "1",
    texts: &["device"],
    ints: &[
        ("major", MetricKind::Gauge, "count"),
        ("minor", MetricKind::Gauge, "count"),
        ("read_bytes", MetricKind::Counter, "bytes"),
        ("write_bytes", MetricKind::Counter, "bytes"),
        ("read_ops", MetricKind::Counter, "count"),
        ("write_ops", MetricKind::Counter, "count"),
    ],
    keys: &[],
};

/// The processes kept of each container each interval (top K by CPU and by
/// memory, starts and exits): `event` is empty, `start` or `exit` (the row
/// carries the process's last values, its timestamp when it was missed).
/// PSS, USS and swap are read every few intervals, null in between.
pub const PROCESSES: Spec = Spec {
    dataset: Dataset::Processes,
    version: "1",
    texts: &["command", "event"],
    ints: &[
        ("pid", MetricKind::Gauge, "count"),
        ("start_time_ms", MetricKind::Gauge, "ms"),
        ("nspid", MetricKind::Gauge, "count"),
        ("ppid", MetricKind::Gauge, "count"),
        ("cpu_usec", MetricKind::Counter, "usec"),
        ("rss_bytes", MetricKind::Gauge, "bytes"),
        ("threads", MetricKind::Gauge, "count"),
        ("pss_bytes", MetricKind::Gauge, "bytes"),
        ("uss_bytes", MetricKind::Gauge, "bytes"),
        ("swap_bytes", MetricKind::Gauge, "bytes"),
    ],
    // (pid, start time) is the process.
    keys: &[0, 1],
};

/// One row of a dataset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    pub timestamp_ms: i64,
    pub container: String,
    /// In [`Spec::texts`] order.
    pub texts: Vec<Arc<str>>,
    /// In [`Spec::ints`] order.
    pub ints: Vec<Option<i64>>,
}

/// The dataset's Arrow schema.
pub fn arrow_schema(spec: &Spec) -> Arc<Schema> {
    let mut fields = vec![
        Field::new(
            schema::TIMESTAMP,
            DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into())),
            false,
        ),
        Field::new(schema::CONTAINER_ID, DataType::Utf8, false),
    ];
    fields.extend(
        spec.texts
            .iter()
            .map(|t| Field::new(*t, DataType::Utf8, false)),
    );
    fields.extend(spec.ints.iter().map(|(name, kind, unit)| {
        let metadata: std::collections::HashMap<String, String> = [
            (schema::KIND_KEY.to_string(), kind.as_str().to_string()),
            (schema::UNIT_KEY.to_string(), unit.to_string()),
        ]
        .into();
        Field::new(*name, DataType::Int64, true).with_metadata(metadata)
    }));
    Arc::new(Schema::new(fields))
}

/// One interval's rows of a dataset, held compactly: strings (container,
/// texts) interned once per interval, numbers in one flat array (a pod's
/// interfaces every second at 500 pods: 84 bytes a row, not the ~300 of a
/// row of owned strings and vectors).
#[derive(Debug)]
pub struct Buffer {
    spec: &'static Spec,
    timestamps: Vec<i64>,
    /// Per row, `1 + texts` ids into `strings`: the container, then the texts.
    names: Vec<u32>,
    /// Per row, `ints` values, [`NULL_VALUE`] for none.
    ints: Vec<i64>,
    strings: Vec<Arc<str>>,
    ids: HashMap<Arc<str>, u32>,
}

impl Buffer {
    pub fn new(spec: &'static Spec) -> Self {
        Self {
            spec,
            timestamps: Vec::new(),
            names: Vec::new(),
            ints: Vec::new(),
            strings: Vec::new(),
            ids: HashMap::new(),
        }
    }

    fn intern(&mut self, s: &str) -> u32 {
        if let Some(&id) = self.ids.get(s) {
            return id;
        }
        let id = u32::try_from(self.strings.len()).unwrap_or(u32::MAX);
        let s: Arc<str> = Arc::from(s);
        self.strings.push(s.clone());
        self.ids.insert(s, id);
        id
    }

    /// Adds a row: `texts` in [`Spec::texts`] order, `ints` in [`Spec::ints`]
    /// order (missing ones are null, extra ones ignored).
    pub fn push_parts(
        &mut self,
        timestamp_ms: i64,
        container: &str,
        texts: &[&str],
        ints: &[Option<i64>],
    ) {
        self.timestamps.push(timestamp_ms);
        let container = self.intern(container);
        self.names.push(container);
        for k in 0..self.spec.texts.len() {
            let id = self.intern(texts.get(k).copied().unwrap_or(""));
            self.names.push(id);
        }
        for k in 0..self.spec.ints.len() {
            let v = ints.get(k).copied().flatten();
            self.ints.push(v.unwrap_or(NULL_VALUE));
        }
    }

    pub fn push(&mut self, row: Row) {
        let texts: Vec<&str> = row.texts.iter().map(|t| &**t).collect();
        self.push_parts(row.timestamp_ms, &row.container, &texts, &row.ints);
    }

    pub fn rows(&self) -> usize {
        self.timestamps.len()
    }

    pub fn is_empty(&self) -> bool {
        self.timestamps.is_empty()
    }

    /// Takes the rows out, leaving an empty buffer of the same dataset with room for as many
    /// rows: an interval is much like the last, and growing by doubling would hold up to twice
    /// the rows' memory for the whole interval.
    pub fn take(&mut self) -> Self {
        let mut next = Self::new(self.spec);
        next.timestamps.reserve_exact(self.timestamps.len());
        next.names.reserve_exact(self.names.len());
        next.ints.reserve_exact(self.ints.len());
        std::mem::replace(self, next)
    }

    /// The rows as one batch, sorted by (container, key numbers, text columns, time).
    pub fn to_record_batch(&mut self) -> Result<RecordBatch, arrow_schema::ArrowError> {
        let order = self.sorted_order();
        self.batch_of(&order)
    }

    /// Row indices in (container, key numbers, text columns, time) order.
    fn sorted_order(&self) -> Vec<u32> {
        let (texts_n, ints_n) = (self.spec.texts.len(), self.spec.ints.len());
        let names = |r: usize| &self.names[r * (1 + texts_n)..(r + 1) * (1 + texts_n)];
        let ints = |r: usize| &self.ints[r * ints_n..(r + 1) * ints_n];
        let text = |id: u32| -> &str { &self.strings[id as usize] };
        let n = u32::try_from(self.rows()).unwrap_or(u32::MAX);
        let mut order: Vec<u32> = (0..n).collect();
        order.sort_by(|&a, &b| {
            let (a, b) = (a as usize, b as usize);
            let (na, nb) = (names(a), names(b));
            text(na[0])
                .cmp(text(nb[0]))
                .then_with(|| {
                    self.spec
                        .keys
                        .iter()
                        .map(|&k| ints(a)[k])
                        .cmp(self.spec.keys.iter().map(|&k| ints(b)[k]))
                })
                .then_with(|| {
                    na[1..]
                        .iter()
                        .map(|&i| text(i))
                        .cmp(nb[1..].iter().map(|&i| text(i)))
                })
                .then_with(|| self.timestamps[a].cmp(&self.timestamps[b]))
        });
        order
    }

    /// The rows `order` names, in that order, as one batch.
    fn batch_of(&self, order: &[u32]) -> Result<RecordBatch, arrow_schema::ArrowError> {
        let (n, texts_n, ints_n) = (order.len(), self.spec.texts.len(), self.spec.ints.len());
        let names = |r: usize| &self.names[r * (1 + texts_n)..(r + 1) * (1 + texts_n)];
        let ints = |r: usize| &self.ints[r * ints_n..(r + 1) * ints_n];
        let text = |id: u32| -> &str { &self.strings[id as usize] };
        let mut ids = StringBuilder::with_capacity(n, n * 12);
        let mut texts: Vec<StringBuilder> = (0..texts_n)
            .map(|_| StringBuilder::with_capacity(n, n * 8))
            .collect();
        let mut int_columns: Vec<Int64Builder> = (0..ints_n)
            .map(|_| Int64Builder::with_capacity(n))
            .collect();
        let mut ts = Vec::with_capacity(n);
        for &r in order {
            let r = r as usize;
            ts.push(self.timestamps[r]);
            let row_names = names(r);
            ids.append_value(text(row_names[0]));
            for (b, &t) in texts.iter_mut().zip(&row_names[1..]) {
                b.append_value(text(t));
            }
            for (b, &v) in int_columns.iter_mut().zip(ints(r)) {
                b.append_option((v != NULL_VALUE).then_some(v));
            }
        }
        let mut columns: Vec<ArrayRef> = vec![
            Arc::new(TimestampMillisecondArray::from(ts).with_timezone("UTC")),
            Arc::new(ids.finish()),
        ];
        columns.extend(texts.iter_mut().map(|b| Arc::new(b.finish()) as ArrayRef));
        columns.extend(
            int_columns
                .iter_mut()
                .map(|b| Arc::new(b.finish()) as ArrayRef),
        );
        RecordBatch::try_new(arrow_schema(self.spec), columns)
    }
}

/// Rows turned into Arrow arrays at a time when a dataset file is written: the interval's
/// rows (90,000 at 500 pods' interfaces) are never all held as arrays beside the buffer.
const WRITE_CHUNK_ROWS: usize = 8_192;

/// The spec of `dataset`.
pub fn spec(dataset: Dataset) -> &'static Spec {
    match dataset {
        Dataset::Network => &NETWORK,
        Dataset::Devices => &DEVICES,
        Dataset::Processes => &PROCESSES,
    }
}

/// Writer settings of a dataset's file: its footer says the dataset, its
/// version and the node (compaction starts from these too).
pub fn properties(spec: &Spec, node: &str) -> WriterProperties {
    WriterProperties::builder()
        .set_compression(Compression::LZ4_RAW)
        .set_key_value_metadata(Some(vec![
            KeyValue::new(
                schema::FORMAT_VERSION_KEY.to_string(),
                spec.version.to_string(),
            ),
            KeyValue::new("fgm.node".to_string(), node.to_string()),
            KeyValue::new("fgm.dataset".to_string(), spec.dataset.name().to_string()),
        ]))
        .build()
}

/// Writes the interval's rows as `node`'s file of the dataset starting at
/// `start` (atomically, as the metrics files). `None` for no rows.
pub fn write(
    data_dir: &Path,
    node: &str,
    start: DateTime<Utc>,
    buffer: &mut Buffer,
) -> Result<Option<(PathBuf, u64)>, WriteError> {
    if buffer.is_empty() {
        return Ok(None);
    }
    let order = buffer.sorted_order();
    let spec = buffer.spec;
    let path = spec.dataset.file_path(data_dir, node, start);
    let bytes = write_atomically(data_dir, &path, |out| {
        let mut writer =
            ArrowWriter::try_new(out, arrow_schema(spec), Some(properties(spec, node)))?;
        for chunk in order.chunks(WRITE_CHUNK_ROWS) {
            writer.write(&buffer.batch_of(chunk)?)?;
        }
        writer.close()?;
        Ok(())
    })?;
    Ok(Some((path, bytes)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_intervals_rows_are_a_file_any_parquet_reader_reads_and_the_listing_knows() {
        let dir = tempfile::tempdir().unwrap();
        let start = DateTime::from_timestamp(1_767_225_600, 0).unwrap();
        for spec in [&NETWORK, &DEVICES, &PROCESSES] {
            let mut buf = Buffer::new(spec);
            for s in 0..3 {
                for name in ["b", "a"] {
                    buf.push(Row {
                        timestamp_ms: start.timestamp_millis() + s * 1000,
                        container: "aaaa".into(),
                        texts: spec.texts.iter().map(|_| Arc::from(name)).collect(),
                        ints: spec.ints.iter().map(|_| Some(s)).collect(),
                    });
                }
            }
            let (path, bytes) = write(dir.path(), "n", start, &mut buf).unwrap().unwrap();
            assert!(bytes > 0);
            assert_eq!(
                path.file_name().unwrap().to_str().unwrap(),
                format!("{}20260101T000000Z.parquet", spec.dataset.prefix())
            );
            let batches = crate::store::reader::read_file(&path, None).unwrap();
            assert_eq!(batches.iter().map(|b| b.num_rows()).sum::<usize>(), 6);
            assert_eq!(
                batches[0].num_columns(),
                2 + spec.texts.len() + spec.ints.len()
            );
            let mut empty = Buffer::new(spec);
            assert!(write(dir.path(), "n", start, &mut empty).unwrap().is_none());
        }
        let listing = crate::store::layout::list_data_files(dir.path(), None).unwrap();
        assert!(
            listing.files.is_empty() && listing.foreign.is_empty(),
            "{:?}",
            listing.foreign
        );
        let kinds: Vec<Dataset> = listing.datasets.iter().map(|(d, _)| *d).collect();
        assert_eq!(
            kinds,
            vec![Dataset::Network, Dataset::Devices, Dataset::Processes]
        );
    }
}
