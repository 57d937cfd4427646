//! Where the cgroup hierarchies are: from `/proc/self/mountinfo` by default,
//! or from the layout of a directory given with `--cgroup-root`.
//!
//! A host is v2 (one `cgroup2` mount holding every controller), v1 (one
//! `cgroup` mount per controller group, e.g. `cpu,cpuacct`), or hybrid (v1
//! controllers plus a `cgroup2` mount without them, usually
//! `/sys/fs/cgroup/unified`). On a hybrid host the v1 controllers give the
//! numbers and the v2 mount gives pressure (PSI) where the kernel has it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The v1 controllers the agent reads.
pub const V1_CONTROLLERS: &[&str] = &["cpu", "cpuacct", "memory", "blkio", "pids"];

/// The hierarchies the agent reads from.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Hierarchies {
    /// Mount point of the `cgroup2` hierarchy, if any.
    pub v2: Option<PathBuf>,
    /// Whether the v2 hierarchy holds the controllers (pure v2 host), as
    /// opposed to a hybrid host's controller-less `unified` mount.
    pub v2_has_controllers: bool,
    /// v1 controller name → its hierarchy's mount point.
    pub v1: BTreeMap<String, PathBuf>,
}

impl Hierarchies {
    /// True when numbers come from v1 controllers.
    pub fn is_v1(&self) -> bool {
        !self.v1.is_empty()
    }

    /// Every distinct hierarchy root, v2 first (for walking the tree).
    pub fn roots(&self) -> Vec<&Path> {
        let mut out: Vec<&Path> = Vec::new();
        if let Some(v2) = &self.v2 {
            out.push(v2);
        }
        for path in self.v1.values() {
            if !out.contains(&path.as_path()) {
                out.push(path);
            }
        }
        out
    }
}

/// Why no cgroup hierarchy could be found.
#[derive(Debug, thiserror::Error)]
pub enum HierarchyError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "{path} is neither a cgroup v2 root (no cgroup.controllers) nor a directory of v1 \
         controller hierarchies (no cpu/, cpuacct/, memory/, blkio/ or pids/ with cgroup.procs)"
    )]
    NotACgroupRoot { path: PathBuf },
    #[error("no cgroup v1 or v2 mount found in {path}")]
    NoMounts { path: PathBuf },
}

/// Finds the hierarchies of this process from `/proc/self/mountinfo`.
pub fn from_mountinfo_file(path: &Path) -> Result<Hierarchies, HierarchyError> {
    let text = std::fs::read_to_string(path).map_err(|source| HierarchyError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let found = parse_mountinfo(&text);
    if found.v2.is_none() && found.v1.is_empty() {
        return Err(HierarchyError::NoMounts {
            path: path.to_path_buf(),
        });
    }
    Ok(found)
}

/// Pure parser of mountinfo text. Only mounts of a hierarchy's root (`/`) are
/// used: a bind mount of a sub-cgroup (as in some containers) would give
/// paths relative to the wrong place.
pub fn parse_mountinfo(text: &str) -> Hierarchies {
    let mut out = Hierarchies::default();
    for line in text.lines() {
        // id parent major:minor root mount-point options [optional...] - fstype source super-options
        let Some((left, right)) = line.split_once(" - ") else {
            continue;
        };
        let left: Vec<&str> = left.split(' ').collect();
        let right: Vec<&str> = right.split(' ').collect();
        if left.len() < 5 || right.len() < 3 {
            continue;
        }
        let (root, mount_point) = (left[3], unescape(left[4]));
        let (fstype, super_options) = (right[0], right[2]);
        if root != "/" {
            continue;
        }
        match fstype {
            "cgroup2" if out.v2.is_none() => out.v2 = Some(PathBuf::from(mount_point)),
            "cgroup" => {
                for option in super_options.split(',') {
                    if V1_CONTROLLERS.contains(&option) && !out.v1.contains_key(option) {
                        out.v1
                            .insert(option.to_string(), PathBuf::from(mount_point.clone()));
                    }
                }
            }
            _ => {}
        }
    }
    if let Some(v2) = &out.v2 {
        out.v2_has_controllers = out.v1.is_empty() && v2_controllers_present(v2);
    }
    out
}

/// mountinfo escapes space, tab, newline and backslash as octal.
fn unescape(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let code = (bytes[i] == b'\\')
            .then(|| field.get(i + 1..i + 4))
            .flatten()
            .and_then(|o| u8::from_str_radix(o, 8).ok());
        if let Some(code) = code {
            out.push(code);
            i += 4;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A v2 root with any of the controllers the agent reads enabled.
fn v2_controllers_present(root: &Path) -> bool {
    std::fs::read_to_string(root.join("cgroup.controllers"))
        .map(|c| {
            c.split_whitespace()
                .any(|c| matches!(c, "cpu" | "memory" | "io" | "pids"))
        })
        .unwrap_or(false)
}

/// Reads the layout of a directory given with `--cgroup-root`: a v2 root
/// (has `cgroup.controllers`) or a directory of v1 hierarchies (`memory/`,
/// `cpu,cpuacct/` or `cpu/` and `cpuacct/`, ...), with an optional
/// `unified/` v2 mount beside them for pressure.
pub fn from_root_dir(root: &Path) -> Result<Hierarchies, HierarchyError> {
    let read_dir = std::fs::read_dir(root).map_err(|source| HierarchyError::Read {
        path: root.to_path_buf(),
        source,
    })?;
    if root.join("cgroup.controllers").is_file() {
        return Ok(Hierarchies {
            v2: Some(root.to_path_buf()),
            v2_has_controllers: true,
            v1: BTreeMap::new(),
        });
    }
    let mut out = Hierarchies::default();
    let mut names: Vec<String> = read_dir
        .flatten()
        .filter(|e| e.path().is_dir())
        .filter_map(|e| e.file_name().into_string().ok())
        .collect();
    names.sort();
    for name in names {
        let dir = root.join(&name);
        if name == "unified" && dir.join("cgroup.controllers").is_file() {
            out.v2 = Some(dir);
            continue;
        }
        if !dir.join("cgroup.procs").is_file() {
            continue;
        }
        for controller in name.split(',') {
            if V1_CONTROLLERS.contains(&controller) && !out.v1.contains_key(controller) {
                out.v1.insert(controller.to_string(), dir.clone());
            }
        }
    }
    if out.v1.is_empty() {
        return Err(HierarchyError::NotACgroupRoot {
            path: root.to_path_buf(),
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const HYBRID: &str = "\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw,relatime - cgroup cgroup rw,cpu,cpuacct
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
38 31 0:35 / /sys/fs/cgroup/blkio rw,relatime - cgroup cgroup rw,blkio
39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime shared:5 - cgroup2 cgroup2 rw
50 31 0:38 /kubepods /host/sub rw,relatime - cgroup2 cgroup2 rw
";

    #[test]
    fn hybrid_host_splits_controllers_and_keeps_unified_for_pressure() {
        let h = parse_mountinfo(HYBRID);
        assert!(h.is_v1());
        assert_eq!(h.v1["cpu"], PathBuf::from("/sys/fs/cgroup/cpu,cpuacct"));
        assert_eq!(h.v1["cpuacct"], PathBuf::from("/sys/fs/cgroup/cpu,cpuacct"));
        assert_eq!(h.v1["memory"], PathBuf::from("/sys/fs/cgroup/memory"));
        assert!(!h.v1.contains_key("systemd"));
        assert_eq!(h.v2, Some(PathBuf::from("/sys/fs/cgroup/unified")));
        assert!(!h.v2_has_controllers);
        assert_eq!(h.roots().len(), 5, "cpu,cpuacct counted once");
    }

    #[test]
    fn pure_v2_and_escaped_mount_points() {
        let h = parse_mountinfo(
            "25 1 0:22 / /sys/fs/my\\040cgroup rw - cgroup2 cgroup2 rw,nsdelegate\n",
        );
        assert_eq!(h.v2, Some(PathBuf::from("/sys/fs/my cgroup")));
        assert!(!h.is_v1());
        assert_eq!(parse_mountinfo("garbage\n\n1 2 3"), Hierarchies::default());
    }

    #[test]
    fn this_machine_has_a_cgroup_hierarchy() {
        let h = from_mountinfo_file(Path::new("/proc/self/mountinfo"))
            .expect("this test machine mounts cgroups under /sys/fs/cgroup");
        assert!(h.v2.is_some() || h.is_v1());
    }

    #[test]
    fn root_dir_layouts() {
        let dir = tempfile::tempdir().unwrap();
        let err = from_root_dir(dir.path()).unwrap_err().to_string();
        assert!(err.contains(&dir.path().display().to_string()), "{err}");
        for sub in ["cpu,cpuacct", "memory", "unified"] {
            std::fs::create_dir(dir.path().join(sub)).unwrap();
        }
        std::fs::write(dir.path().join("cpu,cpuacct/cgroup.procs"), "").unwrap();
        std::fs::write(dir.path().join("memory/cgroup.procs"), "").unwrap();
        std::fs::write(dir.path().join("unified/cgroup.controllers"), "").unwrap();
        let h = from_root_dir(dir.path()).unwrap();
        assert_eq!(h.v1["cpuacct"], dir.path().join("cpu,cpuacct"));
        assert_eq!(h.v1["memory"], dir.path().join("memory"));
        assert_eq!(h.v2, Some(dir.path().join("unified")));
        std::fs::write(dir.path().join("cgroup.controllers"), "cpu memory").unwrap();
        let h = from_root_dir(dir.path()).unwrap();
        assert!(!h.is_v1() && h.v2_has_controllers);
    }
}
