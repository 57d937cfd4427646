//! Where things live in a data directory, and how file names encode time.
//!
//! ```text
//! <data>/index.json
//! <data>/dt=YYYY-MM-DD/identifier=<node>/metrics-YYYYMMDDTHHMMSSZ.parquet
//! <data>/dt=YYYY-MM-DD/identifier=<node>/metrics-YYYYMMDDTHHMMSSZ.parquet.inprogress
//! <data>/dt=YYYY-MM-DD/identifier=<node>/metrics-YYYYMMDDTHHMMSSZ.tail    (the open interval)
//! <data>/dt=YYYY-MM-DD/identifier=<node>/hour-YYYYMMDDTHH0000Z.summary.json (a closed hour's summaries)
//! ```
//!
//! A data file is named after the first second it covers and lives in the day
//! directory of that second (UTC). Files of one node never overlap in time, so
//! the files of a range are found from directory and file names alone: no
//! file is opened and the tree is never walked as a whole.

use std::path::{Path, PathBuf};

use chrono::{DateTime, Days, NaiveDate, NaiveDateTime, Utc};

pub const INDEX_FILE: &str = "index.json";
pub const DATA_PREFIX: &str = "metrics-";
pub const DATA_SUFFIX: &str = ".parquet";
/// Suffix of a file still being written; readers never open it.
pub const IN_PROGRESS_SUFFIX: &str = ".parquet.inprogress";
/// Suffix of the open interval's tail file ([`crate::store::tail`]).
pub const TAIL_SUFFIX: &str = ".tail";
/// Name parts of an hour's joined summaries ([`crate::store::hours`]).
pub const HOUR_PREFIX: &str = "hour-";
pub const HOUR_SUFFIX: &str = ".summary.json";
pub const HOUR_IN_PROGRESS_SUFFIX: &str = ".summary.json.inprogress";

/// A per-node dataset written beside the metrics files, one file per
/// rotation with the same start time: `<prefix><start>.parquet`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Dataset {
    /// Every interface of every pod's network namespace ([`crate::store::datasets::NETWORK`]).
    Network,
    /// Each container's IO per block device ([`crate::store::datasets::DEVICES`]).
    Devices,
    /// Each container's kept processes ([`crate::store::datasets::PROCESSES`]).
    Processes,
}

impl Dataset {
    pub const ALL: [Dataset; 3] = [Dataset::Network, Dataset::Devices, Dataset::Processes];

    pub fn prefix(self) -> &'static str {
        match self {
            Dataset::Network => "network-",
            Dataset::Devices => "devices-",
            Dataset::Processes => "processes-",
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Dataset::Network => "network",
            Dataset::Devices => "devices",
            Dataset::Processes => "processes",
        }
    }

    /// Full path of `node`'s file of this dataset starting at `start`.
    pub fn file_path(self, data_dir: &Path, node: &str, start: DateTime<Utc>) -> PathBuf {
        node_day_dir(data_dir, start.date_naive(), node).join(self.file_name(start))
    }

    /// `<dataset>-YYYYMMDDTHHMMSSZ.parquet`.
    pub fn file_name(self, start: DateTime<Utc>) -> String {
        format!(
            "{}{}{DATA_SUFFIX}",
            self.prefix(),
            start.format(NAME_TIME_FORMAT)
        )
    }

    /// The dataset and start time a file name says, if it is one of ours.
    pub fn parse_file_name(name: &str) -> Option<(Dataset, DateTime<Utc>)> {
        Dataset::ALL.into_iter().find_map(|d| {
            let stamp = name.strip_prefix(d.prefix())?.strip_suffix(DATA_SUFFIX)?;
            Some((d, parse_stamp(stamp)?))
        })
    }
}
const NAME_TIME_FORMAT: &str = "%Y%m%dT%H%M%SZ";
const DAY_FORMAT: &str = "%Y-%m-%d";

/// The longest a single data file may span; rotation is capped at this, so a
/// range only needs the day directories from the day before its start.
pub const MAX_FILE_SPAN: std::time::Duration = std::time::Duration::from_secs(86_400);

/// A node name that is unsafe as a directory name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "node name {0:?} cannot be used as a directory name: use letters, digits, '.', '-' and '_' only"
)]
pub struct BadNodeName(pub String);

/// Checks that a node name is a single, ordinary path component (Kubernetes
/// node names are DNS subdomains, so this refuses nothing real).
pub fn check_node_name(node: &str) -> Result<(), BadNodeName> {
    let ok = !node.is_empty()
        && node.len() <= 253
        && node != "."
        && node != ".."
        && node
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'));
    if ok {
        Ok(())
    } else {
        Err(BadNodeName(node.to_string()))
    }
}

pub fn index_path(data_dir: &Path) -> PathBuf {
    data_dir.join(INDEX_FILE)
}

pub fn day_dir_name(day: NaiveDate) -> String {
    format!("dt={}", day.format(DAY_FORMAT))
}

pub fn node_dir_name(node: &str) -> String {
    format!("identifier={node}")
}

/// The directory holding `node`'s files that start on `day`.
pub fn node_day_dir(data_dir: &Path, day: NaiveDate, node: &str) -> PathBuf {
    data_dir.join(day_dir_name(day)).join(node_dir_name(node))
}

/// File name (no directory) of a finished file starting at `start`.
pub fn data_file_name(start: DateTime<Utc>) -> String {
    format!(
        "{DATA_PREFIX}{}{DATA_SUFFIX}",
        start.format(NAME_TIME_FORMAT)
    )
}

/// Full path of the finished file of `node` starting at `start`.
pub fn data_file_path(data_dir: &Path, node: &str, start: DateTime<Utc>) -> PathBuf {
    node_day_dir(data_dir, start.date_naive(), node).join(data_file_name(start))
}

/// The name a file has while it is being written.
pub fn in_progress_path(final_path: &Path) -> PathBuf {
    let mut name = final_path.as_os_str().to_os_string();
    name.push(".inprogress");
    PathBuf::from(name)
}

/// Start time encoded in a finished data file's name; `None` for anything else
/// (in-progress files, tails, temporary files, foreign files).
pub fn parse_data_file_name(name: &str) -> Option<DateTime<Utc>> {
    parse_stamp(name.strip_prefix(DATA_PREFIX)?.strip_suffix(DATA_SUFFIX)?)
}

/// Start time encoded in a tail file's name (`metrics-<start>.tail`).
pub fn parse_tail_file_name(name: &str) -> Option<DateTime<Utc>> {
    parse_stamp(name.strip_prefix(DATA_PREFIX)?.strip_suffix(TAIL_SUFFIX)?)
}

fn parse_stamp(stamp: &str) -> Option<DateTime<Utc>> {
    NaiveDateTime::parse_from_str(stamp, NAME_TIME_FORMAT)
        .ok()
        .map(|t| t.and_utc())
}

/// Full path of the tail of `node`'s interval starting at `start`.
pub fn tail_file_path(data_dir: &Path, node: &str, start: DateTime<Utc>) -> PathBuf {
    data_file_path(data_dir, node, start).with_extension(&TAIL_SUFFIX[1..])
}

/// Full path of `node`'s summary file of the hour starting at `hour`.
pub fn hour_summary_path(data_dir: &Path, node: &str, hour: DateTime<Utc>) -> PathBuf {
    node_day_dir(data_dir, hour.date_naive(), node).join(hour_summary_name(hour))
}

/// `hour-YYYYMMDDTHH0000Z.summary.json` (in the day directory of its files).
pub fn hour_summary_name(hour: DateTime<Utc>) -> String {
    format!(
        "{HOUR_PREFIX}{}{HOUR_SUFFIX}",
        hour.format(NAME_TIME_FORMAT)
    )
}

/// Start of the hour encoded in an hour summary file's name.
pub fn parse_hour_summary_name(name: &str) -> Option<DateTime<Utc>> {
    parse_stamp(name.strip_prefix(HOUR_PREFIX)?.strip_suffix(HOUR_SUFFIX)?)
}

/// Day encoded in a `dt=YYYY-MM-DD` directory name.
pub fn parse_day_dir_name(name: &str) -> Option<NaiveDate> {
    NaiveDate::parse_from_str(name.strip_prefix("dt=")?, DAY_FORMAT).ok()
}

/// Node encoded in an `identifier=<node>` directory name.
pub fn parse_node_dir_name(name: &str) -> Option<&str> {
    name.strip_prefix("identifier=")
        .filter(|n| check_node_name(n).is_ok())
}

/// One data file, located from its path alone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataFile {
    pub path: PathBuf,
    pub node: String,
    pub start: DateTime<Utc>,
    pub kind: FileKind,
}

/// A finished Parquet file, or the tail of an interval still open.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FileKind {
    #[default]
    Parquet,
    Tail,
}

/// Something in the data directory that is not ours and was left alone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ForeignEntry {
    pub path: PathBuf,
    pub reason: &'static str,
}

/// Result of listing: the finished data files, sorted by (node, start); the
/// tails of intervals not finished yet (a tail whose Parquet file exists is
/// left out: readers read the Parquet file); and whatever looked foreign
/// (reported, never touched).
#[derive(Debug, Default, Clone)]
pub struct Listing {
    pub files: Vec<DataFile>,
    pub tails: Vec<DataFile>,
    /// Tails whose Parquet file exists (the agent removes them).
    pub superseded: Vec<DataFile>,
    /// Files of the other per-node datasets, sorted by (dataset, node, start).
    pub datasets: Vec<(Dataset, DataFile)>,
    /// Hour summary files ([`crate::store::hours`]), sorted by (node, hour);
    /// `start` is the hour's.
    pub hours: Vec<DataFile>,
    pub foreign: Vec<ForeignEntry>,
}

/// Lists finished data files whose day directory lies in `days` (inclusive),
/// or in every day directory when `days` is `None`. Only the named day
/// directories are read; a directory that vanishes meanwhile is skipped.
pub fn list_data_files(
    data_dir: &Path,
    days: Option<(NaiveDate, NaiveDate)>,
) -> std::io::Result<Listing> {
    let mut listing = Listing::default();
    let day_dirs: Vec<(NaiveDate, PathBuf)> = match days {
        Some((first, last)) => {
            let mut out = Vec::new();
            let mut day = first;
            while day <= last {
                let dir = data_dir.join(day_dir_name(day));
                if dir.is_dir() {
                    out.push((day, dir));
                }
                match day.checked_add_days(Days::new(1)) {
                    Some(next) => day = next,
                    None => break,
                }
            }
            out
        }
        None => {
            let mut out = Vec::new();
            for entry in std::fs::read_dir(data_dir)? {
                let entry = entry?;
                let name = entry.file_name();
                let name = name.to_string_lossy();
                match parse_day_dir_name(&name) {
                    Some(day) if entry.path().is_dir() => out.push((day, entry.path())),
                    _ if name == INDEX_FILE || name.starts_with(INDEX_FILE) => {}
                    _ if is_own_auxiliary_file(&name) => {}
                    _ => listing.foreign.push(ForeignEntry {
                        path: entry.path(),
                        reason: "not a dt=YYYY-MM-DD directory",
                    }),
                }
            }
            out.sort();
            out
        }
    };
    for (_, day_dir) in day_dirs {
        let Ok(nodes) = std::fs::read_dir(&day_dir) else {
            continue;
        };
        for node_entry in nodes.flatten() {
            let node_name = node_entry.file_name();
            let node_name = node_name.to_string_lossy();
            let Some(node) = parse_node_dir_name(&node_name) else {
                listing.foreign.push(ForeignEntry {
                    path: node_entry.path(),
                    reason: "not an identifier=<node> directory",
                });
                continue;
            };
            let Ok(files) = std::fs::read_dir(node_entry.path()) else {
                continue;
            };
            for file in files.flatten() {
                let name = file.file_name();
                let name = name.to_string_lossy();
                if let Some(start) = parse_data_file_name(&name) {
                    listing.files.push(DataFile {
                        path: file.path(),
                        node: node.to_string(),
                        start,
                        kind: FileKind::Parquet,
                    });
                } else if let Some((dataset, start)) = Dataset::parse_file_name(&name) {
                    listing.datasets.push((
                        dataset,
                        DataFile {
                            path: file.path(),
                            node: node.to_string(),
                            start,
                            kind: FileKind::Parquet,
                        },
                    ));
                } else if let Some(hour) = parse_hour_summary_name(&name) {
                    listing.hours.push(DataFile {
                        path: file.path(),
                        node: node.to_string(),
                        start: hour,
                        kind: FileKind::Parquet,
                    });
                } else if let Some(start) = parse_tail_file_name(&name) {
                    listing.tails.push(DataFile {
                        path: file.path(),
                        node: node.to_string(),
                        start,
                        kind: FileKind::Tail,
                    });
                } else if !name.ends_with(IN_PROGRESS_SUFFIX)
                    && !name.ends_with(HOUR_IN_PROGRESS_SUFFIX)
                {
                    listing.foreign.push(ForeignEntry {
                        path: file.path(),
                        reason: "not a metrics-YYYYMMDDTHHMMSSZ.parquet file",
                    });
                }
            }
        }
    }
    listing
        .files
        .sort_by(|a, b| (&a.node, a.start).cmp(&(&b.node, b.start)));
    // The Parquet file is renamed in before its tail is removed: when both
    // are there, the tail is already history.
    let files = &listing.files;
    let (tails, superseded) = std::mem::take(&mut listing.tails)
        .into_iter()
        .partition(|t| {
            files
                .binary_search_by(|f| (&f.node, f.start).cmp(&(&t.node, t.start)))
                .is_err()
        });
    listing.tails = tails;
    listing.superseded = superseded;
    listing
        .datasets
        .sort_by(|a, b| (a.0, &a.1.node, a.1.start).cmp(&(b.0, &b.1.node, b.1.start)));
    for list in [&mut listing.tails, &mut listing.hours] {
        list.sort_by(|a, b| (&a.node, a.start).cmp(&(&b.node, b.start)));
    }
    Ok(listing)
}

/// The finished files of the newest day directory that holds any, newest
/// first (all nodes). Reads the top directory and that one day directory only,
/// so the cost does not grow with the days kept.
pub fn newest_day_files(data_dir: &Path) -> std::io::Result<Vec<DataFile>> {
    let mut days: Vec<NaiveDate> = std::fs::read_dir(data_dir)?
        .flatten()
        .filter_map(|e| parse_day_dir_name(&e.file_name().to_string_lossy()))
        .collect();
    days.sort_unstable_by(|a, b| b.cmp(a));
    for day in days {
        let mut files = list_data_files(data_dir, Some((day, day)))?.files;
        if !files.is_empty() {
            files.sort_by_key(|f| std::cmp::Reverse(f.start));
            return Ok(files);
        }
    }
    Ok(Vec::new())
}

/// The newest finished data file, found from names alone (see [`newest_day_files`]).
pub fn newest_data_file(data_dir: &Path) -> std::io::Result<Option<DataFile>> {
    Ok(newest_day_files(data_dir)?.into_iter().next())
}

/// Files the agent itself keeps at the top of the data directory besides the index.
fn is_own_auxiliary_file(name: &str) -> bool {
    name.starts_with("events") || name.starts_with('.') || name == "export"
}

/// Data files that may hold samples in `[from, to]`, the open intervals'
/// tails among them: listed from the day directories `from - 1 day ..= to`
/// only, then, per node, every file starting in the range plus the last one
/// starting before it.
pub fn files_for_range(
    data_dir: &Path,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> std::io::Result<Listing> {
    if to < from {
        return Ok(Listing::default());
    }
    let first_day =
        (from - chrono::Duration::from_std(MAX_FILE_SPAN).unwrap_or_default()).date_naive();
    let mut listing = list_data_files(data_dir, Some((first_day, to.date_naive())))?;
    let mut all = std::mem::take(&mut listing.files);
    all.append(&mut listing.tails);
    all.sort_by(|a, b| (&a.node, a.start).cmp(&(&b.node, b.start)));
    listing.files = select_range(all, from, to);
    Ok(listing)
}

/// Pure selection of [`files_for_range`]: `files` sorted by (node, start).
pub fn select_range(files: Vec<DataFile>, from: DateTime<Utc>, to: DateTime<Utc>) -> Vec<DataFile> {
    let mut out = Vec::new();
    for (i, file) in files.iter().enumerate() {
        if file.start > to {
            continue;
        }
        let next_start = files
            .get(i + 1)
            .filter(|next| next.node == file.node)
            .map(|next| next.start);
        // A file ends before the next one of its node starts.
        let may_reach_range = next_start.is_none_or(|next| next > from);
        if may_reach_range {
            out.push(file.clone());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn t(h: u32, m: u32, s: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2025, 12, 30, h, m, s).unwrap()
    }

    #[test]
    fn names_round_trip() {
        let start = t(16, 1, 30);
        let path = data_file_path(Path::new("/data"), "node-a", start);
        assert_eq!(
            path,
            Path::new("/data/dt=2025-12-30/identifier=node-a/metrics-20251230T160130Z.parquet")
        );
        let name = path.file_name().unwrap().to_str().unwrap();
        assert_eq!(parse_data_file_name(name), Some(start));
        let open = in_progress_path(&path);
        let open_name = open.file_name().unwrap().to_str().unwrap();
        assert!(!open_name.ends_with(".parquet"));
        assert_eq!(parse_data_file_name(open_name), None);
    }

    #[test]
    fn node_names_are_single_components() {
        assert!(check_node_name("ip-10-0-0-1.ec2.internal").is_ok());
        for bad in ["", ".", "..", "a/b", "../x", "a b", "a\0"] {
            assert!(check_node_name(bad).is_err(), "{bad:?}");
        }
        assert_eq!(parse_node_dir_name("identifier=.."), None);
    }

    #[test]
    fn range_selection_keeps_the_file_running_into_the_range() {
        let file = |node: &str, start| DataFile {
            path: PathBuf::new(),
            node: node.into(),
            start,
            kind: FileKind::Parquet,
        };
        let files = vec![
            file("a", t(0, 0, 0)),
            file("a", t(0, 1, 30)),
            file("a", t(0, 3, 0)),
            file("b", t(0, 2, 0)),
        ];
        let got = select_range(files, t(0, 2, 0), t(0, 2, 30));
        let starts: Vec<_> = got.iter().map(|f| (f.node.as_str(), f.start)).collect();
        assert_eq!(starts, vec![("a", t(0, 1, 30)), ("b", t(0, 2, 0))]);
    }

    #[test]
    fn a_tail_is_listed_until_its_parquet_file_exists_and_reaches_into_ranges() {
        let dir = tempfile::tempdir().unwrap();
        let touch = |p: PathBuf| {
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, b"x").unwrap();
        };
        touch(data_file_path(dir.path(), "n", t(0, 0, 0)));
        touch(tail_file_path(dir.path(), "n", t(0, 1, 30)));
        let listing = list_data_files(dir.path(), None).unwrap();
        assert_eq!(listing.files.len(), 1);
        assert_eq!(listing.tails.len(), 1);
        assert!(listing.foreign.is_empty(), "{:?}", listing.foreign);
        assert_eq!(listing.tails[0].kind, FileKind::Tail);
        // The open interval answers a range reaching past its start.
        let range = files_for_range(dir.path(), t(0, 2, 0), t(0, 2, 5)).unwrap();
        let kinds: Vec<_> = range.files.iter().map(|f| (f.start, f.kind)).collect();
        assert_eq!(kinds, vec![(t(0, 1, 30), FileKind::Tail)]);
        // Rotation: the Parquet file is renamed in before the tail goes; seen
        // together, only the Parquet file is read.
        touch(data_file_path(dir.path(), "n", t(0, 1, 30)));
        let listing = list_data_files(dir.path(), None).unwrap();
        assert_eq!((listing.files.len(), listing.tails.len()), (2, 0));
        assert_eq!(listing.superseded.len(), 1);
        let range = files_for_range(dir.path(), t(0, 2, 0), t(0, 2, 5)).unwrap();
        assert_eq!(range.files.len(), 1);
        assert_eq!(range.files[0].kind, FileKind::Parquet);
    }

    #[test]
    fn newest_file_comes_from_names_and_skips_in_progress() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(newest_data_file(dir.path()).unwrap(), None);
        let touch = |p: PathBuf| {
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, b"").unwrap();
        };
        let old = data_file_path(dir.path(), "n", t(10, 0, 0));
        let new = data_file_path(dir.path(), "n", t(11, 0, 0));
        touch(old);
        touch(new.clone());
        touch(in_progress_path(&data_file_path(
            dir.path(),
            "n",
            t(12, 0, 0),
        )));
        // An empty later day directory does not hide the newest real file.
        std::fs::create_dir_all(dir.path().join("dt=2026-01-05")).unwrap();
        let newest = newest_data_file(dir.path()).unwrap().unwrap();
        assert_eq!(newest.path, new);
        assert_eq!(newest_day_files(dir.path()).unwrap().len(), 2);
    }
}
