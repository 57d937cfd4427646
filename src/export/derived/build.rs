//! The rates and summaries files of one merged span, from the same raw
//! inputs (pure over bytes): one of each per clock hour its rows fall in
//! (the span's hours, and the next one when its last raw file runs over).
//!
//! Inputs are a node's data files in time order (they do not overlap). Each
//! is read once: its rows get their rates from the container's previous
//! sample (carried from the previous file, or from `seed`, the data just
//! before the span), are added to their hour's summaries, then are written
//! to their hour's rates file sorted by (timestamp, container), in row
//! groups that each hold one [`ROW_GROUP_SPAN_MS`] of wall-clock time, so a
//! time filter skips the rest from the footer's statistics. Memory holds one
//! input file and the open row groups, not the span.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use arrow_array::{
    ArrayRef, Float64Array, Int32Array, Int64Array, RecordBatch, StringArray,
    TimestampMillisecondArray,
};
use arrow_schema::{ArrowError, DataType, Field, Schema, SchemaRef, TimeUnit};
use bytes::Bytes;
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, Encoding, ZstdLevel};
use parquet::file::metadata::KeyValue;
use parquet::file::properties::{EnabledStatistics, WriterProperties};
use parquet::schema::types::ColumnPath;

use super::histogram::{GAMMA, RELATIVE_ACCURACY, ZERO_BUCKET};
use super::rates::{self, RATE_COLUMNS, Resolved, Sample, Value};
use super::read::{self, ReadError, Rows};
use super::summary::{self, Accum, Summaries};
use super::{DATASET_KEY, Dataset, FORMAT_VERSION, HOUR_KEY};
use crate::store::schema;

/// Wall-clock time one row group of a rates file covers.
pub const ROW_GROUP_SPAN_MS: i64 = 5 * 60 * 1000;
/// Upper bound of a row group's rows (a node with thousands of containers).
const MAX_ROW_GROUP_ROWS: usize = 1 << 20;
pub const INTERVAL_MS: &str = "interval_ms";

/// Why the derived files could not be made.
#[derive(Debug, thiserror::Error)]
pub enum DeriveError {
    #[error(transparent)]
    Read(#[from] ReadError),
    #[error("cannot write the {dataset} file: {source}")]
    Write {
        dataset: &'static str,
        source: parquet::errors::ParquetError,
    },
    #[error("cannot build the {dataset} rows: {source}")]
    Batch {
        dataset: &'static str,
        source: ArrowError,
    },
}

/// The rates and summaries files of one clock hour, and what is in them.
#[derive(Debug)]
pub struct HourFiles {
    /// Start of the hour (ms since the epoch).
    pub hour_ms: i64,
    pub rates: Vec<u8>,
    pub summaries: Vec<u8>,
    /// Rates rows: one per input row of the hour.
    pub rows: usize,
    pub rate_row_groups: usize,
    pub summary_rows: usize,
}

/// Schema of a rates file.
pub fn rates_schema() -> SchemaRef {
    let mut fields = vec![
        Field::new(
            schema::TIMESTAMP,
            DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into())),
            false,
        ),
        Field::new(schema::CONTAINER_ID, DataType::Utf8, false),
        unit(Field::new(INTERVAL_MS, DataType::Int64, true), "ms"),
    ];
    for c in RATE_COLUMNS {
        let t = if c.source.is_float() {
            DataType::Float64
        } else {
            DataType::Int64
        };
        fields.push(unit(Field::new(c.name, t, true), c.unit));
    }
    Arc::new(Schema::new(fields))
}

/// Schema of a summaries file (its hour is in its key and footer).
pub fn summaries_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new(schema::CONTAINER_ID, DataType::Utf8, false),
        Field::new("metric", DataType::Utf8, false),
        Field::new("bucket", DataType::Int32, true),
        Field::new("count", DataType::Int64, false),
        Field::new("sum", DataType::Float64, true),
        Field::new("min", DataType::Float64, true),
        Field::new("max", DataType::Float64, true),
    ]))
}

fn unit(f: Field, unit: &str) -> Field {
    f.with_metadata(HashMap::from([(schema::UNIT_KEY.into(), unit.into())]))
}

fn properties(
    node: &str,
    hour_ms: i64,
    dataset: Dataset,
    extra: Vec<KeyValue>,
) -> WriterProperties {
    let hour = chrono::DateTime::from_timestamp_millis(hour_ms)
        .map(|h| h.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
        .unwrap_or_default();
    let mut kv = vec![
        KeyValue::new(
            schema::FORMAT_VERSION_KEY.into(),
            FORMAT_VERSION.to_string(),
        ),
        KeyValue::new(DATASET_KEY.into(), dataset.name().to_string()),
        KeyValue::new("fgm.node".into(), node.to_string()),
        KeyValue::new(HOUR_KEY.into(), hour),
    ];
    kv.extend(extra);
    let zstd = ZstdLevel::try_new(3).unwrap_or_default();
    let mut builder = WriterProperties::builder();
    if dataset == Dataset::Rates {
        // Rows interleave containers, so values rarely repeat: no
        // dictionaries; integers as deltas (gauges drift, deltas are small),
        // doubles plain, zstd on top (measured smallest and fastest).
        let ints = std::iter::once(INTERVAL_MS).chain(
            RATE_COLUMNS
                .iter()
                .filter(|c| !c.source.is_float())
                .map(|c| c.name),
        );
        for name in ints {
            builder = builder
                .set_column_dictionary_enabled(ColumnPath::from(name), false)
                .set_column_encoding(ColumnPath::from(name), Encoding::DELTA_BINARY_PACKED);
        }
        for c in RATE_COLUMNS.iter().filter(|c| c.source.is_float()) {
            builder = builder.set_column_dictionary_enabled(ColumnPath::from(c.name), false);
        }
        // Statistics where queries filter (time, container, events): every
        // other column's would grow the footer, which every query opening the
        // object reads, for no row group ever skipped.
        for c in RATE_COLUMNS
            .iter()
            .filter(|c| !matches!(c.source, rates::Source::Delta(_)))
        {
            builder = builder
                .set_column_statistics_enabled(ColumnPath::from(c.name), EnabledStatistics::None);
        }
        builder = builder
            .set_column_statistics_enabled(ColumnPath::from(INTERVAL_MS), EnabledStatistics::None);
    }
    builder
        .set_compression(Compression::ZSTD(zstd))
        .set_statistics_enabled(EnabledStatistics::Page)
        .set_max_row_group_row_count(Some(MAX_ROW_GROUP_ROWS))
        .set_created_by(format!(
            "fine-grained-monitor {}",
            env!("CARGO_PKG_VERSION")
        ))
        .set_key_value_metadata(Some(kv))
        .set_column_dictionary_enabled(ColumnPath::from(schema::TIMESTAMP), false)
        .set_column_encoding(
            ColumnPath::from(schema::TIMESTAMP),
            Encoding::DELTA_BINARY_PACKED,
        )
        .build()
}

/// The open rates file of one hour.
struct HourWriter {
    writer: ArrowWriter<Vec<u8>>,
    /// Wall-clock slot of the open row group.
    slot: Option<i64>,
    rows: usize,
}

/// Rates and summaries of `inputs` (name, bytes; in time order) for `node`,
/// by hour; `seed` is the file holding the node's samples just before the
/// first input.
pub fn derive(
    inputs: &[(String, Bytes)],
    seed: Option<&(String, Bytes)>,
    node: &str,
) -> Result<Vec<HourFiles>, DeriveError> {
    let wanted = rates::inputs();
    let resolved = rates::resolve();
    let mut last: HashMap<String, Sample> = HashMap::new();
    if let Some((name, bytes)) = seed {
        let rows = read::read_rows(name, bytes, &wanted)?;
        for i in 0..rows.len() {
            let newer = last
                .get(rows.container(i))
                .is_none_or(|s| s.t_ms < rows.t_ms[i]);
            if newer {
                last.insert(rows.container(i).to_string(), sample_of(&rows, i));
            }
        }
    }
    let rates_schema = rates_schema();
    let write_err = |source| DeriveError::Write {
        dataset: "rates",
        source,
    };
    let mut writers: BTreeMap<i64, HourWriter> = BTreeMap::new();
    let mut summaries = Summaries::new(RATE_COLUMNS.len());
    for (name, bytes) in inputs {
        let rows = read::read_rows(name, bytes, &wanted)?;
        let derived = derive_file(&rows, &resolved, &mut last, &mut summaries);
        // Sorted by (timestamp, container id): ids ranked by name once.
        let mut by_name: Vec<usize> = (0..rows.ids.len()).collect();
        by_name.sort_by(|&a, &b| rows.ids[a].cmp(&rows.ids[b]));
        let mut rank = vec![0usize; rows.ids.len()];
        for (r, &id) in by_name.iter().enumerate() {
            rank[id] = r;
        }
        let mut order: Vec<usize> = (0..rows.len()).collect();
        order.sort_by_key(|&i| (rows.t_ms[i], rank[rows.id[i] as usize]));
        // Cut the sorted rows where the wall-clock slot changes: a slot is a
        // row group of its hour's file.
        let mut start = 0;
        while start < order.len() {
            let s = rows.t_ms[order[start]].div_euclid(ROW_GROUP_SPAN_MS);
            let end = start
                + order[start..]
                    .iter()
                    .position(|&i| rows.t_ms[i].div_euclid(ROW_GROUP_SPAN_MS) != s)
                    .unwrap_or(order.len() - start);
            let hour = summary::hour_of(rows.t_ms[order[start]]);
            let open = match writers.entry(hour) {
                std::collections::btree_map::Entry::Occupied(e) => e.into_mut(),
                std::collections::btree_map::Entry::Vacant(e) => e.insert(HourWriter {
                    writer: ArrowWriter::try_new(
                        Vec::new(),
                        rates_schema.clone(),
                        Some(properties(node, hour, Dataset::Rates, Vec::new())),
                    )
                    .map_err(write_err)?,
                    slot: None,
                    rows: 0,
                }),
            };
            if open.slot.is_some_and(|prev| prev != s) {
                open.writer.flush().map_err(write_err)?;
            }
            open.slot = Some(s);
            let batch = rates_batch(&rates_schema, &rows, &derived, &order[start..end]).map_err(
                |source| DeriveError::Batch {
                    dataset: "rates",
                    source,
                },
            )?;
            open.writer.write(&batch).map_err(write_err)?;
            open.rows += end - start;
            start = end;
        }
    }
    let mut out = Vec::with_capacity(writers.len());
    for (hour_ms, mut open) in writers {
        open.writer.flush().map_err(write_err)?;
        let rate_row_groups = open.writer.flushed_row_groups().len();
        let rates = open.writer.into_inner().map_err(write_err)?;
        let (summary_bytes, summary_rows) = write_summaries(&summaries, hour_ms, node)?;
        out.push(HourFiles {
            hour_ms,
            rates,
            summaries: summary_bytes,
            rows: open.rows,
            rate_row_groups,
            summary_rows,
        });
    }
    Ok(out)
}

fn sample_of(rows: &Rows, i: usize) -> Sample {
    Sample {
        t_ms: rows.t_ms[i],
        values: rows.values.iter().map(|v| v[i]).collect(),
    }
}

/// Derived values of one file, by input row.
struct FileRates {
    /// Values in the order they were derived (pushed, not pre-filled: this
    /// is the hot loop of compaction); `at[row]` is where a row's are.
    at: Vec<usize>,
    interval: Vec<Option<i64>>,
    columns: Vec<Vec<Value>>,
}

/// Rates of every row of `rows` (each container's rows in time order, from
/// its last sample in `last`), added to `summaries`; `last` moves on.
fn derive_file(
    rows: &Rows,
    resolved: &[Resolved],
    last: &mut HashMap<String, Sample>,
    summaries: &mut Summaries,
) -> FileRates {
    let n = rows.len();
    let mut out = FileRates {
        at: vec![0; n],
        interval: Vec::with_capacity(n),
        columns: (0..resolved.len()).map(|_| Vec::with_capacity(n)).collect(),
    };
    let mut order: Vec<usize> = (0..n).collect();
    // Stored order already is (container, time); the sort only guards it.
    order.sort_by_key(|&i| (rows.id[i], rows.t_ms[i]));
    let mut cur = Sample {
        t_ms: 0,
        values: vec![None; rows.values.len()],
    };
    // One container's run at a time: its previous sample and its hour's
    // summaries are looked up once per run (and hour), not per row.
    for run in order.chunk_by(|&a, &b| rows.id[a] == rows.id[b]) {
        let Some(&first) = run.first() else {
            continue;
        };
        let id = rows.container(first);
        let mut prev = last.remove(id);
        let mut hour: Option<(i64, &mut [Accum])> = None;
        for &i in run {
            cur.t_ms = rows.t_ms[i];
            for (slot, column) in cur.values.iter_mut().zip(&rows.values) {
                *slot = column[i];
            }
            let h = summary::hour_of(cur.t_ms);
            if hour.as_ref().is_none_or(|(at, _)| *at != h) {
                hour = Some((h, summaries.slot(id, cur.t_ms)));
            }
            let mut accums = hour.as_mut().map(|(_, a)| a);
            out.at[i] = out.interval.len();
            out.interval.push(rates::interval_ms(prev.as_ref(), &cur));
            for (c, source) in resolved.iter().enumerate() {
                let v = rates::value(*source, prev.as_ref(), &cur);
                let accum = accums.as_mut().and_then(|a| a.get_mut(c));
                if let (Some(x), Some(a)) = (v.as_f64(), accum) {
                    a.add(x);
                }
                out.columns[c].push(v);
            }
            match prev.as_mut() {
                Some(p) => std::mem::swap(p, &mut cur),
                None => prev = Some(cur.clone()),
            }
        }
        if let Some(p) = prev {
            last.insert(id.to_string(), p);
        }
    }
    out
}

fn rates_batch(
    schema: &SchemaRef,
    rows: &Rows,
    derived: &FileRates,
    order: &[usize],
) -> Result<RecordBatch, ArrowError> {
    let mut columns: Vec<ArrayRef> = vec![
        Arc::new(
            TimestampMillisecondArray::from_iter_values(order.iter().map(|&i| rows.t_ms[i]))
                .with_timezone("UTC"),
        ),
        Arc::new(StringArray::from_iter_values(
            order.iter().map(|&i| rows.container(i)),
        )),
        Arc::new(Int64Array::from_iter(
            order.iter().map(|&i| derived.interval[derived.at[i]]),
        )),
    ];
    for (c, def) in RATE_COLUMNS.iter().enumerate() {
        let values = &derived.columns[c];
        let array: ArrayRef = if def.source.is_float() {
            Arc::new(Float64Array::from_iter(
                order.iter().map(|&i| values[derived.at[i]].as_f64()),
            ))
        } else {
            Arc::new(Int64Array::from_iter(order.iter().map(|&i| {
                match values[derived.at[i]] {
                    Value::Int(v) => v,
                    Value::Float(_) => None,
                }
            })))
        };
        columns.push(array);
    }
    RecordBatch::try_new(schema.clone(), columns)
}

/// The summaries file of `hour`: one row group per metric, so a query of one
/// metric skips the others from the footer's statistics.
fn write_summaries(
    summaries: &Summaries,
    hour: i64,
    node: &str,
) -> Result<(Vec<u8>, usize), DeriveError> {
    let write_err = |source| DeriveError::Write {
        dataset: "summaries",
        source,
    };
    let batch_err = |source| DeriveError::Batch {
        dataset: "summaries",
        source,
    };
    let schema = summaries_schema();
    let extra = vec![
        KeyValue::new("fgm.histogram.gamma".into(), GAMMA.to_string()),
        KeyValue::new(
            "fgm.histogram.relative_accuracy".into(),
            RELATIVE_ACCURACY.to_string(),
        ),
        KeyValue::new("fgm.histogram.zero_bucket".into(), ZERO_BUCKET.to_string()),
    ];
    let mut props = properties(node, hour, Dataset::Summaries, extra).into_builder();
    // Only the columns queries filter on keep statistics: a smaller footer,
    // and the footers of every hour are what a query over days reads.
    for column in ["bucket", "count", "sum", "min", "max"] {
        props = props.set_column_statistics_enabled(column.into(), EnabledStatistics::None);
    }
    let mut out = Vec::new();
    let mut writer =
        ArrowWriter::try_new(&mut out, schema.clone(), Some(props.build())).map_err(write_err)?;
    let rows = summaries.rows(hour);
    for chunk in rows.chunk_by(|a, b| a.metric == b.metric) {
        let stat = |f: fn((f64, f64, f64)) -> f64| {
            Float64Array::from_iter(chunk.iter().map(|r| r.stats.map(f)))
        };
        let batch = RecordBatch::try_new(
            schema.clone(),
            vec![
                Arc::new(StringArray::from_iter_values(
                    chunk.iter().map(|r| r.container_id),
                )),
                Arc::new(StringArray::from_iter_values(
                    chunk.iter().map(|r| RATE_COLUMNS[r.metric].name),
                )),
                Arc::new(Int32Array::from_iter(chunk.iter().map(|r| r.bucket))),
                Arc::new(Int64Array::from_iter_values(
                    chunk.iter().map(|r| r.count as i64),
                )),
                Arc::new(stat(|s| s.0)),
                Arc::new(stat(|s| s.1)),
                Arc::new(stat(|s| s.2)),
            ],
        )
        .map_err(batch_err)?;
        writer.write(&batch).map_err(write_err)?;
        writer.flush().map_err(write_err)?;
    }
    writer.close().map_err(write_err)?;
    Ok((out, rows.len()))
}

#[cfg(test)]
#[path = "build_tests.rs"]
mod tests;
