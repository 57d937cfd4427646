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
    #[error("data file {path} is corrupt: {source}")]
    Bounds {
        path: PathBuf,
        source: super::bounds::BoundsError,
    },
}

fn open(path: &Path) -> Result<ParquetRecordBatchReaderBuilder<File>, ReadError> {
    let io = |source| ReadError::Io {
        path: path.to_path_buf(),
        source,
    };
    let file = File::open(path).map_err(io)?;
    let len = file.metadata().map_err(io)?.len();
    super::bounds::check_footer(&file, len).map_err(|source| ReadError::Bounds {
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
    // Page sizes are checked before anything is decompressed (bounded memory).
    let leaves: Vec<usize> = builder
        .parquet_schema()
        .columns()
        .iter()
        .enumerate()
        .filter(|(_, c)| columns.is_none_or(|wanted| wanted.contains(&c.name())))
        .map(|(i, _)| i)
        .collect();
    let file = File::open(path).map_err(|source| ReadError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    super::bounds::check_column_chunks(&file, builder.metadata(), Some(&leaves)).map_err(
        |source| ReadError::Bounds {
            path: path.to_path_buf(),
            source,
        },
    )?;
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
    let layout = |message: String| ReadError::Layout {
        path: path.to_path_buf(),
        message,
    };
    let builder = open(path)?;
    if builder.schema().field_with_name(metric).is_err() {
        return Ok(MetricColumn::default());
    }
    let batches = read_with(
        builder,
        path,
        Some(&[schema::TIMESTAMP, schema::CONTAINER_ID, metric]),
    )?;
    let mut groups: std::collections::HashMap<String, ContainerSeries> = Default::default();
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
        let col = batch
            .column_by_name(metric)
            .ok_or_else(|| layout(format!("no {metric} column")))?;
        let value_at: Box<dyn Fn(usize) -> i64> = match col.data_type() {
            DataType::Int64 => {
                let a = col.as_primitive::<Int64Type>();
                Box::new(move |i| if a.is_null(i) { NULL_VALUE } else { a.value(i) })
            }
            DataType::UInt64 => {
                let a = col.as_primitive::<UInt64Type>();
                Box::new(move |i| {
                    if a.is_null(i) {
                        NULL_VALUE
                    } else {
                        i64::try_from(a.value(i)).unwrap_or(i64::MAX)
                    }
                })
            }
            DataType::Float64 => {
                let a = col.as_primitive::<Float64Type>();
                Box::new(move |i| {
                    if a.is_null(i) || !a.value(i).is_finite() {
                        NULL_VALUE
                    } else {
                        a.value(i).round() as i64
                    }
                })
            }
            other => return Err(layout(format!("{metric} column is {other}"))),
        };
        // Rows are sorted by container, so consecutive rows usually share a group.
        let mut current: Option<(&str, &mut ContainerSeries)> = None;
        for row in 0..batch.num_rows() {
            if ts.is_null(row) || ids.is_null(row) {
                continue;
            }
            let id = ids.value(row);
            if current.as_ref().is_none_or(|(cur, _)| *cur != id) {
                let entry = groups.entry(id.to_string()).or_default();
                current = Some((id, entry));
            }
            if let Some((_, series)) = current.as_mut() {
                series.timestamps.push(ts.value(row));
                series.values.push(value_at(row));
            }
        }
    }
    let mut series: Vec<(String, ContainerSeries)> = groups.into_iter().collect();
    series.sort_by(|a, b| a.0.cmp(&b.0));
    for (_, s) in &mut series {
        if !s.timestamps.is_sorted() {
            let mut rows: Vec<(i64, i64)> = s
                .timestamps
                .iter()
                .copied()
                .zip(s.values.iter().copied())
                .collect();
            rows.sort_by_key(|r| r.0);
            (s.timestamps, s.values) = rows.into_iter().unzip();
        }
    }
    Ok(MetricColumn { series })
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
mod tests {
    use super::*;
    use crate::store::writer::{SampleBuffer, write_data_file};
    use chrono::{TimeZone, Utc};

    #[test]
    fn metric_column_groups_rows_per_container() {
        let dir = tempfile::tempdir().unwrap();
        let start = Utc.with_ymd_and_hms(2025, 12, 30, 0, 0, 0).unwrap();
        let mut buf = SampleBuffer::new();
        let cpu = schema::metric_index("cpu_usage_usec").unwrap();
        for t in 0..3i64 {
            for (n, id) in ["bbbbbbbbbbbb", "aaaaaaaaaaaa"].iter().enumerate() {
                let mut values = vec![None; schema::METRICS.len()];
                values[cpu] = (t != 1 || n == 0).then_some(t * 100 + n as i64);
                buf.push(start.timestamp_millis() + t * 1000, id, &values);
            }
        }
        let file = write_data_file(dir.path(), "n", start, &buf)
            .unwrap()
            .unwrap();
        let col = read_metric(&file.path, "cpu_usage_usec").unwrap();
        assert_eq!(col.series.len(), 2);
        let b = col.get("bbbbbbbbbbbb").unwrap();
        assert_eq!(b.values, vec![0, 100, 200]);
        let a = col.get("aaaaaaaaaaaa").unwrap();
        assert_eq!(a.values, vec![1, NULL_VALUE, 201]);
        assert_eq!(a.timestamps[2] - a.timestamps[0], 2000);
        assert!(
            read_metric(&file.path, "no_such_metric")
                .unwrap()
                .series
                .is_empty()
        );
        let spans = read_container_spans(&file.path).unwrap();
        assert_eq!(spans.len(), 2);
        assert_eq!(spans[0].2 - spans[0].1, 2000);
    }

    #[test]
    fn files_of_earlier_builds_compressed_with_zstd_are_read() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("metrics-20251230T000000Z.parquet");
        let mut buf = SampleBuffer::new();
        let cpu = schema::metric_index("cpu_usage_usec").unwrap();
        let mut values = vec![None; schema::METRICS.len()];
        values[cpu] = Some(42);
        buf.push(1_767_052_800_000, "aaaaaaaaaaaa", &values);
        let batch = buf.to_record_batch().unwrap();
        let props = parquet::file::properties::WriterProperties::builder()
            .set_compression(parquet::basic::Compression::ZSTD(Default::default()))
            .build();
        let file = std::fs::File::create(&path).unwrap();
        let mut writer =
            parquet::arrow::ArrowWriter::try_new(file, batch.schema(), Some(props)).unwrap();
        writer.write(&batch).unwrap();
        let meta = writer.close().unwrap();
        assert_eq!(
            meta.row_group(0).column(2).compression(),
            parquet::basic::Compression::ZSTD(Default::default())
        );
        let col = read_metric(&path, "cpu_usage_usec").unwrap();
        assert_eq!(col.get("aaaaaaaaaaaa").unwrap().values, vec![42]);
    }

    #[test]
    fn garbage_is_an_error_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("metrics-20251230T000000Z.parquet");
        std::fs::write(&path, b"PAR1 not really").unwrap();
        let err = read_metric(&path, "cpu_usage_usec")
            .unwrap_err()
            .to_string();
        assert!(err.contains("metrics-20251230T000000Z.parquet"), "{err}");
    }
}
