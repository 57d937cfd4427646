//! Keeping the hour summaries ([`crate::store::hours`]) current: when a file
//! starts a new hour, the hour before is closed and summarised; a file
//! written late into an earlier hour (a retried interval) summarises that
//! hour again; and hours left without one (by a restart, an earlier build)
//! are caught up a few per rotation, newest first, so a start with a week of
//! history does not stall the first rotation.

use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};

use crate::store::hours::{self, HourError};
use crate::store::layout;

/// Stale hours caught up per rotation (each joins about 40 footers: ~10 ms).
const CATCH_UP_PER_ROTATION: usize = 4;

/// What the recorder remembers between rotations.
#[derive(Debug, Default)]
pub struct HourSummaries {
    /// Hour of the newest file written by this process.
    newest: Option<DateTime<Utc>>,
    /// Stale closed hours found at the first rotation, newest first
    /// (`None` until then).
    backlog: Option<Vec<DateTime<Utc>>>,
}

impl HourSummaries {
    /// The hours to summarise now that `node`'s file starting at `start` is
    /// written: the hour it closes or changes, then a few of the backlog.
    pub fn after_write(
        &mut self,
        data_dir: &Path,
        node: &str,
        start: DateTime<Utc>,
    ) -> Vec<DateTime<Utc>> {
        let hour = hours::hour_of(start);
        let mut due = Vec::new();
        match self.newest {
            Some(newest) if newest < hour => due.push(newest),
            Some(newest) if hour < newest => due.push(hour),
            _ => {}
        }
        self.newest = self.newest.max(Some(hour));
        let backlog = self.backlog.get_or_insert_with(|| {
            layout::list_data_files(data_dir, None)
                .map(|listing| hours::stale_hours(&listing, node))
                .unwrap_or_default()
        });
        backlog.retain(|h| !due.contains(h) && *h < hour);
        let take = backlog.len().min(CATCH_UP_PER_ROTATION);
        due.extend(backlog.drain(..take));
        due
    }
}

/// Summarises each of `due`; the files written, and the failures.
pub fn summarise(
    data_dir: &Path,
    node: &str,
    due: &[DateTime<Utc>],
) -> (Vec<PathBuf>, Vec<(DateTime<Utc>, HourError)>) {
    let (mut written, mut failed) = (Vec::new(), Vec::new());
    for &hour in due {
        match hours::summarise_hour(data_dir, node, hour) {
            Ok(Some(path)) => written.push(path),
            Ok(None) => {}
            Err(e) => failed.push((hour, e)),
        }
    }
    (written, failed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{TimeDelta, TimeZone};

    fn at(h: u32, m: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 3, 1, h, m, 0).unwrap()
    }

    #[test]
    fn a_new_hour_closes_the_last_and_a_late_file_reopens_its_own() {
        let dir = tempfile::tempdir().unwrap();
        let mut h = HourSummaries::default();
        assert!(h.after_write(dir.path(), "n", at(10, 0)).is_empty());
        assert!(h.after_write(dir.path(), "n", at(10, 58)).is_empty());
        assert_eq!(h.after_write(dir.path(), "n", at(11, 0)), vec![at(10, 0)]);
        assert!(h.after_write(dir.path(), "n", at(11, 2)).is_empty());
        // A retried interval of 10:59 written after 11:02's file.
        assert_eq!(h.after_write(dir.path(), "n", at(10, 59)), vec![at(10, 0)]);
        assert_eq!(h.after_write(dir.path(), "n", at(13, 0)), vec![at(11, 0)]);
    }

    #[test]
    fn hours_left_without_a_summary_are_caught_up_a_few_at_a_time_newest_first() {
        let dir = tempfile::tempdir().unwrap();
        // One empty-but-named file per hour from 00:00 to 09:00: ten hours, nine closed.
        for k in 0..10 {
            let path = layout::data_file_path(dir.path(), "n", at(0, 0) + TimeDelta::hours(k));
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, b"").unwrap();
        }
        let mut h = HourSummaries::default();
        let first = h.after_write(dir.path(), "n", at(9, 0));
        assert_eq!(first, vec![at(8, 0), at(7, 0), at(6, 0), at(5, 0)]);
        let second = h.after_write(dir.path(), "n", at(9, 30));
        assert_eq!(second, vec![at(4, 0), at(3, 0), at(2, 0), at(1, 0)]);
        assert_eq!(h.after_write(dir.path(), "n", at(9, 45)), vec![at(0, 0)]);
        assert!(h.after_write(dir.path(), "n", at(9, 50)).is_empty());
        // Unreadable files: summarising them fails in words, naming the file.
        let (written, failed) = summarise(dir.path(), "n", &[at(3, 0)]);
        assert!(written.is_empty());
        assert!(
            failed[0]
                .1
                .to_string()
                .contains("metrics-20260301T030000Z.parquet"),
            "{}",
            failed[0].1
        );
    }
}
