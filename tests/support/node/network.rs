//! A node's network: its own network namespace joined to this machine by a veth pair (node 1's
//! names and addresses below; node `i` takes the next subnets, see spec.rs).
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

use super::spec::NodeSpec;

/// The machine's address on node 1's network: the apiserver listens here.
pub const HOST_IP: &str = "10.123.0.1";
/// Node 1's address (its InternalIP; kubelet listens here).
pub const NODE_IP: &str = "10.123.0.2";
/// The cluster's pod range (kube-proxy's clusterCIDR).
pub const CLUSTER_CIDR: &str = "10.124.0.0/16";

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

/// Creates the node's namespace, the veth pair, addresses and routes. Expects none of it to
/// exist (tools/node/cleanup.sh runs first). Node 1's route covers the whole cluster range;
/// other nodes' more specific subnets win over it.
pub fn create(node: &NodeSpec) -> Result<(), String> {
    let (netns, veth) = (node.netns.as_str(), node.host_veth.as_str());
    ip(&["netns", "add", netns])?;
    ip(&[
        "link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", netns,
    ])?;
    ip(&["addr", "add", &format!("{}/30", node.host_ip), "dev", veth])?;
    ip(&["link", "set", veth, "up"])?;
    ip(&["-n", netns, "link", "set", "lo", "up"])?;
    ip(&[
        "-n",
        netns,
        "addr",
        "add",
        &format!("{}/30", node.node_ip),
        "dev",
        "eth0",
    ])?;
    ip(&["-n", netns, "link", "set", "eth0", "up"])?;
    // Service cluster IPs need a route to enter the node's routing (kube-proxy DNATs them); the
    // apiserver (on node 1's link) is reached through this machine.
    ip(&["-n", netns, "route", "add", "default", "via", &node.host_ip])?;
    // Replies from the apiserver to pods.
    let pods = if node.index == 1 {
        CLUSTER_CIDR
    } else {
        node.pod_subnet.as_str()
    };
    ip(&["route", "add", pods, "via", &node.node_ip])?;
    // Pods' traffic to the apiserver is routed through the node (as on any node).
    let out = Command::new("ip")
        .args([
            "netns",
            "exec",
            netns,
            "sysctl",
            "-qw",
            "net.ipv4.ip_forward=1",
        ])
        .output()
        .map_err(|e| format!("cannot run `ip netns exec sysctl`: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "enabling forwarding in {netns}: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(())
}

/// Path of the namespace for `nsenter --net=`.
pub fn netns_path(node: &NodeSpec) -> String {
    format!("/run/netns/{}", node.netns)
}
