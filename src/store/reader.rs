//! Reading data files back: a file's schema from its footer alone, its rows,
//! or one metric column grouped per container (what the viewer charts).

use std::fs::File;
use std::path::{Path, PathBuf};

use arrow_array::cast::AsArray;
use arrow_array::types::TimestampMillisecondType;
use arrow_array::{Array, RecordBatch};
use arrow_schema::SchemaRef;

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
    #[error(
        "data file {path} has format version {version} ({key} in its footer); this build reads versions up to {known}: upgrade the viewer to read it"
    )]
    NewerFormat {
        path: PathBuf,
        version: String,
        known: &'static str,
        key: &'static str,
    },
}

/// Refuses a file written in a format newer than this build knows (its
/// footer's `fgm.format_version`; files before versioning have none).
pub fn check_format_version(
    path: &Path,
    key_values: Option<&Vec<parquet::file::metadata::KeyValue>>,
) -> Result<(), ReadError> {
    let Some(version) = footer_value(key_values, schema::FORMAT_VERSION_KEY) else {
        return Ok(());
    };
    let known: u32 = schema::FORMAT_VERSION.parse().unwrap_or(1);
    match version.trim().parse::<u32>() {
        Ok(v) if v <= known => Ok(()),
        _ => Err(ReadError::NewerFormat {
            path: path.to_path_buf(),
            version: version.to_string(),
            known: schema::FORMAT_VERSION,
            key: schema::FORMAT_VERSION_KEY,
        }),
    }
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
    let builder =
        ParquetRecordBatchReaderBuilder::try_new(file).map_err(|source| ReadError::Parquet {
            path: path.to_path_buf(),
            source,
        })?;
    check_format_version(
        path,
        builder.metadata().file_metadata().key_value_metadata(),
    )?;
    Ok(builder)
}

/// The overview summary a data file carries in its footer
/// ([`super::summary::codec`]); `None` for files written without one (or
/// with one this build cannot decode). Reads the footer only.
pub fn read_footer_summary(path: &Path) -> Result<Option<super::summary::FileSummary>, ReadError> {
    Ok(read_footer_value(path, super::summary::codec::KEY)?
        .as_deref()
        .and_then(super::summary::codec::decode))
}

/// The footer's key-value metadata entry `key`, reading the footer only.
pub fn read_footer_value(path: &Path, key: &str) -> Result<Option<String>, ReadError> {
    use parquet::file::reader::{FileReader, Length};
    let file = ranged::RangedFile::open(path).map_err(|source| ReadError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    super::bounds::check_footer(&file, file.len()).map_err(|source| ReadError::Bounds {
        path: path.to_path_buf(),
        source,
    })?;
    let reader = columns::decode_footer(&file).map_err(|source| ReadError::Parquet {
        path: path.to_path_buf(),
        source,
    })?;
    let key_values = reader.metadata().file_metadata().key_value_metadata();
    check_format_version(path, key_values)?;
    Ok(footer_value(key_values, key).map(str::to_string))
}

/// The value of footer key `key` among `key_values`.
pub fn footer_value<'a>(
    key_values: Option<&'a Vec<parquet::file::metadata::KeyValue>>,
    key: &str,
) -> Option<&'a str> {
    key_values?.iter().find(|k| k.key == key)?.value.as_deref()
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

mod columns;
pub mod known_schema;
pub mod ranged;
pub mod row_runs;
#[cfg(test)]
use columns::read_metrics_with;
pub use columns::{ContainerRows, MetricColumns, read_metrics};

/// Reads `metric` of every container in a data file. A file without that
/// column (written before the metric existed) gives an empty column.
pub fn read_metric(path: &Path, metric: &str) -> Result<MetricColumn, ReadError> {
    let columns = read_metrics(path, &[metric])?;
    if !columns.present[0] {
        return Ok(MetricColumn::default());
    }
    let series = columns
        .iter()
        .map(|(id, rows)| {
            (
                id.to_string(),
                ContainerSeries {
                    timestamps: rows.timestamps.to_vec(),
                    values: rows.values(0).to_vec(),
                },
            )
        })
        .collect();
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
mod tests;
