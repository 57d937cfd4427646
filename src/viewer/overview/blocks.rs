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

/// Groups `files` (sorted by node, then start) into blocks and single files.
pub fn plan(files: &[DataFile], from_ms: i64, to_ms: i64) -> Vec<Part> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < files.len() {
        let f = &files[i];
        let hour = f.start.timestamp_millis().div_euclid(HOUR_MS);
        let mut end = i;
        while end < files.len()
            && files[end].node == f.node
            && files[end].start.timestamp_millis().div_euclid(HOUR_MS) == hour
        {
            end += 1;
        }
        let next = files.get(end).filter(|n| n.node == f.node);
        let hour_ms = hour * HOUR_MS;
        let closed_inside = next.is_some_and(|n| n.start.timestamp_millis() <= to_ms);
        let whole = hour_ms >= from_ms
            && closed_inside
            && end - i > 1
            && files[i..end].iter().all(|f| f.kind == FileKind::Parquet);
        if whole {
            out.push(Part::Block {
                hour_ms,
                files: files[i..end].to_vec(),
            });
        } else {
            out.extend(files[i..end].iter().cloned().map(Part::File));
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
    fn closed_hours_inside_the_range_are_blocks_the_edges_and_tails_files() {
        let t0 = 1_767_225_600_000; // an hour boundary
        let mut files: Vec<DataFile> = (0..130)
            .map(|k| file("a", k * 90, FileKind::Parquet))
            .collect();
        files.push(file("a", 130 * 90, FileKind::Tail));
        files.extend((0..3).map(|k| file("b", k * 90, FileKind::Parquet)));
        files.sort_by(|x, y| (&x.node, x.start).cmp(&(&y.node, y.start)));
        // From 10 minutes in to 3 h 20 min: hour 0 starts before the range (files), hours 1
        // and 2 are blocks, hour 3 is the open one (files and the tail).
        let parts = plan(&files, t0 + 600_000, t0 + 12_000_000);
        let blocks: Vec<i64> = parts
            .iter()
            .filter_map(|p| match p {
                Part::Block { hour_ms, files } => {
                    assert_eq!(files.len(), 40);
                    Some((hour_ms - t0) / HOUR_MS)
                }
                Part::File(_) => None,
            })
            .collect();
        assert_eq!(blocks, vec![1, 2]);
        let singles = parts.iter().filter(|p| matches!(p, Part::File(_))).count();
        assert_eq!(
            singles,
            40 + 10 + 1 + 3,
            "hour 0, hour 3, the tail, node b's open hour"
        );
        // Every file once.
        let count: usize = parts
            .iter()
            .map(|p| match p {
                Part::Block { files, .. } => files.len(),
                Part::File(_) => 1,
            })
            .sum();
        assert_eq!(count, files.len());
    }
}
