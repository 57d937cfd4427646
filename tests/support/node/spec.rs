//! Names, addresses and directories of each node of the test world. Node 1 keeps the names of
//! the one-node world (`fgm-node`, `/kubelet`, 10.123.0.2, pods in 10.124.0.0/24); node `i`
//! adds `-i` and takes the subnets `10.123.(i-1).0/30` and `10.124.(i-1).0/24`.
//!
//! Nodes share this machine's filesystem, so the monitor's default host data directory would
//! be one directory for every node's agent (one writer per directory: the second agent would
//! wait forever). Node 1 uses the machine's; every other node runs its daemons in a mount
//! namespace of its own where a directory of its own is bound over it, as a kind node has its
//! own filesystem.

use std::path::PathBuf;

/// The most nodes a world has (the janitor and the start-up clean all of them).
pub const MAX_NODES: usize = 4;

/// One node's names, addresses and directories.
#[derive(Debug, Clone)]
pub struct NodeSpec {
    /// 1-based.
    pub index: usize,
    /// Name the node registers under.
    pub name: String,
    /// kubelet's `--cgroup-root`: pods live under `<root>/kubepods/...` in every hierarchy.
    pub cgroup_root: String,
    /// Runtime state (sockets, pid files, pods' network namespaces).
    pub state_dir: PathBuf,
    /// Persistent state (containerd's images and snapshots, kubelet's root directory).
    pub lib_dir: PathBuf,
    /// The node's network namespace.
    pub netns: String,
    /// Host side of the veth pair into it.
    pub host_veth: String,
    /// This machine's address on the node's link (the first node's is the apiserver's).
    pub host_ip: String,
    /// The node's address (its InternalIP; kubelet listens here).
    pub node_ip: String,
    /// The node's pods' addresses (its CNI bridge's subnet) and their gateway.
    pub pod_subnet: String,
    pub pod_gateway: String,
    /// Where the monitor's default host data directory really is for this node.
    pub data_dir: PathBuf,
    /// The mount namespace the node's daemons run in (`None`: this machine's).
    pub mount_ns: Option<PathBuf>,
}

impl NodeSpec {
    pub fn of(index: usize) -> Self {
        assert!(
            (1..=MAX_NODES).contains(&index),
            "node {index} of at most {MAX_NODES}"
        );
        let net = index - 1;
        let suffix = if index == 1 {
            String::new()
        } else {
            format!("-{index}")
        };
        let state_dir = PathBuf::from(format!("/run/fgm-node{suffix}"));
        let lib_dir = PathBuf::from(format!("/var/lib/fgm-node{suffix}"));
        let (data_dir, mount_ns) = if index == 1 {
            (PathBuf::from(super::DATA_DIR), None)
        } else {
            (lib_dir.join("monitor-data"), Some(state_dir.join("mnt")))
        };
        Self {
            index,
            name: format!("fgm-node{suffix}"),
            cgroup_root: format!("/kubelet{suffix}"),
            netns: format!("fgm-node{suffix}"),
            host_veth: if index == 1 {
                "fgm-node0".into()
            } else {
                format!("fgm-node{index}h")
            },
            host_ip: format!("10.123.{net}.1"),
            node_ip: format!("10.123.{net}.2"),
            pod_subnet: format!("10.124.{net}.0/24"),
            pod_gateway: format!("10.124.{net}.1"),
            state_dir,
            lib_dir,
            data_dir,
            mount_ns,
        }
    }

    /// The environment tools/node/cleanup.sh reads for this node.
    pub fn cleanup_env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("FGM_NODE_NETNS", self.netns.clone()),
            ("FGM_NODE_STATE", self.state_dir.display().to_string()),
            ("FGM_NODE_LIB", self.lib_dir.display().to_string()),
            (
                "FGM_NODE_CGROUP_ROOT",
                self.cgroup_root.trim_start_matches('/').to_string(),
            ),
            ("FGM_NODE_DATA_DIRS", self.data_dir.display().to_string()),
            ("FGM_NODE_HOST_VETH", self.host_veth.clone()),
        ]
    }
}
