//! The real agent binary on a fixture tree, with its log in a file: what the
//! fault tests start, signal, kill and read back.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use fine_grained_monitor::store::index::Index;
use fine_grained_monitor::store::{layout, reader};

/// A running agent process; killed on drop if still running.
pub struct AgentProcess {
    pub child: Child,
    pub log: PathBuf,
    _log_dir: tempfile::TempDir,
}

impl Drop for AgentProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Path of a checked-in fixture tree.
pub fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/cgroup")
        .join(name)
}

/// A command for the agent binary on `tree` writing `data`: fast interval,
/// no enrichment, metrics on a free port; `args` come last (and win).
pub fn agent_command(data: &Path, tree: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_fine-grained-monitor"));
    cmd.args(["agent", "--interval", "100ms", "--rotation", "1s"])
        .arg("--data-dir")
        .arg(data)
        .arg("--cgroup-root")
        .arg(tree)
        .args(["--node-name", "fault-node", "--metrics-addr", "127.0.0.1:0"])
        .args(["--enrichment", "false"])
        .args(args)
        .env("FGM_LOG_LEVEL", "info")
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::null());
    cmd
}

/// Starts `cmd` with stderr (the log) going to a file.
pub fn spawn(mut cmd: Command) -> AgentProcess {
    let log_dir = tempfile::tempdir().expect("log dir");
    let log = log_dir.path().join("agent.log");
    let file = std::fs::File::create(&log).expect("log file");
    cmd.stderr(Stdio::from(file));
    let child = cmd.spawn().expect("agent binary starts");
    AgentProcess {
        child,
        log,
        _log_dir: log_dir,
    }
}

impl AgentProcess {
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// SIGTERM (what the kubelet sends), then the exit status.
    pub fn terminate(&mut self, within: Duration) -> ExitStatus {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("kill runs");
        assert!(status.success(), "SIGTERM delivered");
        self.wait(within)
    }

    /// SIGKILL, then wait.
    pub fn kill9(&mut self) {
        self.child.kill().expect("SIGKILL");
        self.child.wait().expect("reaped");
    }

    /// The exit status, waiting at most `within` (then the test fails).
    pub fn wait(&mut self, within: Duration) -> ExitStatus {
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "agent still running after {within:?}; log:\n{}",
                self.log_text()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn running(&mut self) -> bool {
        self.child.try_wait().expect("try_wait").is_none()
    }
}

/// Polls `check` until it holds or `within` passes (then fails with `what`).
pub fn wait_until(within: Duration, what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + within;
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Rows in every finished data file; every one must read fully.
pub fn total_rows(data: &Path) -> usize {
    let listing = layout::list_data_files(data, None).expect("data dir lists");
    listing
        .files
        .iter()
        .map(|f| {
            reader::read_file(&f.path, None)
                .unwrap_or_else(|e| panic!("{} must read: {e}", f.path.display()))
                .iter()
                .map(|b| b.num_rows())
                .sum::<usize>()
        })
        .sum()
}

pub fn index(data: &Path) -> Option<Index> {
    Index::load(&layout::index_path(data)).expect("index.json parses")
}
