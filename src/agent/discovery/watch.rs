//! New and removed cgroups as they happen, from inotify: a watch on every directory the
//! walk passed through (containers excepted), so a container created between
//! two cycles is opened in the next one instead of at the next full walk.
//!
//! mkdir on cgroupfs (v1 and v2) and on the fixture trees' filesystems raises
//! `IN_CREATE` in the parent like any filesystem. The queue is read without
//! blocking once per cycle; an overflowed queue or a watch that could not be
//! added (`fs.inotify.max_user_watches`) is reported so the caller walks the
//! whole tree instead. A removed directory drops its watch by itself
//! (`IN_IGNORED`), so the watches follow the live tree, never its history.

use std::collections::HashMap;
use std::mem::MaybeUninit;
use std::os::fd::OwnedFd;
use std::path::Path;

use rustix::fs::inotify::{self, CreateFlags, ReadFlags, WatchFlags};
use rustix::io::Errno;

/// Directories created and removed since the last drain.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Changes {
    /// `(root index, path relative to that root)` of each new directory.
    pub created: Vec<(usize, String)>,
    /// Same, for directories removed (a removed cgroup's open files stay
    /// readable on some filesystems, so this is how it is noticed there).
    pub removed: Vec<(usize, String)>,
    /// Events were lost (queue overflow): walk the whole tree.
    pub overflow: bool,
}

/// An inotify instance and the directories it watches.
#[derive(Debug)]
pub struct DirWatch {
    fd: OwnedFd,
    by_wd: HashMap<i32, (usize, String)>,
    /// Per root: relative path → watch descriptor.
    by_dir: Vec<HashMap<String, i32>>,
    buf: Box<[MaybeUninit<u8>]>,
    /// A watch could not be added: some creations may go unseen.
    incomplete: bool,
}

impl DirWatch {
    /// A watcher for `roots` hierarchies. Fails when the process cannot get
    /// an inotify instance (`fs.inotify.max_user_instances`, descriptors).
    pub fn new(roots: usize) -> Result<Self, Errno> {
        let fd = inotify::init(CreateFlags::CLOEXEC | CreateFlags::NONBLOCK)?;
        Ok(Self {
            fd,
            by_wd: HashMap::new(),
            by_dir: vec![HashMap::new(); roots],
            buf: vec![MaybeUninit::uninit(); 64 * 1024].into_boxed_slice(),
            incomplete: false,
        })
    }

    /// Watches `root/rel` for new subdirectories (once; later calls are free).
    pub fn watch(&mut self, root_index: usize, root: &Path, rel: &str) {
        let Some(dirs) = self.by_dir.get_mut(root_index) else {
            return;
        };
        if dirs.contains_key(rel) {
            return;
        }
        let path = if rel.is_empty() {
            root.to_path_buf()
        } else {
            root.join(rel)
        };
        let flags = WatchFlags::CREATE
            | WatchFlags::MOVED_TO
            | WatchFlags::DELETE
            | WatchFlags::MOVED_FROM
            | WatchFlags::ONLYDIR;
        match inotify::add_watch(&self.fd, &path, flags) {
            Ok(wd) => {
                dirs.insert(rel.to_string(), wd);
                self.by_wd.insert(wd, (root_index, rel.to_string()));
            }
            // Gone already: nothing to watch.
            Err(Errno::NOENT) | Err(Errno::NOTDIR) => {}
            Err(e) => {
                if !self.incomplete {
                    tracing::warn!(
                        path = %path.display(),
                        error = %e,
                        watches = self.by_wd.len(),
                        "cannot watch a cgroup directory for new containers (fs.inotify.max_user_watches?); \
                         new containers there are found by the periodic full walk"
                    );
                }
                self.incomplete = true;
            }
        }
    }

    /// Whether some directory could not be watched.
    pub fn incomplete(&self) -> bool {
        self.incomplete
    }

    /// Directories watched now.
    pub fn len(&self) -> usize {
        self.by_wd.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_wd.is_empty()
    }

    /// The subdirectories created or removed since the last call (never blocks).
    pub fn drain(&mut self) -> Changes {
        let mut out = Changes::default();
        let Self {
            fd,
            by_wd,
            by_dir,
            buf,
            ..
        } = self;
        let mut reader = inotify::Reader::new(&*fd, &mut buf[..]);
        loop {
            let event = match reader.next() {
                Ok(event) => event,
                Err(Errno::AGAIN) | Err(Errno::INTR) => break,
                Err(e) => {
                    tracing::warn!(error = %e, "reading cgroup directory events failed; walking the tree");
                    out.overflow = true;
                    break;
                }
            };
            let flags = event.events();
            if flags.contains(ReadFlags::QUEUE_OVERFLOW) {
                out.overflow = true;
                continue;
            }
            if flags.contains(ReadFlags::IGNORED) {
                if let Some((root, rel)) = by_wd.remove(&event.wd())
                    && let Some(dirs) = by_dir.get_mut(root)
                    && dirs.get(&rel) == Some(&event.wd())
                {
                    dirs.remove(&rel);
                }
                continue;
            }
            if !flags.contains(ReadFlags::ISDIR) {
                continue;
            }
            let (Some((root, parent)), Some(name)) = (by_wd.get(&event.wd()), event.file_name())
            else {
                continue;
            };
            let Ok(name) = name.to_str() else { continue };
            let rel = if parent.is_empty() {
                name.to_string()
            } else {
                format!("{parent}/{name}")
            };
            if flags.intersects(ReadFlags::DELETE | ReadFlags::MOVED_FROM) {
                out.removed.push((*root, rel));
            } else {
                out.created.push((*root, rel));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_new_directories_below_watched_ones_and_forgets_removed_ones() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir_all(root.join("kubepods/burstable")).unwrap();
        let mut w = DirWatch::new(1).unwrap();
        w.watch(0, root, "");
        w.watch(0, root, "kubepods");
        w.watch(0, root, "kubepods/burstable");
        w.watch(0, root, "kubepods/burstable"); // twice: one watch
        assert_eq!(w.len(), 3);
        assert_eq!(w.drain(), Changes::default(), "nothing yet");
        std::fs::create_dir(root.join("kubepods/burstable/pod1")).unwrap();
        std::fs::write(root.join("kubepods/burstable/file"), "x").unwrap();
        std::fs::create_dir(root.join("new-top")).unwrap();
        let got = w.drain();
        assert_eq!(
            got.created,
            vec![
                (0, "kubepods/burstable/pod1".to_string()),
                (0, "new-top".to_string())
            ],
            "directories only, with their path from the root"
        );
        assert!(!got.overflow);
        std::fs::remove_dir_all(root.join("kubepods")).unwrap();
        let got = w.drain();
        assert!(got.created.is_empty());
        assert!(
            got.removed.contains(&(0, "kubepods".to_string())),
            "{got:?}"
        );
        assert!(
            got.removed
                .contains(&(0, "kubepods/burstable/pod1".to_string()))
        );
        assert_eq!(w.len(), 1, "removed directories dropped their watches");
        assert!(!w.incomplete());
        // A directory that is gone already is no error.
        w.watch(0, root, "never-existed");
        assert!(!w.incomplete());
    }
}
