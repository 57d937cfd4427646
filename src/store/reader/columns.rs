//! Reading metric columns straight from Parquet column chunks, without
//! building Arrow arrays: the viewer's hot path (every chart and overview
//! request reads a few columns of many files). The footer is decoded without
//! the statistics and the embedded Arrow schema, values land in plain `i64`
//! vectors, and container ids are compared as bytes of the dictionary page.

use std::ops::Range;
use std::path::Path;

use parquet::basic::{LogicalType, TimeUnit, Type as PhysicalType};
use parquet::column::reader::ColumnReader;
use parquet::data_type::ByteArray;
use parquet::file::metadata::ParquetStatisticsPolicy;
use parquet::file::reader::{FileReader, Length};
use parquet::file::serialized_reader::{ReadOptionsBuilder, SerializedFileReader};
use parquet::schema::types::SchemaDescriptor;

use super::super::bounds;
use super::ranged::RangedFile;
use super::{NULL_VALUE, ReadError, schema};
use super::{known_schema, row_runs};

/// Several metric columns of one file: whole-file columns with the rows
/// grouped by container and in time order within a container (as the agent
/// writes them, so usually without moving a value), and each container's
/// range of rows.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MetricColumns {
    /// Per requested metric: whether the file has the column (absent ones read as nulls).
    pub present: Vec<bool>,
    /// Milliseconds since the epoch.
    pub timestamps: Vec<i64>,
    /// Per requested metric, one raw value per row ([`NULL_VALUE`] for none).
    pub values: Vec<Vec<i64>>,
    /// Container id and its rows, sorted by id.
    pub series: Vec<(String, Range<usize>)>,
}

/// One container's rows of several metrics, in time order (borrowed).
#[derive(Debug, Clone, Copy)]
pub struct ContainerRows<'a> {
    pub timestamps: &'a [i64],
    columns: &'a [Vec<i64>],
    range: (usize, usize),
}

impl<'a> ContainerRows<'a> {
    /// The container's values of the `m`-th requested metric.
    pub fn values(&self, m: usize) -> &'a [i64] {
        self.columns
            .get(m)
            .and_then(|c| c.get(self.range.0..self.range.1))
            .unwrap_or(&[])
    }
    pub fn len(&self) -> usize {
        self.timestamps.len()
    }
    pub fn is_empty(&self) -> bool {
        self.timestamps.is_empty()
    }
}

impl MetricColumns {
    fn rows(&self, range: &Range<usize>) -> ContainerRows<'_> {
        ContainerRows {
            timestamps: &self.timestamps[range.clone()],
            columns: &self.values,
            range: (range.start, range.end),
        }
    }

    pub fn get(&self, container: &str) -> Option<ContainerRows<'_>> {
        self.series
            .binary_search_by(|(id, _)| id.as_str().cmp(container))
            .ok()
            .map(|i| self.rows(&self.series[i].1))
    }

    /// Every container with its rows, by id.
    pub fn iter(&self) -> impl Iterator<Item = (&str, ContainerRows<'_>)> {
        self.series
            .iter()
            .map(|(id, range)| (id.as_str(), self.rows(range)))
    }

    /// Approximate heap size, for cache accounting.
    pub fn heap_bytes(&self) -> usize {
        self.timestamps.len() * 8 * (1 + self.values.len())
            + self
                .series
                .iter()
                .map(|(id, _)| id.len() + 48)
                .sum::<usize>()
    }
}

/// Reads `metrics` of every container in a data file in one pass (one open,
/// one footer). A metric the file lacks reads as nulls (see
/// [`MetricColumns::present`]).
pub fn read_metrics(path: &Path, metrics: &[&str]) -> Result<MetricColumns, ReadError> {
    match read_metrics_with(path, metrics, true)? {
        Some(columns) => Ok(columns),
        // The footer's runs do not fit the timestamps: read the ids after all.
        None => read_metrics_with(path, metrics, false)?.ok_or_else(|| ReadError::Layout {
            path: path.to_path_buf(),
            message: "rows cannot be grouped by container".into(),
        }),
    }
}

/// The file's footer, decoded with the schema of the files read before when
/// this file says it has that schema ([`known_schema`]), in full otherwise;
/// statistics skipped (the reader never uses them).
pub(super) fn decode_footer(
    file: &RangedFile,
) -> Result<SerializedFileReader<RangedFile>, parquet::errors::ParquetError> {
    let options = || {
        ReadOptionsBuilder::new()
            .with_column_stats_policy(ParquetStatisticsPolicy::SkipAll)
            .with_encoding_stats_policy(ParquetStatisticsPolicy::SkipAll)
            .with_size_stats_policy(ParquetStatisticsPolicy::SkipAll)
    };
    let with_known = known_schema::known().and_then(|known| {
        let reader = SerializedFileReader::new_with_options(
            file.clone(),
            options().with_parquet_schema(known.1.clone()).build(),
        )
        .ok()?;
        known_schema::fits(reader.metadata(), &known).then_some(reader)
    });
    if let Some(reader) = with_known {
        return Ok(reader);
    }
    let reader = SerializedFileReader::new_with_options(file.clone(), options().build())?;
    known_schema::learn(reader.metadata());
    Ok(reader)
}

/// [`read_metrics`]; with `trust_runs`, the footer's [`row_runs`] (when
/// present) stand for the `container_id` column, and `None` says they do
/// not fit the rows.
pub(super) fn read_metrics_with(
    path: &Path,
    metrics: &[&str],
    trust_runs: bool,
) -> Result<Option<MetricColumns>, ReadError> {
    let layout = |message: String| ReadError::Layout {
        path: path.to_path_buf(),
        message,
    };
    let parquet = |source| ReadError::Parquet {
        path: path.to_path_buf(),
        source,
    };
    let io = |source| ReadError::Io {
        path: path.to_path_buf(),
        source,
    };
    let bounds = |source| ReadError::Bounds {
        path: path.to_path_buf(),
        source,
    };
    let file = RangedFile::open(path).map_err(io)?;
    bounds::check_footer(&file, file.len()).map_err(bounds)?;
    let reader = decode_footer(&file).map_err(parquet)?;
    let meta = reader.metadata();
    super::check_format_version(path, meta.file_metadata().key_value_metadata())?;
    let columns = meta.file_metadata().schema_descr();
    let ts_at =
        find(columns, schema::TIMESTAMP).ok_or_else(|| layout("no timestamp column".into()))?;
    let ts_scale = timestamp_divisor(columns, ts_at).map_err(layout)?;
    let id_at = find(columns, schema::CONTAINER_ID)
        .ok_or_else(|| layout("no container_id column".into()))?;
    let metric_at: Vec<Option<usize>> = metrics.iter().map(|m| find(columns, m)).collect();
    let total_rows: usize = (0..meta.num_row_groups())
        .map(|rg| usize::try_from(meta.row_group(rg).num_rows()).unwrap_or(0))
        .sum();
    let known_runs = super::footer_value(meta.file_metadata().key_value_metadata(), row_runs::KEY)
        .filter(|_| trust_runs)
        .and_then(|value| row_runs::decode(value, total_rows));
    let leaves: Vec<usize> = [Some(ts_at), known_runs.is_none().then_some(id_at)]
        .into_iter()
        .flatten()
        .chain(metric_at.iter().flatten().copied())
        .collect();
    // The wanted column chunks in one read each (a small file is already whole).
    let chunks = meta
        .row_groups()
        .iter()
        .flat_map(|group| leaves.iter().filter_map(|&at| group.columns().get(at)))
        .filter_map(|chunk| {
            // Negative offsets are left to the bounds check below, which names them.
            let start = chunk
                .dictionary_page_offset()
                .filter(|o| *o > 0)
                .unwrap_or_else(|| chunk.data_page_offset());
            let start = u64::try_from(start).ok()?;
            let length = u64::try_from(chunk.compressed_size()).ok()?;
            Some(start..start.checked_add(length)?)
        })
        .collect();
    file.load(chunks)
        .map_err(|e| layout(format!("its column chunks cannot be read: {e}")))?;
    // Checked before anything is decompressed.
    bounds::check_column_chunks(&file, meta, Some(&leaves)).map_err(bounds)?;
    let mut ts: Vec<i64> = Vec::new();
    let mut ids: Vec<Option<ByteArray>> = Vec::new();
    let mut values: Vec<Vec<i64>> = vec![Vec::new(); metrics.len()];
    for rg in 0..meta.num_row_groups() {
        let rows = usize::try_from(meta.row_group(rg).num_rows()).unwrap_or(0);
        if rows == 0 {
            continue;
        }
        let group = reader.get_row_group(rg).map_err(parquet)?;
        let column = |at: usize| group.get_column_reader(at).map_err(parquet);
        let part =
            read_numbers(column(ts_at)?, rows).map_err(|e| layout(format!("timestamp {e}")))?;
        append(&mut ts, part);
        if known_runs.is_none() {
            let part =
                read_ids(column(id_at)?, rows).map_err(|e| layout(format!("container_id {e}")))?;
            append(&mut ids, part);
        }
        for ((at, name), out) in metric_at.iter().zip(metrics).zip(values.iter_mut()) {
            match at {
                Some(at) => {
                    let part = read_numbers(column(*at)?, rows)
                        .map_err(|e| layout(format!("{name} {e}")))?;
                    append(out, part);
                }
                None => out.resize(out.len() + rows, NULL_VALUE),
            }
        }
    }
    if ts_scale != 1 {
        for t in ts.iter_mut().filter(|t| **t != NULL_VALUE) {
            *t /= ts_scale;
        }
    }
    if let Some(series) = known_runs {
        let fits = series.iter().all(|(_, range)| {
            ts.get(range.clone())
                .is_some_and(|run| !run.contains(&NULL_VALUE) && run.is_sorted())
        });
        return Ok(fits.then(|| MetricColumns {
            present: metric_at.iter().map(Option::is_some).collect(),
            timestamps: ts,
            values,
            series,
        }));
    }
    let series = match runs(&ts, &ids) {
        Some(series) => series,
        None => {
            // Not as the agent writes: put the rows in (id, time) order first.
            let mut order: Vec<usize> = (0..ts.len())
                .filter(|&r| ts[r] != NULL_VALUE && ids[r].is_some())
                .collect();
            order.sort_by(|&a, &b| {
                let (x, y) = (
                    ids[a].as_ref().map(|i| i.data()),
                    ids[b].as_ref().map(|i| i.data()),
                );
                x.cmp(&y).then(ts[a].cmp(&ts[b]))
            });
            ts = order.iter().map(|&r| ts[r]).collect();
            ids = order.iter().map(|&r| ids[r].clone()).collect();
            for column in &mut values {
                *column = order.iter().map(|&r| column[r]).collect();
            }
            runs(&ts, &ids).ok_or_else(|| layout("rows cannot be grouped by container".into()))?
        }
    };
    let series = series
        .into_iter()
        .map(|(id, range)| {
            std::str::from_utf8(id.data())
                .map(|name| (name.to_string(), range))
                .map_err(|_| layout("container_id is not UTF-8".into()))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let mut series = series;
    series.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(Some(MetricColumns {
        present: metric_at.iter().map(Option::is_some).collect(),
        timestamps: ts,
        values,
        series,
    }))
}

fn append<T>(to: &mut Vec<T>, mut part: Vec<T>) {
    if to.is_empty() {
        *to = part;
    } else {
        to.append(&mut part);
    }
}

/// Each container's run of rows when every row has a time and an id, each
/// id's rows are contiguous and their times ascend; `None` otherwise.
fn runs(ts: &[i64], ids: &[Option<ByteArray>]) -> Option<Vec<(ByteArray, Range<usize>)>> {
    let mut out: Vec<(ByteArray, Range<usize>)> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    let mut start = 0;
    while start < ids.len() {
        let id = ids[start].as_ref()?;
        let mut end = start + 1;
        while end < ids.len() && ids[end].as_ref().is_some_and(|next| same_id(next, id)) {
            end += 1;
        }
        let run = &ts[start..end];
        if run.contains(&NULL_VALUE) || !run.is_sorted() || !seen.insert(id.data()) {
            return None;
        }
        out.push((id.clone(), start..end));
        start = end;
    }
    Some(out)
}

/// Equal ids. Values of one dictionary page share their bytes, so the
/// pointer comparison settles most rows without comparing the text.
fn same_id(a: &ByteArray, b: &ByteArray) -> bool {
    let (a, b) = (a.data(), b.data());
    (a.as_ptr() == b.as_ptr() && a.len() == b.len()) || a == b
}

/// The top-level column named `name`.
fn find(columns: &SchemaDescriptor, name: &str) -> Option<usize> {
    (0..columns.num_columns()).find(|&i| {
        let c = columns.column(i);
        c.path().parts().len() == 1 && c.name() == name
    })
}

/// What to divide the stored timestamps by to get milliseconds.
fn timestamp_divisor(columns: &SchemaDescriptor, at: usize) -> Result<i64, String> {
    let c = columns.column(at);
    if c.physical_type() != PhysicalType::INT64 {
        return Err(format!(
            "timestamp column is {}, not INT64",
            c.physical_type()
        ));
    }
    Ok(match c.logical_type_ref() {
        Some(LogicalType::Timestamp(t)) => match t.unit {
            TimeUnit::MILLIS => 1,
            TimeUnit::MICROS => 1_000,
            TimeUnit::NANOS => 1_000_000,
        },
        None => 1,
        Some(other) => return Err(format!("timestamp column is {other:?}")),
    })
}

/// Reads `rows` values of a numeric column as raw `i64` ([`NULL_VALUE`] for
/// nulls): integers as they are, doubles rounded.
fn read_numbers(reader: ColumnReader, rows: usize) -> Result<Vec<i64>, String> {
    match reader {
        ColumnReader::Int64ColumnReader(mut r) => {
            let (values, defs) = read_all(rows, |d, v| r.read_records(rows, Some(d), None, v))?;
            Ok(spread(values, &defs, rows, NULL_VALUE))
        }
        ColumnReader::Int32ColumnReader(mut r) => {
            let (values, defs) = read_all(rows, |d, v| r.read_records(rows, Some(d), None, v))?;
            let values = values.into_iter().map(i64::from).collect();
            Ok(spread(values, &defs, rows, NULL_VALUE))
        }
        ColumnReader::DoubleColumnReader(mut r) => {
            let (values, defs) = read_all(rows, |d, v| r.read_records(rows, Some(d), None, v))?;
            let values = values
                .into_iter()
                .map(|v: f64| {
                    if v.is_finite() {
                        v.round() as i64
                    } else {
                        NULL_VALUE
                    }
                })
                .collect();
            Ok(spread(values, &defs, rows, NULL_VALUE))
        }
        _ => Err("column is not a number".into()),
    }
}

/// Reads the container ids of `rows` rows (`None` for a null).
fn read_ids(reader: ColumnReader, rows: usize) -> Result<Vec<Option<ByteArray>>, String> {
    match reader {
        ColumnReader::ByteArrayColumnReader(mut r) => {
            let (values, defs) = read_all(rows, |d, v| r.read_records(rows, Some(d), None, v))?;
            let values = values.into_iter().map(Some).collect();
            Ok(spread(values, &defs, rows, None))
        }
        _ => Err("column is not a string".into()),
    }
}

/// Calls `read` until `rows` records are read: (non-null values, definition
/// levels; none for a required column).
fn read_all<T>(
    rows: usize,
    mut read: impl FnMut(&mut Vec<i16>, &mut Vec<T>) -> parquet::errors::Result<(usize, usize, usize)>,
) -> Result<(Vec<T>, Vec<i16>), String> {
    let mut values = Vec::with_capacity(rows);
    let mut defs = Vec::with_capacity(rows);
    let mut records = 0;
    while records < rows {
        let (n, _, _) = read(&mut defs, &mut values).map_err(|e| e.to_string())?;
        if n == 0 {
            return Err(format!("ends after {records} of {rows} rows"));
        }
        records += n;
    }
    Ok((values, defs))
}

/// Places the non-null `values` at the rows whose definition level says
/// present (top-level columns only: level 1 of 1); `null` elsewhere. A
/// required column (no levels) is all values.
fn spread<T: Clone>(values: Vec<T>, defs: &[i16], rows: usize, null: T) -> Vec<T> {
    if defs.is_empty() || values.len() == rows {
        return values;
    }
    let mut out = Vec::with_capacity(rows);
    let mut next = values.into_iter();
    for &d in defs {
        out.push(if d > 0 {
            next.next().unwrap_or_else(|| null.clone())
        } else {
            null.clone()
        });
    }
    out
}
