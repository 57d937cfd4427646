//! No control-plane process outlives a SIGKILLed test binary (issue #3).
//!
//! `harness = false`: `main` re-runs this binary as a child that starts a control plane
//! (the same `support` code every test uses), reports its process ids, and waits. The parent
//! SIGKILLs the child — no destructor, no exit hook runs — and checks every process it started
//! (etcd, kube-apiserver, and the on-demand controller-manager, scheduler and kwok) is gone
//! within seconds (killed by PR_SET_PDEATHSIG).

mod support;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const CHILD_ENV: &str = "FGM_ENVTEST_TEARDOWN_CHILD";

fn child() -> ! {
    let cp = support::control_plane();
    // The on-demand processes too: they are spawned later, by another call.
    cp.start_workloads();
    for (name, pid) in cp.pids() {
        println!("pid {name} {pid}");
    }
    println!("ready");
    loop {
        std::thread::sleep(Duration::from_secs(60));
    }
}

fn main() {
    if std::env::var_os(CHILD_ENV).is_some() {
        child();
    }
    println!("running 1 test");
    let exe = std::env::current_exe().expect("current test binary");
    let mut child = Command::new(exe)
        .env(CHILD_ENV, "1")
        .stdout(Stdio::piped())
        .spawn()
        .expect("start child test process");
    let stdout = child.stdout.take().expect("child stdout");
    let mut pids = Vec::new();
    for line in BufReader::new(stdout).lines() {
        let line = line.expect("read child output");
        if line == "ready" {
            break;
        }
        if let Some(rest) = line.strip_prefix("pid ") {
            let (name, pid) = rest.split_once(' ').expect("pid line");
            pids.push((name.to_string(), pid.parse::<u32>().expect("pid number")));
        }
    }
    let mut names: Vec<&str> = pids.iter().map(|(n, _)| n.as_str()).collect();
    names.sort();
    assert_eq!(
        names,
        [
            "etcd",
            "kube-apiserver",
            "kube-controller-manager",
            "kube-scheduler",
            "kwok"
        ],
        "child did not report every process (did it fail to start? see its stderr)"
    );
    for (name, pid) in &pids {
        assert!(
            support::process::pid_alive(*pid),
            "{name} ({pid}) not running before the kill"
        );
    }
    child.kill().expect("SIGKILL the child test process");
    child.wait().expect("reap the child");

    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let alive: Vec<_> = pids
            .iter()
            .filter(|(_, pid)| support::process::pid_alive(*pid))
            .collect();
        if alive.is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "left behind after SIGKILL of the test process: {alive:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    println!("test no_control_plane_process_survives_sigkill_of_the_test_binary ... ok");
    println!("test result: ok. 1 passed; 0 failed; 0 ignored; 0 measured; 0 filtered out");
}
