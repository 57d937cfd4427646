//! Reading metric columns straight from Parquet column chunks, without
//! building Arrow arrays: the viewer's hot path (every chart and overview
//! request reads a few columns of many files). The footer is decoded without
//! the statistics and the embedded Arrow schema, values land in plain `i64`
//! vectors, and container ids are compared as bytes of the dictionary page.

use std::fs::File;
use std::path::Path;

use parquet::basic::{LogicalType, TimeUnit, Type as PhysicalType};
use parquet::column::reader::ColumnReader;
use parquet::data_type::ByteArray;
use parquet::file::metadata::ParquetStatisticsPolicy;
use parquet::file::reader::FileReader;
use parquet::file::serialized_reader::{ReadOptionsBuilder, SerializedFileReader};
use parquet::schema::types::SchemaDescriptor;

use super::{NULL_VALUE, ReadError, schema};

/// Several metric columns of one file, grouped per container (sorted by id).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MetricColumns {
    /// Per requested metric: whether the file has the column (absent ones read as nulls).
    pub present: Vec<bool>,
    pub series: Vec<(String, ContainerRows)>,
}

impl MetricColumns {
    pub fn get(&self, container: &str) -> Option<&ContainerRows> {
        self.series
            .binary_search_by(|(id, _)| id.as_str().cmp(container))
            .ok()
            .map(|i| &self.series[i].1)
    }

    /// Approximate heap size, for cache accounting.
    pub fn heap_bytes(&self) -> usize {
        self.series
            .iter()
            .map(|(id, r)| {
                id.len() + 64 + r.timestamps.len() * 8 * (1 + r.values.len()) + r.values.len() * 24
            })
            .sum()
    }
}

/// One container's rows of several metrics, in time order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ContainerRows {
    pub timestamps: Vec<i64>,
    /// Per requested metric, one raw value per timestamp ([`NULL_VALUE`] for none).
    pub values: Vec<Vec<i64>>,
}

/// Reads `metrics` of every container in a data file in one pass (one open,
/// one footer). A metric the file lacks reads as nulls (see
/// [`MetricColumns::present`]).
pub fn read_metrics(path: &Path, metrics: &[&str]) -> Result<MetricColumns, ReadError> {
    let layout = |message: String| ReadError::Layout {
        path: path.to_path_buf(),
        message,
    };
    let parquet = |source| ReadError::Parquet {
        path: path.to_path_buf(),
        source,
    };
    let file = File::open(path).map_err(|source| ReadError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let options = ReadOptionsBuilder::new()
        .with_column_stats_policy(ParquetStatisticsPolicy::SkipAll)
        .with_encoding_stats_policy(ParquetStatisticsPolicy::SkipAll)
        .with_size_stats_policy(ParquetStatisticsPolicy::SkipAll)
        .build();
    let reader = SerializedFileReader::new_with_options(file, options).map_err(parquet)?;
    let meta = reader.metadata();
    let columns = meta.file_metadata().schema_descr();
    let ts_at =
        find(columns, schema::TIMESTAMP).ok_or_else(|| layout("no timestamp column".into()))?;
    let ts_scale = timestamp_divisor(columns, ts_at).map_err(layout)?;
    let id_at = find(columns, schema::CONTAINER_ID)
        .ok_or_else(|| layout("no container_id column".into()))?;
    let metric_at: Vec<Option<usize>> = metrics.iter().map(|m| find(columns, m)).collect();
    let mut groups: Vec<(String, ContainerRows)> = Vec::new();
    let mut index: std::collections::HashMap<Vec<u8>, usize> = Default::default();
    for rg in 0..meta.num_row_groups() {
        let rows = usize::try_from(meta.row_group(rg).num_rows()).unwrap_or(0);
        if rows == 0 {
            continue;
        }
        let group = reader.get_row_group(rg).map_err(parquet)?;
        let column = |at: usize| group.get_column_reader(at).map_err(parquet);
        let ts =
            read_numbers(column(ts_at)?, rows).map_err(|e| layout(format!("timestamp {e}")))?;
        let ids =
            read_ids(column(id_at)?, rows).map_err(|e| layout(format!("container_id {e}")))?;
        let values = metric_at
            .iter()
            .zip(metrics)
            .map(|(at, name)| match at {
                Some(at) => {
                    read_numbers(column(*at)?, rows).map_err(|e| layout(format!("{name} {e}")))
                }
                None => Ok(Vec::new()),
            })
            .collect::<Result<Vec<_>, _>>()?;
        // Rows are sorted by container: each run of one id is copied at once.
        let mut start = 0;
        while start < rows {
            let Some(id) = ids[start].as_ref() else {
                start += 1;
                continue;
            };
            let mut end = start + 1;
            while end < rows && ids[end].as_ref().is_some_and(|next| same_id(next, id)) {
                end += 1;
            }
            let g = match index.get(id.data()) {
                Some(&g) => g,
                None => {
                    let name = std::str::from_utf8(id.data())
                        .map_err(|_| layout("container_id is not UTF-8".into()))?;
                    index.insert(id.data().to_vec(), groups.len());
                    groups.push((
                        name.to_string(),
                        ContainerRows {
                            timestamps: Vec::with_capacity(end - start),
                            values: vec![Vec::with_capacity(end - start); metrics.len()],
                        },
                    ));
                    groups.len() - 1
                }
            };
            let out = &mut groups[g].1;
            let run = &ts[start..end];
            if run.contains(&NULL_VALUE) {
                // A row without a time cannot be placed: skipped, as Arrow reads did.
                for (row, &t) in run.iter().enumerate().filter(|(_, t)| **t != NULL_VALUE) {
                    out.timestamps.push(t / ts_scale);
                    for (o, v) in out.values.iter_mut().zip(&values) {
                        o.push(v.get(start + row).copied().unwrap_or(NULL_VALUE));
                    }
                }
            } else {
                out.timestamps.extend(run.iter().map(|t| t / ts_scale));
                for (o, v) in out.values.iter_mut().zip(&values) {
                    match v.get(start..end) {
                        Some(part) => o.extend_from_slice(part),
                        None => o.resize(o.len() + run.len(), NULL_VALUE),
                    }
                }
            }
            start = end;
        }
    }
    groups.sort_by(|a, b| a.0.cmp(&b.0));
    for (_, rows) in &mut groups {
        if !rows.timestamps.is_sorted() {
            let mut order: Vec<usize> = (0..rows.timestamps.len()).collect();
            order.sort_by_key(|&i| rows.timestamps[i]);
            rows.timestamps = order.iter().map(|&i| rows.timestamps[i]).collect();
            for values in &mut rows.values {
                *values = order.iter().map(|&i| values[i]).collect();
            }
        }
    }
    Ok(MetricColumns {
        present: metric_at.iter().map(Option::is_some).collect(),
        series: groups,
    })
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
