//! One container's cgroup files: kept open between samples (one `pread`
//! per file per sample), or, when descriptors are short, reopened at every
//! sample (open, read, close: one descriptor at a time). The slow files
//! (limits, peaks: read every 30 samples) are always reopened when read: a
//! third of a container's descriptors for a read or two a minute. At 1,000
//! containers under a 20,000 limit, keeping them cost every read of some
//! containers a reopen instead.
//!
//! A cgroup that is removed makes its files fail with `ENODEV` (or
//! `ENOENT`): the container is reported gone, not as an error. Limits and
//! high-water marks are re-read only when the caller asks (see
//! [`super::sampler`]) and carried forward in between.

use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};

use super::fds;
use super::sampler::{PlannedFile, Source, parse, read_at_zero};
use super::slots::Values;

/// Kinds of read failure counted in the agent's self-metrics
/// (`fgm_agent_read_errors_total{kind}`). A cgroup going away is not one.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct ReadErrors {
    /// Open or read refused (`kind="permission"`).
    pub permission: u64,
    /// No descriptor left, `EMFILE`/`ENFILE` (`kind="descriptors"`).
    pub descriptors: u64,
    /// Any other failure (`kind="io"`).
    pub io: u64,
}

impl ReadErrors {
    pub fn count(&mut self, e: &io::Error) {
        if e.kind() == io::ErrorKind::PermissionDenied {
            self.permission += 1;
        } else if fds::is_exhaustion(e) {
            self.descriptors += 1;
        } else {
            self.io += 1;
        }
    }
}

/// The container's cgroup is gone (removed between scan and read).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Gone;

/// Why a container's files could not be opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpenError {
    /// None of its files exists.
    Gone,
    /// No descriptor left to keep them open (nothing is left open).
    Exhausted,
}

fn is_gone(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::NotFound || e.raw_os_error() == Some(19 /* ENODEV */)
}

/// How one file is read.
#[derive(Debug)]
enum Handle {
    /// Open; read at offset 0 each sample.
    Kept(File),
    /// Opened, read and closed each sample.
    Reopen(Box<Path>),
}

impl Handle {
    fn read(&self, buf: &mut Vec<u8>) -> io::Result<usize> {
        match self {
            Handle::Kept(file) => read_at_zero(file, buf),
            Handle::Reopen(path) => read_at_zero(&File::open(path)?, buf),
        }
    }
}

/// One planned file of a container, found.
#[derive(Debug)]
struct Entry {
    source: Source,
    handle: Handle,
    /// Which plan entry and which of its candidate names, to rebuild the path.
    plan_index: u16,
    name_index: u8,
}

/// A container's files: the ones read every sample, the slow ones (limits,
/// peaks), and the slow ones' last values.
#[derive(Debug)]
pub struct ContainerFiles {
    files: Vec<Entry>,
    slow: Vec<Entry>,
    /// `None` until the slow files were read once.
    slow_values: Option<Vec<(usize, Option<i64>)>>,
    /// Plan entries none of whose names existed at open (see [`Self::open_missing`]).
    missing: Vec<usize>,
}

fn file_path(planned: &PlannedFile, rel: &str, name: &str) -> PathBuf {
    if rel.is_empty() {
        planned.root.join(name)
    } else {
        planned.root.join(rel).join(name)
    }
}

impl ContainerFiles {
    /// Opens the planned files of cgroup `rel` and keeps them open. Files the
    /// kernel lacks are left out (their metrics are null). `Err(Gone)` when
    /// none exists; out of descriptors, the container is read by reopening
    /// ([`Self::open_with`] says which).
    pub fn open(plan: &[PlannedFile], rel: &str, errors: &mut ReadErrors) -> Result<Self, Gone> {
        match Self::open_with(plan, rel, true, errors) {
            Ok(files) => Ok(files),
            Err(OpenError::Gone) => Err(Gone),
            Err(OpenError::Exhausted) => {
                Self::open_with(plan, rel, false, errors).map_err(|_| Gone)
            }
        }
    }

    /// Finds the planned files of cgroup `rel`: kept open when `keep`, else
    /// only located (no descriptor used until each read).
    pub fn open_with(
        plan: &[PlannedFile],
        rel: &str,
        keep: bool,
        errors: &mut ReadErrors,
    ) -> Result<Self, OpenError> {
        let mut out = Self {
            files: Vec::with_capacity(plan.len()),
            slow: Vec::new(),
            slow_values: None,
            missing: Vec::new(),
        };
        for (at, planned) in plan.iter().enumerate() {
            match out.open_one(at, planned, rel, keep, errors) {
                Ok(true) => {}
                Ok(false) => out.missing.push(at),
                // Everything opened so far closes with `out`.
                Err(OpenError::Exhausted) => return Err(OpenError::Exhausted),
                Err(OpenError::Gone) => {}
            }
        }
        if out.files.is_empty() && out.slow.is_empty() {
            return Err(OpenError::Gone);
        }
        out.files.shrink_to_fit();
        Ok(out)
    }

    /// Finds one planned file; `Ok(false)` when none of its names exists.
    fn open_one(
        &mut self,
        at: usize,
        planned: &PlannedFile,
        rel: &str,
        keep: bool,
        errors: &mut ReadErrors,
    ) -> Result<bool, OpenError> {
        let keep = keep && !planned.source.is_slow();
        for (name_index, name) in planned.names.iter().enumerate() {
            let path = file_path(planned, rel, name);
            let found = if keep {
                File::open(&path).map(Handle::Kept)
            } else {
                std::fs::metadata(&path).map(|_| Handle::Reopen(path.clone().into_boxed_path()))
            };
            match found {
                Ok(handle) => {
                    let entry = Entry {
                        source: planned.source,
                        handle,
                        plan_index: u16::try_from(at).unwrap_or(u16::MAX),
                        name_index: u8::try_from(name_index).unwrap_or(u8::MAX),
                    };
                    if planned.source.is_slow() {
                        self.slow.push(entry);
                        // Read again with the next sample.
                        self.slow_values = None;
                    } else {
                        self.files.push(entry);
                    }
                    return Ok(true);
                }
                Err(e) if is_gone(&e) => {}
                Err(e) if fds::is_exhaustion(&e) => {
                    errors.count(&e);
                    return Err(OpenError::Exhausted);
                }
                Err(e) => {
                    errors.count(&e);
                    tracing::debug!(path = %path.display(), error = %e, "cannot open cgroup file");
                    return Ok(true);
                }
            }
        }
        Ok(false)
    }

    /// Files of the plan that did not exist at open.
    pub fn missing(&self) -> usize {
        self.missing.len()
    }

    /// Tries the missing files again: a runtime creates a container's cgroup
    /// in one v1 hierarchy after the other, so a container found in the
    /// first may not exist in the others yet.
    pub fn open_missing(&mut self, plan: &[PlannedFile], rel: &str, errors: &mut ReadErrors) {
        let keep = self.kept() > 0 || self.is_empty();
        let missing = std::mem::take(&mut self.missing);
        for at in missing {
            let opened = match plan.get(at) {
                Some(planned) => self.open_one(at, planned, rel, keep, errors),
                None => Ok(true),
            };
            if opened != Ok(true) {
                self.missing.push(at);
            }
        }
    }

    /// Number of files found (kept or reopened).
    pub fn len(&self) -> usize {
        self.files.len() + self.slow.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Files read every sample that are reopened for it (descriptors were short).
    pub fn reopened(&self) -> usize {
        self.files
            .iter()
            .filter(|e| matches!(e.handle, Handle::Reopen(_)))
            .count()
    }

    /// Files held open now.
    pub fn kept(&self) -> usize {
        self.files
            .iter()
            .chain(&self.slow)
            .filter(|e| matches!(e.handle, Handle::Kept(_)))
            .count()
    }

    /// Closes every kept file; they are reopened at each read from now on.
    /// Returns how many descriptors that freed.
    pub fn release(&mut self, plan: &[PlannedFile], rel: &str) -> usize {
        let mut freed = 0;
        for entry in self.files.iter_mut().chain(self.slow.iter_mut()) {
            if !matches!(entry.handle, Handle::Kept(_)) {
                continue;
            }
            let planned = plan.get(usize::from(entry.plan_index));
            let name = planned.and_then(|p| p.names.get(usize::from(entry.name_index)));
            if let (Some(planned), Some(name)) = (planned, name) {
                entry.handle = Handle::Reopen(file_path(planned, rel, name).into_boxed_path());
                freed += 1;
            }
        }
        freed
    }

    /// Opens and keeps every reopened file read every sample again. `Err`
    /// when descriptors ran out on the way (the files opened so far stay kept).
    pub fn keep(&mut self, errors: &mut ReadErrors) -> Result<usize, OpenError> {
        let mut kept = 0;
        for entry in self.files.iter_mut() {
            let Handle::Reopen(path) = &entry.handle else {
                continue;
            };
            match File::open(path) {
                Ok(file) => {
                    entry.handle = Handle::Kept(file);
                    kept += 1;
                }
                Err(e) if fds::is_exhaustion(&e) => {
                    errors.count(&e);
                    return Err(OpenError::Exhausted);
                }
                // Gone or unreadable: the next read says so.
                Err(_) => {}
            }
        }
        Ok(kept)
    }

    /// Reads the files of one sample without parsing (the benchmark's
    /// floor); the slow ones too when `refresh_slow`. Returns the bytes read.
    pub fn read_only(&self, buf: &mut Vec<u8>, refresh_slow: bool) -> usize {
        let slow = self.slow.iter().filter(|_| refresh_slow);
        self.files
            .iter()
            .chain(slow)
            .map(|e| e.handle.read(buf).unwrap_or(0))
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
        out.devices.clear();
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
                    .flat_map(|e| e.source.slow_slots())
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
    files: &[Entry],
    buf: &mut Vec<u8>,
    out: &mut Values,
    errors: &mut ReadErrors,
) -> Result<(), Gone> {
    for entry in files {
        let text = match entry.handle.read(buf) {
            Ok(len) => &buf[..len],
            Err(e) if is_gone(&e) => return Err(Gone),
            Err(e) => {
                errors.count(&e);
                tracing::debug!(error = %e, source = ?entry.source, "cgroup file read failed");
                continue;
            }
        };
        parse(entry.source, text, out);
    }
    Ok(())
}
