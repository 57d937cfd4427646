//! The README's Helm install of the operator, as a user runs it: shared by the real-node tests
//! (one node, and two nodes).

use std::time::Duration;

use serde_json::Value;

use crate::kube_cli::{eventually, items, pod_ready, run_ok};
use crate::readme;
use crate::support::node::World;

/// The chart's namespace.
pub const NS: &str = "fine-grained-monitor";
/// The README's way of finding its NodeMonitor's pods.
pub const MONITOR_SELECTOR: &str =
    "app.kubernetes.io/name=fine-grained-monitor,app.kubernetes.io/instance=default";

/// The README NodeMonitor's pod on `node` when it is the only one there, Ready and not being
/// replaced; otherwise what there is, in words.
pub fn monitor_pod_on(world: &World, node: &str) -> Result<Value, String> {
    let on_node = format!("spec.nodeName={node}");
    let pods = items(
        world,
        &[
            "pods",
            "-n",
            NS,
            "-l",
            MONITOR_SELECTOR,
            "--field-selector",
            &on_node,
        ],
    );
    match pods.as_slice() {
        [pod] if pod_ready(pod) && pod["metadata"]["deletionTimestamp"].is_null() => {
            Ok(pod.clone())
        }
        _ => Err(format!("{} monitor pods on {node}", pods.len())),
    }
}

/// Runs a README command (its first word is the tool, the rest its arguments).
pub fn readme_command(world: &World, command: &[String]) {
    let mut cmd = match command[0].as_str() {
        "helm" => world.cp.helm(),
        "kubectl" => world.cp.kubectl(),
        other => panic!("README command with an unexpected tool: {other}"),
    };
    run_ok(
        world,
        cmd.args(&command[1..])
            .current_dir(env!("CARGO_MANIFEST_DIR")),
    );
}

/// The README's Helm install; the operator pod becomes Running and Ready (its probes answer).
pub fn install_operator(world: &World, extra: &[&str]) {
    let mut install = readme::command("Install with Helm", "helm install");
    install.extend(extra.iter().map(|s| s.to_string()));
    readme_command(world, &install);
    eventually(
        world,
        "operator pod Ready",
        Duration::from_secs(180),
        || {
            let operator = "app.kubernetes.io/component=operator";
            let pods = items(world, &["pods", "-n", NS, "-l", operator]);
            match pods.as_slice() {
                [pod] if pod_ready(pod) => Ok(()),
                _ => Err(format!("{} operator pods, none ready", pods.len())),
            }
        },
    );
}
