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

/// Kinds of read failure counted in the agent's self-metrics
/// (`fgm_agent_read_errors_total{kind}`). A cgroup going away is not one.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct ReadErrors {
    /// Open or read refused (`kind="permission"`).
    pub permission: u64,
    /// Any other failure (`kind="io"`).
    pub io: u64,
}

impl ReadErrors {
    fn count(&mut self, e: &io::Error) {
        if e.kind() == io::ErrorKind::PermissionDenied {
            self.permission += 1;
        } else {
            self.io += 1;
        }
    }
}

/// A container's files, open: the ones read every sample, the slow ones
/// (limits, peaks), and the slow ones' last values.
#[derive(Debug)]
pub struct ContainerFiles {
    files: Vec<(Source, File)>,
    slow: Vec<(Source, File)>,
    /// `None` until the slow files were read once.
    slow_values: Option<Vec<(usize, Option<i64>)>>,
    /// Plan entries none of whose names existed at open (see [`Self::open_missing`]).
    missing: Vec<usize>,
}

/// The container's cgroup is gone (removed between scan and read).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Gone;

fn is_gone(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::NotFound || e.raw_os_error() == Some(19 /* ENODEV */)
}

impl ContainerFiles {
    /// Opens the planned files of cgroup `rel`. Files the kernel lacks are
    /// left out (their metrics are null). `Err(Gone)` when none exists.
    pub fn open(plan: &[PlannedFile], rel: &str, errors: &mut ReadErrors) -> Result<Self, Gone> {
        let mut out = Self {
            files: Vec::with_capacity(plan.len()),
            slow: Vec::new(),
            slow_values: None,
            missing: Vec::new(),
        };
        for (at, planned) in plan.iter().enumerate() {
            if !out.open_one(planned, rel, errors) {
                out.missing.push(at);
            }
        }
        if out.files.is_empty() && out.slow.is_empty() {
            return Err(Gone);
        }
        out.files.shrink_to_fit();
        Ok(out)
    }

    /// Opens one planned file; false when none of its names exists.
    fn open_one(&mut self, planned: &PlannedFile, rel: &str, errors: &mut ReadErrors) -> bool {
        let dir = if rel.is_empty() {
            planned.root.clone()
        } else {
            planned.root.join(rel)
        };
        for name in planned.names {
            match File::open(dir.join(name)) {
                Ok(file) if planned.source.is_slow() => {
                    self.slow.push((planned.source, file));
                    // Read again with the next sample.
                    self.slow_values = None;
                    return true;
                }
                Ok(file) => {
                    self.files.push((planned.source, file));
                    return true;
                }
                Err(e) if is_gone(&e) => {}
                Err(e) => {
                    errors.count(&e);
                    tracing::debug!(path = %dir.join(name).display(), error = %e, "cannot open cgroup file");
                    return true;
                }
            }
        }
        false
    }

    /// Files of the plan that did not exist at open.
    pub fn missing(&self) -> usize {
        self.missing.len()
    }

    /// Tries the missing files again: a runtime creates a container's cgroup
    /// in one v1 hierarchy after the other, so a container found in the
    /// first may not exist in the others yet.
    pub fn open_missing(&mut self, plan: &[PlannedFile], rel: &str, errors: &mut ReadErrors) {
        let missing = std::mem::take(&mut self.missing);
        for at in missing {
            let opened = plan
                .get(at)
                .is_some_and(|planned| self.open_one(planned, rel, errors));
            if !opened {
                self.missing.push(at);
            }
        }
    }

    /// Number of open files.
    pub fn len(&self) -> usize {
        self.files.len() + self.slow.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Reads the files of one sample without parsing (the benchmark's
    /// floor); the slow ones too when `refresh_slow`. Returns the bytes read.
    pub fn read_only(&self, buf: &mut Vec<u8>, refresh_slow: bool) -> usize {
        let slow = self.slow.iter().filter(|_| refresh_slow);
        self.files
            .iter()
            .chain(slow)
            .map(|(_, file)| read_at_zero(file, buf).unwrap_or(0))
            .sum()
    }

    /// Reads one sample into `out` (reset first). The slow files are read
    /// when `refresh_slow` or never read before; otherwise their last values
    /// are carried forward. `buf` is scratch space reused across calls.
    pub fn read(
        &mut self,
        buf: &mut Vec<u8>,
        out: &mut Values,
        errors: &mut ReadErrors,
        refresh_slow: bool,
    ) -> Result<(), Gone> {
        out.values.iter_mut().for_each(|v| *v = None);
        read_into(&self.files, buf, out, errors)?;
        match &self.slow_values {
            Some(values) if !refresh_slow => {
                for &(slot, value) in values {
                    out.set(slot, value);
                }
            }
            _ => {
                read_into(&self.slow, buf, out, errors)?;
                let values = self
                    .slow
                    .iter()
                    .flat_map(|(source, _)| source.slow_slots())
                    .map(|&slot| (slot, out.get(slot)))
                    .collect();
                self.slow_values = Some(values);
            }
        }
        out.finish();
        Ok(())
    }
}

/// Reads and parses `files` into `out`; a failing file leaves its metrics null.
fn read_into(
    files: &[(Source, File)],
    buf: &mut Vec<u8>,
    out: &mut Values,
    errors: &mut ReadErrors,
) -> Result<(), Gone> {
    for (source, file) in files {
        let text = match read_at_zero(file, buf) {
            Ok(len) => &buf[..len],
            Err(e) if is_gone(&e) => return Err(Gone),
            Err(e) => {
                errors.count(&e);
                tracing::debug!(error = %e, ?source, "cgroup file read failed");
                continue;
            }
        };
        parse(*source, text, out);
    }
    Ok(())
}

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
