//! `make cluster [NODES=2]` / `make cluster-down`: the test world's cluster (one real node, or
//! up to four with `NODES`), left running for a person (issues #16, #26). The same code the tests use (tests/support): etcd, kube-apiserver,
//! controller-manager, scheduler, kwok, and the real node (containerd, kubelet, kube-proxy) with
//! the product, pause and `localhost/fgm-stress:test` images imported. Nothing of ours is
//! installed: try the README's Helm and NodeMonitor steps on it.
//!
//! `fgm-cluster up` starts `fgm-cluster serve` in a session of its own, waits until the node is
//! Ready and prints `KUBECONFIG=<path>` last; `serve` holds the world until it gets SIGTERM;
//! `fgm-cluster down` sends that and waits for the node janitor to remove everything.

#[path = "../tests/support/mod.rs"]
mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

/// Where the running world's pid, log and kubeconfig path are kept.
fn state_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("target/cluster")
}

fn main() -> ExitCode {
    let mode = std::env::args().nth(1).unwrap_or_default();
    let result = match mode.as_str() {
        "up" => up(),
        "serve" => serve(),
        "down" => down(),
        _ => Err("usage: fgm-cluster up|down (serve is what `up` runs in the background)".into()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("fgm-cluster: {e}");
            ExitCode::FAILURE
        }
    }
}

fn running_pid() -> Option<u32> {
    let pid = std::fs::read_to_string(state_dir().join("pid"))
        .ok()?
        .trim()
        .parse()
        .ok()?;
    support::process::pid_alive(pid).then_some(pid)
}

fn up() -> Result<(), String> {
    if let Some(pid) = running_pid() {
        let kubeconfig =
            std::fs::read_to_string(state_dir().join("kubeconfig")).unwrap_or_default();
        println!("fgm-cluster: already running (pid {pid})");
        println!("KUBECONFIG={}", kubeconfig.trim());
        return Ok(());
    }
    let dir = state_dir();
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let log_path = dir.join("cluster.log");
    let log = std::fs::File::create(&log_path)
        .map_err(|e| format!("cannot create {}: {e}", log_path.display()))?;
    let me = std::env::current_exe().map_err(|e| format!("cannot find this program: {e}"))?;
    // A session of its own: the world outlives this command and the terminal's signals.
    let child = Command::new("setsid")
        .arg(&me)
        .arg("serve")
        .stdin(Stdio::null())
        .stdout(log.try_clone().map_err(|e| e.to_string())?)
        .stderr(log)
        .spawn()
        .map_err(|e| format!("cannot start {} serve: {e}", me.display()))?;
    println!(
        "fgm-cluster: starting the control plane and the real node (pid {}, log {})",
        child.id(),
        log_path.display()
    );
    let began = Instant::now();
    let ready = dir.join("kubeconfig");
    loop {
        if let Ok(kubeconfig) = std::fs::read_to_string(&ready) {
            println!(
                "fgm-cluster: ready in {:.0?}; kubectl and helm are in {}; stop it with `make cluster-down`",
                began.elapsed(),
                support::bin_dir().display()
            );
            println!("KUBECONFIG={}", kubeconfig.trim());
            return Ok(());
        }
        let alive = std::fs::read_to_string(dir.join("pid"))
            .ok()
            .and_then(|p| p.trim().parse::<u32>().ok())
            .is_none_or(support::process::pid_alive);
        if !alive || began.elapsed() > Duration::from_secs(600) {
            return Err(format!(
                "the world did not come up; log:\n{}",
                support::process::log_tail(&log_path, 6000)
            ));
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}

fn serve() -> Result<(), String> {
    let dir = state_dir();
    std::fs::write(dir.join("pid"), std::process::id().to_string())
        .map_err(|e| format!("cannot write the pid file: {e}"))?;
    let nodes = node_count()?;
    let world = support::node::world_of(nodes);
    let names: Vec<&str> = world.nodes.iter().map(|n| n.spec.name.as_str()).collect();
    eprintln!(
        "fgm-cluster: control plane {} and node(s) {} ready",
        world.cp.server,
        names.join(", ")
    );
    std::fs::write(
        dir.join("kubeconfig.tmp"),
        world.cp.kubeconfig.display().to_string(),
    )
    .and_then(|()| std::fs::rename(dir.join("kubeconfig.tmp"), dir.join("kubeconfig")))
    .map_err(|e| format!("cannot write the kubeconfig path: {e}"))?;
    // Until SIGTERM (`down`): the daemons die with this process, the janitor cleans up.
    loop {
        std::thread::sleep(Duration::from_secs(3600));
    }
}

/// `$FGM_NODES` (`make cluster NODES=2`), 1 when unset.
fn node_count() -> Result<usize, String> {
    match std::env::var("FGM_NODES") {
        Ok(n) if !n.trim().is_empty() => n
            .trim()
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=support::node::MAX_NODES).contains(n))
            .ok_or_else(|| {
                format!(
                    "NODES={n}: expected 1 to {} real nodes",
                    support::node::MAX_NODES
                )
            }),
        _ => Ok(1),
    }
}

fn down() -> Result<(), String> {
    if let Some(pid) = running_pid() {
        println!("fgm-cluster: stopping pid {pid}");
        let _ = Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status();
        let began = Instant::now();
        while support::process::pid_alive(pid) {
            if began.elapsed() > Duration::from_secs(30) {
                let _ = Command::new("kill")
                    .args(["-KILL", &pid.to_string()])
                    .status();
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    // The janitor cleans up under the node lock; take it to know it is done, then clean anything
    // a janitor could not (it was killed, say) with the same script.
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tools/node/cleanup.sh");
    let mut status = Ok(());
    for index in 1..=support::node::MAX_NODES {
        let ran = Command::new("flock")
            .args(["--timeout", "120", support::node::LOCK_FILE])
            .arg("bash")
            .arg(&script)
            .envs(support::node::NodeSpec::of(index).cleanup_env())
            .status()
            .map_err(|e| format!("cannot run flock: {e}"))?;
        if !ran.success() && status.is_ok() {
            status = Err(ran);
        }
    }
    let _ = std::fs::remove_dir_all(state_dir());
    match status {
        Ok(()) => {
            println!("fgm-cluster: stopped; nothing of it is left on this machine");
            Ok(())
        }
        Err(failed) => Err(format!("cleanup failed ({failed})")),
    }
}
