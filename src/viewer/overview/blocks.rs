//! Hour blocks: over a long range the overview joins one summary per hour of
//! a node's files instead of one per file (24 per day, not 960), each built
//! once from the files' footer summaries and cached.
//!
//! ```text
//!  files of the range ─▶ plan ─┬─ whole hours inside the range ─▶ block summary (cached: node, hour, slot width)
//!                              └─ the rest (edges, tails, the open hour) ─▶ file summaries
//! ```
//!
//! An hour is a block when its files all lie inside the range and it is
//! closed: the node's next file starts in a later hour and inside the range
//! (so every file of the hour is complete and ended before the range does).
//! Only slot widths that are multiples of an hour's share of the footers'
//! slots qualify (the caller checks), so a block keeps its slots exactly.

use crate::store::layout::{DataFile, FileKind};

const HOUR_MS: i64 = 3_600_000;

/// One piece of the range, in time order per node.
#[derive(Debug, Clone, PartialEq)]
pub enum Part {
    /// The files of one closed hour of one node (start of the hour, in ms).
    Block {
        hour_ms: i64,
        files: Vec<DataFile>,
    },
    File(DataFile),
}

impl crate::viewer::files::Located for Part {
    fn path(&self) -> &std::path::Path {
        match self {
            Part::Block { files, .. } => {
                files.first().map_or(std::path::Path::new(""), |f| &f.path)
            }
            Part::File(f) => &f.path,
        }
    }
}

impl Part {
    /// Start of the first file (the join order).
    pub fn start_ms(&self) -> i64 {
        match self {
            Part::Block { files, .. } => files.first().map_or(0, |f| f.start.timestamp_millis()),
            Part::File(f) => f.start.timestamp_millis(),
        }
    }
}

/// How long a block is for sparkline slots `slot_ms` wide: an hour, or the
/// slot when it is a whole number of hours (a 7-day range: 3 hours), so a
/// week is 56 blocks.
pub fn span_ms(slot_ms: i64) -> i64 {
    if slot_ms % HOUR_MS == 0 {
        slot_ms
    } else {
        HOUR_MS
    }
}

/// Groups `files` (sorted by node, then start) into blocks and single files:
/// in each aligned span of `span` ms, the run of at least two Parquet files
/// that lie wholly inside `[from, to]` (a file starts at or after `from`, and
/// its node's next file starts at or before `to`, so it ended before) is a
/// block; every other file is on its own.
pub fn plan(files: &[DataFile], from_ms: i64, to_ms: i64, span: i64) -> Vec<Part> {
    let inside = |i: usize| {
        let f: &DataFile = &files[i];
        let next = files.get(i + 1).filter(|n| n.node == f.node);
        f.kind == FileKind::Parquet
            && f.start.timestamp_millis() >= from_ms
            && next.is_some_and(|n| n.start.timestamp_millis() <= to_ms)
    };
    let span_of = |f: &DataFile| f.start.timestamp_millis().div_euclid(span);
    let mut out = Vec::new();
    let mut i = 0;
    while i < files.len() {
        if !inside(i) {
            out.push(Part::File(files[i].clone()));
            i += 1;
            continue;
        }
        let (node, group) = (&files[i].node, span_of(&files[i]));
        let mut end = i + 1;
        while end < files.len()
            && files[end].node == *node
            && span_of(&files[end]) == group
            && inside(end)
        {
            end += 1;
        }
        if end - i > 1 {
            out.push(Part::Block {
                hour_ms: group * span,
                files: files[i..end].to_vec(),
            });
        } else {
            out.push(Part::File(files[i].clone()));
        }
        i = end;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{TimeZone, Utc};

    fn file(node: &str, s: i64, kind: FileKind) -> DataFile {
        DataFile {
            path: format!("/d/{node}/{s}").into(),
            node: node.into(),
            start: Utc.timestamp_opt(1_767_225_600 + s, 0).unwrap(),
            kind,
        }
    }

    #[test]
    fn runs_of_files_inside_the_range_are_blocks_the_edges_and_tails_files() {
        let t0 = 1_767_225_600_000; // an hour boundary
        let mut files: Vec<DataFile> = (0..130)
            .map(|k| file("a", k * 90, FileKind::Parquet))
            .collect();
        files.push(file("a", 130 * 90, FileKind::Tail));
        files.extend((0..3).map(|k| file("b", k * 90, FileKind::Parquet)));
        files.sort_by(|x, y| (&x.node, x.start).cmp(&(&y.node, y.start)));
        // From 10 minutes in to 3 h 20 min.
        let parts = plan(&files, t0 + 600_000, t0 + 12_000_000, HOUR_MS);
        let blocks: Vec<(i64, usize)> = parts
            .iter()
            .filter_map(|p| match p {
                Part::Block { hour_ms, files } => Some(((hour_ms - t0) / HOUR_MS, files.len())),
                Part::File(_) => None,
            })
            .collect();
        // Hour 0 from 10:30 on (files start at or after `from`); hour 3's ten files end
        // before `to` (the last one's next is the tail, at 3 h 15 min).
        assert_eq!(blocks, vec![(0, 33), (1, 40), (2, 40), (3, 10)]);
        let singles: Vec<(&str, i64, FileKind)> = parts
            .iter()
            .filter_map(|p| match p {
                Part::File(f) => Some((
                    f.node.as_str(),
                    (f.start.timestamp_millis() - t0) / 1000,
                    f.kind,
                )),
                Part::Block { .. } => None,
            })
            .collect();
        let mut expected: Vec<(&str, i64, FileKind)> =
            (0..7).map(|k| ("a", k * 90, FileKind::Parquet)).collect();
        expected.push(("a", 130 * 90, FileKind::Tail));
        expected.extend((0..3).map(|k| ("b", k * 90, FileKind::Parquet)));
        assert_eq!(
            singles, expected,
            "before `from`, the tail, node b before `from`"
        );
        assert_eq!(span_ms(600_000), HOUR_MS);
        assert_eq!(
            span_ms(10_800_000),
            10_800_000,
            "7 days: 3-hour slots, 3-hour blocks"
        );
    }
}
