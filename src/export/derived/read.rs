//! Reading the raw columns the rates need from one data file (merged or
//! raw), as plain vectors.

use arrow_array::cast::AsArray;
use arrow_array::types::{Int64Type, TimestampMillisecondType};
use arrow_array::{Array, RecordBatch};
use arrow_schema::{ArrowError, DataType, TimeUnit};
use bytes::Bytes;
use parquet::arrow::ProjectionMask;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

use crate::store::schema;

/// Why an input could not be read, naming it.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("input {name} is not readable Parquet: {source}")]
    Parquet {
        name: String,
        source: parquet::errors::ParquetError,
    },
    #[error("input {name}: {source}")]
    Decode { name: String, source: ArrowError },
    #[error("input {name} lacks the {column} column")]
    MissingColumn { name: String, column: &'static str },
    #[error("input {name}: column {column} is {found}, expected {expected}")]
    ColumnType {
        name: String,
        column: String,
        found: String,
        expected: &'static str,
    },
}

/// A file's rows: time, container (index into `ids`) and the wanted columns.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Rows {
    pub ids: Vec<String>,
    pub id: Vec<u32>,
    pub t_ms: Vec<i64>,
    /// One vector per wanted column (all null when the file lacks it).
    pub values: Vec<Vec<Option<i64>>>,
}

impl Rows {
    pub fn len(&self) -> usize {
        self.t_ms.len()
    }

    pub fn is_empty(&self) -> bool {
        self.t_ms.is_empty()
    }

    pub fn container(&self, row: usize) -> &str {
        &self.ids[self.id[row] as usize]
    }
}

/// Reads `timestamp`, `container_id` and the `wanted` Int64 columns of `bytes`.
pub fn read_rows(name: &str, bytes: &Bytes, wanted: &[&str]) -> Result<Rows, ReadError> {
    let parquet_err = |source| ReadError::Parquet {
        name: name.to_string(),
        source,
    };
    let builder = ParquetRecordBatchReaderBuilder::try_new(bytes.clone()).map_err(parquet_err)?;
    let arrow = builder.schema().clone();
    for column in [schema::TIMESTAMP, schema::CONTAINER_ID] {
        if arrow.field_with_name(column).is_err() {
            return Err(ReadError::MissingColumn {
                name: name.to_string(),
                column,
            });
        }
    }
    let check = |column: &str, expected: &'static str, ok: bool| -> Result<(), ReadError> {
        match arrow.field_with_name(column) {
            Ok(f) if !ok => Err(ReadError::ColumnType {
                name: name.to_string(),
                column: column.to_string(),
                found: f.data_type().to_string(),
                expected,
            }),
            _ => Ok(()),
        }
    };
    let ts_type = arrow
        .field_with_name(schema::TIMESTAMP)
        .map(|f| f.data_type().clone())
        .unwrap_or(DataType::Null);
    check(
        schema::TIMESTAMP,
        "Timestamp(ms)",
        matches!(ts_type, DataType::Timestamp(TimeUnit::Millisecond, _)),
    )?;
    let present: Vec<&str> = wanted
        .iter()
        .copied()
        .filter(|w| arrow.field_with_name(w).is_ok())
        .collect();
    for column in &present {
        let ok = arrow
            .field_with_name(column)
            .is_ok_and(|f| f.data_type() == &DataType::Int64);
        check(column, "Int64", ok)?;
    }
    let mask = ProjectionMask::columns(
        builder.parquet_schema(),
        [schema::TIMESTAMP, schema::CONTAINER_ID]
            .into_iter()
            .chain(present.iter().copied()),
    );
    let reader = builder
        .with_projection(mask)
        .with_batch_size(8192)
        .build()
        .map_err(parquet_err)?;
    let mut rows = Rows {
        values: vec![Vec::new(); wanted.len()],
        ..Rows::default()
    };
    let mut index: std::collections::HashMap<String, u32> = std::collections::HashMap::new();
    for batch in reader {
        let batch = batch.map_err(|source| ReadError::Decode {
            name: name.to_string(),
            source,
        })?;
        append(&mut rows, &mut index, &batch, wanted).map_err(|source| ReadError::Decode {
            name: name.to_string(),
            source,
        })?;
    }
    Ok(rows)
}

fn append(
    rows: &mut Rows,
    index: &mut std::collections::HashMap<String, u32>,
    batch: &RecordBatch,
    wanted: &[&str],
) -> Result<(), ArrowError> {
    let missing = |c: &str| ArrowError::SchemaError(format!("no {c} column in the batch"));
    let ts = batch
        .column_by_name(schema::TIMESTAMP)
        .ok_or_else(|| missing(schema::TIMESTAMP))?
        .as_primitive_opt::<TimestampMillisecondType>()
        .ok_or_else(|| missing(schema::TIMESTAMP))?;
    let ids = batch
        .column_by_name(schema::CONTAINER_ID)
        .ok_or_else(|| missing(schema::CONTAINER_ID))?
        .as_string_opt::<i32>()
        .ok_or_else(|| missing(schema::CONTAINER_ID))?;
    let mut last: Option<(usize, u32)> = None;
    for i in 0..batch.num_rows() {
        if ts.is_null(i) || ids.is_null(i) {
            // Not a sample (the writer never leaves these null).
            continue;
        }
        let id = ids.value(i);
        // Rows come grouped by container: look the id up once per run.
        let n = match last {
            Some((j, n)) if ids.value(j) == id => n,
            _ => match index.get(id) {
                Some(n) => *n,
                None => {
                    let n = rows.ids.len() as u32;
                    rows.ids.push(id.to_string());
                    index.insert(id.to_string(), n);
                    n
                }
            },
        };
        last = Some((i, n));
        rows.id.push(n);
        rows.t_ms.push(ts.value(i));
    }
    let keep: Vec<usize> = (0..batch.num_rows())
        .filter(|&i| !ts.is_null(i) && !ids.is_null(i))
        .collect();
    for (w, out) in wanted.iter().zip(rows.values.iter_mut()) {
        match batch
            .column_by_name(w)
            .and_then(|c| c.as_primitive_opt::<Int64Type>())
        {
            Some(col) => out.extend(keep.iter().map(|&i| col.is_valid(i).then(|| col.value(i)))),
            None => out.extend(std::iter::repeat_n(None, keep.len())),
        }
    }
    Ok(())
}
