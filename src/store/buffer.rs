//! The open interval in memory: each container's samples as compact varint
//! rows (about a byte a value), written as one data file at rotation and
//! rebuilt by the viewer from a tail file.

use std::collections::HashMap;

use chrono::{DateTime, TimeZone, Utc};

use super::reader::{MetricColumns, NULL_VALUE};
use super::schema::METRICS;
use super::varint::{decode_value, put_varint, take_varint, unzigzag, value_code, zigzag};

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
    /// The ids of the containers held.
    pub fn ids(&self) -> impl Iterator<Item = &str> {
        self.series.keys().map(String::as_str)
    }
    /// Each container's row count, in the order the rows are encoded (by id).
    pub fn row_runs(&self) -> Vec<(&str, usize)> {
        let mut runs: Vec<(&str, usize)> = self
            .series
            .iter()
            .map(|(id, s)| (id.as_str(), s.rows))
            .collect();
        runs.sort_unstable_by(|a, b| a.0.cmp(b.0));
        runs
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

    /// Decodes every row, sorted by (container, time), into `visit(id,
    /// timestamp, values)`. A series whose bytes do not decode to its row
    /// count (a bug of this module) is [`BufferCorrupt`].
    pub fn for_each_row_sorted<E: From<BufferCorrupt>>(
        &self,
        mut visit: impl FnMut(&str, i64, &[Option<i64>]) -> Result<(), E>,
    ) -> Result<(), E> {
        let mut ids: Vec<(&String, &Series)> = self.series.iter().collect();
        ids.sort_unstable_by(|a, b| a.0.cmp(b.0));
        let mut row = vec![None; METRICS.len()];
        for (id, series) in ids {
            let mut decoder = RowDecoder::new(&series.bytes, METRICS.len());
            for _ in 0..series.rows {
                let ts = decoder.next_row(&mut row).ok_or(BufferCorrupt)?;
                visit(id, ts, &row)?;
            }
            if !decoder.at_end() {
                return Err(BufferCorrupt.into());
            }
        }
        Ok(())
    }

    /// The rows of `metrics` (indexes into [`METRICS`]) as the columns a
    /// reader of a data file gets: what the viewer reads of an open interval.
    pub fn columns(&self, metrics: &[usize]) -> Result<MetricColumns, BufferCorrupt> {
        let mut out = MetricColumns {
            present: vec![true; metrics.len()],
            timestamps: Vec::with_capacity(self.rows),
            values: metrics
                .iter()
                .map(|_| Vec::with_capacity(self.rows))
                .collect(),
            series: Vec::with_capacity(self.series.len()),
        };
        let mut current: Option<(String, usize)> = None;
        self.for_each_row_sorted(|id, ts, row| {
            let row_index = out.timestamps.len();
            match &current {
                Some((known, _)) if known == id => {}
                _ => {
                    if let Some((known, first)) = current.take() {
                        out.series.push((known, first..row_index));
                    }
                    current = Some((id.to_string(), row_index));
                }
            }
            out.timestamps.push(ts);
            for (column, &m) in out.values.iter_mut().zip(metrics) {
                column.push(row.get(m).copied().flatten().unwrap_or(NULL_VALUE));
            }
            Ok::<_, BufferCorrupt>(())
        })?;
        if let Some((known, first)) = current {
            out.series.push((known, first..out.timestamps.len()));
        }
        Ok(out)
    }

    pub fn clear(&mut self) {
        self.series.clear();
        self.rows = 0;
        self.first_ms = None;
        self.last_ms = None;
    }
}

/// A series' bytes did not decode to its row count: a bug in this module.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("sample buffer does not decode (internal error)")]
pub struct BufferCorrupt;

/// Makes room for `needed` more bytes, growing by an eighth (at least 64
/// bytes) rather than doubling: the stream lives a whole interval, and
/// doubling's slack would be memory held for nothing.
pub(super) fn grow_for(bytes: &mut Vec<u8>, needed: usize) {
    if bytes.capacity() - bytes.len() < needed {
        bytes.reserve_exact(needed.max(bytes.len() / 8).max(64));
    }
}

/// Appends one row to `out`: the [`zigzag`] timestamp delta from `*last_ms`,
/// then one [`value_code`] per delta base in `prev` (`values` shorter than
/// that means trailing nulls, longer is ignored). Updates the bases.
pub(super) fn encode_row(
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

/// Reads a series' rows back in push order, tracking the delta bases.
pub(super) struct RowDecoder<'a> {
    bytes: &'a [u8],
    pos: usize,
    last_ms: i64,
    prev: Vec<i64>,
}

impl<'a> RowDecoder<'a> {
    pub(super) fn new(bytes: &'a [u8], width: usize) -> Self {
        Self {
            bytes,
            pos: 0,
            last_ms: 0,
            prev: vec![0; width],
        }
    }

    /// Decodes the next row into `values` (one slot per metric) and returns
    /// its timestamp; `None` when the bytes are exhausted or malformed.
    pub(super) fn next_row(&mut self, values: &mut [Option<i64>]) -> Option<i64> {
        let ts = u64::try_from(take_varint(self.bytes, &mut self.pos)?).ok()?;
        self.last_ms = self.last_ms.wrapping_add(unzigzag(ts));
        for (slot, prev) in values.iter_mut().zip(self.prev.iter_mut()) {
            *slot = decode_value(take_varint(self.bytes, &mut self.pos)?, prev)?;
        }
        Some(self.last_ms)
    }

    pub(super) fn at_end(&self) -> bool {
        self.pos == self.bytes.len()
    }
}

fn millis(ms: i64) -> DateTime<Utc> {
    Utc.timestamp_millis_opt(ms).single().unwrap_or_default()
}
