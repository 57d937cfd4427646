//! The node's network: its own network namespace joined to this machine by a veth pair.
//!
//! ```text
//!  this machine (host netns)                   node netns "fgm-node"
//!  kube-apiserver 10.123.0.1 ── fgm-node0 ═══ eth0 10.123.0.2 ── kubelet, kube-proxy, containerd
//!  route 10.124.0.0/16 via 10.123.0.2                 └ bridge fgm-cni0 10.124.0.1 ── pods 10.124.0.x
//! ```
//!
//! kube-proxy's iptables rules, the CNI bridge and every pod interface live inside the node's
//! namespace, so deleting it removes them all and nothing touches the machine's own rules. Pods
//! reach the apiserver as in any cluster: `kubernetes` Service (10.96.0.1:443) → kube-proxy DNAT →
//! 10.123.0.1. Nothing routes further: the machine does not forward.

use std::process::Command;

/// Name of the node's network namespace (also in tools/node/cleanup.sh).
pub const NETNS: &str = "fgm-node";
/// Host side of the veth pair (also in tools/node/cleanup.sh).
pub const HOST_VETH: &str = "fgm-node0";
/// The machine's address on the node network: the apiserver listens here.
pub const HOST_IP: &str = "10.123.0.1";
/// The node's address (its InternalIP; kubelet listens here).
pub const NODE_IP: &str = "10.123.0.2";
/// Pod addresses on the node (the CNI bridge's subnet).
pub const POD_SUBNET: &str = "10.124.0.0/24";
/// The cluster's pod range (kube-proxy's clusterCIDR).
pub const CLUSTER_CIDR: &str = "10.124.0.0/16";
/// Gateway of the pod subnet (the bridge's address).
pub const POD_GATEWAY: &str = "10.124.0.1";

/// Runs `ip args...`, or an error with its output.
fn ip(args: &[&str]) -> Result<(), String> {
    let out = Command::new("ip")
        .args(args)
        .output()
        .map_err(|e| format!("cannot run `ip` (iproute2; `apt-get install iproute2`): {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "ip {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// Creates the namespace, the veth pair, addresses and routes. Expects none of it to exist
/// (tools/node/cleanup.sh runs first).
pub fn create() -> Result<(), String> {
    ip(&["netns", "add", NETNS])?;
    ip(&[
        "link", "add", HOST_VETH, "type", "veth", "peer", "name", "eth0", "netns", NETNS,
    ])?;
    ip(&["addr", "add", &format!("{HOST_IP}/30"), "dev", HOST_VETH])?;
    ip(&["link", "set", HOST_VETH, "up"])?;
    ip(&["-n", NETNS, "link", "set", "lo", "up"])?;
    ip(&[
        "-n",
        NETNS,
        "addr",
        "add",
        &format!("{NODE_IP}/30"),
        "dev",
        "eth0",
    ])?;
    ip(&["-n", NETNS, "link", "set", "eth0", "up"])?;
    // Service cluster IPs need a route to enter the node's routing (kube-proxy DNATs them).
    ip(&["-n", NETNS, "route", "add", "default", "via", HOST_IP])?;
    // Replies from the apiserver to pods.
    ip(&["route", "add", CLUSTER_CIDR, "via", NODE_IP])?;
    // Pods' traffic to the apiserver is routed through the node (as on any node).
    let out = Command::new("ip")
        .args([
            "netns",
            "exec",
            NETNS,
            "sysctl",
            "-qw",
            "net.ipv4.ip_forward=1",
        ])
        .output()
        .map_err(|e| format!("cannot run `ip netns exec sysctl`: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "enabling forwarding in {NETNS}: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(())
}

/// Path of the namespace for `nsenter --net=`.
pub fn netns_path() -> String {
    format!("/run/netns/{NETNS}")
}
