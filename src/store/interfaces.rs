//! The per-interface network dataset: every interface of every pod's network
//! namespace, once per interval, in a file of its own beside each metrics
//! file (same start time, rotation, retention and export):
//!
//! ```text
//! dt=YYYY-MM-DD/identifier=<node>/network-YYYYMMDDTHHMMSSZ.parquet
//!   timestamp (ms, UTC) | container_id (the pod's sandbox, as in the metrics file) |
//!   pod_uid | interface | receive_bytes | receive_packets | receive_errors | receive_drops |
//!   transmit_bytes | transmit_packets | transmit_errors | transmit_drops
//! ```
//!
//! Counters are raw (`/proc/<pid>/net/dev`), loopback included (a pod's totals
//! in the metrics file leave it out). Rows sorted by (container, interface,
//! time). The open interval's rows are in memory only: a crash of the agent
//! loses them (the pod totals are in the metrics tail).

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
use super::schema;
use super::writer::{WriteError, write_atomically};
use crate::agent::contract::InterfaceSample;
use crate::agent::network::netdev::COUNTERS;

/// Version of this dataset's columns (footer key `fgm.format_version`).
pub const VERSION: &str = "1";

pub const POD_UID: &str = "pod_uid";
pub const INTERFACE: &str = "interface";

/// The dataset's Arrow schema.
pub fn arrow_schema() -> Arc<Schema> {
    let mut fields = vec![
        Field::new(
            schema::TIMESTAMP,
            DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into())),
            false,
        ),
        Field::new(schema::CONTAINER_ID, DataType::Utf8, false),
        Field::new(POD_UID, DataType::Utf8, false),
        Field::new(INTERFACE, DataType::Utf8, false),
    ];
    fields.extend(COUNTERS.iter().map(|c| {
        let unit = if c.ends_with("bytes") {
            "bytes"
        } else {
            "count"
        };
        let metadata: std::collections::HashMap<String, String> = [
            (schema::KIND_KEY.to_string(), "counter".to_string()),
            (schema::UNIT_KEY.to_string(), unit.to_string()),
        ]
        .into();
        Field::new(*c, DataType::Int64, false).with_metadata(metadata)
    }));
    Arc::new(Schema::new(fields))
}

/// One interval's interface rows.
#[derive(Debug, Default)]
pub struct InterfaceBuffer {
    rows: Vec<(i64, InterfaceSample)>,
}

impl InterfaceBuffer {
    pub fn push(&mut self, timestamp_ms: i64, samples: &[InterfaceSample]) {
        self.rows
            .extend(samples.iter().map(|s| (timestamp_ms, s.clone())));
    }

    pub fn rows(&self) -> usize {
        self.rows.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// Approximate heap bytes held.
    pub fn heap_bytes(&self) -> usize {
        self.rows.capacity() * size_of::<(i64, InterfaceSample)>()
            + self
                .rows
                .iter()
                .map(|(_, s)| s.sandbox.len() + s.interface.len())
                .sum::<usize>()
    }

    /// The rows as one batch, sorted by (container, interface, time).
    pub fn to_record_batch(&mut self) -> Result<RecordBatch, arrow_schema::ArrowError> {
        self.rows.sort_by(|a, b| {
            (&a.1.sandbox, &a.1.interface, a.0).cmp(&(&b.1.sandbox, &b.1.interface, b.0))
        });
        let n = self.rows.len();
        let mut ids = StringBuilder::with_capacity(n, n * 12);
        let mut uids = StringBuilder::with_capacity(n, n * 36);
        let mut names = StringBuilder::with_capacity(n, n * 6);
        let mut counters: Vec<Int64Builder> = COUNTERS
            .iter()
            .map(|_| Int64Builder::with_capacity(n))
            .collect();
        let mut ts = Vec::with_capacity(n);
        for (t, s) in &self.rows {
            ts.push(*t);
            ids.append_value(&s.sandbox);
            uids.append_value(&*s.pod_uid);
            names.append_value(&s.interface);
            for (b, v) in counters.iter_mut().zip(s.counters) {
                b.append_value(v);
            }
        }
        let mut columns: Vec<ArrayRef> = vec![
            Arc::new(TimestampMillisecondArray::from(ts).with_timezone("UTC")),
            Arc::new(ids.finish()),
            Arc::new(uids.finish()),
            Arc::new(names.finish()),
        ];
        columns.extend(
            counters
                .iter_mut()
                .map(|b| Arc::new(b.finish()) as ArrayRef),
        );
        RecordBatch::try_new(arrow_schema(), columns)
    }
}

fn properties(node: &str) -> WriterProperties {
    WriterProperties::builder()
        .set_compression(Compression::LZ4_RAW)
        .set_key_value_metadata(Some(vec![
            KeyValue::new(schema::FORMAT_VERSION_KEY.to_string(), VERSION.to_string()),
            KeyValue::new("fgm.node".to_string(), node.to_string()),
            KeyValue::new(
                "fgm.dataset".to_string(),
                Dataset::Network.name().to_string(),
            ),
        ]))
        .build()
}

/// Writes the interval's interface rows as `node`'s network file starting at
/// `start` (atomically, as the metrics files). `None` for no rows.
pub fn write_interfaces(
    data_dir: &Path,
    node: &str,
    start: DateTime<Utc>,
    buffer: &mut InterfaceBuffer,
) -> Result<Option<(PathBuf, u64)>, WriteError> {
    if buffer.is_empty() {
        return Ok(None);
    }
    let batch = buffer.to_record_batch()?;
    let path = Dataset::Network.file_path(data_dir, node, start);
    let bytes = write_atomically(data_dir, &path, |out| {
        let mut writer = ArrowWriter::try_new(out, arrow_schema(), Some(properties(node)))?;
        writer.write(&batch)?;
        writer.close()?;
        Ok(())
    })?;
    Ok(Some((path, bytes)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_intervals_interfaces_are_a_file_any_parquet_reader_reads() {
        let dir = tempfile::tempdir().unwrap();
        let start = DateTime::from_timestamp(1_767_225_600, 0).unwrap();
        let mut buf = InterfaceBuffer::default();
        let iface = |name: &str, rx: i64| InterfaceSample {
            sandbox: "aaaa".into(),
            pod_uid: Arc::from("uid-1"),
            interface: name.into(),
            counters: [rx, 1, 0, 0, 2 * rx, 2, 0, 0],
        };
        for s in 0..3 {
            buf.push(
                start.timestamp_millis() + s * 1000,
                &[iface("lo", 10), iface("eth0", 100 * s)],
            );
        }
        let (path, bytes) = write_interfaces(dir.path(), "n", start, &mut buf)
            .unwrap()
            .unwrap();
        assert!(bytes > 0);
        assert_eq!(
            path.file_name().unwrap().to_str().unwrap(),
            "network-20260101T000000Z.parquet"
        );
        let batches = crate::store::reader::read_file(&path, None).unwrap();
        let rows: usize = batches.iter().map(|b| b.num_rows()).sum();
        assert_eq!(rows, 6);
        let listing = crate::store::layout::list_data_files(dir.path(), None).unwrap();
        assert!(
            listing.files.is_empty() && listing.foreign.is_empty(),
            "{:?}",
            listing.foreign
        );
        assert_eq!(listing.datasets.len(), 1);
        assert_eq!(listing.datasets[0].0, Dataset::Network);
        let mut empty = InterfaceBuffer::default();
        assert!(
            write_interfaces(dir.path(), "n", start, &mut empty)
                .unwrap()
                .is_none()
        );
    }
}
