//! Real nodes in the test world (issue #16, two of them for issue #26): containerd, runc, CNI
//! plugins, kubelet and kube-proxy on this machine's cgroups, registered with a control plane of
//! their own.
//!
//! ```text
//!  test process ─┬─ etcd, kube-apiserver (10.123.0.1), controller-manager, scheduler, kwok
//!                ├─ [netns fgm-node] containerd ─ shims ─ runc ─ pods (cgroups under /kubelet)
//!                ├─ [netns fgm-node] kubelet (cgroupfs driver, --cgroup-root=/kubelet, hybrid v1+v2)
//!                ├─ [netns fgm-node] kube-proxy (iptables, in the node's namespace only)
//!                ├─ [netns, mount ns fgm-node-2] the same for node 2 (/kubelet-2, 10.123.1.2)
//!                └─ janitor: runs tools/node/cleanup.sh for every node when the test process goes away
//! ```
//!
//! Each node has its own kubelet cgroup root, network namespace, pod subnet, state, and monitor
//! data directory (spec.rs), so one node's agent never sees another's pods. The images the pods
//! run are OCI archives assembled from files (`make images`: the product image from the release
//! binaries, the pause and `fgm-stress` images from tools/image) and imported into each node's
//! containerd under the names the chart and the tests use, so `imagePullPolicy: IfNotPresent`
//! finds them: nothing is pulled.
//!
//! One world per machine: it holds `/run/fgm-node.lock` for its life (a `make cluster` world
//! left running makes a test wait, then fail naming `make cluster-down`). Every daemon is
//! tied to the test process like the control plane's (PR_SET_PDEATHSIG); containers outlive
//! their shims' parents, so the janitor removes them, their mounts, cgroups and the network
//! namespaces when the test process ends, however it ends.

pub mod config;
pub mod network;
pub mod spec;

pub use spec::{MAX_NODES, NodeSpec};

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use super::process::{PROCS, Proc, log_tail, on_supervisor, wait_until};
use super::{ControlPlane, Listen, find_bin, pki, set_control_plane, start_on};

/// Name node 1 registers under (node `i`: `fgm-node-i`).
pub const NODE_NAME: &str = "fgm-node";
/// Node 1's kubelet `--cgroup-root` (kind's choice): pods live under `/kubelet/kubepods/...` in every
/// hierarchy, not at the default root.
pub const CGROUP_ROOT: &str = "/kubelet";
/// Held for the world's life: one node world per machine.
pub const LOCK_FILE: &str = "/run/fgm-node.lock";
/// The product image as the chart and the operator name it.
pub const PRODUCT_IMAGE: &str = concat!(
    "ghcr.io/fine-grained-monitor/fine-grained-monitor:",
    env!("CARGO_PKG_VERSION")
);
/// The test workload image: `--cpu CORES`, `--memory SIZE`, `--memory-step SIZE`.
pub const STRESS_IMAGE: &str = "localhost/fgm-stress:test";
/// The monitor's default host data directory: the README's NodeMonitor writes there.
pub const DATA_DIR: &str = "/var/lib/fine-grained-monitor";
/// Marks [`DATA_DIR`] as the test world's, so tools/node/cleanup.sh may remove it.
const DATA_MARK: &str = ".fgm-test-node";
/// Archives `make images` writes, imported at start.
pub const IMAGE_ARCHIVES: [&str; 3] = [
    "fgm-pause.tar",
    "fgm-stress.tar",
    "fine-grained-monitor.tar",
];
/// CNI plugins the node needs, in `<bin dir>/cni`.
const CNI_PLUGINS: [&str; 4] = ["bridge", "host-local", "loopback", "portmap"];

/// The control plane plus the real nodes.
pub struct World {
    pub cp: &'static ControlPlane,
    /// Node 1's containerd socket (for `ctr`).
    pub containerd_socket: PathBuf,
    /// Where node 1's daemons' logs are.
    pub log_dir: PathBuf,
    /// Every node, node 1 first.
    pub nodes: Vec<Node>,
    /// From the first step to every node being Ready.
    pub startup: Duration,
    _lock: File,
}

/// One real node of the world.
pub struct Node {
    pub spec: NodeSpec,
    /// containerd's socket (for `ctr`).
    pub containerd_socket: PathBuf,
    /// Where the daemons' logs are.
    pub log_dir: PathBuf,
}

static WORLD: OnceLock<Result<World, String>> = OnceLock::new();

/// The one-node world of this process, started on first use. Panics (failing the calling test)
/// with the reason when it cannot start: not root, a missing binary or image, a daemon that
/// exits.
pub fn world() -> &'static World {
    world_of(1)
}

/// The world of this process with `nodes` real nodes (at most [`MAX_NODES`]); a process has
/// one world, so every caller asks for the same count.
pub fn world_of(nodes: usize) -> &'static World {
    match WORLD.get_or_init(|| start(nodes)) {
        Ok(w) if w.nodes.len() == nodes => w,
        Ok(w) => panic!(
            "this process's test world has {} node(s), {nodes} asked for",
            w.nodes.len()
        ),
        Err(e) => panic!("test world's real node unavailable: {e}"),
    }
}

/// Directory of the image archives: `$FGM_IMAGES_DIR`, else `target/images`.
pub fn images_dir() -> PathBuf {
    std::env::var_os("FGM_IMAGES_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target/images"))
}

fn repo_root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Everything the node needs that a build makes, or an error naming the build command.
fn check_prerequisites() -> Result<(), String> {
    let uid = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Uid:"))
                .and_then(|v| v.split_whitespace().nth(1).map(str::to_string))
        })
        .unwrap_or_default();
    if uid != "0" {
        return Err(format!(
            "the real node runs kubelet and containerd and needs root (effective uid {uid})"
        ));
    }
    for bin in [
        "kubelet",
        "kube-proxy",
        "containerd",
        "containerd-shim-runc-v2",
        "ctr",
        "runc",
    ] {
        find_bin(bin)?;
    }
    for plugin in CNI_PLUGINS {
        find_bin(&format!("cni/{plugin}"))?;
    }
    for tool in ["ip", "nsenter", "iptables", "mount"] {
        let found = std::env::var_os("PATH")
            .is_some_and(|paths| std::env::split_paths(&paths).any(|dir| dir.join(tool).is_file()));
        if !found {
            return Err(format!(
                "`{tool}` not found on PATH: `make test` installs it"
            ));
        }
    }
    for archive in IMAGE_ARCHIVES {
        let path = images_dir().join(archive);
        if !path.is_file() {
            return Err(format!(
                "image archive {} not found: build the images with `make images`",
                path.display()
            ));
        }
    }
    Ok(())
}

/// Takes the machine-wide node lock, waiting up to 90 s (a janitor may still be cleaning up
/// after the previous world).
fn take_lock() -> Result<File, String> {
    let file = File::create(LOCK_FILE).map_err(|e| format!("cannot create {LOCK_FILE}: {e}"))?;
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        match file.try_lock() {
            Ok(()) => return Ok(file),
            Err(std::fs::TryLockError::WouldBlock) if Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(200));
            }
            Err(std::fs::TryLockError::WouldBlock) => {
                return Err(format!(
                    "another node world holds {LOCK_FILE} (a `make cluster` left running? \
                     stop it with `make cluster-down`)"
                ));
            }
            Err(std::fs::TryLockError::Error(e)) => {
                return Err(format!("cannot lock {LOCK_FILE}: {e}"));
            }
        }
    }
}

/// Runs tools/node/cleanup.sh for every node a world may have, and waits for it.
fn cleanup_leftovers() -> Result<(), String> {
    let script = repo_root().join("tools/node/cleanup.sh");
    for index in 1..=MAX_NODES {
        let out = Command::new("bash")
            .arg(&script)
            .arg("--keep-images")
            .envs(NodeSpec::of(index).cleanup_env())
            .output()
            .map_err(|e| format!("cannot run {}: {e}", script.display()))?;
        let said = String::from_utf8_lossy(&out.stderr);
        if !said.trim().is_empty() {
            eprintln!("{}", said.trim_end());
        }
        if !out.status.success() {
            return Err(format!("{} failed: {said}", script.display()));
        }
    }
    Ok(())
}

/// Creates a node's monitor data directory with the test world's mark. A directory there
/// without the mark holds data the test world did not write: refused, never removed.
fn claim_data_dir(node: &NodeSpec) -> Result<(), String> {
    let dir = node.data_dir.as_path();
    if dir.exists() {
        return Err(format!(
            "{} exists and was not made by the test world (no {DATA_MARK}): the real \
             node's monitor would write there and the janitor would not remove it; move it away",
            dir.display()
        ));
    }
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    write(
        &dir.join(DATA_MARK),
        "made by tests/support/node; removed with the test world\n",
    )
}

/// The mount namespace of a node other than the first: a copy of this machine's with the
/// node's own data directory bound over the monitor's default one, kept by a bind of its
/// nsfs file under the node's state directory (which must not be a shared mount for that).
fn create_mount_namespace(node: &NodeSpec) -> Result<(), String> {
    let Some(ns) = node.mount_ns.as_deref() else {
        return Ok(());
    };
    let state = node.state_dir.display().to_string();
    let sh = |args: &[&str], what: &str| -> Result<(), String> {
        let mut cmd = Command::new(args[0]);
        cmd.args(&args[1..]);
        run(cmd, what).map(|_| ())
    };
    std::fs::create_dir_all(&node.state_dir).map_err(|e| format!("cannot create {state}: {e}"))?;
    sh(
        &["mount", "--bind", &state, &state],
        "bind the node's state directory",
    )?;
    sh(
        &["mount", "--make-private", &state],
        "make the node's state directory private",
    )?;
    File::create(ns).map_err(|e| format!("cannot create {}: {e}", ns.display()))?;
    let ns_arg = format!("--mount={}", ns.display());
    sh(
        &["unshare", &ns_arg, "--propagation", "slave", "true"],
        "unshare a mount namespace for the node",
    )?;
    let data = node.data_dir.display().to_string();
    sh(
        &["nsenter", &ns_arg, "--", "mount", "--bind", &data, DATA_DIR],
        "bind the node's data directory in its mount namespace",
    )
}

/// Creates the cgroup root in every hierarchy (kubelet refuses to start without it), with the
/// cpuset of the root so tasks may join.
fn create_cgroup_root(cgroup_root: &str) -> Result<(), String> {
    let name = cgroup_root.trim_start_matches('/');
    let hierarchies = std::fs::read_dir("/sys/fs/cgroup")
        .map_err(|e| format!("cannot list /sys/fs/cgroup: {e}"))?;
    for entry in hierarchies.flatten() {
        let h = entry.path();
        if !h.join("cgroup.procs").is_file() {
            continue;
        }
        let dir = h.join(name);
        std::fs::create_dir_all(&dir)
            .map_err(|e| format!("cannot create cgroup {}: {e}", dir.display()))?;
        for file in ["cpuset.cpus", "cpuset.mems"] {
            if let Ok(value) = std::fs::read_to_string(h.join(file)) {
                std::fs::write(dir.join(file), value.trim())
                    .map_err(|e| format!("cannot write {}: {e}", dir.join(file).display()))?;
            }
        }
    }
    Ok(())
}

fn write(path: &Path, text: &str) -> Result<(), String> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)
            .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    }
    std::fs::write(path, text).map_err(|e| format!("cannot write {}: {e}", path.display()))
}

/// Starts `bin args...` inside the node's network (and mount) namespace, tied to this process
/// like the control plane's children, with its pid in `<state dir>/<name>.pid` for the janitor.
fn spawn_in_node(
    node: &NodeSpec,
    name: &str,
    bin: &Path,
    args: &[String],
    log_dir: &Path,
) -> Result<Proc, String> {
    let log = log_dir.join(format!("{name}.log"));
    let out = File::create(&log).map_err(|e| format!("cannot create {}: {e}", log.display()))?;
    let err = out
        .try_clone()
        .map_err(|e| format!("cannot clone {}: {e}", log.display()))?;
    let bin_dir = super::bin_dir();
    let path = std::env::var("PATH").unwrap_or_default();
    let mount = node
        .mount_ns
        .as_ref()
        .map(|ns| format!("--mount={}", ns.display()));
    let child = Command::new("setpriv")
        .args(["--pdeathsig", "KILL", "--", "nsenter"])
        .arg(format!("--net={}", network::netns_path(node)))
        .args(mount)
        .arg("--")
        .arg(bin)
        .args(args)
        // containerd finds its shim, the shim runc, on PATH.
        .env("PATH", format!("{}:{path}", bin_dir.display()))
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .spawn()
        .map_err(|e| format!("cannot start {name} (setpriv, nsenter: util-linux): {e}"))?;
    write(
        &node.state_dir.join(format!("{name}.pid")),
        &child.id().to_string(),
    )?;
    let name = format!("{name}@{}", node.name);
    PROCS
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .push((name.clone(), child.id()));
    Ok(Proc { name, child, log })
}

/// The janitor: a shell that waits, and when this process goes away (SIGTERM by
/// PR_SET_PDEATHSIG) runs tools/node/cleanup.sh for every node under the node lock.
fn spawn_janitor(log_dir: &Path) -> Result<(), String> {
    let script = repo_root().join("tools/node/cleanup.sh");
    let log = log_dir.join("janitor.log");
    let out = File::create(&log).map_err(|e| format!("cannot create {}: {e}", log.display()))?;
    let cleanups: Vec<String> = (1..=MAX_NODES)
        .map(|index| {
            let env: Vec<String> = NodeSpec::of(index)
                .cleanup_env()
                .into_iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            format!(
                "env {} bash {} --keep-images",
                env.join(" "),
                script.display()
            )
        })
        .collect();
    let body = format!(
        "trap 'kill $sleeper 2>/dev/null; flock {LOCK_FILE} bash -c \"{}\"; exit 0' TERM; \
         sleep infinity & sleeper=$!; wait $sleeper",
        cleanups.join("; ")
    );
    let child = Command::new("setpriv")
        .args(["--pdeathsig", "TERM", "--", "bash", "-c", &body])
        .stdin(Stdio::null())
        .stdout(out.try_clone().map_err(|e| e.to_string())?)
        .stderr(out)
        .spawn()
        .map_err(|e| format!("cannot start the node janitor: {e}"))?;
    PROCS
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .push(("janitor".into(), child.id()));
    Ok(())
}

/// `ctr` on the node's containerd, in the namespace CRI uses.
pub fn ctr(socket: &Path) -> Command {
    let mut cmd = Command::new(super::bin_dir().join("ctr"));
    cmd.args(["--address"])
        .arg(socket)
        .args(["--namespace", "k8s.io"]);
    cmd
}

fn run(mut cmd: Command, what: &str) -> Result<String, String> {
    let out = cmd
        .output()
        .map_err(|e| format!("cannot run {what}: {e}"))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(format!(
            "{what} failed ({}): {}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

/// Imports the image archives into containerd (k8s.io namespace, unpacked for CRI).
fn import_images(socket: &Path) -> Result<(), String> {
    for archive in IMAGE_ARCHIVES {
        let path = images_dir().join(archive);
        let mut cmd = ctr(socket);
        cmd.args(["images", "import"]).arg(&path);
        run(cmd, &format!("ctr images import {}", path.display()))?;
    }
    Ok(())
}

fn start(nodes: usize) -> Result<World, String> {
    let began = Instant::now();
    if !(1..=MAX_NODES).contains(&nodes) {
        return Err(format!("a world has 1 to {MAX_NODES} nodes, not {nodes}"));
    }
    check_prerequisites()?;
    let lock = take_lock()?;
    cleanup_leftovers()?;
    let specs: Vec<NodeSpec> = (1..=nodes).map(NodeSpec::of).collect();
    for spec in &specs {
        claim_data_dir(spec)?;
        network::create(spec)?;
    }
    let listen = Listen {
        address: network::HOST_IP,
        service_endpoints: true,
    };
    let cp = set_control_plane(on_supervisor(move || start_on(listen)));
    cp.start_workloads();
    let janitor_log = cp.dir.join("node");
    std::fs::create_dir_all(&janitor_log)
        .map_err(|e| format!("cannot create {}: {e}", janitor_log.display()))?;
    on_supervisor(move || spawn_janitor(&janitor_log))?;
    let mut started = Vec::new();
    for spec in specs {
        started.push(start_node(cp, spec)?);
    }
    let mut ready = Vec::new();
    for (node, daemons) in started {
        wait_ready(cp, &node, daemons)?;
        ready.push(node);
    }
    let startup = began.elapsed();
    eprintln!(
        "node: {} Ready in {startup:.1?} (kubelet, containerd, kube-proxy logs in {})",
        ready
            .iter()
            .map(|n| n.spec.name.as_str())
            .collect::<Vec<_>>()
            .join(", "),
        ready[0].log_dir.display()
    );
    Ok(World {
        cp,
        containerd_socket: ready[0].containerd_socket.clone(),
        log_dir: ready[0].log_dir.clone(),
        nodes: ready,
        startup,
        _lock: lock,
    })
}

/// Starts one node's containerd (images imported), kubelet and kube-proxy; returns the node and
/// its daemons, not yet waited for.
fn start_node(cp: &'static ControlPlane, spec: NodeSpec) -> Result<(Node, [Proc; 3]), String> {
    let state = spec.state_dir.clone();
    let lib = spec.lib_dir.clone();
    let suffix = if spec.index == 1 {
        String::new()
    } else {
        format!("-{}", spec.index)
    };
    let log_dir = cp.dir.join(format!("node{suffix}"));
    std::fs::create_dir_all(&log_dir)
        .map_err(|e| format!("cannot create {}: {e}", log_dir.display()))?;
    std::fs::create_dir_all(&state)
        .map_err(|e| format!("cannot create {}: {e}", state.display()))?;
    create_mount_namespace(&spec)?;
    create_cgroup_root(&spec.cgroup_root)?;

    // Identities: kubelet as system:node:<name> (Node authorizer), its serving certificate for
    // the apiserver's port-forward, logs and exec calls, and kube-proxy's default binding.
    let (kubelet_cert, kubelet_key) = pki::client_cert(
        &cp.dir,
        &format!("kubelet-client{suffix}"),
        &format!("/O=system:nodes/CN=system:node:{}", spec.name),
    )?;
    let (serving_cert, serving_key) = pki::serving_cert(
        &cp.dir,
        &format!("kubelet-serving{suffix}"),
        &format!("/CN={}", spec.name),
        &[&spec.node_ip],
    )?;
    let (proxy_cert, proxy_key) = pki::client_cert(
        &cp.dir,
        &format!("kube-proxy-client{suffix}"),
        "/CN=system:kube-proxy",
    )?;
    let kubelet_kubeconfig = cp.dir.join(format!("kubelet{suffix}.kubeconfig"));
    write(
        &kubelet_kubeconfig,
        &pki::kubeconfig(
            &cp.server,
            &cp.pki,
            &pki::cert_user(&kubelet_cert, &kubelet_key),
        ),
    )?;
    let proxy_kubeconfig = cp.dir.join(format!("kube-proxy{suffix}.kubeconfig"));
    write(
        &proxy_kubeconfig,
        &pki::kubeconfig(
            &cp.server,
            &cp.pki,
            &pki::cert_user(&proxy_cert, &proxy_key),
        ),
    )?;

    let socket = state.join("containerd/containerd.sock");
    let cni_conf = state.join("cni/net.d");
    let containerd_toml = state.join("containerd.toml");
    write(
        &containerd_toml,
        &config::containerd(
            &lib.join("containerd"),
            &state.join("containerd"),
            &socket,
            &super::bin_dir().join("runc"),
            &super::bin_dir().join("cni"),
            &cni_conf,
        ),
    )?;
    write(
        &cni_conf.join("10-fgm-pods.conflist"),
        &config::cni_conflist(&spec, &lib.join("cni/networks")),
    )?;
    // No cluster DNS here: pods get a resolver that answers nothing rather than the machine's.
    let resolv = state.join("resolv.conf");
    write(&resolv, "nameserver 127.0.0.1\n")?;
    let kubelet_yaml = state.join("kubelet.yaml");
    write(
        &kubelet_yaml,
        &config::kubelet(
            &config::KubeletPaths {
                containerd_socket: &socket,
                ca_cert: &cp.pki.ca_cert,
                tls_cert: &serving_cert,
                tls_key: &serving_key,
                resolv_conf: &resolv,
                pod_logs: &lib.join("pod-logs"),
            },
            &spec,
        ),
    )?;
    let proxy_yaml = state.join("kube-proxy.yaml");
    write(&proxy_yaml, &config::kube_proxy(&proxy_kubeconfig, &spec))?;

    let containerd_bin = find_bin("containerd")?;
    let (log, sock, node) = (log_dir.clone(), socket.clone(), spec.clone());
    let args = vec![format!("--config={}", containerd_toml.display())];
    let mut containerd =
        on_supervisor(move || spawn_in_node(&node, "containerd", &containerd_bin, &args, &log))?;
    let ctr_socket = socket.clone();
    wait_until(
        "containerd",
        Duration::from_secs(60),
        &mut [&mut containerd],
        || {
            sock.exists()
                && ctr(&ctr_socket)
                    .arg("version")
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .status()
                    .is_ok_and(|s| s.success())
        },
    )?;
    import_images(&socket)?;

    let kubelet_bin = find_bin("kubelet")?;
    let kubelet_args = vec![
        format!("--config={}", kubelet_yaml.display()),
        format!("--kubeconfig={}", kubelet_kubeconfig.display()),
        format!("--hostname-override={}", spec.name),
        format!("--node-ip={}", spec.node_ip),
        format!("--root-dir={}", lib.join("kubelet").display()),
        "--v=2".into(),
    ];
    let (log, node) = (log_dir.clone(), spec.clone());
    let kubelet =
        on_supervisor(move || spawn_in_node(&node, "kubelet", &kubelet_bin, &kubelet_args, &log))?;
    let proxy_bin = find_bin("kube-proxy")?;
    let proxy_args = vec![format!("--config={}", proxy_yaml.display())];
    let (log, node) = (log_dir.clone(), spec.clone());
    let proxy =
        on_supervisor(move || spawn_in_node(&node, "kube-proxy", &proxy_bin, &proxy_args, &log))?;
    let node = Node {
        spec,
        containerd_socket: socket,
        log_dir,
    };
    Ok((node, [containerd, kubelet, proxy]))
}

/// Waits for the node to be Ready while its daemons run.
fn wait_ready(cp: &ControlPlane, node: &Node, daemons: [Proc; 3]) -> Result<(), String> {
    let [mut containerd, mut kubelet, mut proxy] = daemons;
    let mut kubectl = cp.kubectl();
    kubectl.args([
        "get",
        "node",
        &node.spec.name,
        "-o",
        r#"jsonpath={.status.conditions[?(@.type=="Ready")].status}"#,
    ]);
    wait_until(
        &format!("the real node {} Ready", node.spec.name),
        Duration::from_secs(180),
        &mut [&mut containerd, &mut kubelet, &mut proxy],
        || {
            kubectl
                .output()
                .is_ok_and(|o| o.status.success() && o.stdout == b"True")
        },
    )?;
    // The daemons run on, tied to this process; their ids stay in process::PROCS.
    drop((containerd, kubelet, proxy));
    Ok(())
}

impl World {
    /// The last lines of every node's daemons' logs, for failure messages.
    pub fn logs(&self) -> String {
        self.nodes
            .iter()
            .map(Node::logs)
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// `ctr` on node 1's containerd.
    pub fn ctr(&self) -> Command {
        ctr(&self.containerd_socket)
    }

    /// The cgroup directory of a pod's container on node 1 (see [`Node::container_cgroup`]).
    pub fn container_cgroup(
        &self,
        hierarchy: &str,
        pod_uid: &str,
        container_id: &str,
    ) -> Option<PathBuf> {
        self.nodes[0].container_cgroup(hierarchy, pod_uid, container_id)
    }

    /// The node named `name`.
    pub fn node(&self, name: &str) -> &Node {
        self.nodes
            .iter()
            .find(|n| n.spec.name == name)
            .unwrap_or_else(|| panic!("no node {name} in this world"))
    }
}

impl Node {
    /// The last lines of the node's daemons' logs.
    pub fn logs(&self) -> String {
        ["kubelet", "containerd", "kube-proxy"]
            .iter()
            .map(|name| {
                let path = self.log_dir.join(format!("{name}.log"));
                format!("--- {}:\n{}", path.display(), log_tail(&path, 3000))
            })
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// The cgroup directory of a pod's container in hierarchy `hierarchy` (`memory`, `cpu`,
    /// `unified`, ...): `/sys/fs/cgroup/<h>/<cgroup root>/kubepods/[<qos>/]pod<uid>/<id>`.
    pub fn container_cgroup(
        &self,
        hierarchy: &str,
        pod_uid: &str,
        container_id: &str,
    ) -> Option<PathBuf> {
        let base = Path::new("/sys/fs/cgroup")
            .join(hierarchy)
            .join(self.spec.cgroup_root.trim_start_matches('/'))
            .join("kubepods");
        let pod = format!("pod{pod_uid}");
        [
            base.join(&pod),
            base.join("burstable").join(&pod),
            base.join("besteffort").join(&pod),
        ]
        .into_iter()
        .map(|p| p.join(container_id))
        .find(|p| p.is_dir())
    }
}
