//! Merging a node's data files into one (pure over bytes): rows sorted by
//! (container, time), the union of the inputs' columns (a column an older
//! file lacks is null there), row groups of bounded size with page
//! statistics so engines skip what a container or time filter excludes.
//!
//! Each input is already sorted by (container, time) and a node's files do
//! not overlap in time, so the merge streams: for the smallest container id
//! at the inputs' heads, each input in time order hands over its run of that
//! container. Memory holds one decoded batch per input, not the inputs.

use std::collections::HashMap;
use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::{Array, ArrayRef, RecordBatch, new_null_array};
use arrow_schema::{ArrowError, Field, Schema, SchemaRef};
use bytes::Bytes;
use parquet::arrow::ArrowWriter;
use parquet::arrow::arrow_reader::{ParquetRecordBatchReader, ParquetRecordBatchReaderBuilder};
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::EnabledStatistics;

use parquet::file::properties::WriterProperties;

use crate::store::{datasets, schema, writer};

/// Rows per row group of a merged file (~a dozen containers' hour).
pub const ROW_GROUP_ROWS: usize = 65_536;
const READ_BATCH_ROWS: usize = 8192;

/// Why a merge failed, naming the input.
#[derive(Debug, thiserror::Error)]
pub enum MergeError {
    #[error("input {name} is not readable Parquet: {source}")]
    Read {
        name: String,
        source: parquet::errors::ParquetError,
    },
    #[error("input {name}: {source}")]
    Decode { name: String, source: ArrowError },
    #[error("input {name}: column {column} is {found}, other inputs have {expected}")]
    ColumnType {
        name: String,
        column: String,
        found: String,
        expected: String,
    },
    #[error("input {name} lacks the {column} column")]
    MissingColumn { name: String, column: &'static str },
    #[error("cannot write the merged file: {0}")]
    Write(#[from] parquet::errors::ParquetError),
    #[error("merged file has {got} rows, the inputs {expected}")]
    RowCount { got: usize, expected: usize },
}

/// A merged file and what went into it.
#[derive(Debug)]
pub struct Merged {
    pub bytes: Vec<u8>,
    pub rows: usize,
    pub row_groups: usize,
}

struct Input {
    name: String,
    reader: ParquetRecordBatchReader,
    batch: Option<RecordBatch>,
    pos: usize,
}

impl Input {
    /// Loads the next non-empty batch (`None` at the end).
    fn advance(&mut self) -> Result<(), MergeError> {
        self.pos = 0;
        loop {
            self.batch = self
                .reader
                .next()
                .transpose()
                .map_err(|source| MergeError::Decode {
                    name: self.name.clone(),
                    source,
                })?;
            if self.batch.as_ref().is_none_or(|b| b.num_rows() > 0) {
                return Ok(());
            }
        }
    }

    fn ids(&self) -> Option<&arrow_array::StringArray> {
        self.batch
            .as_ref()
            .and_then(|b| b.column_by_name(schema::CONTAINER_ID))
            .and_then(|c| c.as_string_opt::<i32>())
    }

    fn head(&self) -> Option<&str> {
        let ids = self.ids()?;
        (self.pos < ids.len()).then(|| ids.value(self.pos))
    }

    /// End (exclusive) of the run of `id` starting at `pos` in the current batch.
    fn run_end(&self, id: &str) -> usize {
        let Some(ids) = self.ids() else {
            return self.pos;
        };
        let mut end = self.pos;
        while end < ids.len() && ids.value(end) == id {
            end += 1;
        }
        end
    }
}

/// The merged schema: timestamp and container id, then metric columns in the
/// order of the newest input that has them. Types must agree.
fn union_schema(schemas: &[(String, SchemaRef)]) -> Result<SchemaRef, MergeError> {
    let mut fields: Vec<Field> = Vec::new();
    let mut seen: HashMap<String, usize> = HashMap::new();
    for (name, schema) in schemas.iter().rev() {
        for column in [schema::TIMESTAMP, schema::CONTAINER_ID] {
            if schema.field_with_name(column).is_err() {
                return Err(MergeError::MissingColumn {
                    name: name.clone(),
                    column,
                });
            }
        }
        for field in schema.fields() {
            match seen.get(field.name()) {
                Some(&i) if fields[i].data_type() != field.data_type() => {
                    return Err(MergeError::ColumnType {
                        name: name.clone(),
                        column: field.name().clone(),
                        found: field.data_type().to_string(),
                        expected: fields[i].data_type().to_string(),
                    });
                }
                Some(_) => {}
                None => {
                    seen.insert(field.name().clone(), fields.len());
                    // Columns other inputs lack are null there.
                    fields.push(
                        field.as_ref().clone().with_nullable(
                            field.is_nullable()
                                || schemas
                                    .iter()
                                    .any(|(_, s)| s.field_with_name(field.name()).is_err()),
                        ),
                    );
                }
            }
        }
    }
    let metadata = schemas
        .last()
        .map(|(_, s)| s.metadata().clone())
        .unwrap_or_default();
    Ok(Arc::new(Schema::new(fields).with_metadata(metadata)))
}

/// `batch` with `target`'s columns: by name, nulls where it has none.
fn conform(batch: &RecordBatch, target: &SchemaRef) -> Result<RecordBatch, ArrowError> {
    let columns: Vec<ArrayRef> = target
        .fields()
        .iter()
        .map(|f| {
            batch
                .column_by_name(f.name())
                .cloned()
                .unwrap_or_else(|| new_null_array(f.data_type(), batch.num_rows()))
        })
        .collect();
    RecordBatch::try_new(target.clone(), columns)
}

/// Merges `inputs` (name, bytes), given in time order, into one file for `node`.
pub fn merge(inputs: &[(String, Bytes)], node: &str) -> Result<Merged, MergeError> {
    merge_with(inputs, writer::writer_properties(node))
}

/// Merges files of one of the other datasets (network, devices, processes):
/// the same streaming by container, each container's rows in file order (a
/// file's rows of a container stay sorted as the agent wrote them), and the
/// dataset's own footer (its name and version).
pub fn merge_dataset(
    inputs: &[(String, Bytes)],
    node: &str,
    spec: &datasets::Spec,
) -> Result<Merged, MergeError> {
    merge_with(inputs, datasets::properties(spec, node))
}

fn merge_with(inputs: &[(String, Bytes)], base: WriterProperties) -> Result<Merged, MergeError> {
    let mut readers = Vec::with_capacity(inputs.len());
    let mut schemas = Vec::with_capacity(inputs.len());
    let mut expected = 0usize;
    for (name, bytes) in inputs {
        let read_err = |source| MergeError::Read {
            name: name.clone(),
            source,
        };
        let builder = ParquetRecordBatchReaderBuilder::try_new(bytes.clone()).map_err(read_err)?;
        expected += usize::try_from(builder.metadata().file_metadata().num_rows()).unwrap_or(0);
        schemas.push((name.clone(), builder.schema().clone()));
        let reader = builder
            .with_batch_size(READ_BATCH_ROWS)
            .build()
            .map_err(read_err)?;
        let mut input = Input {
            name: name.clone(),
            reader,
            batch: None,
            pos: 0,
        };
        input.advance()?;
        readers.push(input);
    }
    let target = union_schema(&schemas)?;
    let props = base
        .into_builder()
        .set_compression(Compression::ZSTD(ZstdLevel::try_new(3)?))
        .set_max_row_group_row_count(Some(ROW_GROUP_ROWS))
        .set_statistics_enabled(EnabledStatistics::Page)
        .build();
    let mut out = Vec::new();
    let mut writer = ArrowWriter::try_new(&mut out, target.clone(), Some(props))?;
    let mut rows = 0usize;
    while let Some(next) = readers
        .iter()
        .filter_map(|r| r.head())
        .min()
        .map(str::to_string)
    {
        for input in readers.iter_mut() {
            while input.head() == Some(next.as_str()) {
                let end = input.run_end(&next);
                if let Some(batch) = &input.batch {
                    let slice = batch.slice(input.pos, end - input.pos);
                    let slice = conform(&slice, &target).map_err(|source| MergeError::Decode {
                        name: input.name.clone(),
                        source,
                    })?;
                    rows += slice.num_rows();
                    writer.write(&slice)?;
                }
                input.pos = end;
                if input.ids().is_none_or(|ids| input.pos >= ids.len()) {
                    input.advance()?;
                }
            }
        }
    }
    let metadata = writer.close()?;
    if rows != expected {
        return Err(MergeError::RowCount {
            got: rows,
            expected,
        });
    }
    Ok(Merged {
        bytes: out,
        rows,
        row_groups: metadata.num_row_groups(),
    })
}

#[cfg(test)]
#[path = "merge_tests.rs"]
mod tests;
