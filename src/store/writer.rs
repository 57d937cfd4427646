//! Encoding samples into data files.
//!
//! Samples of one rotation interval are buffered in memory as varint deltas
//! (about a byte a value) and written as one file when the interval ends: rows
//! sorted by (container, time), so each container's counters form a smooth
//! run that delta encoding plus LZ4 shrink to well under a byte per value.
//! The file is written under an `.inprogress` name, synced, then renamed:
//! readers never see a partial file, and a crash loses at most the open
//! interval (DESIGN.md).

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow_array::builder::{Int64Builder, StringBuilder};
use arrow_array::{ArrayRef, RecordBatch, TimestampMillisecondArray};
use arrow_schema::ArrowError;
use chrono::{DateTime, TimeZone, Utc};
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

/// Longest LEB128 varint we write: 10 bytes hold 70 bits, enough for the
/// 65-bit value codes of [`value_code`].
const MAX_VARINT_BYTES: usize = 10;

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

/// Samples of the open interval, per container, as compact varint rows.
///
/// Each value is stored as the zigzag delta from the column's previous
/// non-null value, so a counter's small step or a gauge that stays put takes
/// one byte instead of eight. Every `i64` round-trips exactly, `i64::MIN`
/// included (the old row-major buffer used it as the null marker and wrote it
/// as null; no kernel reading is negative, so real files are unchanged).
#[derive(Debug, Default)]
pub struct SampleBuffer {
    series: HashMap<String, Series>,
    rows: usize,
    first_ms: Option<i64>,
    last_ms: Option<i64>,
    /// The row being encoded, reused across pushes.
    scratch: Vec<u8>,
}

/// One container's rows, in push order.
#[derive(Debug)]
struct Series {
    /// Per row: [`zigzag`] timestamp delta from the previous row, then one
    /// [`value_code`] per metric in [`METRICS`] order; all LEB128 varints.
    bytes: Vec<u8>,
    rows: usize,
    /// Timestamp of the last row (0 before the first).
    last_ms: i64,
    /// Last non-null value per metric (0 before the first): the delta bases.
    prev: Vec<i64>,
}

impl Series {
    fn new() -> Self {
        Self {
            bytes: Vec::new(),
            rows: 0,
            last_ms: 0,
            prev: vec![0; METRICS.len()],
        }
    }

    /// Appends one row, encoded in `scratch` first so the stream grows by
    /// exactly what the row needs.
    fn push(&mut self, timestamp_ms: i64, values: &[Option<i64>], scratch: &mut Vec<u8>) {
        scratch.clear();
        encode_row(
            scratch,
            &mut self.last_ms,
            &mut self.prev,
            timestamp_ms,
            values,
        );
        grow_for(&mut self.bytes, scratch.len());
        self.bytes.extend_from_slice(scratch);
        self.rows += 1;
    }

    fn heap_bytes(&self) -> usize {
        self.bytes.capacity() + self.prev.capacity() * size_of::<i64>()
    }
}

impl SampleBuffer {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds one container's sample. `values` follows [`METRICS`] order; missing
    /// trailing values are null. Rows of a container keep push order, which
    /// is time order for the recorder.
    pub fn push(&mut self, timestamp_ms: i64, container_id: &str, values: &[Option<i64>]) {
        let series = match self.series.get_mut(container_id) {
            Some(s) => s,
            None => self
                .series
                .entry(container_id.to_string())
                .or_insert_with(Series::new),
        };
        series.push(timestamp_ms, values, &mut self.scratch);
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

    /// Approximate heap bytes held: vector capacities, ids and map slots.
    pub fn heap_bytes(&self) -> usize {
        let slot = size_of::<String>() + size_of::<Series>() + 1;
        self.series.capacity() * slot
            + self.scratch.capacity()
            + self
                .series
                .iter()
                .map(|(id, s)| id.capacity() + s.heap_bytes())
                .sum::<usize>()
    }

    /// The buffered rows as one batch, sorted by (container, time).
    pub fn to_record_batch(&self) -> Result<RecordBatch, ArrowError> {
        let mut whole = None;
        self.for_each_batch(usize::MAX, |batch| {
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
        self.for_each_batch(CHUNK_ROWS, |batch| writer.write(&batch))?;
        writer.close()?;
        Ok(())
    }

    /// Decodes the rows sorted by (container, time) into batches of at most
    /// `max_rows` rows (none for an empty buffer) and hands each to `emit`.
    fn for_each_batch<E: From<ArrowError>>(
        &self,
        max_rows: usize,
        mut emit: impl FnMut(RecordBatch) -> Result<(), E>,
    ) -> Result<(), E> {
        let mut ids: Vec<(&String, &Series)> = self.series.iter().collect();
        ids.sort_unstable_by(|a, b| a.0.cmp(b.0));
        let mut batch = BatchBuilder::with_capacity(max_rows.min(self.rows));
        let mut row = vec![None; METRICS.len()];
        for (id, series) in ids {
            let mut decoder = RowDecoder::new(&series.bytes, METRICS.len());
            for _ in 0..series.rows {
                let ts = decoder.next_row(&mut row).ok_or_else(corrupt)?;
                batch.append(ts, id, &row);
                if batch.len() >= max_rows {
                    emit(batch.finish()?)?;
                }
            }
            if !decoder.at_end() {
                return Err(corrupt().into());
            }
        }
        if batch.len() > 0 {
            emit(batch.finish()?)?;
        }
        Ok(())
    }

    pub fn clear(&mut self) {
        self.series.clear();
        self.rows = 0;
        self.first_ms = None;
        self.last_ms = None;
    }
}

/// A series' bytes did not decode to its row count: a bug in this module.
fn corrupt() -> ArrowError {
    ArrowError::ComputeError("sample buffer does not decode (internal error)".into())
}

/// Makes room for `needed` more bytes, growing by an eighth (at least 64
/// bytes) rather than doubling: the stream lives a whole interval, and
/// doubling's slack would be memory held for nothing.
fn grow_for(bytes: &mut Vec<u8>, needed: usize) {
    if bytes.capacity() - bytes.len() < needed {
        bytes.reserve_exact(needed.max(bytes.len() / 8).max(64));
    }
}

/// Appends one row to `out`: the [`zigzag`] timestamp delta from `*last_ms`,
/// then one [`value_code`] per delta base in `prev` (`values` shorter than
/// that means trailing nulls, longer is ignored). Updates the bases.
fn encode_row(
    out: &mut Vec<u8>,
    last_ms: &mut i64,
    prev: &mut [i64],
    timestamp_ms: i64,
    values: &[Option<i64>],
) {
    put_varint(out, u128::from(zigzag(timestamp_ms.wrapping_sub(*last_ms))));
    *last_ms = timestamp_ms;
    for (m, prev) in prev.iter_mut().enumerate() {
        put_varint(out, value_code(values.get(m).copied().flatten(), prev));
    }
}

/// Maps small magnitudes of either sign to small numbers: 0, -1, 1, -2 -> 0, 1, 2, 3.
fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

/// Inverse of [`zigzag`].
fn unzigzag(u: u64) -> i64 {
    ((u >> 1) as i64) ^ -((u & 1) as i64)
}

/// Code of one value against its column's previous non-null value `prev`
/// (updated): 0 for null, else zigzag(wrapping delta) + 1, which needs up to
/// 65 bits, hence `u128`. Wrapping deltas make every `i64` exact.
fn value_code(value: Option<i64>, prev: &mut i64) -> u128 {
    match value {
        None => 0,
        Some(v) => {
            let delta = v.wrapping_sub(*prev);
            *prev = v;
            u128::from(zigzag(delta)) + 1
        }
    }
}

/// Inverse of [`value_code`]; `None` for a code no value produces.
fn decode_value(code: u128, prev: &mut i64) -> Option<Option<i64>> {
    let Some(biased) = code.checked_sub(1) else {
        return Some(None);
    };
    let delta = unzigzag(u64::try_from(biased).ok()?);
    *prev = prev.wrapping_add(delta);
    Some(Some(*prev))
}

/// Appends `v` as an LEB128 varint: 7 bits a byte, low first, high bit = more.
fn put_varint(out: &mut Vec<u8>, mut v: u128) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Reads one LEB128 varint at `*pos` and advances past it; `None` when the
/// bytes end mid-varint or it is longer than [`MAX_VARINT_BYTES`].
fn take_varint(bytes: &[u8], pos: &mut usize) -> Option<u128> {
    let mut v = 0u128;
    for (i, &b) in bytes.get(*pos..)?.iter().take(MAX_VARINT_BYTES).enumerate() {
        v |= u128::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            *pos += i + 1;
            return Some(v);
        }
    }
    None
}

/// Reads a series' rows back in push order, tracking the delta bases.
struct RowDecoder<'a> {
    bytes: &'a [u8],
    pos: usize,
    last_ms: i64,
    prev: Vec<i64>,
}

impl<'a> RowDecoder<'a> {
    fn new(bytes: &'a [u8], width: usize) -> Self {
        Self {
            bytes,
            pos: 0,
            last_ms: 0,
            prev: vec![0; width],
        }
    }

    /// Decodes the next row into `values` (one slot per metric) and returns
    /// its timestamp; `None` when the bytes are exhausted or malformed.
    fn next_row(&mut self, values: &mut [Option<i64>]) -> Option<i64> {
        let ts = u64::try_from(take_varint(self.bytes, &mut self.pos)?).ok()?;
        self.last_ms = self.last_ms.wrapping_add(unzigzag(ts));
        for (slot, prev) in values.iter_mut().zip(self.prev.iter_mut()) {
            *slot = decode_value(take_varint(self.bytes, &mut self.pos)?, prev)?;
        }
        Some(self.last_ms)
    }

    fn at_end(&self) -> bool {
        self.pos == self.bytes.len()
    }
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

fn millis(ms: i64) -> DateTime<Utc> {
    Utc.timestamp_millis_opt(ms).single().unwrap_or_default()
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
    let tmp = layout::in_progress_path(&path);
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
        buffer
            .encode(&mut out, node)
            .map_err(|source| WriteError::Encode {
                path: tmp.clone(),
                source,
            })?;
        let file = out.into_inner().map_err(|e| io(&tmp)(e.into_error()))?;
        file.sync_all().map_err(io(&tmp))?;
        let bytes = file.metadata().map_err(io(&tmp))?.len();
        super::durable::rename_synced(&tmp, &path).map_err(io(&path))?;
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
#[path = "writer_tests.rs"]
mod tests;
