//! Reading data files back: a file's schema from its footer alone, its rows,
//! or one metric column grouped per container (what the viewer charts).

use std::fs::File;
use std::path::{Path, PathBuf};

use arrow_array::cast::AsArray;
use arrow_array::types::{Float64Type, Int64Type, TimestampMillisecondType, UInt64Type};
use arrow_array::{Array, RecordBatch};
use arrow_schema::{DataType, SchemaRef, TimeUnit};

use super::schema;
use parquet::arrow::ProjectionMask;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

/// A data file that cannot be read; the caller skips it and reports it.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("cannot open data file {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("data file {path} is not readable Parquet: {source}")]
    Parquet {
        path: PathBuf,
        source: parquet::errors::ParquetError,
    },
    #[error("data file {path} is corrupt: {source}")]
    Arrow {
        path: PathBuf,
        source: arrow_schema::ArrowError,
    },
    #[error("data file {path} has an unexpected layout: {message}")]
    Layout { path: PathBuf, message: String },
}

fn open(path: &Path) -> Result<ParquetRecordBatchReaderBuilder<File>, ReadError> {
    let file = File::open(path).map_err(|source| ReadError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    ParquetRecordBatchReaderBuilder::try_new(file).map_err(|source| ReadError::Parquet {
        path: path.to_path_buf(),
        source,
    })
}

/// The Arrow schema of a data file, read from its footer only.
pub fn read_schema(path: &Path) -> Result<SchemaRef, ReadError> {
    Ok(open(path)?.schema().clone())
}

/// All rows of a data file, restricted to the named columns when `columns`
/// is given (names absent from the file are ignored).
pub fn read_file(path: &Path, columns: Option<&[&str]>) -> Result<Vec<RecordBatch>, ReadError> {
    read_with(open(path)?, path, columns)
}

fn read_with(
    mut builder: ParquetRecordBatchReaderBuilder<File>,
    path: &Path,
    columns: Option<&[&str]>,
) -> Result<Vec<RecordBatch>, ReadError> {
    if let Some(columns) = columns {
        let mask = ProjectionMask::columns(builder.parquet_schema(), columns.iter().copied());
        builder = builder.with_projection(mask);
    }
    let reader = builder.build().map_err(|source| ReadError::Parquet {
        path: path.to_path_buf(),
        source,
    })?;
    reader
        .collect::<Result<Vec<_>, _>>()
        .map_err(|source| ReadError::Arrow {
            path: path.to_path_buf(),
            source,
        })
}

/// Marks a missing value in [`ContainerSeries::values`] (readings are never negative).
pub const NULL_VALUE: i64 = i64::MIN;

/// One container's samples of one metric within a file, in time order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ContainerSeries {
    /// Milliseconds since the epoch, ascending.
    pub timestamps: Vec<i64>,
    /// Raw values; [`NULL_VALUE`] where the kernel gave none.
    pub values: Vec<i64>,
}

/// One metric column of one file, grouped per container (sorted by id).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MetricColumn {
    pub series: Vec<(String, ContainerSeries)>,
}

impl MetricColumn {
    pub fn get(&self, container: &str) -> Option<&ContainerSeries> {
        self.series
            .binary_search_by(|(id, _)| id.as_str().cmp(container))
            .ok()
            .map(|i| &self.series[i].1)
    }

    /// Approximate heap size, for cache accounting.
    pub fn heap_bytes(&self) -> usize {
        self.series
            .iter()
            .map(|(id, s)| id.len() + 64 + (s.timestamps.len() + s.values.len()) * 8)
            .sum()
    }
}

/// Reads `metric` of every container in a data file. A file without that
/// column (written before the metric existed) gives an empty column.
pub fn read_metric(path: &Path, metric: &str) -> Result<MetricColumn, ReadError> {
    let columns = read_metrics(path, &[metric])?;
    if !columns.present[0] {
        return Ok(MetricColumn::default());
    }
    let series = columns
        .series
        .into_iter()
        .map(|(id, rows)| {
            let values = rows.values.into_iter().next().unwrap_or_default();
            (
                id,
                ContainerSeries {
                    timestamps: rows.timestamps,
                    values,
                },
            )
        })
        .collect();
    Ok(MetricColumn { series })
}

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
/// one footer). A metric the file lacks reads as nulls.
pub fn read_metrics(path: &Path, metrics: &[&str]) -> Result<MetricColumns, ReadError> {
    let layout = |message: String| ReadError::Layout {
        path: path.to_path_buf(),
        message,
    };
    let builder = open(path)?;
    let present: Vec<bool> = metrics
        .iter()
        .map(|m| builder.schema().field_with_name(m).is_ok())
        .collect();
    let mut wanted = vec![schema::TIMESTAMP, schema::CONTAINER_ID];
    wanted.extend(
        metrics
            .iter()
            .zip(&present)
            .filter(|(_, p)| **p)
            .map(|(m, _)| *m),
    );
    let batches = read_with(builder, path, Some(&wanted))?;
    let mut index: std::collections::HashMap<String, usize> = Default::default();
    let mut groups: Vec<(String, ContainerRows)> = Vec::new();
    for batch in &batches {
        let ts = batch
            .column_by_name(schema::TIMESTAMP)
            .ok_or_else(|| layout("no timestamp column".into()))?;
        let ts = match ts.data_type() {
            DataType::Timestamp(TimeUnit::Millisecond, _) => {
                ts.as_primitive::<TimestampMillisecondType>()
            }
            other => return Err(layout(format!("timestamp column is {other}, not ms"))),
        };
        let ids = batch
            .column_by_name(schema::CONTAINER_ID)
            .ok_or_else(|| layout("no container_id column".into()))?;
        let ids = ids
            .as_string_opt::<i32>()
            .ok_or_else(|| layout(format!("container_id column is {}", ids.data_type())))?;
        let columns: Vec<Option<Vec<i64>>> = metrics
            .iter()
            .zip(&present)
            .map(|(m, p)| match p {
                false => Ok(None),
                true => batch
                    .column_by_name(m)
                    .ok_or_else(|| layout(format!("no {m} column")))
                    .and_then(|c| raw_values(c).map_err(|e| layout(format!("{m} {e}"))))
                    .map(Some),
            })
            .collect::<Result<_, _>>()?;
        // Rows are sorted by container, so consecutive rows usually share a group.
        let mut current: Option<(&str, usize)> = None;
        for row in 0..batch.num_rows() {
            if ts.is_null(row) || ids.is_null(row) {
                continue;
            }
            let id = ids.value(row);
            let group = match current {
                Some((cur, g)) if cur == id => g,
                _ => {
                    let g = match index.get(id) {
                        Some(&g) => g,
                        None => {
                            index.insert(id.to_string(), groups.len());
                            groups.push((
                                id.to_string(),
                                ContainerRows {
                                    timestamps: Vec::new(),
                                    values: vec![Vec::new(); metrics.len()],
                                },
                            ));
                            groups.len() - 1
                        }
                    };
                    current = Some((id, g));
                    g
                }
            };
            let rows = &mut groups[group].1;
            rows.timestamps.push(ts.value(row));
            for (out, column) in rows.values.iter_mut().zip(&columns) {
                out.push(column.as_ref().map_or(NULL_VALUE, |c| c[row]));
            }
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
        present,
        series: groups,
    })
}

/// A metric column's values as raw `i64`, nulls as [`NULL_VALUE`].
fn raw_values(col: &dyn Array) -> Result<Vec<i64>, String> {
    Ok(match col.data_type() {
        DataType::Int64 => {
            let a = col.as_primitive::<Int64Type>();
            if a.null_count() == 0 {
                a.values().to_vec()
            } else {
                a.iter().map(|v| v.unwrap_or(NULL_VALUE)).collect()
            }
        }
        DataType::UInt64 => col
            .as_primitive::<UInt64Type>()
            .iter()
            .map(|v| v.map_or(NULL_VALUE, |v| i64::try_from(v).unwrap_or(i64::MAX)))
            .collect(),
        DataType::Float64 => col
            .as_primitive::<Float64Type>()
            .iter()
            .map(|v| match v {
                Some(v) if v.is_finite() => v.round() as i64,
                _ => NULL_VALUE,
            })
            .collect(),
        other => return Err(format!("column is {other}")),
    })
}

/// What a file says about its containers: per container, first and last sample.
pub fn read_container_spans(path: &Path) -> Result<Vec<(String, i64, i64)>, ReadError> {
    let batches = read_file(path, Some(&[schema::TIMESTAMP, schema::CONTAINER_ID]))?;
    let mut spans: std::collections::BTreeMap<String, (i64, i64)> = Default::default();
    for batch in &batches {
        let (Some(ts), Some(ids)) = (
            batch.column_by_name(schema::TIMESTAMP),
            batch.column_by_name(schema::CONTAINER_ID),
        ) else {
            return Err(ReadError::Layout {
                path: path.to_path_buf(),
                message: "no timestamp or container_id column".into(),
            });
        };
        let (Some(ts), Some(ids)) = (
            ts.as_primitive_opt::<TimestampMillisecondType>(),
            ids.as_string_opt::<i32>(),
        ) else {
            return Err(ReadError::Layout {
                path: path.to_path_buf(),
                message: "timestamp or container_id column of an unexpected type".into(),
            });
        };
        for row in 0..batch.num_rows() {
            if ts.is_null(row) || ids.is_null(row) {
                continue;
            }
            let t = ts.value(row);
            let span = spans.entry(ids.value(row).to_string()).or_insert((t, t));
            span.0 = span.0.min(t);
            span.1 = span.1.max(t);
        }
    }
    Ok(spans.into_iter().map(|(id, (a, b))| (id, a, b)).collect())
}

#[cfg(test)]
mod tests;
