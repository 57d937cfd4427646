//! The Parquet schema of our metrics files, decoded once per process.
//!
//! Every metrics file of one build has the same ~150 columns, and decoding
//! them from each footer (names, types, the tree) is a tenth of a cold 24 h
//! chart. The writer puts a fingerprint of the schema in the footer (key
//! `fgm.schema.v1`); a reader that decoded one file whose fingerprint it
//! recomputed from the decoded schema keeps that schema, and decodes the
//! next files' footers with it, keeping the result only when their
//! fingerprint is the same. Anything else (no key, another fingerprint, a
//! file of another build) is decoded in full, as before.

use std::sync::Mutex;

use parquet::file::metadata::ParquetMetaData;
use parquet::schema::types::{SchemaDescPtr, SchemaDescriptor};

/// Footer key of the fingerprint.
pub const KEY: &str = "fgm.schema.v1";

/// A fingerprint of `schema`: every leaf column's path, physical, logical
/// and converted type, repetition, length, precision, scale and levels,
/// hashed (xxHash32 with two seeds: 16 hex digits).
pub fn fingerprint(schema: &SchemaDescriptor) -> String {
    let mut text = format!("{} {}\n", schema.name(), schema.num_columns());
    for column in schema.columns() {
        text.push_str(&format!(
            "{} {} {:?} {} {:?} {} {} {} {} {}\n",
            column.path().string(),
            column.physical_type(),
            column.logical_type_ref(),
            column.converted_type(),
            column.self_type().get_basic_info().repetition(),
            column.type_length(),
            column.type_precision(),
            column.type_scale(),
            column.max_def_level(),
            column.max_rep_level(),
        ));
    }
    let hash = |seed| twox_hash::XxHash32::oneshot(seed, text.as_bytes());
    format!("{:08x}{:08x}", hash(0x6667_6d31), hash(0x6667_6d32))
}

/// The fingerprint a file's footer carries, if any.
pub fn of_file(meta: &ParquetMetaData) -> Option<&str> {
    super::footer_value(meta.file_metadata().key_value_metadata(), KEY)
}

/// The schema kept: (fingerprint, schema).
static KNOWN: Mutex<Option<(String, SchemaDescPtr)>> = Mutex::new(None);

/// The schema kept, if any, to decode the next footer with.
pub fn known() -> Option<(String, SchemaDescPtr)> {
    KNOWN.lock().unwrap_or_else(|p| p.into_inner()).clone()
}

/// Keeps the schema of a fully decoded file whose footer's fingerprint is
/// the one recomputed from what was decoded.
pub fn learn(meta: &ParquetMetaData) {
    let Some(claimed) = of_file(meta) else {
        return;
    };
    let schema = meta.file_metadata().schema_descr_ptr();
    let mut known = KNOWN.lock().unwrap_or_else(|p| p.into_inner());
    if known.as_ref().is_some_and(|(f, _)| f == claimed) {
        return;
    }
    if fingerprint(&schema) == claimed {
        *known = Some((claimed.to_string(), schema));
    }
}

/// Whether a footer decoded with the kept schema `(fingerprint, _)` is
/// that schema's.
pub fn fits(meta: &ParquetMetaData, known: &(String, SchemaDescPtr)) -> bool {
    of_file(meta) == Some(known.0.as_str())
}

/// The fingerprint of the schema the writer writes, computed once.
pub fn of_written() -> Option<&'static str> {
    static WRITTEN: std::sync::OnceLock<Option<String>> = std::sync::OnceLock::new();
    WRITTEN
        .get_or_init(|| {
            parquet::arrow::ArrowSchemaConverter::new()
                .convert(&super::schema::arrow_schema())
                .ok()
                .map(|s| fingerprint(&s))
        })
        .as_deref()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fingerprint_follows_the_schema() {
        let ours = parquet::arrow::ArrowSchemaConverter::new()
            .convert(&crate::store::schema::arrow_schema())
            .expect("our schema converts");
        assert_eq!(fingerprint(&ours), of_written().expect("computed"));
        assert_eq!(fingerprint(&ours).len(), 16);
        // One column less is another fingerprint.
        let fewer =
            arrow_schema::Schema::new(crate::store::schema::arrow_schema().fields()[1..].to_vec());
        let fewer = parquet::arrow::ArrowSchemaConverter::new()
            .convert(&fewer)
            .expect("converts");
        assert_ne!(fingerprint(&fewer), fingerprint(&ours));
    }
}
