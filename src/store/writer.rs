//! Encoding samples into data files.
//!
//! Samples of one rotation interval are buffered in memory and written as one
//! file when the interval ends: rows sorted by (container, time), so each
//! container's counters form a smooth run that delta encoding plus zstd shrink
//! to well under a byte per value. The file is written under an
//! `.inprogress` name, synced, then renamed: readers never see a partial file,
//! and a crash loses at most the open interval (DESIGN.md).

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow_array::{ArrayRef, Int64Array, RecordBatch, StringArray, TimestampMillisecondArray};
use chrono::{DateTime, TimeZone, Utc};
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, Encoding, ZstdLevel};
use parquet::file::metadata::KeyValue;
use parquet::file::properties::{EnabledStatistics, WriterProperties};
use parquet::schema::types::ColumnPath;

use super::layout;
use super::schema::{self, METRICS};

/// Internal marker for "no value" in the row-major buffers; counters and
/// gauges are never negative, so it cannot collide with a reading.
const NULL: i64 = i64::MIN;

/// Why a data file could not be written, with the path at fault.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    #[error("cannot write data file {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot encode data file {path}: {source}")]
    Encode {
        path: PathBuf,
        source: parquet::errors::ParquetError,
    },
    #[error("cannot build record batch: {0}")]
    Batch(#[from] arrow_schema::ArrowError),
}

impl WriteError {
    /// True when the disk is full (the agent keeps sampling and retries later).
    pub fn is_disk_full(&self) -> bool {
        matches!(self, WriteError::Io { source, .. } if source.raw_os_error() == Some(28))
            || matches!(self, WriteError::Encode { source: parquet::errors::ParquetError::External(e), .. }
                if e.downcast_ref::<std::io::Error>().and_then(|e| e.raw_os_error()) == Some(28))
    }
}

/// Samples of the open interval, per container, row-major.
#[derive(Debug, Default)]
pub struct SampleBuffer {
    series: HashMap<String, Series>,
    rows: usize,
    first_ms: Option<i64>,
    last_ms: Option<i64>,
}

#[derive(Debug, Default)]
struct Series {
    timestamps: Vec<i64>,
    /// `timestamps.len() * METRICS.len()` values, row after row.
    values: Vec<i64>,
}

impl SampleBuffer {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds one container's sample. `values` follows [`METRICS`] order; missing
    /// trailing values are null.
    pub fn push(&mut self, timestamp_ms: i64, container_id: &str, values: &[Option<i64>]) {
        let series = match self.series.get_mut(container_id) {
            Some(s) => s,
            None => self.series.entry(container_id.to_string()).or_default(),
        };
        series.timestamps.push(timestamp_ms);
        series
            .values
            .extend((0..METRICS.len()).map(|i| values.get(i).copied().flatten().unwrap_or(NULL)));
        self.rows += 1;
        self.first_ms = Some(self.first_ms.map_or(timestamp_ms, |f| f.min(timestamp_ms)));
        self.last_ms = Some(self.last_ms.map_or(timestamp_ms, |l| l.max(timestamp_ms)));
    }

    pub fn rows(&self) -> usize {
        self.rows
    }
    pub fn is_empty(&self) -> bool {
        self.rows == 0
    }
    pub fn containers(&self) -> usize {
        self.series.len()
    }
    /// Time of the first and last sample held.
    pub fn span(&self) -> Option<(DateTime<Utc>, DateTime<Utc>)> {
        Some((millis(self.first_ms?), millis(self.last_ms?)))
    }

    /// The buffered rows as one batch, sorted by (container, time).
    pub fn to_record_batch(&self) -> Result<RecordBatch, arrow_schema::ArrowError> {
        let mut ids: Vec<&String> = self.series.keys().collect();
        ids.sort();
        let mut timestamps = Vec::with_capacity(self.rows);
        let mut id_column = Vec::with_capacity(self.rows);
        for id in &ids {
            let s = &self.series[*id];
            timestamps.extend_from_slice(&s.timestamps);
            id_column.extend(std::iter::repeat_n(id.as_str(), s.timestamps.len()));
        }
        let mut columns: Vec<ArrayRef> = Vec::with_capacity(METRICS.len() + 2);
        columns.push(Arc::new(
            TimestampMillisecondArray::from(timestamps).with_timezone("UTC"),
        ));
        columns.push(Arc::new(StringArray::from(id_column)));
        let width = METRICS.len();
        for m in 0..width {
            let values = ids.iter().flat_map(|id| {
                self.series[*id]
                    .values
                    .iter()
                    .skip(m)
                    .step_by(width)
                    .map(|&v| (v != NULL).then_some(v))
            });
            columns.push(Arc::new(Int64Array::from_iter(values)));
        }
        RecordBatch::try_new(schema::arrow_schema(), columns)
    }

    /// Encodes the buffer as a complete Parquet file into `out`.
    pub fn encode<W: Write + Send>(
        &self,
        out: W,
        node: &str,
    ) -> Result<(), parquet::errors::ParquetError> {
        let batch = self.to_record_batch()?;
        let mut writer = ArrowWriter::try_new(out, batch.schema(), Some(writer_properties(node)))?;
        writer.write(&batch)?;
        writer.close()?;
        Ok(())
    }

    pub fn clear(&mut self) {
        self.series.clear();
        self.rows = 0;
        self.first_ms = None;
        self.last_ms = None;
    }
}

fn millis(ms: i64) -> DateTime<Utc> {
    Utc.timestamp_millis_opt(ms).single().unwrap_or_default()
}

/// Column encodings chosen for size: dictionary ids, delta-packed numbers, zstd.
pub fn writer_properties(node: &str) -> WriterProperties {
    let mut builder = WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::try_new(3).unwrap_or_default()))
        .set_max_row_group_row_count(None)
        .set_statistics_enabled(EnabledStatistics::Chunk)
        .set_created_by(format!(
            "fine-grained-monitor {}",
            env!("CARGO_PKG_VERSION")
        ))
        .set_key_value_metadata(Some(vec![
            KeyValue::new(
                schema::FORMAT_VERSION_KEY.into(),
                schema::FORMAT_VERSION.to_string(),
            ),
            KeyValue::new("fgm.node".into(), node.to_string()),
        ]))
        .set_column_dictionary_enabled(ColumnPath::from(schema::CONTAINER_ID), true);
    for name in std::iter::once(schema::TIMESTAMP).chain(METRICS.iter().map(|m| m.name)) {
        builder = builder
            .set_column_dictionary_enabled(ColumnPath::from(name), false)
            .set_column_encoding(ColumnPath::from(name), Encoding::DELTA_BINARY_PACKED);
    }
    builder.build()
}

/// A finished, renamed data file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WrittenFile {
    pub path: PathBuf,
    pub bytes: u64,
    pub rows: usize,
    pub first: DateTime<Utc>,
    pub last: DateTime<Utc>,
}

/// Writes `buffer` as `node`'s file starting at `start`: `.inprogress` name,
/// fsync, rename. Returns `None` for an empty buffer (no empty files).
pub fn write_data_file(
    data_dir: &Path,
    node: &str,
    start: DateTime<Utc>,
    buffer: &SampleBuffer,
) -> Result<Option<WrittenFile>, WriteError> {
    let Some((first, last)) = buffer.span() else {
        return Ok(None);
    };
    let path = layout::data_file_path(data_dir, node, start);
    let tmp = layout::in_progress_path(&path);
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| WriteError::Io { path, source }
    };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(io(dir))?;
    }
    let result = (|| {
        let file = std::fs::File::create(&tmp).map_err(io(&tmp))?;
        let mut out = std::io::BufWriter::with_capacity(64 * 1024, file);
        buffer
            .encode(&mut out, node)
            .map_err(|source| WriteError::Encode {
                path: tmp.clone(),
                source,
            })?;
        let file = out.into_inner().map_err(|e| io(&tmp)(e.into_error()))?;
        file.sync_all().map_err(io(&tmp))?;
        let bytes = file.metadata().map_err(io(&tmp))?.len();
        std::fs::rename(&tmp, &path).map_err(io(&path))?;
        Ok(bytes)
    })();
    match result {
        Ok(bytes) => Ok(Some(WrittenFile {
            path,
            bytes,
            rows: buffer.rows(),
            first,
            last,
        })),
        Err(e) => {
            // Leave no partial file behind (it would never be renamed).
            let _ = std::fs::remove_file(&tmp);
            Err(e)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_array::Array;
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

    fn sample(i: i64) -> Vec<Option<i64>> {
        let mut v: Vec<Option<i64>> = (0..METRICS.len() as i64)
            .map(|m| Some(i * 1000 + m))
            .collect();
        v[schema::metric_index("memory_limit_bytes").unwrap()] = None;
        v
    }

    #[test]
    fn round_trip_sorted_by_container_then_time() {
        let mut buf = SampleBuffer::new();
        for t in 0..3 {
            buf.push(1_000 * t + 2_000, "bbbbbbbbbbbb", &sample(t));
            buf.push(1_000 * t + 2_000, "aaaaaaaaaaaa", &sample(10 + t));
        }
        let mut bytes = Vec::new();
        buf.encode(&mut bytes, "node-a").unwrap();
        let reader = ParquetRecordBatchReaderBuilder::try_new(bytes::Bytes::from(bytes))
            .unwrap()
            .build()
            .unwrap();
        let batches: Vec<RecordBatch> = reader.map(|b| b.unwrap()).collect();
        assert_eq!(batches.len(), 1);
        let batch = &batches[0];
        assert_eq!(batch.num_rows(), 6);
        let ids = batch
            .column(1)
            .as_any()
            .downcast_ref::<StringArray>()
            .unwrap();
        assert_eq!(ids.value(0), "aaaaaaaaaaaa");
        assert_eq!(ids.value(5), "bbbbbbbbbbbb");
        let cpu = batch
            .column_by_name("cpu_usage_usec")
            .unwrap()
            .as_any()
            .downcast_ref::<Int64Array>()
            .unwrap();
        assert_eq!(cpu.value(0), 10_000);
        assert_eq!(cpu.value(3), 0);
        let limit = batch.column_by_name("memory_limit_bytes").unwrap();
        assert_eq!(limit.null_count(), 6, "absent values stay null, not zero");
        let meta = schema::metric_columns(&batch.schema());
        assert_eq!(meta.len(), METRICS.len());
    }

    #[test]
    fn file_appears_only_complete_and_empty_buffers_write_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let start = Utc.with_ymd_and_hms(2025, 12, 31, 23, 59, 30).unwrap();
        assert!(
            write_data_file(dir.path(), "n", start, &SampleBuffer::new())
                .unwrap()
                .is_none()
        );
        let mut buf = SampleBuffer::new();
        buf.push(start.timestamp_millis(), "aaaaaaaaaaaa", &sample(1));
        let written = write_data_file(dir.path(), "n", start, &buf)
            .unwrap()
            .unwrap();
        assert!(
            written
                .path
                .ends_with("dt=2025-12-31/identifier=n/metrics-20251231T235930Z.parquet")
        );
        assert!(written.bytes > 0);
        assert!(!layout::in_progress_path(&written.path).exists());
        assert_eq!(written.first, start);
    }
}
