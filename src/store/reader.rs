//! Reading data files back: a file's schema from its footer alone, or its rows.

use std::fs::File;
use std::path::{Path, PathBuf};

use arrow_array::RecordBatch;
use arrow_schema::SchemaRef;
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
    let mut builder = open(path)?;
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
