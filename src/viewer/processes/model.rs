//! Pure part of `/api/processes`: one container's rows of the processes
//! files become processes, each identified by (pid, start time) so a
//! recycled pid is another process, with the CPU it used in the range (from
//! `cpu_usec` differences), its memory, and its samples reduced to a bounded
//! number of points. Also which files a range needs.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::store::layout::DataFile;

/// Most processes one answer lists (the most CPU first).
pub const MAX_PROCESSES: usize = 200;
/// Most samples per process; past it they are merged into equal time buckets.
pub const MAX_SAMPLES: usize = 600;

/// What a row says about its process (the `event` column).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Event {
    Start,
    None,
    Exit,
}

impl Event {
    pub fn parse(text: &str) -> Self {
        match text {
            "start" => Event::Start,
            "exit" => Event::Exit,
            _ => Event::None,
        }
    }
}

/// One row of a processes file, of the container asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcessRow {
    pub t: i64,
    pub event: Event,
    pub pid: i64,
    pub start_ms: i64,
    pub nspid: Option<i64>,
    pub ppid: Option<i64>,
    pub command: String,
    pub cpu_usec: Option<i64>,
    pub rss_bytes: Option<i64>,
    pub pss_bytes: Option<i64>,
}

/// One point of a process's chart.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Sample {
    pub t: i64,
    /// CPU since the previous sample of the process; `None` for its first.
    pub cpu_cores: Option<f64>,
    pub rss_bytes: Option<i64>,
    pub pss_bytes: Option<i64>,
}

/// One process over the range.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Process {
    pub pid: i64,
    pub start_ms: i64,
    /// Time of its exit row, if one is in the range.
    pub end_ms: Option<i64>,
    pub ppid: Option<i64>,
    pub nspid: Option<i64>,
    pub command: String,
    /// CPU used within the range (for one started in it, from its start).
    pub cpu_seconds: f64,
    pub max_rss_bytes: Option<i64>,
    pub last_pss_bytes: Option<i64>,
    /// Rows in the range before downsampling.
    pub raw_samples: usize,
    pub downsampled: bool,
    pub samples: Vec<Sample>,
}

/// The processes of the range, the most CPU first.
#[derive(Debug, Clone, PartialEq)]
pub struct Answer {
    pub processes: Vec<Process>,
    /// Processes seen in the range, before the cap.
    pub total: usize,
    pub truncated: bool,
}

/// A sample, or several merged: CPU as a difference over a duration so
/// merged points keep the mean rate.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Point {
    t: i64,
    /// (µs of CPU, ms elapsed) since the previous row; `None` for the first.
    cpu: Option<(i64, i64)>,
    rss: Option<i64>,
    pss: Option<i64>,
}

impl Point {
    /// `later` folded in: the newest time, summed CPU, the highest RSS, the newest PSS.
    fn merge(&mut self, later: Point) {
        self.t = self.t.max(later.t);
        self.cpu = match (self.cpu, later.cpu) {
            (Some((a, da)), Some((b, db))) => Some((a + b, da + db)),
            (a, b) => a.or(b),
        };
        self.rss = self.rss.max(later.rss);
        self.pss = later.pss.or(self.pss);
    }

    fn sample(&self) -> Sample {
        Sample {
            t: self.t,
            cpu_cores: self
                .cpu
                .filter(|(_, ms)| *ms > 0)
                .map(|(usec, ms)| usec as f64 / (ms as f64 * 1000.0)),
            rss_bytes: self.rss,
            pss_bytes: self.pss,
        }
    }
}

/// A process's points: as they come up to the cap, then merged into `cap`
/// equal buckets of the range.
#[derive(Debug)]
enum Points {
    Raw(Vec<Point>),
    Buckets(Vec<Option<Point>>),
}

#[derive(Debug, Clone, Copy)]
struct Grid {
    from: i64,
    to: i64,
    cap: usize,
}

impl Grid {
    fn bucket(&self, t: i64) -> usize {
        let span = i128::from(self.to - self.from) + 1;
        let at = (i128::from(t - self.from) * self.cap as i128 / span).max(0);
        (at as usize).min(self.cap - 1)
    }
}

impl Points {
    fn push(&mut self, grid: Grid, point: Point) {
        match self {
            Points::Raw(list) => {
                list.push(point);
                if list.len() > grid.cap {
                    let mut buckets = vec![None; grid.cap];
                    for p in list.drain(..) {
                        merge_into(&mut buckets, grid, p);
                    }
                    *self = Points::Buckets(buckets);
                }
            }
            Points::Buckets(buckets) => merge_into(buckets, grid, point),
        }
    }

    fn samples(&self) -> Vec<Sample> {
        match self {
            Points::Raw(list) => list.iter().map(Point::sample).collect(),
            Points::Buckets(b) => b.iter().flatten().map(Point::sample).collect(),
        }
    }
}

fn merge_into(buckets: &mut [Option<Point>], grid: Grid, point: Point) {
    match &mut buckets[grid.bucket(point.t)] {
        Some(p) => p.merge(point),
        slot => *slot = Some(point),
    }
}

#[derive(Debug)]
struct Track {
    command: String,
    ppid: Option<i64>,
    nspid: Option<i64>,
    end_ms: Option<i64>,
    last_t: Option<i64>,
    /// (time, counter) of the newest row with a CPU counter.
    last_cpu: Option<(i64, i64)>,
    cpu_usec: f64,
    max_rss: Option<i64>,
    last_pss: Option<i64>,
    raw: usize,
    points: Points,
}

/// Gathers the rows of `[from, to]` (and those just before, for CPU
/// differences), file after file in time order.
#[derive(Debug)]
pub struct Builder {
    grid: Grid,
    tracks: HashMap<(i64, i64), Track>,
}

impl Builder {
    pub fn new(from_ms: i64, to_ms: i64, max_samples: usize) -> Self {
        Self {
            grid: Grid {
                from: from_ms,
                to: to_ms.max(from_ms),
                cap: max_samples.max(1),
            },
            tracks: HashMap::new(),
        }
    }

    /// The rows of one file, in any order (a file sorts a process's rows by
    /// event before time): each process's are taken in time order.
    pub fn add_file(&mut self, mut rows: Vec<ProcessRow>) {
        rows.sort_by_key(|r| (r.pid, r.start_ms, r.t, r.event));
        for row in rows {
            self.push(row);
        }
    }

    fn push(&mut self, row: ProcessRow) {
        let Grid { from, to, .. } = self.grid;
        if row.t > to {
            return;
        }
        let track = self
            .tracks
            .entry((row.pid, row.start_ms))
            .or_insert_with(|| Track {
                command: String::new(),
                ppid: None,
                nspid: None,
                end_ms: None,
                last_t: None,
                last_cpu: None,
                cpu_usec: 0.0,
                max_rss: None,
                last_pss: None,
                raw: 0,
                points: Points::Raw(Vec::new()),
            });
        // A row read twice (or out of order) adds nothing.
        if track.last_t.is_some_and(|last| row.t <= last) {
            return;
        }
        track.last_t = Some(row.t);
        track.command = row.command;
        track.ppid = row.ppid.or(track.ppid);
        track.nspid = row.nspid.or(track.nspid);
        let previous = track.last_cpu;
        if let Some(usec) = row.cpu_usec {
            track.last_cpu = Some((row.t, usec));
        }
        if row.t < from {
            return;
        }
        let delta = match (previous, row.cpu_usec) {
            (Some((pt, pu)), Some(u)) if u >= pu && row.t > pt => Some((u - pu, row.t - pt)),
            _ => None,
        };
        track.cpu_usec += match (delta, previous, row.cpu_usec) {
            // Only the share of the difference after `from`.
            (Some((usec, ms)), Some((pt, _)), _) if pt < from => {
                usec as f64 * (row.t - from) as f64 / ms as f64
            }
            (Some((usec, _)), _, _) => usec as f64,
            // First seen: all its CPU is in the range if it started in it.
            (None, None, Some(u)) if row.start_ms >= from => u as f64,
            _ => 0.0,
        };
        if row.event == Event::Exit {
            track.end_ms = Some(row.t);
        }
        track.max_rss = track.max_rss.max(row.rss_bytes);
        track.last_pss = row.pss_bytes.or(track.last_pss);
        track.raw += 1;
        track.points.push(
            self.grid,
            Point {
                t: row.t,
                cpu: delta,
                rss: row.rss_bytes,
                pss: row.pss_bytes,
            },
        );
    }

    /// The processes with a row in the range, the most CPU first, at most `max`.
    pub fn finish(self, max: usize) -> Answer {
        let mut processes: Vec<Process> = self
            .tracks
            .into_iter()
            .filter(|(_, t)| t.raw > 0)
            .map(|((pid, start_ms), t)| {
                let samples = t.points.samples();
                Process {
                    pid,
                    start_ms,
                    end_ms: t.end_ms,
                    ppid: t.ppid,
                    nspid: t.nspid,
                    command: t.command,
                    cpu_seconds: t.cpu_usec / 1e6,
                    max_rss_bytes: t.max_rss,
                    last_pss_bytes: t.last_pss,
                    raw_samples: t.raw,
                    downsampled: samples.len() < t.raw,
                    samples,
                }
            })
            .collect();
        processes.sort_by(|a, b| {
            b.cpu_seconds
                .total_cmp(&a.cpu_seconds)
                .then(b.max_rss_bytes.cmp(&a.max_rss_bytes))
                .then((a.pid, a.start_ms).cmp(&(b.pid, b.start_ms)))
        });
        let total = processes.len();
        processes.truncate(max);
        Answer {
            processes,
            total,
            truncated: total > max,
        }
    }
}

/// The processes files that may hold rows of `[from, to]`: a file ends where
/// the next file of its node starts (a metrics file, its tail or another
/// processes file; the same rotation as the metrics files), the newest at most
/// a rotation after its start. `files` and `others` in any order.
pub fn select_files(
    mut files: Vec<DataFile>,
    others: &[DataFile],
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Vec<DataFile> {
    let mut starts: Vec<(&str, DateTime<Utc>)> = files
        .iter()
        .chain(others)
        .map(|f| (f.node.as_str(), f.start))
        .collect();
    starts.sort();
    let next_start = |f: &DataFile| {
        let at =
            starts.partition_point(|&(node, start)| (node, start) <= (f.node.as_str(), f.start));
        starts
            .get(at)
            .filter(|(node, _)| *node == f.node)
            .map(|(_, start)| *start)
    };
    let keep: Vec<bool> = files
        .iter()
        .map(|f| f.start <= to && next_start(f).is_none_or(|next| next > from))
        .collect();
    let mut keep = keep.into_iter();
    files.retain(|_| keep.next().unwrap_or(false));
    files.sort_by(|a, b| (a.start, &a.node).cmp(&(b.start, &b.node)));
    files
}

#[cfg(test)]
#[path = "model_tests.rs"]
mod tests;
