//! Which cgroups are containers, and who they are.
//!
//! Kubelet layouts, for both cgroup drivers (DESIGN.md "Container discovery"):
//!
//! ```text
//! systemd:  kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod<uid_>.slice/cri-containerd-<id>.scope
//!           kubepods.slice/kubepods-pod<uid_>.slice/crio-<id>.scope          (Guaranteed)
//! cgroupfs: kubepods/besteffort/pod<uid>/<id>
//!           kubepods/pod<uid>/<id>                                           (Guaranteed)
//! ```
//!
//! Any kubelet `--cgroup-root` prefix works: kind's `/kubelet` gives
//! `kubelet/kubepods/burstable/pod<uid>/<id>` (cgroupfs) or
//! `kubelet.slice/kubelet-kubepods.slice/kubelet-kubepods-burstable.slice/kubelet-kubepods-burstable-pod<uid_>.slice/cri-containerd-<id>.scope`
//! (systemd). systemd slice names write the pod UID with `_` for `-`. CRI-O's
//! `crio-conmon-<id>.scope` holds the monitor process, not the container, and
//! is skipped. Outside Kubernetes (`local`), every leaf cgroup with processes
//! is a container named by its path. Classification is pure; the walk is a
//! thin shell over `read_dir`.

pub mod scope;
pub mod watch;

pub use scope::Scope;

use std::collections::BTreeMap;
use std::path::Path;

/// Deepest cgroup nesting walked (kubelet's layout is 4 to 6 levels deep).
const MAX_DEPTH: usize = 12;

/// How discovery decides what a container is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DiscoveryMode {
    /// Container runtime cgroups (Kubernetes pods, plain docker).
    Kubernetes,
    /// Every leaf cgroup with processes, plus the runtime cgroups as above.
    Local,
}

/// A container found in the tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerRef {
    /// cgroup path relative to the hierarchy root, `/`-separated, no leading `/`
    /// (empty for the root itself).
    pub cgroup_path: String,
    /// 64-hex runtime id, or `/<cgroup path>` for a plain cgroup.
    pub full_id: String,
    /// 12 hex characters: the id's prefix, or a hash of a plain cgroup's path.
    pub short_id: String,
    /// `containerd`, `crio`, `docker`; `None` when the path does not say.
    pub runtime: Option<&'static str>,
    pub pod_uid: Option<String>,
    /// `Guaranteed`, `Burstable`, `BestEffort` for pods.
    pub qos_class: Option<&'static str>,
}

/// What a cgroup directory is, from its path alone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Class {
    Container(ContainerRef),
    /// Not a container and nothing below is one (conmon scopes).
    Skip,
    /// Not a container itself; look below.
    Other,
}

/// Classifies a cgroup by its path relative to the hierarchy root.
pub fn classify(cgroup_path: &str) -> Class {
    let mut parts = cgroup_path.rsplit('/');
    let name = parts.next().unwrap_or("");
    let parent = parts.next().unwrap_or("");
    let grandparent = parts.next().unwrap_or("");
    let stem = name.strip_suffix(".scope").unwrap_or(name);
    if stem.starts_with("crio-conmon-") {
        return Class::Skip;
    }
    let prefixed = [
        ("cri-containerd-", "containerd"),
        ("crio-", "crio"),
        ("docker-", "docker"),
    ];
    let mut found: Option<(&str, Option<&'static str>)> = None;
    for (prefix, runtime) in prefixed {
        if let Some(id) = stem.strip_prefix(prefix) {
            if is_hex_id(id) {
                found = Some((id, Some(runtime)));
            }
            break;
        }
    }
    let pod = parse_pod_dir(parent, grandparent);
    if found.is_none() && is_hex_id(name) && name.len() >= 32 {
        // Plain ids (cgroupfs driver) only count under a pod or a `docker` directory:
        // other tools also name cgroups with long hex strings.
        if pod.is_some() {
            found = Some((name, None));
        } else if parent == "docker" {
            found = Some((name, Some("docker")));
        }
    }
    let Some((id, runtime)) = found else {
        return Class::Other;
    };
    let (pod_uid, qos_class) = match pod {
        Some((uid, qos)) => (Some(uid), qos),
        None => (None, None),
    };
    Class::Container(ContainerRef {
        cgroup_path: cgroup_path.to_string(),
        full_id: id.to_ascii_lowercase(),
        short_id: id[..12].to_ascii_lowercase(),
        runtime,
        pod_uid,
        qos_class,
    })
}

/// A plain cgroup as a `local` container: named by its path.
pub fn plain_container(cgroup_path: &str) -> ContainerRef {
    let full_id = format!("/{cgroup_path}");
    ContainerRef {
        cgroup_path: cgroup_path.to_string(),
        short_id: short_hash(&full_id),
        full_id,
        runtime: None,
        pod_uid: None,
        qos_class: None,
    }
}

/// 12 hex characters of FNV-1a 64 of `text`: stable across restarts and builds.
pub fn short_hash(text: &str) -> String {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in text.bytes() {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{:012x}", hash >> 16)
}

fn is_hex_id(id: &str) -> bool {
    id.len() >= 12 && id.bytes().all(|b| b.is_ascii_hexdigit())
}

/// The pod UID and QoS class from a container's parent directory and
/// grandparent, under any kubelet `--cgroup-root`:
///
/// - systemd: the pod slice's name spells its whole path, `-`-joined:
///   `[<root>-]kubepods[-<qos>]-pod<uid_>.slice` (`kubelet-kubepods-burstable-pod…`
///   for kind's `--cgroup-root=/kubelet`);
/// - cgroupfs: `pod<uid>` under `kubepods/<qos>/` or directly under `kubepods/`
///   (Guaranteed), wherever `kubepods` itself sits (`/kubelet/kubepods/…`).
///
/// The QoS class is `None` when the layout does not say (a pod directory
/// outside a `kubepods` tree).
fn parse_pod_dir(parent: &str, grandparent: &str) -> Option<(String, Option<&'static str>)> {
    if let Some(slice) = parent.strip_suffix(".slice") {
        // systemd escapes `-` in the UID as `_`, so `-` only separates path parts.
        let mut parts = slice.rsplit('-');
        let uid = parts.next()?.strip_prefix("pod")?;
        if !valid_uid(uid) {
            return None;
        }
        let qos = match parts.next()? {
            "burstable" => "Burstable",
            "besteffort" => "BestEffort",
            "kubepods" => return Some((uid.replace('_', "-"), Some("Guaranteed"))),
            _ => return None,
        };
        // `<qos>` must itself sit under `kubepods`.
        return (parts.next()? == "kubepods").then(|| (uid.replace('_', "-"), Some(qos)));
    }
    let uid = parent.strip_prefix("pod")?;
    if !valid_uid(uid) {
        return None;
    }
    let qos = match grandparent {
        "burstable" => Some("Burstable"),
        "besteffort" => Some("BestEffort"),
        "kubepods" => Some("Guaranteed"),
        _ => None,
    };
    Some((uid.to_string(), qos))
}

fn valid_uid(uid: &str) -> bool {
    !uid.is_empty()
        && uid
            .bytes()
            .all(|b| b.is_ascii_hexdigit() || b == b'-' || b == b'_')
}

/// Called with `(root index, relative path)` for every directory a walk
/// passes through that is not a container: where new containers may appear
/// (the collector watches them).
pub type Visit<'a> = &'a mut dyn FnMut(usize, &str);

/// How a walk decides, shared by its recursion.
struct Walk<'a> {
    root_index: usize,
    mode: DiscoveryMode,
    scope: &'a Scope,
    populated: &'a dyn Fn(&str) -> bool,
}

/// Walks every hierarchy root and returns the containers, keyed by cgroup path
/// (v1 hierarchies share paths, so a container is found once). A directory
/// that vanishes during the walk is skipped. In `local` mode `populated(path)`
/// says a leaf is already known to hold processes, so its `cgroup.procs` is
/// not read again.
pub fn discover(
    roots: &[&Path],
    mode: DiscoveryMode,
    populated: &dyn Fn(&str) -> bool,
) -> BTreeMap<String, ContainerRef> {
    discover_visiting(roots, mode, &Scope::All, populated, &mut |_, _| {})
}

/// [`discover`] within `scope`, reporting every non-container directory passed to `visit`.
pub fn discover_visiting(
    roots: &[&Path],
    mode: DiscoveryMode,
    scope: &Scope,
    populated: &dyn Fn(&str) -> bool,
    visit: Visit<'_>,
) -> BTreeMap<String, ContainerRef> {
    let mut found = BTreeMap::new();
    for (root_index, root) in roots.iter().enumerate() {
        let w = Walk {
            root_index,
            mode,
            scope,
            populated,
        };
        visit(root_index, "");
        walk(&w, root, String::new(), 0, visit, &mut found);
    }
    found
}

/// Discovery below a directory that just appeared (`rel` under `root`): it
/// may be a container itself, or a pod or QoS directory with containers
/// created before it was watched.
#[allow(clippy::too_many_arguments)]
pub fn discover_new(
    root_index: usize,
    root: &Path,
    rel: &str,
    mode: DiscoveryMode,
    scope: &Scope,
    populated: &dyn Fn(&str) -> bool,
    visit: Visit<'_>,
    found: &mut BTreeMap<String, ContainerRef>,
) {
    let depth = rel.split('/').count();
    if rel.is_empty() || depth > MAX_DEPTH || !scope.admits(rel) {
        return;
    }
    match classify(rel) {
        Class::Container(c) => {
            if scope.records(rel) {
                found.insert(rel.to_string(), c);
            }
        }
        Class::Skip => {}
        Class::Other => {
            // Watched first, listed second: a child created in between is
            // seen twice at worst, never missed.
            visit(root_index, rel);
            let w = Walk {
                root_index,
                mode,
                scope,
                populated,
            };
            walk(&w, &root.join(rel), rel.to_string(), depth, visit, found);
        }
    }
}

fn walk(
    w: &Walk<'_>,
    dir: &Path,
    rel: String,
    depth: usize,
    visit: Visit<'_>,
    found: &mut BTreeMap<String, ContainerRef>,
) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let local = w.mode == DiscoveryMode::Local;
    let mut children = 0;
    for entry in entries.flatten() {
        let is_dir = entry.file_type().map(|t| t.is_dir()).unwrap_or(false);
        if !is_dir || depth >= MAX_DEPTH {
            continue;
        }
        children += 1;
        let Ok(name) = entry.file_name().into_string() else {
            continue;
        };
        let child_rel = if rel.is_empty() {
            name
        } else {
            format!("{rel}/{name}")
        };
        // Another kubelet's tree on this host: its node's agent records it.
        if !w.scope.admits(&child_rel) {
            continue;
        }
        match classify(&child_rel) {
            Class::Container(c) => {
                if w.scope.records(&child_rel) {
                    found.insert(child_rel, c);
                }
                continue;
            }
            Class::Skip => continue,
            Class::Other => {}
        }
        visit(w.root_index, &child_rel);
        // Most cgroups are leaves: a link count of 2 says so without listing
        // the directory's dozens of control files (the costly part of a scan).
        if has_no_subdirectories(&entry) {
            if local && !found.contains_key(&child_rel) && w.scope.records(&child_rel) {
                let path = entry.path();
                if (w.populated)(&child_rel) || has_processes(&path) {
                    found.insert(child_rel.clone(), plain_container(&child_rel));
                }
            }
            continue;
        }
        walk(w, &entry.path(), child_rel, depth + 1, visit, found);
    }
    if local
        && children == 0
        && w.scope.records(&rel)
        && !found.contains_key(&rel)
        && ((w.populated)(&rel) || has_processes(dir))
    {
        found.insert(rel.clone(), plain_container(&rel));
    }
}

/// True when the directory's link count says it has no subdirectory
/// (cgroupfs, ext4, tmpfs, xfs count `2 + subdirectories`). Filesystems that
/// report another count (btrfs: 1) are listed instead.
fn has_no_subdirectories(entry: &std::fs::DirEntry) -> bool {
    use std::os::unix::fs::MetadataExt;
    entry.metadata().is_ok_and(|m| m.nlink() == 2)
}

/// Whether `cgroup.procs` lists at least one process.
pub fn has_processes(dir: &Path) -> bool {
    std::fs::read(dir.join("cgroup.procs"))
        .map(|procs| procs.iter().any(|b| b.is_ascii_digit() && *b != b'0'))
        .unwrap_or(false)
}

/// Whether a cgroup holds only a pod sandbox: every process in it is named
/// `pause` in `<proc_root>/<pid>/comm`. `None` when it cannot tell (no
/// process yet, or the pids are not visible in `proc_root`).
pub fn is_sandbox(cgroup_dir: &Path, proc_root: &Path) -> Option<bool> {
    let procs = std::fs::read_to_string(cgroup_dir.join("cgroup.procs")).ok()?;
    let pids: Vec<&str> = procs.split_whitespace().filter(|p| *p != "0").collect();
    sandbox_from_pids(&pids, proc_root)
}

/// The sandbox verdict for a container's pids (at most 8 are checked).
pub fn sandbox_from_pids(pids: &[&str], proc_root: &Path) -> Option<bool> {
    let mut seen = 0;
    for pid in pids.iter().take(8) {
        let comm = std::fs::read_to_string(proc_root.join(pid).join("comm")).ok()?;
        let comm = comm.trim_end();
        if super::processes::is_runtime_init(comm) {
            // Not exec'd yet: ask again at the next check.
            return None;
        }
        if comm != "pause" {
            return Some(false);
        }
        seen += 1;
    }
    (seen > 0).then_some(true)
}

/// Pids of the processes whose cgroup path ends in one of `leaves` (a
/// container's last path component, unique because it holds the container
/// id), from `<proc_root>/*/cgroup`. Used when `cgroup.procs` is not usable:
/// read from another pid namespace (a pod without `hostPID`) it lists the
/// host's processes as 0. Paths in `/proc/<pid>/cgroup` may be relative to
/// the reader's cgroup namespace, hence matching by the last component.
pub fn pids_by_leaf(proc_root: &Path, leaves: &[&str]) -> BTreeMap<String, Vec<String>> {
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let Ok(entries) = std::fs::read_dir(proc_root) else {
        return out;
    };
    for entry in entries.flatten() {
        let Ok(pid) = entry.file_name().into_string() else {
            continue;
        };
        if !pid.bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        let Ok(text) = std::fs::read_to_string(entry.path().join("cgroup")) else {
            continue;
        };
        let leaf = text.lines().find_map(|line| {
            let path = line.splitn(3, ':').nth(2)?;
            let last = path.rsplit('/').next()?;
            leaves.iter().find(|l| **l == last)
        });
        if let Some(leaf) = leaf {
            out.entry(leaf.to_string()).or_default().push(pid);
        }
    }
    out
}

#[cfg(test)]
mod tests;
