//! One writer per data directory: `<data>/.lock`, held with an exclusive
//! `flock` for the writer's whole life.
//!
//! The kernel releases the lock when the process ends, however it ends
//! (kill -9 included), so a stale lock cannot outlive its holder. Whoever
//! holds it writes who they are into the file (pid, host, node, since when),
//! so a second agent can name the holder when it gives up. The lock works
//! across containers and pods of one node: they share the host's inode
//! through the hostPath volume.

use std::fs::File;
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use rustix::fs::{FlockOperation, flock};
use rustix::io::Errno;
use serde::{Deserialize, Serialize};

/// Name of the lock file in the data directory (a dot file: listings skip it).
pub const LOCK_FILE: &str = ".lock";

/// Who holds a data directory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Holder {
    pub pid: u32,
    /// Host name: the pod's name when the agent runs in Kubernetes.
    pub host: String,
    pub node: String,
    pub since: DateTime<Utc>,
}

impl Holder {
    /// This process, writing for `node`.
    pub fn this_process(node: &str) -> Self {
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|h| h.trim().to_string())
            .unwrap_or_default();
        Self {
            pid: std::process::id(),
            host,
            node: node.to_string(),
            since: Utc::now(),
        }
    }
}

impl std::fmt::Display for Holder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "pid {} on host {:?} (node {:?}) since {}",
            self.pid,
            self.host,
            self.node,
            self.since
                .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
        )
    }
}

/// Why the lock could not be taken.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error("data directory lock {path} is held by {holder}")]
    Held { path: PathBuf, holder: String },
    #[error("cannot lock {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// The held lock; released when dropped (or when the process ends).
#[derive(Debug)]
pub struct DataDirLock {
    _file: File,
    path: PathBuf,
}

impl DataDirLock {
    pub fn path(&self) -> &Path {
        &self.path
    }
}

pub fn lock_path(data_dir: &Path) -> PathBuf {
    data_dir.join(LOCK_FILE)
}

/// Takes the lock without waiting, and records `holder` in it.
pub fn try_lock(data_dir: &Path, holder: &Holder) -> Result<DataDirLock, LockError> {
    let path = lock_path(data_dir);
    let io = |source| LockError::Io {
        path: path.clone(),
        source,
    };
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(io)?;
    match flock(&file, FlockOperation::NonBlockingLockExclusive) {
        Ok(()) => {}
        Err(Errno::WOULDBLOCK) => {
            return Err(LockError::Held {
                holder: read_holder(&mut file),
                path,
            });
        }
        Err(e) => return Err(io(e.into())),
    }
    let text = serde_json::to_vec(holder).map_err(|e| io(e.into()))?;
    file.set_len(0).map_err(io)?;
    file.rewind().map_err(io)?;
    file.write_all(&text).map_err(io)?;
    Ok(DataDirLock { _file: file, path })
}

/// The holder as recorded in the lock file, or why it cannot be told.
fn read_holder(file: &mut File) -> String {
    let mut text = String::new();
    if file.read_to_string(&mut text).is_err() || text.trim().is_empty() {
        return "another process (not recorded yet)".to_string();
    }
    match serde_json::from_str::<Holder>(&text) {
        Ok(holder) => holder.to_string(),
        Err(_) => format!("another process (lock file says {:?})", text.trim()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_lock_fails_naming_the_holder_and_release_frees_it() {
        let dir = tempfile::tempdir().unwrap();
        let first = Holder {
            pid: 4242,
            host: "fgm-abcde".into(),
            node: "node-1".into(),
            since: Utc::now(),
        };
        let held = try_lock(dir.path(), &first).unwrap();
        assert_eq!(held.path(), dir.path().join(".lock"));
        // flock locks belong to the open file description: a second open in
        // this process conflicts exactly like another process would.
        let err = try_lock(dir.path(), &Holder::this_process("node-1")).unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("pid 4242") && text.contains("fgm-abcde") && text.contains("node-1"),
            "{text}"
        );
        assert!(matches!(err, LockError::Held { .. }));
        drop(held);
        let again = try_lock(dir.path(), &Holder::this_process("node-1")).unwrap();
        let recorded: Holder =
            serde_json::from_str(&std::fs::read_to_string(again.path()).unwrap()).unwrap();
        assert_eq!(
            recorded.pid,
            std::process::id(),
            "the new holder replaced the old record"
        );
    }

    #[test]
    fn unwritable_directory_is_an_io_error_naming_the_path() {
        let err = try_lock(
            Path::new("/proc/definitely/not/here"),
            &Holder::this_process("n"),
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("/proc/definitely/not/here/.lock"), "{err}");
    }
}
