//! The monitor pod's least privilege as the real kubelet runs it (issue #17 on the real node):
//! processes' users and capabilities, who owns the data, what listens where, and a symlink in
//! the data root that a NodeMonitor tries to escape through.

use std::net::{SocketAddr, TcpStream};
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::time::Duration;

use serde_json::Value;

use crate::kube_cli::{apply, container_id, eventually, get, items, run_ok};
use crate::support::node::{DATA_DIR, NODE_NAME, World};

/// The agent's user: the image's `nonroot`.
const AGENT_UID: u32 = 65532;
/// The viewer's user: `nobody`.
const VIEWER_UID: u32 = 65534;

/// `Uid:` (effective) and `CapEff:` of a process, from /proc.
fn uid_and_caps(pid: &str) -> (u32, String) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("process status");
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .map(|v| v.split_whitespace().collect::<Vec<_>>())
            .unwrap_or_default()
    };
    let uid = field("Uid:")[1].parse().expect("uid");
    (uid, field("CapEff:")[0].to_string())
}

/// The processes of a pod's container, from its cgroup on the node.
fn container_pids(world: &World, pod: &Value, container: &str) -> Vec<String> {
    let uid = pod["metadata"]["uid"].as_str().expect("pod uid");
    let id = container_id(pod, container).expect("container id");
    let cgroup = world
        .container_cgroup("pids", uid, &id)
        .unwrap_or_else(|| panic!("{container}'s cgroup under /kubelet/kubepods"));
    std::fs::read_to_string(cgroup.join("cgroup.procs"))
        .expect("cgroup.procs")
        .lines()
        .map(str::to_string)
        .collect()
}

/// Every path below `dir` with its owner.
fn owners(dir: &Path, out: &mut Vec<(String, u32)>) {
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        // A file removed by retention between the listing and the stat is skipped.
        let Ok(meta) = std::fs::symlink_metadata(&path) else {
            continue;
        };
        out.push((path.display().to_string(), meta.uid()));
        if meta.is_dir() {
            owners(&path, out);
        }
    }
}

/// The running monitor pod: init container done, agent as 65532 and viewer as nobody with no
/// capabilities, every data file the agent's, the viewer only on the pod's loopback while the
/// agent's metrics answer on the pod address.
pub fn monitor_runs_locked_down(world: &World, monitor: &Value) {
    let init = &monitor["status"]["initContainerStatuses"][0];
    assert_eq!(init["name"], "prepare-data-dir", "{init}");
    assert_eq!(init["state"]["terminated"]["exitCode"], 0, "{init}");
    for (container, want_uid) in [("agent", AGENT_UID), ("viewer", VIEWER_UID)] {
        let pids = container_pids(world, monitor, container);
        assert!(!pids.is_empty(), "{container} has processes");
        for pid in pids {
            let (uid, caps) = uid_and_caps(&pid);
            assert_eq!(uid, want_uid, "{container} process {pid} runs as {uid}");
            assert_eq!(
                caps, "0000000000000000",
                "{container} process {pid} has capabilities"
            );
        }
    }
    // The host's cgroup tree and /proc are read-only in the agent all the way down: a plain
    // read-only hostPath leaves each v1 controller mount below /sys/fs/cgroup writable.
    let agent = container_pids(world, monitor, "agent");
    let mountinfo = std::fs::read_to_string(format!("/proc/{}/mountinfo", agent[0]))
        .expect("the agent's mountinfo");
    let host_mounts: Vec<&str> = mountinfo
        .lines()
        .filter(|l| l.split(' ').nth(4).is_some_and(|p| p.starts_with("/host/")))
        .collect();
    assert!(
        host_mounts.len() > 2,
        "host mounts in the agent: {host_mounts:?}"
    );
    for line in &host_mounts {
        let options = line.split(' ').nth(5).unwrap_or("");
        assert!(
            options.split(',').any(|o| o == "ro"),
            "a host mount in the agent is writable: {line}"
        );
    }
    let mut files = Vec::new();
    owners(Path::new(DATA_DIR), &mut files);
    assert!(files.len() > 3, "the agent wrote data: {files:?}");
    let foreign: Vec<_> = files.iter().filter(|(_, uid)| *uid != AGENT_UID).collect();
    assert!(
        foreign.is_empty(),
        "data not owned by the agent: {foreign:?}"
    );

    // The pod's address is routed to from this machine (the node network): the agent's
    // metrics answer there, the viewer does not (port-forward reaches it on loopback).
    let ip = monitor["status"]["podIP"].as_str().expect("pod IP");
    let reach = |port: u16| {
        let addr: SocketAddr = format!("{ip}:{port}").parse().expect("address");
        TcpStream::connect_timeout(&addr, Duration::from_secs(3)).is_ok()
    };
    assert!(reach(9810), "the agent's metrics port answers on {ip}:9810");
    assert!(
        !reach(8050),
        "the viewer must not listen on the pod address {ip}:8050"
    );
}

/// Owner, group and mode of `/etc` and its direct entries.
fn etc_owners() -> Vec<(String, u32, u32, u32)> {
    let mut out: Vec<_> = std::fs::read_dir("/etc")
        .expect("list /etc")
        .flatten()
        .filter_map(|e| {
            let m = std::fs::symlink_metadata(e.path()).ok()?;
            Some((e.path().display().to_string(), m.uid(), m.gid(), m.mode()))
        })
        .collect();
    let m = std::fs::metadata("/etc").expect("stat /etc");
    out.push(("/etc".into(), m.uid(), m.gid(), m.mode()));
    out.sort();
    out
}

/// A symlink inside the allowed data root pointing at /etc, and a NodeMonitor whose data path
/// goes through it: the kubelet refuses the subPath, the pod never runs, /etc keeps its owners.
pub fn symlink_escape_refused(world: &World) {
    apply(
        world,
        "apiVersion: v1\nkind: Namespace\nmetadata: { name: fgm-attack }\n",
    );
    eventually(
        world,
        "fgm-attack/default ServiceAccount",
        Duration::from_secs(60),
        || {
            get(world, &["serviceaccount", "-n", "fgm-attack", "default"])
                .map(|_| ())
                .ok_or_else(|| "missing".to_string())
        },
    );
    let link = Path::new(DATA_DIR).join("escape");
    std::os::unix::fs::symlink("/etc", &link).expect("create the symlink");
    let before = etc_owners();
    apply(
        world,
        &format!(
            "apiVersion: fgm.dev/v1alpha1\nkind: NodeMonitor\nmetadata: {{ name: escape, namespace: fgm-attack }}\n\
             spec:\n  dataHostPath: {DATA_DIR}/escape\n  nodeSelector: {{ kubernetes.io/hostname: {NODE_NAME} }}\n"
        ),
    );
    let selector = "app.kubernetes.io/instance=escape";
    let waiting = eventually(
        world,
        "escape pod refused by the kubelet",
        Duration::from_secs(120),
        || {
            let pods = items(world, &["pods", "-n", "fgm-attack", "-l", selector]);
            let pod = pods.first().ok_or("no pod yet")?;
            let statuses = pod["status"]["initContainerStatuses"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            let reason = statuses
                .iter()
                .find_map(|s| s["state"]["waiting"]["reason"].as_str().map(str::to_string))
                .unwrap_or_default();
            if reason.starts_with("CreateContainer") {
                Ok(reason)
            } else {
                Err(format!(
                    "phase {} statuses {statuses:?}",
                    pod["status"]["phase"]
                ))
            }
        },
    );
    let events = run_ok(
        world,
        world
            .cp
            .kubectl()
            .args(["get", "events", "-n", "fgm-attack"]),
    );
    assert!(
        events.to_lowercase().contains("subpath"),
        "the kubelet names the subPath ({waiting}):\n{events}"
    );
    let pods = items(world, &["pods", "-n", "fgm-attack", "-l", selector]);
    assert!(
        pods.iter().all(|p| p["status"]["phase"] != "Running"),
        "an escaping pod must never run"
    );
    assert_eq!(etc_owners(), before, "/etc changed owners or modes");
    run_ok(
        world,
        world.cp.kubectl().args([
            "delete",
            "nodemonitor",
            "escape",
            "-n",
            "fgm-attack",
            "--wait",
        ]),
    );
    eventually(world, "escape pod gone", Duration::from_secs(60), || {
        if items(world, &["pods", "-n", "fgm-attack"]).is_empty() {
            Ok(())
        } else {
            Err("pods left".into())
        }
    });
    std::fs::remove_file(&link).expect("remove the symlink");
    assert!(get(world, &["nodemonitor", "-n", "fgm-attack", "escape"]).is_none());
}
