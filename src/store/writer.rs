//! Encoding samples into data files.
//!
//! Samples of one rotation interval are buffered in memory as varint deltas
//! (about a byte a value) and written as one file when the interval ends: rows
//! sorted by (container, time), so each container's counters form a smooth
//! run that delta encoding plus LZ4 shrink to well under a byte per value.
//! The file is written under an `.inprogress` name, synced, then renamed:
//! readers never see a partial file, and a crash loses at most the open
//! interval (DESIGN.md).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow_array::builder::{Int64Builder, StringBuilder};
use arrow_array::{ArrayRef, RecordBatch, TimestampMillisecondArray};
use arrow_schema::ArrowError;
use chrono::{DateTime, Utc};
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, Encoding};
use parquet::file::metadata::KeyValue;
use parquet::file::properties::{EnabledStatistics, WriterProperties};
use parquet::schema::types::ColumnPath;

use super::layout;
use super::schema::{self, METRICS};

/// Rows per record batch handed to the Parquet writer: bounds the decoded copy
/// held while encoding (1024 rows x ~65 columns = ~0.5 MB). All batches land
/// in the same row group; only data page boundaries may shift by a few rows
/// against one whole-buffer write.
const CHUNK_ROWS: usize = 1024;

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
    Batch(#[from] ArrowError),
}

impl WriteError {
    /// True when the disk is full (the agent keeps sampling and retries later).
    pub fn is_disk_full(&self) -> bool {
        self.os_error() == Some(28)
    }

    /// True when no file descriptor was left (`EMFILE`/`ENFILE`).
    pub fn is_descriptor_shortage(&self) -> bool {
        matches!(self.os_error(), Some(23) | Some(24))
    }

    fn os_error(&self) -> Option<i32> {
        match self {
            WriteError::Io { source, .. } => source.raw_os_error(),
            WriteError::Encode {
                source: parquet::errors::ParquetError::External(e),
                ..
            } => e
                .downcast_ref::<std::io::Error>()
                .and_then(std::io::Error::raw_os_error),
            _ => None,
        }
    }
}

pub use super::buffer::{BufferCorrupt, SampleBuffer};

impl SampleBuffer {
    /// The buffered rows as one batch, sorted by (container, time).
    pub fn to_record_batch(&self) -> Result<RecordBatch, ArrowError> {
        let mut whole = None;
        for_each_batch(self, usize::MAX, |batch| {
            whole = Some(batch);
            Ok::<_, ArrowError>(())
        })?;
        Ok(whole.unwrap_or_else(|| RecordBatch::new_empty(schema::arrow_schema())))
    }

    /// Encodes the buffer as a complete Parquet file into `out`: one row
    /// group, fed [`CHUNK_ROWS`] decoded rows at a time to bound memory.
    pub fn encode<W: Write + Send>(
        &self,
        out: W,
        node: &str,
    ) -> Result<(), parquet::errors::ParquetError> {
        let mut writer =
            ArrowWriter::try_new(out, schema::arrow_schema(), Some(writer_properties(node)))?;
        for_each_batch(self, CHUNK_ROWS, |batch| writer.write(&batch))?;
        // What the overview ranks by, so it needs the footer only.
        let summary = super::summary::of_buffer(self, super::summary::codec::SLOT_MS)?;
        writer.append_key_value_metadata(KeyValue::new(
            super::summary::codec::KEY.into(),
            super::summary::codec::encode(&summary),
        ));
        // So a reader decodes the schema once for all files of one build.
        if let Some(fingerprint) = super::reader::known_schema::of_written() {
            writer.append_key_value_metadata(KeyValue::new(
                super::reader::known_schema::KEY.into(),
                fingerprint.to_string(),
            ));
        }
        // Which rows are whose, so a reader needs no container_id column.
        if let Some(runs) = super::reader::row_runs::encode(&self.row_runs()) {
            writer.append_key_value_metadata(KeyValue::new(
                super::reader::row_runs::KEY.into(),
                runs,
            ));
        }
        writer.close()?;
        Ok(())
    }
}

impl From<BufferCorrupt> for ArrowError {
    fn from(e: BufferCorrupt) -> Self {
        ArrowError::ComputeError(e.to_string())
    }
}

impl From<BufferCorrupt> for parquet::errors::ParquetError {
    fn from(e: BufferCorrupt) -> Self {
        parquet::errors::ParquetError::General(e.to_string())
    }
}

/// Decodes the rows sorted by (container, time) into batches of at most
/// `max_rows` rows (none for an empty buffer) and hands each to `emit`.
fn for_each_batch<E: From<ArrowError> + From<BufferCorrupt>>(
    buffer: &SampleBuffer,
    max_rows: usize,
    mut emit: impl FnMut(RecordBatch) -> Result<(), E>,
) -> Result<(), E> {
    let mut batch = BatchBuilder::with_capacity(max_rows.min(buffer.rows()));
    buffer.for_each_row_sorted(|id, ts, row| {
        batch.append(ts, id, row);
        if batch.len() >= max_rows {
            emit(batch.finish()?)?;
        }
        Ok::<_, E>(())
    })?;
    if batch.len() > 0 {
        emit(batch.finish()?)?;
    }
    Ok(())
}

/// Column builders for one record batch of the data file schema.
struct BatchBuilder {
    timestamps: Vec<i64>,
    ids: StringBuilder,
    metrics: Vec<Int64Builder>,
}

impl BatchBuilder {
    fn with_capacity(rows: usize) -> Self {
        Self {
            timestamps: Vec::with_capacity(rows),
            ids: StringBuilder::with_capacity(rows, rows * 12),
            metrics: (0..METRICS.len())
                .map(|_| Int64Builder::with_capacity(rows))
                .collect(),
        }
    }

    fn len(&self) -> usize {
        self.timestamps.len()
    }

    fn append(&mut self, timestamp_ms: i64, id: &str, values: &[Option<i64>]) {
        self.timestamps.push(timestamp_ms);
        self.ids.append_value(id);
        for (builder, value) in self.metrics.iter_mut().zip(values) {
            builder.append_option(*value);
        }
    }

    /// The rows appended so far as a batch; the builder is left empty.
    fn finish(&mut self) -> Result<RecordBatch, ArrowError> {
        let timestamps = std::mem::take(&mut self.timestamps);
        let mut columns: Vec<ArrayRef> = Vec::with_capacity(METRICS.len() + 2);
        columns.push(Arc::new(
            TimestampMillisecondArray::from(timestamps).with_timezone("UTC"),
        ));
        columns.push(Arc::new(self.ids.finish()));
        columns.extend(
            self.metrics
                .iter_mut()
                .map(|b| Arc::new(b.finish()) as ArrayRef),
        );
        RecordBatch::try_new(schema::arrow_schema(), columns)
    }
}

/// Column encodings chosen for size: dictionary ids, delta-packed numbers,
/// LZ4 (raw). Not zstd: the Parquet writer keeps a codec per column alive for
/// the whole row group, and zstd's are ~100 KB each (6 MB for 65 columns at
/// every rotation), while LZ4 holds no state and costs ~8% more bytes here.
/// Files written with zstd by earlier versions are still read.
pub fn writer_properties(node: &str) -> WriterProperties {
    let mut builder = WriterProperties::builder()
        .set_compression(Compression::LZ4_RAW)
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
/// fsync, rename, directory fsync. Returns `None` for an empty buffer (no
/// empty files).
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
    let bytes = write_atomically(data_dir, &path, |out| buffer.encode(out, node))?;
    Ok(Some(WrittenFile {
        path,
        bytes,
        rows: buffer.rows(),
        first,
        last,
    }))
}

/// Writes a Parquet file so that readers never see it partial: under its
/// `.inprogress` name, fsynced, renamed, its directory fsynced (created
/// first when needed). Returns its size. A failure leaves no partial file.
pub fn write_atomically(
    data_dir: &Path,
    path: &Path,
    encode: impl FnOnce(
        &mut std::io::BufWriter<std::fs::File>,
    ) -> Result<(), parquet::errors::ParquetError>,
) -> Result<u64, WriteError> {
    let tmp = layout::in_progress_path(path);
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| WriteError::Io { path, source }
    };
    if let Some(dir) = path.parent() {
        super::durable::create_dir_all_synced(dir, data_dir).map_err(io(dir))?;
    }
    let result = (|| {
        let file = std::fs::File::create(&tmp).map_err(io(&tmp))?;
        let mut out = std::io::BufWriter::with_capacity(64 * 1024, file);
        encode(&mut out).map_err(|source| WriteError::Encode {
            path: tmp.clone(),
            source,
        })?;
        let file = out.into_inner().map_err(|e| io(&tmp)(e.into_error()))?;
        file.sync_all().map_err(io(&tmp))?;
        let bytes = file.metadata().map_err(io(&tmp))?.len();
        super::durable::rename_synced(&tmp, path).map_err(io(path))?;
        Ok(bytes)
    })();
    if result.is_err() {
        // Leave no partial file behind (it would never be renamed).
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

#[cfg(test)]
#[path = "writer_tests.rs"]
mod tests;
