//! What the overview needs from a stretch of one container's samples, and
//! how stretches join: counters keep their first and last raw value (so the
//! increase across a file boundary is counted exactly) and their increase
//! inside the stretch (resets skipped); gauges their maximum and last value;
//! and fixed, epoch-aligned time slots hold the sums sparklines are drawn from.

use crate::store::reader::NULL_VALUE;

pub mod codec;

/// Counter columns the overview reads, in [`Summary::counters`] order.
pub const COUNTERS: [&str; 12] = [
    "cpu_usage_usec",
    "cpu_nr_throttled",
    "cpu_nr_periods",
    "cpu_throttled_usec",
    "io_read_bytes",
    "io_write_bytes",
    "cpu_pressure_some_usec",
    "memory_pressure_some_usec",
    "io_pressure_some_usec",
    "memory_oom_kill_events",
    "network_receive_bytes",
    "network_transmit_bytes",
];
pub const CPU: usize = 0;
pub const NR_THROTTLED: usize = 1;
pub const NR_PERIODS: usize = 2;
pub const THROTTLED_USEC: usize = 3;
pub const IO_READ: usize = 4;
pub const IO_WRITE: usize = 5;
pub const PSI: [usize; 3] = [6, 7, 8];
pub const OOM_KILLS: usize = 9;
/// A pod's network (on its sandbox's rows only).
pub const NET_RX: usize = 10;
pub const NET_TX: usize = 11;

/// Gauge columns the overview reads, in [`Summary::gauges_last`] order.
pub const GAUGES: [&str; 4] = [
    "memory_working_set_bytes",
    "memory_limit_bytes",
    "cpu_quota_usec",
    "cpu_period_usec",
];
pub const WORKING_SET: usize = 0;
pub const MEMORY_LIMIT: usize = 1;
pub const CPU_QUOTA: usize = 2;
pub const CPU_PERIOD: usize = 3;

/// Every column read, counters first: the layout [`summarize`] expects.
pub fn columns() -> Vec<&'static str> {
    COUNTERS.iter().chain(GAUGES.iter()).copied().collect()
}

/// One counter over a stretch of samples.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CounterSpan {
    /// First and last non-null raw value ([`NULL_VALUE`] when none).
    pub first: i64,
    pub last: i64,
    /// Sum of the non-negative steps between consecutive values.
    pub increase: f64,
}

impl Default for CounterSpan {
    fn default() -> Self {
        Self {
            first: NULL_VALUE,
            last: NULL_VALUE,
            increase: 0.0,
        }
    }
}

/// Sums over one time slot, for sparklines.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Slot {
    /// Time covered by the steps counted here (rates divide by it).
    pub covered_ms: f32,
    pub cpu_usec: f32,
    pub nr_throttled: f32,
    pub nr_periods: f32,
    pub io_bytes: f32,
    /// Network bytes received and sent (a pod's sandbox).
    pub net_bytes: f32,
    /// cpu, memory, io `some` stall time.
    pub psi_usec: [f32; 3],
    /// Highest working set seen (`NaN` when none).
    pub working_set_max: f32,
}

impl Slot {
    fn empty() -> Self {
        Self {
            working_set_max: f32::NAN,
            ..Self::default()
        }
    }

    fn add(&mut self, other: &Slot) {
        self.covered_ms += other.covered_ms;
        self.cpu_usec += other.cpu_usec;
        self.nr_throttled += other.nr_throttled;
        self.nr_periods += other.nr_periods;
        self.io_bytes += other.io_bytes;
        self.net_bytes += other.net_bytes;
        for (a, b) in self.psi_usec.iter_mut().zip(other.psi_usec) {
            *a += b;
        }
        self.working_set_max = self.working_set_max.max(other.working_set_max);
    }

    /// Adds one counter step to the field it feeds.
    fn count(&mut self, counter: usize, step: f64) {
        let step = step as f32;
        match counter {
            CPU => self.cpu_usec += step,
            NR_THROTTLED => self.nr_throttled += step,
            NR_PERIODS => self.nr_periods += step,
            IO_READ | IO_WRITE => self.io_bytes += step,
            NET_RX | NET_TX => self.net_bytes += step,
            c if PSI.contains(&c) => {
                if let Some(i) = PSI.iter().position(|&p| p == c) {
                    self.psi_usec[i] += step;
                }
            }
            _ => {}
        }
    }
}

/// One container over a stretch of time (a file, part of one, or several joined).
#[derive(Debug, Clone, PartialEq)]
pub struct Summary {
    pub first_t: i64,
    pub last_t: i64,
    pub samples: u64,
    pub counters: [CounterSpan; COUNTERS.len()],
    /// Highest CPU rate between two consecutive samples, µs per second.
    pub cpu_peak: f64,
    /// Highest working set ([`NULL_VALUE`] when none).
    pub working_set_max: i64,
    /// Last non-null value of each of [`GAUGES`].
    pub gauges_last: [i64; GAUGES.len()],
    /// `(slot number, sums)`, slot number = time / slot width, ascending.
    pub slots: Vec<(i64, Slot)>,
}

impl Summary {
    /// Approximate heap and inline bytes, for cache accounting.
    pub fn size(&self) -> usize {
        size_of::<Self>() + self.slots.capacity() * size_of::<(i64, Slot)>()
    }

    /// The slot for `t`, created when new (appends stay cheap: times ascend).
    fn slot(&mut self, t: i64, slot_ms: i64) -> &mut Slot {
        let n = t.div_euclid(slot_ms);
        let at = match self.slots.binary_search_by_key(&n, |(k, _)| *k) {
            Ok(i) => i,
            Err(i) => {
                self.slots.insert(i, (n, Slot::empty()));
                i
            }
        };
        &mut self.slots[at].1
    }

    /// Joins `next`, which follows this stretch in time, as if the samples
    /// had been summarised together: the step from this stretch's last
    /// counter value to `next`'s first is counted (when it does not go down).
    pub fn append(&mut self, next: &Summary, slot_ms: i64) {
        if next.first_t > self.last_t {
            let gap = next.first_t.saturating_sub(self.last_t) as f64;
            // The steps across the boundary, counted in the slot of `next`'s first sample.
            let mut boundary = Slot {
                covered_ms: gap as f32,
                ..Slot::empty()
            };
            for c in 0..COUNTERS.len() {
                let (last, first) = (self.counters[c].last, next.counters[c].first);
                if last != NULL_VALUE && first != NULL_VALUE && first >= last {
                    let step = first.saturating_sub(last) as f64;
                    self.counters[c].increase += step;
                    boundary.count(c, step);
                    if c == CPU {
                        self.cpu_peak = self.cpu_peak.max(step * 1000.0 / gap);
                    }
                }
            }
            self.slot(next.first_t, slot_ms).add(&boundary);
        }
        for (mine, theirs) in self.counters.iter_mut().zip(&next.counters) {
            mine.increase += theirs.increase;
            if mine.first == NULL_VALUE {
                mine.first = theirs.first;
            }
            if theirs.last != NULL_VALUE {
                mine.last = theirs.last;
            }
        }
        self.first_t = self.first_t.min(next.first_t);
        self.last_t = self.last_t.max(next.last_t);
        self.samples += next.samples;
        self.cpu_peak = self.cpu_peak.max(next.cpu_peak);
        if next.working_set_max != NULL_VALUE {
            self.working_set_max = self.working_set_max.max(next.working_set_max);
        }
        for (mine, theirs) in self.gauges_last.iter_mut().zip(next.gauges_last) {
            if theirs != NULL_VALUE {
                *mine = theirs;
            }
        }
        for (n, slot) in &next.slots {
            // Stretches are joined in time order: a slot is the last one or a new last one.
            match self.slots.last_mut() {
                Some((last, mine)) if *last == *n => mine.add(slot),
                Some((last, _)) if *last < *n => self.slots.push((*n, *slot)),
                None => self.slots.push((*n, *slot)),
                Some(_) => match self.slots.binary_search_by_key(n, |(k, _)| *k) {
                    Ok(i) => self.slots[i].1.add(slot),
                    Err(i) => self.slots.insert(i, (*n, *slot)),
                },
            }
        }
    }
}

/// Containers summarised over a stretch, sorted by id.
pub type Joined = Vec<(String, Summary)>;

/// Adds `next` (each container's stretch following the joined one in time)
/// to `joined`: both are sorted by id, so one walk of both joins them
/// (files of a node hold the same containers file after file).
pub fn join_into(joined: &mut Joined, next: &[(String, Summary)], slot_ms: i64) {
    let mut at = 0;
    for (id, s) in next {
        join_one(joined, &mut at, id, s, slot_ms);
    }
}

/// Adds one container's stretch to `joined`, the containers coming in id
/// order: `at` is where the previous one was found (start at 0).
pub fn join_one(joined: &mut Joined, at: &mut usize, id: &str, s: &Summary, slot_ms: i64) {
    while *at < joined.len() && joined[*at].0.as_str() < id {
        *at += 1;
    }
    match joined.get_mut(*at) {
        Some((known, j)) if known == id => j.append(s, slot_ms),
        // New here (rare: files of a node hold the same containers): in its place.
        _ => joined.insert(*at, (id.to_string(), s.clone())),
    }
}

/// Summarises one container's samples `timestamps` (ascending) with raw
/// `values` in [`columns`] order, keeping only `from <= t <= to` when a clip
/// is given. `None` when no sample is kept. Works a column at a time over the
/// runs of rows of each slot, so the inner loops are plain sums.
pub fn summarize(
    timestamps: &[i64],
    values: &[&[i64]],
    clip: Option<(i64, i64)>,
    slot_ms: i64,
) -> Option<Summary> {
    let (start, end) = match clip {
        Some((from, to)) => (
            timestamps.partition_point(|&t| t < from),
            timestamps.partition_point(|&t| t <= to),
        ),
        None => (0, timestamps.len()),
    };
    if start >= end
        || values.len() != COUNTERS.len() + GAUGES.len()
        || values.iter().any(|v| v.len() != timestamps.len())
    {
        return None;
    }
    let ts = &timestamps[start..end];
    // The slots the rows fall in, and the first row of each.
    let mut slots: Vec<(i64, Slot)> = Vec::new();
    let mut bounds: Vec<usize> = Vec::new();
    for (row, &t) in ts.iter().enumerate() {
        let n = t.div_euclid(slot_ms);
        if slots.last().is_none_or(|(last, _)| *last != n) {
            slots.push((n, Slot::empty()));
            bounds.push(row);
        }
    }
    bounds.push(ts.len());
    for (k, (_, slot)) in slots.iter_mut().enumerate() {
        let first = bounds[k].max(1);
        let covered: i64 = (first..bounds[k + 1])
            .map(|r| ts[r].saturating_sub(ts[r - 1]))
            .filter(|d| *d > 0)
            .fold(0i64, i64::saturating_add);
        slot.covered_ms = covered as f32;
    }
    let mut s = Summary {
        first_t: ts[0],
        last_t: ts[ts.len() - 1],
        samples: ts.len() as u64,
        counters: [CounterSpan::default(); COUNTERS.len()],
        cpu_peak: 0.0,
        working_set_max: NULL_VALUE,
        gauges_last: [NULL_VALUE; GAUGES.len()],
        slots: Vec::new(),
    };
    for (c, span) in s.counters.iter_mut().enumerate() {
        let column = &values[c][start..end];
        let (mut last, mut last_t) = (NULL_VALUE, i64::MIN);
        for (k, (_, slot)) in slots.iter_mut().enumerate() {
            let mut sum = 0.0;
            for row in bounds[k]..bounds[k + 1] {
                let v = column[row];
                if v == NULL_VALUE {
                    continue;
                }
                let t = ts[row];
                if last != NULL_VALUE && v >= last && t > last_t {
                    let step = v.saturating_sub(last) as f64;
                    sum += step;
                    if c == CPU {
                        s.cpu_peak = s
                            .cpu_peak
                            .max(step * 1000.0 / t.saturating_sub(last_t) as f64);
                    }
                }
                if span.first == NULL_VALUE {
                    span.first = v;
                }
                last = v;
                last_t = t;
            }
            if sum != 0.0 {
                span.increase += sum;
                slot.count(c, sum);
            }
        }
        span.last = last;
    }
    for g in 0..GAUGES.len() {
        let column = &values[COUNTERS.len() + g][start..end];
        s.gauges_last[g] = column
            .iter()
            .rev()
            .copied()
            .find(|&v| v != NULL_VALUE)
            .unwrap_or(NULL_VALUE);
        if g == WORKING_SET {
            for (k, (_, slot)) in slots.iter_mut().enumerate() {
                let max = column[bounds[k]..bounds[k + 1]]
                    .iter()
                    .copied()
                    .filter(|&v| v != NULL_VALUE)
                    .max();
                if let Some(max) = max {
                    slot.working_set_max = slot.working_set_max.max(max as f32);
                    s.working_set_max = s.working_set_max.max(max);
                }
            }
        }
    }
    s.slots = slots;
    Some(s)
}

/// Every container of one data file, summarised (sorted by id).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FileSummary {
    pub containers: Vec<(String, Summary)>,
    /// Earliest and latest sample of the file (`None` when empty).
    pub span: Option<(i64, i64)>,
}

impl FileSummary {
    pub fn heap_bytes(&self) -> usize {
        self.containers
            .iter()
            .map(|(id, s)| id.len() + 24 + s.size())
            .sum()
    }
}

/// Every container of an interval in memory, summarised with slots
/// `slot_ms` wide: what the writer stores in the file's footer.
pub fn of_buffer(
    buffer: &crate::store::buffer::SampleBuffer,
    slot_ms: i64,
) -> Result<FileSummary, crate::store::buffer::BufferCorrupt> {
    let indexes: Vec<usize> = columns()
        .iter()
        .map(|c| crate::store::schema::metric_index(c).unwrap_or(usize::MAX))
        .collect();
    let read = buffer.columns(&indexes)?;
    Ok(of_columns(&read, None, slot_ms))
}

/// Every container of `read` (the [`columns`] of a file, in that order),
/// summarised, optionally clipped to `[from, to]`.
pub fn of_columns(
    read: &crate::store::reader::MetricColumns,
    clip: Option<(i64, i64)>,
    slot_ms: i64,
) -> FileSummary {
    FileSummary {
        containers: read
            .iter()
            .filter_map(|(id, rows)| {
                let columns: [&[i64]; COUNTERS.len() + GAUGES.len()] =
                    std::array::from_fn(|m| rows.values(m));
                summarize(rows.timestamps, &columns, clip, slot_ms).map(|s| (id.to_string(), s))
            })
            .collect(),
        span: read
            .iter()
            .filter_map(|(_, r)| Some((*r.timestamps.first()?, *r.timestamps.last()?)))
            .reduce(|a, b| (a.0.min(b.0), a.1.max(b.1))),
    }
}

/// Borrowed columns, as [`summarize`] takes them.
#[cfg(test)]
pub fn slices(columns: &[Vec<i64>]) -> Vec<&[i64]> {
    columns.iter().map(Vec::as_slice).collect()
}

#[cfg(test)]
mod tests;
