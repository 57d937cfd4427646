//! Reading one container's cgroup files, kept open between samples.
//!
//! Each file is opened once when the container is first seen and re-read
//! from offset 0 with `pread` every sample: cgroupfs regenerates the content
//! on a read at offset 0, so a sample costs one syscall per file and no
//! path lookups. A cgroup that is removed makes its open files fail with
//! `ENODEV` (or `ENOENT`): the container is reported gone, not as an error;
//! if it comes back, discovery opens its files again.
//!
//! Limits and high-water marks (`memory.max`, `cpu.max`, `memory.peak`, ...)
//! change rarely or are maxima already: they are re-read only when the caller
//! asks (every `limits_every` cycles) and carried forward in between, which
//! keeps the per-second cost at the files whose values move.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use super::mountinfo::Hierarchies;
use super::slots::{self, Values};
use super::{cgroup_v1 as v1, cgroup_v2 as v2};

/// Which file is read, hence how it is parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    V2CpuStat,
    V2MemoryCurrent,
    V2MemoryStat,
    V2MemoryMax,
    V2MemoryHigh,
    V2MemoryPeak,
    V2MemorySwap,
    V2MemoryEvents,
    V2IoStat,
    V2CpuMax,
    V2CpuWeight,
    PidsMax,
    PidsPeak,
    Pids,
    /// `cgroup.procs`, v1 or v2: one pid a line.
    Procs,
    CpuPressure,
    MemoryPressure,
    IoPressure,
    V1CpuacctUsage,
    V1CpuacctStat,
    V1CpuStat,
    V1MemoryUsage,
    V1MemoryStat,
    V1MemoryMaxUsage,
    V1OomControl,
    V1BlkioBytes,
    V1BlkioOps,
    V1CfsQuota,
    V1CfsPeriod,
    V1CpuShares,
}

impl Source {
    /// The slots a slow source fills (limits and peaks, re-read only on
    /// request); empty for the sources read every sample.
    pub fn slow_slots(self) -> &'static [usize] {
        match self {
            Source::V2MemoryMax => &[slots::MEMORY_LIMIT],
            Source::V2MemoryHigh => &[slots::MEMORY_HIGH],
            Source::V2MemoryPeak | Source::V1MemoryMaxUsage => &[slots::MEMORY_PEAK],
            Source::V2CpuMax => &[slots::CPU_QUOTA_USEC, slots::CPU_PERIOD_USEC],
            Source::V2CpuWeight => &[slots::CPU_WEIGHT],
            Source::PidsMax => &[slots::PIDS_MAX],
            Source::PidsPeak => &[slots::PIDS_PEAK],
            Source::V1CfsQuota => &[slots::CPU_QUOTA_USEC],
            Source::V1CfsPeriod => &[slots::CPU_PERIOD_USEC],
            Source::V1CpuShares => &[slots::CPU_SHARES],
            _ => &[],
        }
    }

    pub fn is_slow(self) -> bool {
        !self.slow_slots().is_empty()
    }
}

/// One file to open per container: hierarchy root, candidate names (first
/// that exists wins), parser.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedFile {
    pub root: PathBuf,
    pub names: &'static [&'static str],
    pub source: Source,
}

/// The files read for every container on this host's hierarchies.
pub fn plan(h: &Hierarchies) -> Vec<PlannedFile> {
    let mut out = Vec::new();
    let mut add = |root: &Path, names: &'static [&'static str], source| {
        out.push(PlannedFile {
            root: root.to_path_buf(),
            names,
            source,
        })
    };
    if let Some(v2) = h.v2.as_deref().filter(|_| h.v2_has_controllers) {
        add(v2, &["cpu.stat"], Source::V2CpuStat);
        add(v2, &["memory.current"], Source::V2MemoryCurrent);
        add(v2, &["memory.stat"], Source::V2MemoryStat);
        add(v2, &["memory.swap.current"], Source::V2MemorySwap);
        add(v2, &["memory.events"], Source::V2MemoryEvents);
        add(v2, &["pids.current"], Source::Pids);
        add(v2, &["io.stat"], Source::V2IoStat);
        add(v2, &["memory.max"], Source::V2MemoryMax);
        add(v2, &["memory.high"], Source::V2MemoryHigh);
        add(v2, &["memory.peak"], Source::V2MemoryPeak);
        add(v2, &["cpu.max"], Source::V2CpuMax);
        add(v2, &["cpu.weight"], Source::V2CpuWeight);
        add(v2, &["pids.max"], Source::PidsMax);
        add(v2, &["pids.peak"], Source::PidsPeak);
    }
    // Processes: v1 lists a cgroup's processes in every controller hierarchy,
    // so one is enough (as the collector's sandbox check does); else the v2 tree.
    let procs_root = if h.is_v1() {
        ["pids", "cpu", "memory", "cpuacct"]
            .iter()
            .find_map(|c| h.v1.get(*c))
            .or_else(|| h.v1.values().next())
    } else {
        h.v2.as_ref()
    };
    if let Some(root) = procs_root {
        add(root, &["cgroup.procs"], Source::Procs);
    }
    if let Some(root) = h.v1.get("cpuacct") {
        add(root, &["cpuacct.usage"], Source::V1CpuacctUsage);
        add(root, &["cpuacct.stat"], Source::V1CpuacctStat);
    }
    if let Some(root) = h.v1.get("cpu") {
        add(root, &["cpu.stat"], Source::V1CpuStat);
        add(root, &["cpu.cfs_quota_us"], Source::V1CfsQuota);
        add(root, &["cpu.cfs_period_us"], Source::V1CfsPeriod);
        add(root, &["cpu.shares"], Source::V1CpuShares);
    }
    if let Some(root) = h.v1.get("memory") {
        add(root, &["memory.usage_in_bytes"], Source::V1MemoryUsage);
        // Also the effective limit (`hierarchical_memory_limit`): no limit file.
        add(root, &["memory.stat"], Source::V1MemoryStat);
        add(root, &["memory.oom_control"], Source::V1OomControl);
        add(
            root,
            &["memory.max_usage_in_bytes"],
            Source::V1MemoryMaxUsage,
        );
    }
    if let Some(root) = h.v1.get("blkio") {
        let bytes = &[
            "blkio.throttle.io_service_bytes_recursive",
            "blkio.throttle.io_service_bytes",
        ];
        let ops = &[
            "blkio.throttle.io_serviced_recursive",
            "blkio.throttle.io_serviced",
        ];
        add(root, bytes, Source::V1BlkioBytes);
        add(root, ops, Source::V1BlkioOps);
    }
    if let Some(root) = h.v1.get("pids") {
        add(root, &["pids.current"], Source::Pids);
        add(root, &["pids.max"], Source::PidsMax);
        add(root, &["pids.peak"], Source::PidsPeak);
    }
    // Pressure lives in v2 only: the pure v2 root, or a hybrid host's unified mount.
    if let Some(v2) = &h.v2 {
        add(v2, &["cpu.pressure"], Source::CpuPressure);
        add(v2, &["memory.pressure"], Source::MemoryPressure);
        add(v2, &["io.pressure"], Source::IoPressure);
    }
    out
}

pub use super::container_files::{ContainerFiles, Gone, ReadErrors};

/// Reads a whole cgroup file from offset 0. A read shorter than the buffer is
/// the end (cgroupfs fills the buffer until the end of the file).
pub fn read_at_zero(file: &File, buf: &mut Vec<u8>) -> io::Result<usize> {
    if buf.len() < 4096 {
        buf.resize(4096, 0);
    }
    let mut len = 0;
    loop {
        let n = file.read_at(&mut buf[len..], len as u64)?;
        len += n;
        if n == 0 || len < buf.len() {
            return Ok(len);
        }
        let grown = buf.len() * 2;
        buf.resize(grown, 0);
    }
}

/// Parses one file's content into the row.
pub fn parse(source: Source, text: &[u8], v: &mut Values) {
    match source {
        Source::V2CpuStat => v2::parse_cpu_stat(text, v),
        Source::V2MemoryCurrent | Source::V1MemoryUsage => {
            v.set(slots::MEMORY_CURRENT, v2::parse_int(text))
        }
        Source::V2MemoryStat => v2::parse_memory_stat(text, v),
        Source::V2MemoryMax => v.set(slots::MEMORY_LIMIT, v2::parse_memory_max(text)),
        Source::V2MemoryHigh => v.set(slots::MEMORY_HIGH, v2::parse_memory_max(text)),
        Source::V2MemoryPeak | Source::V1MemoryMaxUsage => {
            v.set(slots::MEMORY_PEAK, v2::parse_int(text))
        }
        Source::V2MemorySwap => v.set(slots::MEMORY_SWAP, v2::parse_int(text)),
        Source::V2CpuMax => v2::parse_cpu_max(text, v),
        Source::V2CpuWeight => v.set(slots::CPU_WEIGHT, v2::parse_int(text)),
        Source::PidsMax => v.set(slots::PIDS_MAX, v2::parse_int(text)),
        Source::PidsPeak => v.set(slots::PIDS_PEAK, v2::parse_int(text)),
        Source::V1CfsQuota => v.set(slots::CPU_QUOTA_USEC, v1::parse_cfs_quota(text)),
        Source::V1CfsPeriod => v.set(slots::CPU_PERIOD_USEC, v2::parse_int(text)),
        Source::V1CpuShares => v.set(slots::CPU_SHARES, v2::parse_int(text)),
        Source::V2MemoryEvents => v2::parse_memory_events(text, v),
        Source::V2IoStat => v2::parse_io_stat(text, v),
        Source::Pids => v.set(slots::PIDS, v2::parse_int(text)),
        Source::Procs => v.set(slots::PROCESSES, v2::parse_procs(text)),
        Source::CpuPressure => {
            v2::parse_pressure(text, slots::CPU_PRESSURE_SOME, slots::CPU_PRESSURE_FULL, v)
        }
        Source::MemoryPressure => v2::parse_pressure(
            text,
            slots::MEMORY_PRESSURE_SOME,
            slots::MEMORY_PRESSURE_FULL,
            v,
        ),
        Source::IoPressure => {
            v2::parse_pressure(text, slots::IO_PRESSURE_SOME, slots::IO_PRESSURE_FULL, v)
        }
        Source::V1CpuacctUsage => v.set(slots::CPU_USAGE, v1::parse_cpuacct_usage(text)),
        Source::V1CpuacctStat => v1::parse_cpuacct_stat(text, v),
        Source::V1CpuStat => v1::parse_cpu_stat(text, v),
        Source::V1MemoryStat => v1::parse_memory_stat(text, v),
        Source::V1OomControl => v1::parse_oom_control(text, v),
        Source::V1BlkioBytes => v1::parse_blkio(
            text,
            [
                slots::IO_READ_BYTES,
                slots::IO_WRITE_BYTES,
                slots::IO_DISCARD_BYTES,
            ],
            v,
        ),
        Source::V1BlkioOps => v1::parse_blkio(
            text,
            [
                slots::IO_READ_OPS,
                slots::IO_WRITE_OPS,
                slots::IO_DISCARD_OPS,
            ],
            v,
        ),
    }
}

#[cfg(test)]
#[path = "sampler_tests.rs"]
mod tests;
