//! Export of a selection (containers, metrics, range) as CSV or Parquet with
//! the data files' column names and raw values (counters as recorded, not
//! rates), so an export reads like the data itself in any tool.
//!
//! The rows are counted first (timestamps and ids only), so a selection past
//! the row cap is refused with a message before anything is sent. The file
//! is then streamed as it is encoded, one data file at a time: memory stays
//! bounded whatever the size of the export.

use std::collections::HashSet;
use std::io::Write;
use std::sync::Arc;

use arrow_array::builder::{Int64Builder, StringBuilder};
use arrow_array::{ArrayRef, RecordBatch, TimestampMillisecondArray};
use arrow_schema::{DataType, Field, Schema};
use chrono::{DateTime, TimeZone, Utc};
use parquet::arrow::ArrowWriter;
use parquet::basic::Compression;
use parquet::file::properties::WriterProperties;

use super::files::{SkippedFile, for_each_file};
use super::state::Viewer;
use crate::store::layout::DataFile;
use crate::store::reader::{self, ContainerRows, NULL_VALUE};
use crate::store::schema::{self, ColumnInfo};

/// Highest export cap the viewer may be given (`--export-max-rows`).
pub const MAX_ROWS: usize = 1_000_000;
/// Default export cap.
pub const DEFAULT_MAX_ROWS: u64 = 200_000;
/// Rows per Parquet row group (bounds what the encoder holds).
const ROW_GROUP_ROWS: usize = 65_536;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Csv,
    Parquet,
}

impl Format {
    pub const NAMES: [&'static str; 2] = ["csv", "parquet"];

    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "csv" => Some(Format::Csv),
            "parquet" => Some(Format::Parquet),
            _ => None,
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Format::Csv => "text/csv; charset=utf-8",
            Format::Parquet => "application/vnd.apache.parquet",
        }
    }

    pub fn extension(self) -> &'static str {
        match self {
            Format::Csv => "csv",
            Format::Parquet => "parquet",
        }
    }
}

/// One validated export request.
#[derive(Debug, Clone)]
pub struct ExportRequest {
    pub containers: Vec<String>,
    pub metrics: Vec<ColumnInfo>,
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    pub format: Format,
    pub max_rows: usize,
}

impl ExportRequest {
    /// The file name offered to the browser.
    pub fn file_name(&self) -> String {
        format!(
            "fgm-{}-{}.{}",
            self.from.format("%Y%m%dT%H%M%SZ"),
            self.to.format("%Y%m%dT%H%M%SZ"),
            self.format.extension()
        )
    }
}

/// Rows of the selection and the data files holding them.
#[derive(Debug, Clone)]
pub struct Plan {
    pub rows: usize,
    pub files: Vec<DataFile>,
    pub skipped: Vec<SkippedFile>,
}

fn rows_in<'a>(
    read: &'a reader::MetricColumns,
    containers: &'a HashSet<&str>,
    from_ms: i64,
    to_ms: i64,
) -> impl Iterator<Item = (&'a str, ContainerRows<'a>, usize, usize)> + 'a {
    read.iter()
        .filter(|(id, _)| containers.contains(id))
        .map(move |(id, rows)| {
            let first = rows.timestamps.partition_point(|&t| t < from_ms);
            let end = rows.timestamps.partition_point(|&t| t <= to_ms);
            (id, rows, first, end)
        })
}

/// Counts the selection's rows, reading only times and ids.
pub fn plan(viewer: &Viewer, req: &ExportRequest) -> std::io::Result<Plan> {
    let files = viewer.files_for_range(req.from, req.to)?;
    let wanted: HashSet<&str> = req.containers.iter().map(String::as_str).collect();
    let (from_ms, to_ms) = (req.from.timestamp_millis(), req.to.timestamp_millis());
    let mut plan = Plan {
        rows: 0,
        files: Vec::new(),
        skipped: Vec::new(),
    };
    plan.skipped = for_each_file(
        viewer,
        &files,
        8,
        |f| {
            viewer.read_columns(f, &[]).map(|read| {
                rows_in(&read, &wanted, from_ms, to_ms)
                    .map(|(_, _, first, end)| end - first)
                    .sum::<usize>()
            })
        },
        |file, count| {
            if count > 0 {
                plan.rows += count;
                plan.files.push(file.clone());
            }
        },
    );
    Ok(plan)
}

/// Where encoded bytes go: the HTTP body. `false` when the client left.
pub trait Sink {
    fn send(&mut self, bytes: Vec<u8>) -> bool;
}

/// A `Write` that hands what it is given to a [`Sink`] in chunks.
struct SinkWriter<'a, S: Sink> {
    sink: &'a mut S,
    buffer: Vec<u8>,
    closed: bool,
}

impl<S: Sink> SinkWriter<'_, S> {
    fn flush_chunk(&mut self) -> std::io::Result<()> {
        if !self.buffer.is_empty() && !self.sink.send(std::mem::take(&mut self.buffer)) {
            self.closed = true;
        }
        if self.closed {
            return Err(std::io::Error::new(
                std::io::ErrorKind::BrokenPipe,
                "the client closed the download",
            ));
        }
        Ok(())
    }
}

impl<S: Sink + Send> Write for SinkWriter<'_, S> {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.buffer.extend_from_slice(data);
        if self.buffer.len() >= 256 << 10 {
            self.flush_chunk()?;
        }
        Ok(data.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.flush_chunk()
    }
}

/// The export's Arrow schema: the data files' columns, with their metadata.
fn arrow_schema(metrics: &[ColumnInfo]) -> Arc<Schema> {
    let builtin = schema::arrow_schema();
    let mut fields = vec![builtin.field(0).clone(), builtin.field(1).clone()];
    for m in metrics {
        let field = builtin
            .field_with_name(&m.name)
            .cloned()
            .unwrap_or_else(|_| {
                Field::new(&m.name, DataType::Int64, true).with_metadata(
                    std::collections::HashMap::from([
                        (schema::KIND_KEY.to_string(), m.kind.as_str().to_string()),
                        (schema::UNIT_KEY.to_string(), m.unit.clone()),
                    ]),
                )
            });
        fields.push(field);
    }
    Arc::new(Schema::new(fields))
}

fn csv_time(ms: i64) -> String {
    Utc.timestamp_millis_opt(ms)
        .single()
        .map(|t| t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string())
        .unwrap_or_default()
}

/// Encodes the planned rows into `sink` (blocking). Errors after the first
/// byte can only end the download early; they are logged.
pub fn write<S: Sink + Send>(viewer: &Viewer, req: &ExportRequest, plan: &Plan, sink: &mut S) {
    let names: Vec<&str> = req.metrics.iter().map(|m| m.name.as_str()).collect();
    let wanted: HashSet<&str> = req.containers.iter().map(String::as_str).collect();
    let (from_ms, to_ms) = (req.from.timestamp_millis(), req.to.timestamp_millis());
    let schema = arrow_schema(&req.metrics);
    let out = SinkWriter {
        sink,
        buffer: Vec::new(),
        closed: false,
    };
    let mut encoder = match req.format {
        Format::Csv => {
            let mut out = out;
            let header = ["timestamp", "container_id"]
                .iter()
                .chain(names.iter())
                .copied()
                .collect::<Vec<_>>()
                .join(",");
            let _ = writeln!(out, "{header}");
            Encoder::Csv(out)
        }
        Format::Parquet => {
            let props = WriterProperties::builder()
                .set_compression(Compression::LZ4_RAW)
                .set_max_row_group_row_count(Some(ROW_GROUP_ROWS))
                .build();
            match ArrowWriter::try_new(out, schema.clone(), Some(props)) {
                Ok(w) => Encoder::Parquet(Box::new(w)),
                Err(e) => {
                    tracing::error!(error = %e, "export: cannot start the Parquet file");
                    return;
                }
            }
        }
    };
    let mut failed = false;
    // A file that went away since the plan (retention) is reported by the loop.
    for_each_file(
        viewer,
        &plan.files,
        2,
        |f| viewer.read_columns(f, &names),
        |_, read| {
            if failed {
                return;
            }
            let result = match &mut encoder {
                Encoder::Parquet(w) => batch(&schema, &read, &wanted, from_ms, to_ms)
                    .map_err(|e| e.to_string())
                    .and_then(|b| w.write(&b).map_err(|e| e.to_string())),
                Encoder::Csv(out) => {
                    csv_rows(out, &read, &wanted, from_ms, to_ms).map_err(|e| e.to_string())
                }
            };
            if let Err(e) = result {
                tracing::warn!(error = %e, "export ended early");
                failed = true;
            }
        },
    );
    let finished = match encoder {
        Encoder::Csv(mut out) => out.flush().map_err(|e| e.to_string()),
        Encoder::Parquet(w) => w
            .into_inner()
            .map_err(|e| e.to_string())
            .and_then(|mut out| out.flush().map_err(|e| e.to_string())),
    };
    if let Err(e) = finished {
        tracing::warn!(error = %e, "export ended early");
    }
}

/// The encoder of an export, owning the body writer.
enum Encoder<'a, S: Sink + Send> {
    Csv(SinkWriter<'a, S>),
    Parquet(Box<ArrowWriter<SinkWriter<'a, S>>>),
}

fn csv_rows(
    out: &mut impl Write,
    read: &reader::MetricColumns,
    wanted: &HashSet<&str>,
    from_ms: i64,
    to_ms: i64,
) -> std::io::Result<()> {
    let mut line = String::new();
    for (id, rows, first, end) in rows_in(read, wanted, from_ms, to_ms) {
        for row in first..end {
            line.clear();
            line.push_str(&csv_time(rows.timestamps[row]));
            line.push(',');
            line.push_str(id);
            for column in (0..read.values.len()).map(|m| rows.values(m)) {
                line.push(',');
                if column[row] != NULL_VALUE {
                    line.push_str(&column[row].to_string());
                }
            }
            line.push('\n');
            out.write_all(line.as_bytes())?;
        }
    }
    Ok(())
}

fn batch(
    schema: &Arc<Schema>,
    read: &reader::MetricColumns,
    wanted: &HashSet<&str>,
    from_ms: i64,
    to_ms: i64,
) -> Result<RecordBatch, arrow_schema::ArrowError> {
    let mut times = Vec::new();
    let mut ids = StringBuilder::new();
    let mut values: Vec<Int64Builder> = (2..schema.fields().len())
        .map(|_| Int64Builder::new())
        .collect();
    for (id, rows, first, end) in rows_in(read, wanted, from_ms, to_ms) {
        times.extend_from_slice(&rows.timestamps[first..end]);
        for _ in first..end {
            ids.append_value(id);
        }
        for (m, builder) in values.iter_mut().enumerate() {
            let column = rows.values(m);
            for &v in &column[first..end] {
                builder.append_option((v != NULL_VALUE).then_some(v));
            }
        }
    }
    let mut columns: Vec<ArrayRef> = vec![
        Arc::new(TimestampMillisecondArray::from(times).with_timezone("UTC")),
        Arc::new(ids.finish()),
    ];
    columns.extend(values.iter_mut().map(|b| Arc::new(b.finish()) as ArrayRef));
    RecordBatch::try_new(schema.clone(), columns)
}
