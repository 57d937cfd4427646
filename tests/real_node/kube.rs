//! kubectl and helm against the world's control plane, with failures that show the node's logs.

use std::process::{Command, Output};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::node::World;

/// Runs `cmd`; panics with its output and the node's logs unless it succeeds.
pub fn run_ok(world: &World, cmd: &mut Command) -> String {
    let out = run(cmd);
    assert!(
        out.status.success(),
        "{cmd:?} failed ({}):\n{}{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
        world.logs()
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub fn run(cmd: &mut Command) -> Output {
    cmd.output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"))
}

/// `kubectl get ARGS -o json`, or None when the object does not exist.
pub fn get(world: &World, args: &[&str]) -> Option<Value> {
    let out = run(world
        .cp
        .kubectl()
        .arg("get")
        .args(args)
        .args(["-o", "json"]));
    if out.status.success() {
        Some(serde_json::from_slice(&out.stdout).expect("kubectl prints JSON"))
    } else {
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("NotFound") || err.contains("not found"),
            "kubectl get {args:?}: {err}"
        );
        None
    }
}

/// The items of `kubectl get ARGS -o json` (a list).
pub fn items(world: &World, args: &[&str]) -> Vec<Value> {
    get(world, args)
        .and_then(|v| v["items"].as_array().cloned())
        .unwrap_or_default()
}

/// Polls `check` every 500 ms until it gives `Some`, for at most `limit`; panics with `what`,
/// the last observation and the node's logs.
pub fn eventually<T>(
    world: &World,
    what: &str,
    limit: Duration,
    mut check: impl FnMut() -> Result<T, String>,
) -> T {
    let deadline = Instant::now() + limit;
    loop {
        match check() {
            Ok(v) => return v,
            Err(last) => {
                assert!(
                    Instant::now() < deadline,
                    "{what}: not within {limit:?}; last: {last}\n{}\n{}",
                    diagnostics(world),
                    world.logs()
                );
            }
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// Pods, events and the logs of the monitor's and the operator's pods, for failure messages.
pub fn diagnostics(world: &World) -> String {
    let text = |args: &[&str]| {
        let out = run(world.cp.kubectl().args(args));
        format!(
            "$ kubectl {}\n{}{}",
            args.join(" "),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    };
    let mut out = vec![
        text(&["get", "pods,daemonsets,nodemonitors", "-A", "-o", "wide"]),
        text(&["get", "events", "-A", "--sort-by=.lastTimestamp"]),
    ];
    for pod in items(world, &["pods", "-n", "fine-grained-monitor"]) {
        let name = pod["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        out.push(text(&[
            "logs",
            "-n",
            "fine-grained-monitor",
            &name,
            "--all-containers",
            "--tail=40",
        ]));
    }
    out.join("\n")
}

/// The condition `type` of an object's `status.conditions`, as (status, reason).
pub fn condition(obj: &Value, type_: &str) -> Option<(String, String)> {
    obj["status"]["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == type_)
        .map(|c| {
            (
                c["status"].as_str().unwrap_or_default().to_string(),
                c["reason"].as_str().unwrap_or_default().to_string(),
            )
        })
}

/// A pod is Running and every container ready.
pub fn pod_ready(pod: &Value) -> bool {
    pod["status"]["phase"] == "Running" && condition(pod, "Ready").is_some_and(|(s, _)| s == "True")
}

/// The 64-hex id of a pod's container `name`, without the runtime prefix.
pub fn container_id(pod: &Value, name: &str) -> Option<String> {
    pod["status"]["containerStatuses"]
        .as_array()?
        .iter()
        .find(|c| c["name"] == name)?["containerID"]
        .as_str()
        .and_then(|id| id.split_once("://"))
        .map(|(_, id)| id.to_string())
}

/// `kubectl apply -f -` of `yaml`.
pub fn apply(world: &World, yaml: &str) -> String {
    use std::io::Write;
    let mut child = world
        .cp
        .kubectl()
        .args(["apply", "-f", "-"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start kubectl apply");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(yaml.as_bytes())
        .expect("write manifest");
    let out = child.wait_with_output().expect("kubectl apply");
    assert!(
        out.status.success(),
        "kubectl apply failed: {}\n{yaml}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `kubectl get ARGS -o name`, one name per element.
pub fn names(world: &World, args: &[&str]) -> Vec<String> {
    run_ok(
        world,
        world
            .cp
            .kubectl()
            .arg("get")
            .args(args)
            .args(["-o", "name"]),
    )
    .lines()
    .map(str::to_string)
    .collect()
}
