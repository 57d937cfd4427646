//! Which part of the cgroup tree is this node's. With several kubelets on one host (kind's
//! nodes, the test world's two nodes) every kubelet keeps its pods under its own
//! `--cgroup-root` (`/kubelet-1/kubepods/…`, `/kubelet-2/kubepods/…`), and each node's agent
//! records only its own: the pods the other agents' nodes run are theirs to record.

use std::fmt;

/// The part of the tree discovery walks and records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    /// Every container in the tree.
    All,
    /// Containers below this cgroup path (relative to the hierarchy root, no leading or
    /// trailing `/`; empty is the whole tree).
    Under(String),
    /// Below the kubelet root of the pod with this UID (the agent's own), learnt from the
    /// first walk: every container is admitted until then.
    OwnPod(String),
}

/// `--kubelet-cgroup-root`'s value is not one of `auto`, `all` or an absolute cgroup path.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error(
    "--kubelet-cgroup-root {0:?}: expected `auto`, `all` or an absolute cgroup path such as /kubelet"
)]
pub struct ScopeError(String);

impl Scope {
    /// From the flag's value; `auto` needs the agent's own pod UID and is [`Scope::All`]
    /// without one (not in a pod).
    pub fn parse(value: &str, own_pod_uid: Option<&str>) -> Result<Self, ScopeError> {
        match value.trim() {
            "auto" => Ok(match own_pod_uid.map(str::trim).filter(|u| !u.is_empty()) {
                Some(uid) => Scope::OwnPod(uid.to_string()),
                None => Scope::All,
            }),
            "all" => Ok(Scope::All),
            path if path.starts_with('/') && !path.split('/').any(|p| p == "..") => {
                Ok(Scope::Under(path.trim_matches('/').to_string()))
            }
            other => Err(ScopeError(other.to_string())),
        }
    }

    /// Whether a walk looks at `rel` (a cgroup path relative to the hierarchy root): the
    /// directories on the way down to the scope's root and everything below it.
    pub fn admits(&self, rel: &str) -> bool {
        match self {
            Scope::All | Scope::OwnPod(_) => true,
            Scope::Under(root) => within(rel, root) || within(root, rel),
        }
    }

    /// Whether a container at `rel` is recorded: below the scope's root.
    pub fn records(&self, rel: &str) -> bool {
        match self {
            Scope::All | Scope::OwnPod(_) => true,
            Scope::Under(root) => within(rel, root),
        }
    }

    /// The pod UID still to be found, while the scope waits for it.
    pub fn pending_pod(&self) -> Option<&str> {
        match self {
            Scope::OwnPod(uid) => Some(uid),
            _ => None,
        }
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Scope::All => f.write_str("every container"),
            Scope::Under(root) => write!(f, "/{root}"),
            Scope::OwnPod(uid) => write!(f, "the kubelet root of pod {uid}"),
        }
    }
}

/// `path` is `root` or below it (`/` boundaries; an empty root holds everything).
fn within(path: &str, root: &str) -> bool {
    root.is_empty()
        || path == root
        || (path.len() > root.len()
            && path.starts_with(root)
            && path.as_bytes()[root.len()] == b'/')
}

/// The kubelet `--cgroup-root` a container's cgroup path sits under: everything before the
/// first part naming `kubepods` (`kubelet-2/kubepods/burstable/pod…/<id>` → `kubelet-2`,
/// `kubelet.slice/kubelet-kubepods.slice/…` → `kubelet.slice`, `kubepods/…` → the whole tree).
pub fn kubelet_root_of(cgroup_path: &str) -> Option<String> {
    let parts: Vec<&str> = cgroup_path.split('/').collect();
    let at = parts.iter().position(|p| p.contains("kubepods"))?;
    Some(parts[..at].join("/"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_flag() {
        assert_eq!(Scope::parse("all", Some("u")), Ok(Scope::All));
        assert_eq!(
            Scope::parse("auto", Some("1-2")),
            Ok(Scope::OwnPod("1-2".into()))
        );
        assert_eq!(Scope::parse("auto", None), Ok(Scope::All));
        assert_eq!(Scope::parse("auto", Some(" ")), Ok(Scope::All));
        assert_eq!(
            Scope::parse("/kubelet-2/", None),
            Ok(Scope::Under("kubelet-2".into()))
        );
        assert_eq!(Scope::parse("/", None), Ok(Scope::Under(String::new())));
        let err = Scope::parse("kubelet", None).unwrap_err();
        assert!(err.to_string().contains("\"kubelet\""), "{err}");
        assert!(Scope::parse("/a/../b", None).is_err());
    }

    #[test]
    fn admits_the_way_down_and_records_only_below() {
        let s = Scope::Under("kubelet-2".into());
        for rel in [
            "",
            "kubelet-2",
            "kubelet-2/kubepods",
            "kubelet-2/kubepods/pod1/abc",
        ] {
            assert!(s.admits(rel), "{rel}");
        }
        for rel in [
            "kubelet",
            "kubelet/kubepods",
            "kubelet-20",
            "kubelet-20/kubepods",
        ] {
            assert!(!s.admits(rel), "{rel}");
            assert!(!s.records(rel), "{rel}");
        }
        assert!(!s.records(""));
        assert!(s.records("kubelet-2/kubepods/pod1/abc"));
        let deep = Scope::Under("a/b".into());
        assert!(deep.admits("a") && !deep.records("a") && !deep.admits("a/c"));
        assert!(Scope::Under(String::new()).records("anything/at/all"));
        assert!(Scope::OwnPod("x".into()).records("kubelet/kubepods"));
    }

    #[test]
    fn finds_the_kubelet_root() {
        let id = "0123456789abcdef0123456789abcdef";
        assert_eq!(
            kubelet_root_of(&format!("kubelet-2/kubepods/burstable/pod1/{id}")).as_deref(),
            Some("kubelet-2")
        );
        assert_eq!(
            kubelet_root_of(&format!("kubepods/pod1/{id}")).as_deref(),
            Some("")
        );
        assert_eq!(
            kubelet_root_of(
                "kubelet.slice/kubelet-kubepods.slice/kubelet-kubepods-pod1.slice/cri-containerd-a.scope"
            )
            .as_deref(),
            Some("kubelet.slice")
        );
        assert_eq!(kubelet_root_of("system.slice/docker-abc.scope"), None);
    }
}
