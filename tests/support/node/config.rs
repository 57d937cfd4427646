//! Configuration files of the node's daemons, as text: containerd, the CNI network, kubelet and
//! kube-proxy. Pure functions of the node's paths and addresses.

use std::path::Path;

use super::network::CLUSTER_CIDR;
use super::spec::NodeSpec;

/// Image containerd runs as every pod's sandbox (assembled by tools/image/build-test-images.sh).
pub const PAUSE_IMAGE: &str = "localhost/fgm-pause:test";

/// containerd 2.x (config version 3): CRI with runc on the cgroupfs driver, pod network
/// namespaces under its state directory, our CNI plugins and network.
pub fn containerd(
    root: &Path,
    state: &Path,
    socket: &Path,
    runc: &Path,
    cni_bin: &Path,
    cni_conf: &Path,
) -> String {
    format!(
        r#"version = 3
root = "{root}"
state = "{state}"

[grpc]
  address = "{socket}"

[ttrpc]
  address = "{socket}.ttrpc"

[plugins."io.containerd.cri.v1.images"]
  snapshotter = "overlayfs"
  [plugins."io.containerd.cri.v1.images".pinned_images]
    sandbox = "{PAUSE_IMAGE}"

[plugins."io.containerd.cri.v1.runtime"]
  # Under the state directory, so tools/node/cleanup.sh finds and unmounts them.
  netns_mounts_under_state_dir = true
  # This machine's capability bounding set lacks CAP_SYS_RESOURCE, so no process may set a
  # negative oom_score_adj (the sandbox's -998 fails in runc init): clamp to containerd's own,
  # as kind does in user namespaces. Cgroup OOM kills at a memory limit are unaffected.
  restrict_oom_score_adj = true
  [plugins."io.containerd.cri.v1.runtime".containerd]
    default_runtime_name = "runc"
    [plugins."io.containerd.cri.v1.runtime".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.cri.v1.runtime".containerd.runtimes.runc.options]
        BinaryName = "{runc}"
        SystemdCgroup = false
  [plugins."io.containerd.cri.v1.runtime".cni]
    bin_dirs = ["{cni_bin}"]
    conf_dir = "{cni_conf}"

[plugins."io.containerd.grpc.v1.cri"]
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
"#,
        root = root.display(),
        state = state.display(),
        socket = socket.display(),
        runc = runc.display(),
        cni_bin = cni_bin.display(),
        cni_conf = cni_conf.display(),
    )
}

/// The pod network: a bridge with the gateway address, host-local addresses, port mappings.
pub fn cni_conflist(node: &NodeSpec, ipam_dir: &Path) -> String {
    serde_json::json!({
        "cniVersion": "1.0.0",
        "name": "fgm-pods",
        "plugins": [
            {
                "type": "bridge",
                "bridge": "fgm-cni0",
                "isGateway": true,
                "ipMasq": false,
                "hairpinMode": true,
                "ipam": {
                    "type": "host-local",
                    "dataDir": ipam_dir.display().to_string(),
                    "ranges": [[{ "subnet": node.pod_subnet, "gateway": node.pod_gateway }]],
                    "routes": [{ "dst": "0.0.0.0/0" }],
                },
            },
            { "type": "portmap", "capabilities": { "portMappings": true } },
        ],
    })
    .to_string()
}

/// Paths the kubelet configuration names.
pub struct KubeletPaths<'a> {
    pub containerd_socket: &'a Path,
    pub ca_cert: &'a Path,
    pub tls_cert: &'a Path,
    pub tls_key: &'a Path,
    pub resolv_conf: &'a Path,
    pub pod_logs: &'a Path,
}

/// KubeletConfiguration: cgroupfs driver on this machine's hybrid cgroups under `cgroup_root`,
/// webhook authentication and authorization, no read-only port, eviction thresholds low enough
/// that a busy test machine does not evict the test's pods. Disk thresholds are absolute: 1 % of
/// a large shared disk is gigabytes, and a CI machine with ~2 GiB free would be under disk pressure.
pub fn kubelet(paths: &KubeletPaths, node: &NodeSpec) -> String {
    format!(
        r#"apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
cgroupDriver: cgroupfs
cgroupRoot: {cgroup_root}
cgroupsPerQOS: true
failCgroupV1: false
failSwapOn: false
# No CAP_SYS_RESOURCE here (see containerd's restrict_oom_score_adj): kubelet keeps its own score.
oomScoreAdj: 0
containerRuntimeEndpoint: unix://{socket}
address: {node_ip}
port: 10250
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: 10248
tlsCertFile: {tls_cert}
tlsPrivateKeyFile: {tls_key}
authentication:
  anonymous:
    enabled: false
  webhook:
    enabled: true
  x509:
    clientCAFile: {ca}
authorization:
  mode: Webhook
resolvConf: {resolv}
podLogsDir: {pod_logs}
clusterDomain: cluster.local
enforceNodeAllocatable: ["pods"]
evictionHard:
  memory.available: "50Mi"
  nodefs.available: "256Mi"
  nodefs.inodesFree: "1%"
  imagefs.available: "256Mi"
imageGCHighThresholdPercent: 99
imageGCLowThresholdPercent: 98
serializeImagePulls: false
nodeStatusUpdateFrequency: 4s
syncFrequency: 10s
maxPods: 110
"#,
        socket = paths.containerd_socket.display(),
        tls_cert = paths.tls_cert.display(),
        tls_key = paths.tls_key.display(),
        ca = paths.ca_cert.display(),
        resolv = paths.resolv_conf.display(),
        pod_logs = paths.pod_logs.display(),
        cgroup_root = node.cgroup_root,
        node_ip = node.node_ip,
    )
}

/// KubeProxyConfiguration: iptables mode inside the node's namespace; conntrack sysctls left
/// alone (they are not per namespace).
pub fn kube_proxy(kubeconfig: &Path, node: &NodeSpec) -> String {
    format!(
        r#"apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
clientConnection:
  kubeconfig: {kubeconfig}
mode: iptables
clusterCIDR: {CLUSTER_CIDR}
hostnameOverride: {node_name}
bindAddress: {node_ip}
healthzBindAddress: 127.0.0.1:10256
metricsBindAddress: 127.0.0.1:10249
conntrack:
  maxPerCore: 0
  min: 0
  tcpEstablishedTimeout: 0s
  tcpCloseWaitTimeout: 0s
"#,
        kubeconfig = kubeconfig.display(),
        node_name = node.name,
        node_ip = node.node_ip,
    )
}
