//! The agent's own CPU and memory, read from its container's cgroup on the real node (cgroup
//! v1 here: `cpuacct.usage`, `memory.usage_in_bytes`, `memory.stat`). Printed, never asserted.

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::data;
use crate::kube_cli::container_id;
use crate::support::node::World;

/// Reads a cgroup file as a number.
fn number(dir: &Path, file: &str) -> i64 {
    let path = dir.join(file);
    std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
        .trim()
        .parse()
        .unwrap_or_else(|e| panic!("{} is not a number: {e}", path.display()))
}

/// The value of `key` in a memory.stat file (0 when absent).
fn stat(dir: &Path, key: &str) -> i64 {
    let text = std::fs::read_to_string(dir.join("memory.stat")).expect("memory.stat");
    text.lines()
        .find_map(|l| {
            let (k, v) = l.split_once(' ')?;
            (k == key).then(|| v.trim().parse().ok()).flatten()
        })
        .unwrap_or(0)
}

/// Samples the agent container of `monitor` for `window`; returns the two `figure:` lines.
pub fn agent(world: &World, monitor: &Value, window: Duration) -> [String; 2] {
    let uid = monitor["metadata"]["uid"].as_str().expect("pod uid");
    let id = container_id(monitor, "agent").expect("agent container id");
    let cpu = world
        .container_cgroup("cpuacct", uid, &id)
        .expect("agent's cpuacct cgroup under /kubelet/kubepods");
    let memory = world
        .container_cgroup("memory", uid, &id)
        .expect("agent's memory cgroup under /kubelet/kubepods");
    let (began, usage_before) = (Instant::now(), number(&cpu, "cpuacct.usage"));
    let mut peak_working_set = 0;
    while began.elapsed() < window {
        let usage = number(&memory, "memory.usage_in_bytes");
        peak_working_set = peak_working_set.max(usage - stat(&memory, "total_inactive_file"));
        std::thread::sleep(Duration::from_millis(500));
    }
    let (elapsed, usage_after) = (began.elapsed(), number(&cpu, "cpuacct.usage"));
    let containers = data::index()
        .and_then(|i| i["containers"].as_object().map(|c| c.len()))
        .unwrap_or(0);
    let mib = |b: i64| b as f64 / 1048576.0;
    [
        format!(
            "agent CPU on the real node: {:.2} % of a core over {elapsed:.0?} ({containers} \
             containers in the index, 1 s interval)",
            (usage_after - usage_before) as f64 / elapsed.as_nanos() as f64 * 100.0
        ),
        format!(
            "agent memory on the real node: working set peak {:.1} MiB, usage {:.1} MiB, \
             max usage {:.1} MiB",
            mib(peak_working_set),
            mib(number(&memory, "memory.usage_in_bytes")),
            mib(number(&memory, "memory.max_usage_in_bytes"))
        ),
    ]
}
