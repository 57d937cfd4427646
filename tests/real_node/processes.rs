//! The processes inside a container on the real node (issue #25 point 4): with
//! `spec.processes.enabled` the agent (uid 65532, `CAP_SYS_PTRACE` from the image's file
//! capability) records a container's 4 children holding 64 MiB each, a child killed from the
//! host gets its exit row, and the PSS of these root-owned processes is read; the viewer's
//! `/api/processes` answers the same.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use arrow_array::{Array, Int64Array, StringArray};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use serde_json::Value;

use crate::kube_cli::{apply, eventually};
use crate::support::node::{DATA_DIR, NODE_NAME, World};
use crate::workloads;

const NS: &str = "fgm-shop";
const CHILD_MEMORY: i64 = 64 << 20;

fn family_pod() -> String {
    format!(
        r#"
apiVersion: v1
kind: Pod
metadata: {{ name: family, namespace: {NS} }}
spec:
  nodeSelector: {{ kubernetes.io/hostname: {NODE_NAME} }}
  terminationGracePeriodSeconds: 1
  containers:
    - name: parent
      image: localhost/fgm-stress:test
      imagePullPolicy: IfNotPresent
      # Root, another user than the agent's 65532: its PSS needs CAP_SYS_PTRACE.
      securityContext: {{ runAsUser: 0 }}
      args: ["--children", "4", "--child-memory", "64Mi"]
"#
    )
}

/// One processes row.
#[derive(Debug, Clone)]
pub struct ProcRow {
    pub pid: i64,
    pub command: String,
    pub event: String,
    pub rss: Option<i64>,
    pub pss: Option<i64>,
}

fn files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        if path.is_dir() {
            files(&path, out);
        } else if name.starts_with("processes-") && name.ends_with(".parquet") {
            out.push(path);
        }
    }
}

/// Every processes row of container `short` in the completed files.
pub fn rows(short: &str) -> Vec<ProcRow> {
    let mut paths = Vec::new();
    files(Path::new(DATA_DIR), &mut paths);
    let mut out = Vec::new();
    for path in paths {
        // A file removed by retention meanwhile is skipped.
        let Ok(file) = std::fs::File::open(&path) else {
            continue;
        };
        let reader = ParquetRecordBatchReaderBuilder::try_new(file)
            .and_then(|b| b.build())
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        for batch in reader {
            let batch = batch.unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            let text = |n: &str| {
                batch
                    .column_by_name(n)
                    .and_then(|c| c.as_any().downcast_ref::<StringArray>().cloned())
                    .unwrap_or_else(|| panic!("{n} in {}", path.display()))
            };
            let int = |n: &str| {
                batch
                    .column_by_name(n)
                    .and_then(|c| c.as_any().downcast_ref::<Int64Array>().cloned())
                    .unwrap_or_else(|| panic!("{n} in {}", path.display()))
            };
            let (ids, command, event) = (text("container_id"), text("command"), text("event"));
            let (pid, rss, pss) = (int("pid"), int("rss_bytes"), int("pss_bytes"));
            let opt = |a: &Int64Array, i: usize| (!a.is_null(i)).then(|| a.value(i));
            for i in 0..batch.num_rows() {
                if ids.value(i).starts_with(short) {
                    out.push(ProcRow {
                        pid: pid.value(i),
                        command: command.value(i).to_string(),
                        event: event.value(i).to_string(),
                        rss: opt(&rss, i),
                        pss: opt(&pss, i),
                    });
                }
            }
        }
    }
    out
}

/// The children (`fgm-stress --memory 64Mi`) seen, by pid: (max RSS, max PSS, events).
fn children(rows: &[ProcRow]) -> BTreeMap<i64, (i64, Option<i64>, Vec<String>)> {
    let mut out: BTreeMap<i64, (i64, Option<i64>, Vec<String>)> = BTreeMap::new();
    for r in rows.iter().filter(|r| r.command.contains("--memory 64Mi")) {
        let e = out.entry(r.pid).or_default();
        e.0 = e.0.max(r.rss.unwrap_or(0));
        e.1 = e.1.max(r.pss);
        if !r.event.is_empty() {
            e.2.push(r.event.clone());
        }
    }
    out
}

/// Turns processes on (the pod rolls: SYS_PTRACE, escalation allowed) and proves the signals.
pub fn processes_recorded(world: &World, monitor: &Value) -> Value {
    let monitor = crate::roll(
        world,
        monitor,
        r#"{"spec":{"processes":{"enabled":true,"memoryEvery":1}}}"#,
    );
    apply(world, &family_pod());
    let short = eventually(
        world,
        "family/parent recorded by name",
        Duration::from_secs(120),
        || workloads::recorded(world, NS, "family", "parent"),
    );
    let kids = eventually(
        world,
        "4 children holding 64 MiB each, with PSS",
        Duration::from_secs(120),
        || {
            let kids = children(&rows(&short));
            let big: Vec<_> = kids
                .iter()
                .filter(|(_, (rss, pss, _))| *rss >= CHILD_MEMORY && pss.is_some_and(|p| p > 0))
                .collect();
            if big.len() >= 4 {
                Ok(kids)
            } else {
                Err(format!(
                    "children so far (pid: max rss, max pss, events): {kids:?}"
                ))
            }
        },
    );
    eprintln!("figure: processes of family/parent: {kids:?}");
    // Root processes' PSS read by the agent as 65532: the file capability works in the pod.
    let (&victim, _) = kids.iter().next().expect("a child");
    let status = std::process::Command::new("kill")
        .args(["-KILL", &victim.to_string()])
        .status()
        .expect("run kill");
    assert!(status.success(), "kill {victim} from the host");
    eventually(
        world,
        "the killed child's exit recorded",
        Duration::from_secs(60),
        || {
            let kids = children(&rows(&short));
            let events = kids.get(&victim).map(|k| k.2.clone()).unwrap_or_default();
            // Rows are sorted by process, then event text, then time: no order to rely on.
            if events.iter().any(|e| e == "exit") {
                Ok(())
            } else {
                Err(format!("events of {victim}: {events:?}"))
            }
        },
    );
    // The viewer's answer: the 4 children, the killed one ended.
    let now = chrono::Utc::now().timestamp_millis();
    let answer = crate::network::viewer_api(&format!(
        "/api/processes?container={short}&from={}&to={}",
        now - 3_600_000,
        now + 60_000
    ));
    let procs = answer["processes"].as_array().expect("processes list");
    let listed: Vec<&Value> = procs
        .iter()
        .filter(|p| {
            p["command"]
                .as_str()
                .is_some_and(|c| c.contains("--memory 64Mi"))
        })
        .collect();
    assert!(
        listed
            .iter()
            .filter(|p| p["max_rss_bytes"].as_i64().unwrap_or(0) >= CHILD_MEMORY)
            .count()
            >= 4,
        "/api/processes lists the 4 children at 64 MiB: {answer}"
    );
    let killed = listed
        .iter()
        .find(|p| p["pid"] == victim)
        .unwrap_or_else(|| panic!("killed child {victim} in /api/processes: {answer}"));
    assert!(
        killed["end_ms"].is_i64(),
        "the killed child has an end: {killed}"
    );
    monitor
}
