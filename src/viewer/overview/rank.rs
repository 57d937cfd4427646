//! From a container's joined [`Summary`] to the figures the overview shows,
//! rankings by each of them, and sparklines.

use serde::Serialize;

use super::summary::{
    CPU, CPU_PERIOD, CPU_QUOTA, IO_READ, IO_WRITE, MEMORY_LIMIT, NET_RX, NET_TX, NR_PERIODS,
    NR_THROTTLED, OOM_KILLS, PSI, Slot, Summary, THROTTLED_USEC,
};
use crate::store::reader::NULL_VALUE;

/// What a ranking orders by; each has its own sparkline.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Category {
    /// Average CPU in cores while the container ran.
    Cpu,
    /// Highest working set.
    Memory,
    /// Share of CFS periods throttled.
    Throttling,
    /// Disk bytes read and written per second.
    Io,
    /// Highest of the CPU, memory and IO `some` stall shares.
    Pressure,
    /// Network bytes received and sent per second: pods (their sandbox rows).
    Network,
}

impl Category {
    pub const ALL: [Category; 6] = [
        Category::Cpu,
        Category::Memory,
        Category::Throttling,
        Category::Io,
        Category::Pressure,
        Category::Network,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Category::Cpu => "cpu",
            Category::Memory => "memory",
            Category::Throttling => "throttling",
            Category::Io => "io",
            Category::Pressure => "pressure",
            Category::Network => "network",
        }
    }

    /// The unit of [`Category::key`] and of the sparkline.
    pub fn unit(self) -> &'static str {
        match self {
            Category::Cpu => "cores",
            Category::Memory => "bytes",
            Category::Throttling => "% periods throttled",
            Category::Io => "bytes/s",
            Category::Pressure => "% time stalled",
            Category::Network => "bytes/s",
        }
    }

    /// The figure this category ranks by.
    pub fn key(self, s: &Stats) -> Option<f64> {
        match self {
            Category::Cpu => s.cpu_cores,
            Category::Memory => s.memory_peak_bytes,
            Category::Throttling => s.throttled_pct,
            Category::Io => s.io_bytes_per_sec,
            Category::Pressure => s.pressure_max_pct,
            Category::Network => s.network_bytes_per_sec,
        }
    }

    /// The category's value over one slot.
    fn slot_value(self, slot: &Slot) -> Option<f64> {
        let per_sec = |x: f32| {
            (slot.covered_ms > 0.0).then(|| f64::from(x) * 1000.0 / f64::from(slot.covered_ms))
        };
        match self {
            Category::Cpu => per_sec(slot.cpu_usec).map(|v| v / 1e6),
            Category::Memory => {
                (!slot.working_set_max.is_nan()).then_some(f64::from(slot.working_set_max))
            }
            Category::Throttling => (slot.nr_periods > 0.0)
                .then(|| f64::from(slot.nr_throttled) * 100.0 / f64::from(slot.nr_periods)),
            Category::Io => per_sec(slot.io_bytes),
            Category::Pressure => {
                let worst = slot.psi_usec.iter().copied().fold(0.0f32, f32::max);
                per_sec(worst).map(|v| v / 1e4)
            }
            Category::Network => per_sec(slot.net_bytes),
        }
    }
}

/// The overview's figures for one container over the range.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Stats {
    /// Seconds between the first and the last sample in the range.
    pub seconds: f64,
    pub samples: u64,
    pub cpu_cores: Option<f64>,
    pub cpu_peak_cores: Option<f64>,
    /// CFS quota in cores (the last one seen); `None` when unlimited.
    pub cpu_limit_cores: Option<f64>,
    pub cpu_pct_of_limit: Option<f64>,
    pub memory_peak_bytes: Option<f64>,
    pub memory_last_bytes: Option<f64>,
    pub memory_limit_bytes: Option<f64>,
    pub memory_pct_of_limit: Option<f64>,
    pub throttled_pct: Option<f64>,
    pub throttled_seconds: Option<f64>,
    pub io_read_bytes_per_sec: Option<f64>,
    pub io_write_bytes_per_sec: Option<f64>,
    pub io_bytes_per_sec: Option<f64>,
    /// CPU, memory and IO `some` stall, % of time.
    pub pressure_pct: [Option<f64>; 3],
    pub pressure_max_pct: Option<f64>,
    /// Processes the kernel's OOM killer killed in the cgroup.
    pub oom_kills: Option<u64>,
    /// A pod's network (its sandbox's row): received, sent, both.
    pub network_receive_bytes_per_sec: Option<f64>,
    pub network_transmit_bytes_per_sec: Option<f64>,
    pub network_bytes_per_sec: Option<f64>,
}

fn value(raw: i64) -> Option<f64> {
    (raw != NULL_VALUE).then_some(raw as f64)
}

/// The figures of a container's summary over the whole range.
pub fn stats(s: &Summary) -> Stats {
    let seconds = (s.last_t - s.first_t) as f64 / 1000.0;
    let counted = |c: usize| -> Option<f64> {
        (s.counters[c].first != NULL_VALUE && seconds > 0.0).then_some(s.counters[c].increase)
    };
    let per_sec = |c: usize| counted(c).map(|x| x / seconds);
    let cpu_cores = per_sec(CPU).map(|v| v / 1e6);
    let cpu_limit_cores = match (
        value(s.gauges_last[CPU_QUOTA]),
        value(s.gauges_last[CPU_PERIOD]),
    ) {
        (Some(q), Some(p)) if q > 0.0 && p > 0.0 => Some(q / p),
        _ => None,
    };
    let memory_peak_bytes = value(s.working_set_max);
    let memory_limit_bytes = value(s.gauges_last[MEMORY_LIMIT]).filter(|l| *l > 0.0);
    let throttled_pct = match (counted(NR_THROTTLED), counted(NR_PERIODS)) {
        (Some(t), Some(p)) if p > 0.0 => Some(t * 100.0 / p),
        _ => None,
    };
    let io_read = per_sec(IO_READ);
    let io_write = per_sec(IO_WRITE);
    let pressure_pct = PSI.map(|c| per_sec(c).map(|v| v / 1e4));
    Stats {
        seconds,
        samples: s.samples,
        cpu_cores,
        cpu_peak_cores: cpu_cores.map(|_| s.cpu_peak / 1e6),
        cpu_limit_cores,
        cpu_pct_of_limit: cpu_cores.zip(cpu_limit_cores).map(|(u, l)| u * 100.0 / l),
        memory_peak_bytes,
        memory_last_bytes: value(s.gauges_last[super::summary::WORKING_SET]),
        memory_limit_bytes,
        memory_pct_of_limit: memory_peak_bytes
            .zip(memory_limit_bytes)
            .map(|(u, l)| u * 100.0 / l),
        throttled_pct,
        throttled_seconds: counted(THROTTLED_USEC).map(|v| v / 1e6),
        io_read_bytes_per_sec: io_read,
        io_write_bytes_per_sec: io_write,
        io_bytes_per_sec: match (io_read, io_write) {
            (None, None) => None,
            (r, w) => Some(r.unwrap_or(0.0) + w.unwrap_or(0.0)),
        },
        pressure_max_pct: pressure_pct.iter().flatten().copied().reduce(f64::max),
        pressure_pct,
        oom_kills: counted(OOM_KILLS).map(|v| v.round() as u64),
        network_receive_bytes_per_sec: per_sec(NET_RX),
        network_transmit_bytes_per_sec: per_sec(NET_TX),
        network_bytes_per_sec: match (per_sec(NET_RX), per_sec(NET_TX)) {
            (None, None) => None,
            (r, t) => Some(r.unwrap_or(0.0) + t.unwrap_or(0.0)),
        },
    }
}

/// Ids of the `top` containers with the highest positive `category` figure,
/// highest first (ties by id, so the order is stable).
pub fn rank<'a>(
    rows: impl IntoIterator<Item = (&'a str, &'a Stats)>,
    category: Category,
    top: usize,
) -> Vec<(&'a str, f64)> {
    let mut ranked: Vec<(&str, f64)> = rows
        .into_iter()
        .filter_map(|(id, s)| category.key(s).filter(|v| *v > 0.0).map(|v| (id, v)))
        .collect();
    ranked.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.0.cmp(b.0)));
    ranked.truncate(top);
    ranked
}

/// Slot width for a range: the smallest of a fixed ladder giving at most
/// [`SPARK_POINTS`] slots, so a summary cached for one range serves the
/// next refresh of the same preset.
pub fn slot_ms(from_ms: i64, to_ms: i64) -> i64 {
    const LADDER_S: [i64; 16] = [
        15, 30, 60, 120, 300, 600, 900, 1_800, 3_600, 7_200, 10_800, 21_600, 43_200, 86_400,
        172_800, 604_800,
    ];
    let span = (to_ms - from_ms).max(1);
    LADDER_S
        .iter()
        .map(|s| s * 1000)
        .find(|slot| span / slot <= SPARK_POINTS as i64)
        .unwrap_or(LADDER_S[LADDER_S.len() - 1] * 1000)
}

pub const SPARK_POINTS: usize = 60;

/// The category's value per slot from `from` to `to` (`None` where the
/// container has no data), and the first slot's start time.
pub fn sparkline(
    s: &Summary,
    category: Category,
    from_ms: i64,
    to_ms: i64,
    slot_ms: i64,
) -> (i64, Vec<Option<f64>>) {
    let first = from_ms.div_euclid(slot_ms);
    let last = to_ms.div_euclid(slot_ms);
    let mut out = vec![None; (last - first + 1).max(0) as usize];
    for (n, slot) in &s.slots {
        if let Some(v) = usize::try_from(n - first).ok().and_then(|i| out.get_mut(i)) {
            *v = category.slot_value(slot);
        }
    }
    (first * slot_ms, out)
}

#[cfg(test)]
mod tests;
