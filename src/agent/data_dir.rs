//! Who may write the data directory.
//!
//! The agent runs as an unprivileged user (65532 in the DaemonSet) and must
//! own its data directory: [`check_owned`] refuses at start a directory that
//! is a symlink or belongs to someone else, so the agent never writes where a
//! link or another user put it.
//!
//! On a node, the directory is root's at first (the kubelet creates a missing
//! hostPath as root, and agents before 0.1.x ran as root), so the DaemonSet's
//! init container runs `fine-grained-monitor prepare-data-dir`, the only code
//! of the product with a capability (`CHOWN`, `DAC_READ_SEARCH`). [`prepare`]
//! hands the tree to the agent's user and nothing else:
//!
//! - the directory itself must be a real directory owned by root or already by
//!   the agent's user; anything else is refused (exit status 1, the pod does not start);
//! - the walk holds each directory open and names entries relative to it
//!   (`openat`/`fstatat`/`fchownat` with no-follow), so no symlink is followed
//!   and no path is resolved twice;
//! - only directories and single-link regular files on the same filesystem,
//!   owned by root or the agent's user, change owner; symlinks, hard-linked
//!   files (which could be another file of the host), devices, sockets, FIFOs,
//!   other users' files and other filesystems are left as they are and listed.

use std::ffi::{CStr, OsStr};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use clap::Args;
use rustix::fs::{AtFlags, CWD, Dir, FileType, Gid, Mode, OFlags, Stat, Uid};

/// Deepest directory level [`prepare`] descends to (the layout is 3 deep).
const MAX_DEPTH: usize = 16;
/// Most skipped entries listed by name in the report.
const MAX_LISTED: usize = 20;

/// Why a data directory is refused (or could not be prepared).
#[derive(Debug, thiserror::Error)]
pub enum DataDirError {
    #[error(
        "data directory {path} is a symbolic link; refusing to follow it (point --data-dir at the real directory)"
    )]
    Symlink { path: PathBuf },
    #[error("data directory {path} is not a directory")]
    NotADirectory { path: PathBuf },
    #[error(
        "data directory {path} belongs to uid {owner}, but the agent runs as uid {me}: \
         in the DaemonSet the prepare-data-dir init container hands it over; elsewhere chown it \
         or pass another --data-dir"
    )]
    NotOwned { path: PathBuf, owner: u32, me: u32 },
    #[error(
        "data directory {path} belongs to uid {owner}, neither root nor the agent's uid {agent}: \
         it is not a directory the agent or an older agent made; refusing to take it over"
    )]
    Foreign {
        path: PathBuf,
        owner: u32,
        agent: u32,
    },
    #[error("cannot {action} {path}: {source}")]
    Io {
        action: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
}

fn io(action: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> DataDirError + use<> {
    let path = path.to_path_buf();
    move |source| DataDirError::Io {
        action,
        path,
        source,
    }
}

/// The effective uid of this process.
pub fn effective_uid() -> u32 {
    rustix::process::geteuid().as_raw()
}

/// Refuses a data directory that is a symlink, not a directory, or not owned by
/// this process's effective user.
pub fn check_owned(path: &Path) -> Result<(), DataDirError> {
    let meta = std::fs::symlink_metadata(path).map_err(io("inspect", path))?;
    if meta.file_type().is_symlink() {
        return Err(DataDirError::Symlink {
            path: path.to_path_buf(),
        });
    }
    if !meta.is_dir() {
        return Err(DataDirError::NotADirectory {
            path: path.to_path_buf(),
        });
    }
    let me = effective_uid();
    if meta.uid() != me {
        return Err(DataDirError::NotOwned {
            path: path.to_path_buf(),
            owner: meta.uid(),
            me,
        });
    }
    Ok(())
}

/// Flags of `prepare-data-dir`.
#[derive(Debug, Clone, Args)]
pub struct PrepareArgs {
    /// The data directory to hand over (the DaemonSet mounts it at /data).
    #[arg(
        long,
        env = "FGM_DATA_DIR",
        default_value = "/data",
        value_name = "DIR"
    )]
    pub data_dir: PathBuf,

    /// User that gets the directory (the agent's).
    #[arg(long, env = "FGM_OWNER_UID", default_value_t = 65532)]
    pub owner_uid: u32,

    /// Group that gets the directory.
    #[arg(long, env = "FGM_OWNER_GID", default_value_t = 65532)]
    pub owner_gid: u32,
}

/// Why an entry kept its owner.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Skip {
    Symlink,
    HardLink,
    Special,
    OtherOwner,
    OtherFilesystem,
    TooDeep,
    Vanished,
}

impl Skip {
    fn as_str(self) -> &'static str {
        match self {
            Self::Symlink => "symbolic link (not followed)",
            Self::HardLink => "file with more than one link (could be another file of the host)",
            Self::Special => "device, socket or FIFO",
            Self::OtherOwner => "owned by another user",
            Self::OtherFilesystem => "on another filesystem",
            Self::TooDeep => "deeper than the data layout",
            Self::Vanished => "removed during the walk",
        }
    }
}

/// What [`prepare`] did.
#[derive(Debug, Default)]
pub struct Report {
    /// Entries whose owner was changed.
    pub changed: u64,
    /// Entries that already had the owner.
    pub unchanged: u64,
    /// Entries left alone, with why (the first [`MAX_LISTED`]).
    pub skipped: Vec<(PathBuf, Skip)>,
    /// How many were skipped in all.
    pub skipped_total: u64,
}

impl Report {
    fn skip(&mut self, path: PathBuf, why: Skip) {
        self.skipped_total += 1;
        if self.skipped.len() < MAX_LISTED {
            self.skipped.push((path, why));
        }
    }
}

/// The walk's fixed inputs.
struct Walk {
    uid: u32,
    gid: u32,
    dev: u64,
}

impl Walk {
    fn takes(&self, st: &Stat) -> bool {
        st.st_uid == 0 || st.st_uid == self.uid
    }

    fn has_owner(&self, st: &Stat) -> bool {
        st.st_uid == self.uid && st.st_gid == self.gid
    }

    fn owner(&self) -> (Option<Uid>, Option<Gid>) {
        (Some(Uid::from_raw(self.uid)), Some(Gid::from_raw(self.gid)))
    }
}

/// Opens a directory without following a final symlink.
fn open_dir<Fd: AsFd>(parent: Fd, name: &CStr) -> rustix::io::Result<OwnedFd> {
    rustix::fs::openat(
        parent,
        name,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )
}

/// Hands the data directory at `path` to `uid`:`gid` (see the module docs).
pub fn prepare(path: &Path, uid: u32, gid: u32) -> Result<Report, DataDirError> {
    let meta = std::fs::symlink_metadata(path).map_err(io("inspect", path))?;
    if meta.file_type().is_symlink() {
        return Err(DataDirError::Symlink {
            path: path.to_path_buf(),
        });
    }
    if !meta.is_dir() {
        return Err(DataDirError::NotADirectory {
            path: path.to_path_buf(),
        });
    }
    let c_path = std::ffi::CString::new(path.as_os_str().as_bytes())
        .map_err(|e| io("open", path)(std::io::Error::other(e)))?;
    let root = open_dir(CWD, &c_path).map_err(|e| io("open", path)(e.into()))?;
    let st = rustix::fs::fstat(&root).map_err(|e| io("inspect", path)(e.into()))?;
    let walk = Walk {
        uid,
        gid,
        dev: st.st_dev,
    };
    if !walk.takes(&st) {
        return Err(DataDirError::Foreign {
            path: path.to_path_buf(),
            owner: st.st_uid,
            agent: uid,
        });
    }
    let mut report = Report::default();
    if walk.has_owner(&st) {
        report.unchanged += 1;
    } else {
        let (u, g) = walk.owner();
        rustix::fs::fchown(&root, u, g).map_err(|e| io("change the owner of", path)(e.into()))?;
        report.changed += 1;
    }
    descend(&walk, &root, path, 1, &mut report)?;
    Ok(report)
}

/// Hands over every entry of the open directory `dir` (at `path`, for messages).
fn descend(
    walk: &Walk,
    dir: &OwnedFd,
    path: &Path,
    depth: usize,
    report: &mut Report,
) -> Result<(), DataDirError> {
    let entries = Dir::read_from(dir).map_err(|e| io("list", path)(e.into()))?;
    for entry in entries {
        let entry = entry.map_err(|e| io("list", path)(e.into()))?;
        let name = entry.file_name();
        if name == c"." || name == c".." {
            continue;
        }
        let child = path.join(OsStr::from_bytes(name.to_bytes()));
        let st = match rustix::fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW) {
            Ok(st) => st,
            Err(rustix::io::Errno::NOENT) => {
                report.skip(child, Skip::Vanished);
                continue;
            }
            Err(e) => return Err(io("inspect", &child)(e.into())),
        };
        if st.st_dev != walk.dev {
            report.skip(child, Skip::OtherFilesystem);
            continue;
        }
        let kind = FileType::from_raw_mode(st.st_mode);
        let skip = match kind {
            FileType::Symlink => Some(Skip::Symlink),
            FileType::Directory | FileType::RegularFile if !walk.takes(&st) => {
                Some(Skip::OtherOwner)
            }
            FileType::RegularFile if st.st_nlink > 1 => Some(Skip::HardLink),
            FileType::Directory if depth >= MAX_DEPTH => Some(Skip::TooDeep),
            FileType::Directory | FileType::RegularFile => None,
            _ => Some(Skip::Special),
        };
        if let Some(why) = skip {
            report.skip(child, why);
            continue;
        }
        if kind == FileType::Directory {
            use rustix::io::Errno;
            let sub = match open_dir(dir, name) {
                Ok(fd) => fd,
                // Replaced by a link or removed since the stat: leave it.
                Err(Errno::LOOP | Errno::NOTDIR | Errno::NOENT) => {
                    report.skip(child, Skip::Vanished);
                    continue;
                }
                Err(e) => return Err(io("open", &child)(e.into())),
            };
            let opened = rustix::fs::fstat(&sub).map_err(|e| io("inspect", &child)(e.into()))?;
            if opened.st_ino != st.st_ino || opened.st_dev != st.st_dev {
                report.skip(child, Skip::Vanished);
                continue;
            }
            if walk.has_owner(&opened) {
                report.unchanged += 1;
            } else {
                let (u, g) = walk.owner();
                rustix::fs::fchown(&sub, u, g)
                    .map_err(|e| io("change the owner of", &child)(e.into()))?;
                report.changed += 1;
            }
            descend(walk, &sub, &child, depth + 1, report)?;
        } else if walk.has_owner(&st) {
            report.unchanged += 1;
        } else {
            let (u, g) = walk.owner();
            match rustix::fs::chownat(dir, name, u, g, AtFlags::SYMLINK_NOFOLLOW) {
                Ok(()) => report.changed += 1,
                Err(rustix::io::Errno::NOENT) => report.skip(child, Skip::Vanished),
                Err(e) => return Err(io("change the owner of", &child)(e.into())),
            }
        }
    }
    Ok(())
}

/// `fine-grained-monitor prepare-data-dir`: prepares, logs what it did.
pub fn run_prepare(args: &PrepareArgs) -> Result<(), DataDirError> {
    let report = prepare(&args.data_dir, args.owner_uid, args.owner_gid)?;
    for (path, why) in &report.skipped {
        tracing::warn!(path = %path.display(), reason = why.as_str(), "left with its owner");
    }
    tracing::info!(
        data_dir = %args.data_dir.display(),
        owner = %format!("{}:{}", args.owner_uid, args.owner_gid),
        changed = report.changed,
        unchanged = report.unchanged,
        skipped = report.skipped_total,
        "data directory handed to the agent's user"
    );
    Ok(())
}

#[cfg(test)]
mod tests;
