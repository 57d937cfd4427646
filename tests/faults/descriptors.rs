//! Descriptor exhaustion: the agent under a low RLIMIT_NOFILE (`prlimit`) on
//! a tree of 100 containers of about 18 files each.

use std::collections::BTreeMap;
use std::process::Command;
use std::time::Duration;

use crate::support::{
    add_container, agent_command, container_source, free_port, many_containers, metric, scrape,
    spawn,
};

const CONTAINERS: usize = 100;

/// Rows per short id, and the last `cpu_usage_usec` of each.
fn last_cpu(data: &std::path::Path) -> BTreeMap<String, Option<i64>> {
    use arrow_array::{Array, Int64Array, StringArray};
    let listing = fine_grained_monitor::store::layout::list_data_files(data, None).unwrap();
    let mut out = BTreeMap::new();
    for file in &listing.files {
        for batch in fine_grained_monitor::store::reader::read_file(&file.path, None).unwrap() {
            let ids = batch
                .column_by_name("container_id")
                .and_then(|c| c.as_any().downcast_ref::<StringArray>())
                .unwrap();
            let cpu = batch
                .column_by_name("cpu_usage_usec")
                .and_then(|c| c.as_any().downcast_ref::<Int64Array>())
                .unwrap();
            for i in 0..batch.num_rows() {
                out.insert(
                    ids.value(i).to_string(),
                    (!cpu.is_null(i)).then(|| cpu.value(i)),
                );
            }
        }
    }
    out
}

fn under_prlimit(
    nofile: &str,
    data: &std::path::Path,
    tree: &std::path::Path,
    port: u16,
) -> Command {
    let agent = agent_command(
        data,
        tree,
        &["--metrics-addr", &format!("127.0.0.1:{port}")],
    );
    let mut cmd = Command::new("prlimit");
    cmd.arg(format!("--nofile={nofile}"))
        .arg(agent.get_program())
        .args(agent.get_args());
    for (k, v) in agent.get_envs() {
        if let Some(v) = v {
            cmd.env(k, v);
        }
    }
    cmd.stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null());
    cmd
}

fn scrape_when(port: u16, what: &str, check: impl Fn(&str) -> bool) -> String {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let last = scrape(port).unwrap_or_default();
        if check(&last) {
            return last;
        }
        let own: Vec<&str> = last
            .lines()
            .filter(|l| l.starts_with("fgm_agent_"))
            .collect();
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting for {what}; last scrape:\n{}",
            own.join("\n")
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Fault: the open-file limit is too low for every container's files
/// (soft = hard = 128, ~1800 needed). User sees: a log line with the limit
/// and the budget, `fgm_agent_containers_reopened` > 0; every container is
/// still recorded with its values. Data lost: none.
#[test]
fn low_open_file_limit_degrades_to_reopening_and_records_everything() {
    let tree = tempfile::tempdir().unwrap();
    let ids = many_containers(tree.path(), CONTAINERS);
    let data = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut agent = spawn(under_prlimit("128:128", data.path(), tree.path(), port));
    let text = scrape_when(port, "100 containers sampled", |t| {
        metric(t, "fgm_agent_containers_tracked") == Some(CONTAINERS as f64)
    });
    let reopened = metric(&text, "fgm_agent_containers_reopened").unwrap();
    let kept = metric(&text, "fgm_agent_open_files").unwrap();
    let budget = metric(&text, "fgm_agent_open_files_budget").unwrap();
    assert!(reopened > 0.0 && kept <= budget && budget < 128.0, "{text}");
    let status = agent.terminate(Duration::from_secs(20));
    assert!(status.success(), "{status:?}\n{}", agent.log_text());
    let log = agent.log_text();
    assert!(
        log.contains("soft_limit=128") && log.contains("kept_files_budget="),
        "the limit and budget are logged:\n{log}"
    );
    let cpu = last_cpu(data.path());
    for id in &ids {
        assert_eq!(cpu.get(&id[..12]), Some(&Some(2_000_000)), "container {id}");
    }
}

/// Fault: a soft limit below the hard one (the common 1024 soft default).
/// User sees: the limit raised at start (logged), every file kept open.
/// Data lost: none.
#[test]
fn soft_limit_is_raised_to_the_hard_limit() {
    let tree = tempfile::tempdir().unwrap();
    many_containers(tree.path(), CONTAINERS);
    let data = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut agent = spawn(under_prlimit("64:4096", data.path(), tree.path(), port));
    let text = scrape_when(port, "100 containers sampled", |t| {
        metric(t, "fgm_agent_containers_tracked") == Some(CONTAINERS as f64)
    });
    assert_eq!(
        metric(&text, "fgm_agent_containers_reopened"),
        Some(0.0),
        "{text}"
    );
    assert!(
        metric(&text, "fgm_agent_open_files").unwrap() > 1000.0,
        "{text}"
    );
    let status = agent.terminate(Duration::from_secs(20));
    assert!(status.success());
    let log = agent.log_text();
    assert!(
        log.contains("soft_limit_before=64") && log.contains("soft_limit=4096"),
        "{log}"
    );
}

/// Fault: descriptors run out while the agent runs (the limit lowered under
/// it with `prlimit --pid`, then 10 new containers). User sees: a warning
/// that kept files were closed, `fgm_agent_descriptor_shortages_total` > 0,
/// every container (the new ones too) still recorded; the agent neither
/// stops nor crashes. Data lost: none.
#[test]
fn descriptors_running_out_at_run_time_shed_kept_files_and_lose_nothing() {
    let tree = tempfile::tempdir().unwrap();
    let mut ids = many_containers(tree.path(), CONTAINERS);
    let data = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut agent = spawn(under_prlimit("4096:4096", data.path(), tree.path(), port));
    scrape_when(port, "100 containers sampled", |t| {
        metric(t, "fgm_agent_containers_tracked") == Some(CONTAINERS as f64)
    });
    let pid = agent.child.id().to_string();
    let lowered = Command::new("prlimit")
        .args(["--pid", &pid, "--nofile=400:400"])
        .status()
        .unwrap();
    assert!(lowered.success(), "prlimit --pid");
    let src = container_source();
    for i in CONTAINERS..CONTAINERS + 10 {
        ids.push(add_container(tree.path(), &src, i));
    }
    let text = scrape_when(port, "110 containers under the lowered limit", |t| {
        metric(t, "fgm_agent_containers_tracked") == Some(110.0)
            && metric(t, "fgm_agent_descriptor_shortages_total").unwrap_or(0.0) >= 1.0
            && metric(t, "fgm_agent_open_files").unwrap_or(f64::MAX) < 400.0
    });
    assert!(metric(&text, "fgm_agent_containers_reopened").unwrap() > 0.0);
    // A rotation after the shortage: written with the descriptors freed.
    std::thread::sleep(Duration::from_millis(1500));
    assert!(agent.running(), "the agent goes on");
    let status = agent.terminate(Duration::from_secs(20));
    assert!(status.success(), "{status:?}\n{}", agent.log_text());
    assert!(
        agent.log_text().contains("out of file descriptors"),
        "{}",
        agent.log_text()
    );
    let cpu = last_cpu(data.path());
    for id in &ids {
        assert_eq!(cpu.get(&id[..12]), Some(&Some(2_000_000)), "container {id}");
    }
}
