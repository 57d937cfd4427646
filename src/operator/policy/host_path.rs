//! Host data paths: the one spelling of a path, and where it may lie.
//!
//! `//var/lib/x`, `/var/lib/x/` and `/var/lib/./x` are one directory: empty
//! and `.` segments are dropped and the trailing slash goes. `..` is refused
//! rather than resolved, because the kernel resolves it after symlinks and a
//! lexical answer could name another directory. The normalised path must be an
//! allowed data root or lie below one; the DaemonSet then mounts the root and
//! reaches the rest with a `subPath`, which the kubelet resolves without
//! leaving the root (a symlink planted below the root cannot redirect it).

use std::fmt;

/// Why a host path is refused; every message names the path and the rule.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HostPathError {
    #[error("{what} {path:?} is not absolute (it must start with /)")]
    NotAbsolute { what: &'static str, path: String },
    #[error("{what} {path:?} contains a `..` segment (write the directory without it)")]
    ParentSegment { what: &'static str, path: String },
    #[error("{what} {path:?} contains a control character")]
    ControlCharacter { what: &'static str, path: String },
    #[error("{what} {path:?} is the root directory /")]
    Root { what: &'static str, path: String },
    #[error(
        "spec.dataHostPath {path:?} (normalised {normalised}) is not under an allowed data root ({roots}); \
         the operator's --allowed-data-roots decides which host directories a NodeMonitor may use"
    )]
    NotAllowed {
        path: String,
        normalised: String,
        roots: String,
    },
}

/// An absolute path in its one spelling: no empty, `.` or `..` segments, no
/// trailing slash (so equal directories compare equal as strings).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct HostPath(String);

impl HostPath {
    /// Normalises `path`; `what` names it in errors (`spec.dataHostPath`, `--allowed-data-roots`).
    pub fn parse(what: &'static str, path: &str) -> Result<Self, HostPathError> {
        let err_path = || path.to_string();
        if path.chars().any(char::is_control) {
            return Err(HostPathError::ControlCharacter {
                what,
                path: err_path(),
            });
        }
        if !path.starts_with('/') {
            return Err(HostPathError::NotAbsolute {
                what,
                path: err_path(),
            });
        }
        let mut segments = Vec::new();
        for segment in path.split('/') {
            match segment {
                "" | "." => {}
                ".." => {
                    return Err(HostPathError::ParentSegment {
                        what,
                        path: err_path(),
                    });
                }
                s => segments.push(s),
            }
        }
        Ok(Self(format!("/{}", segments.join("/"))))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn is_root(&self) -> bool {
        self.0 == "/"
    }

    /// The part of `self` below `outer` (`None` when `self` is not `outer` or inside it;
    /// `Some("")` when they are equal).
    pub fn strip(&self, outer: &HostPath) -> Option<&str> {
        if outer.is_root() {
            return Some(self.0.trim_start_matches('/'));
        }
        let rest = self.0.strip_prefix(&outer.0)?;
        if rest.is_empty() {
            Some("")
        } else {
            rest.strip_prefix('/')
        }
    }

    /// Whether one directory is the other or contains it.
    pub fn overlaps(&self, other: &HostPath) -> bool {
        self.strip(other).is_some() || other.strip(self).is_some()
    }
}

impl fmt::Display for HostPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A directory the operator lets NodeMonitors write in (or below): absolute,
/// normalised, never `/` itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataRoot(HostPath);

impl DataRoot {
    pub fn path(&self) -> &HostPath {
        &self.0
    }
}

impl std::str::FromStr for DataRoot {
    type Err = HostPathError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let path = HostPath::parse("--allowed-data-roots entry", s.trim())?;
        if path.is_root() {
            return Err(HostPathError::Root {
                what: "--allowed-data-roots entry",
                path: s.to_string(),
            });
        }
        Ok(Self(path))
    }
}

impl fmt::Display for DataRoot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// Where a NodeMonitor's data lives on the host: the allowed root (the
/// hostPath volume) and the path below it (the mounts' `subPath`, empty for
/// the root itself).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataPlacement {
    pub path: HostPath,
    pub root: HostPath,
    pub sub_path: String,
}

/// Places `spec_path` under the innermost allowed root that holds it.
pub fn place(spec_path: &str, roots: &[DataRoot]) -> Result<DataPlacement, HostPathError> {
    let path = HostPath::parse("spec.dataHostPath", spec_path)?;
    if path.is_root() {
        return Err(HostPathError::Root {
            what: "spec.dataHostPath",
            path: spec_path.to_string(),
        });
    }
    roots
        .iter()
        .filter_map(|root| {
            let sub = path.strip(root.path())?;
            Some((root, sub.to_string()))
        })
        // Innermost root: the longest one that matches.
        .max_by_key(|(root, _)| root.path().as_str().len())
        .map(|(root, sub_path)| DataPlacement {
            path: path.clone(),
            root: root.path().clone(),
            sub_path,
        })
        .ok_or_else(|| HostPathError::NotAllowed {
            path: spec_path.to_string(),
            normalised: path.to_string(),
            roots: roots
                .iter()
                .map(|r| r.to_string())
                .collect::<Vec<_>>()
                .join(", "),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn roots(list: &[&str]) -> Vec<DataRoot> {
        list.iter().map(|r| r.parse().unwrap()).collect()
    }

    fn norm(p: &str) -> String {
        HostPath::parse("p", p).unwrap().to_string()
    }

    #[test]
    fn one_spelling_per_directory() {
        for p in [
            "/var/lib/x",
            "//var/lib/x",
            "/var/lib/x/",
            "/var/lib/./x",
            "/var//lib/x//",
            "/./var/lib/x/.",
        ] {
            assert_eq!(norm(p), "/var/lib/x", "{p}");
        }
        assert_eq!(norm("//"), "/");
        assert_eq!(norm("/"), "/");
    }

    #[test]
    fn parent_segments_relative_paths_and_control_characters_are_refused() {
        let e = HostPath::parse("spec.dataHostPath", "/var/lib/../../etc").unwrap_err();
        assert!(matches!(e, HostPathError::ParentSegment { .. }), "{e}");
        assert!(
            e.to_string()
                .contains("spec.dataHostPath \"/var/lib/../../etc\"")
        );
        // `..x` is a name, not a parent segment.
        assert_eq!(norm("/var/lib/..x"), "/var/lib/..x");
        assert!(matches!(
            HostPath::parse("p", "var/lib").unwrap_err(),
            HostPathError::NotAbsolute { .. }
        ));
        assert!(matches!(
            HostPath::parse("p", "/var/lib\n/etc").unwrap_err(),
            HostPathError::ControlCharacter { .. }
        ));
    }

    #[test]
    fn system_directories_are_not_under_the_default_root() {
        let allowed = roots(&["/var/lib/fine-grained-monitor"]);
        for dangerous in [
            "/etc",
            "/proc",
            "/sys",
            "/var/lib/kubelet",
            "/var/run",
            "/root",
            "/usr",
            "/boot",
            "/var/lib/etcd",
            "/var/lib",
            "/var/lib/fine-grained-monitor-evil",
            "/var/lib/fine-grained-monitorx",
        ] {
            let e = place(dangerous, &allowed).unwrap_err();
            assert!(matches!(e, HostPathError::NotAllowed { .. }), "{dangerous}");
            let msg = e.to_string();
            assert!(
                msg.contains(dangerous) && msg.contains("/var/lib/fine-grained-monitor"),
                "{msg}"
            );
        }
        for root in ["/", "//", "///"] {
            assert!(matches!(
                place(root, &allowed).unwrap_err(),
                HostPathError::Root { .. }
            ));
        }
    }

    #[test]
    fn paths_under_a_root_are_placed_with_a_sub_path() {
        let allowed = roots(&["/var/lib/fine-grained-monitor", "/mnt/fast/"]);
        let p = place("/var/lib/fine-grained-monitor", &allowed).unwrap();
        assert_eq!(p.root.as_str(), "/var/lib/fine-grained-monitor");
        assert_eq!(p.sub_path, "");
        let p = place("//var/lib/fine-grained-monitor/./team-a/", &allowed).unwrap();
        assert_eq!(p.path.as_str(), "/var/lib/fine-grained-monitor/team-a");
        assert_eq!(p.sub_path, "team-a");
        let p = place("/mnt/fast/a/b", &allowed).unwrap();
        assert_eq!((p.root.as_str(), p.sub_path.as_str()), ("/mnt/fast", "a/b"));
        // Nested roots: the innermost one holds the path.
        let nested = roots(&["/data", "/data/fgm"]);
        let p = place("/data/fgm/x", &nested).unwrap();
        assert_eq!((p.root.as_str(), p.sub_path.as_str()), ("/data/fgm", "x"));
    }

    #[test]
    fn roots_are_checked_and_normalised() {
        let r: DataRoot = "/var/lib/fgm/".parse().unwrap();
        assert_eq!(r.to_string(), "/var/lib/fgm");
        for bad in ["/", "//", "relative", "/a/../b", ""] {
            assert!(bad.parse::<DataRoot>().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn overlap_is_containment_either_way() {
        let p = |s| HostPath::parse("p", s).unwrap();
        assert!(p("/a/b").overlaps(&p("/a/b")));
        assert!(p("/a/b").overlaps(&p("/a/b/c")));
        assert!(p("/a/b/c").overlaps(&p("/a/b")));
        assert!(!p("/a/b").overlaps(&p("/a/bc")));
        assert!(!p("/a/b").overlaps(&p("/a/c")));
        assert!(p("/").overlaps(&p("/x")));
    }
}
