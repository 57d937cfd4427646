//! The real agent binary on a fixture tree, with its log in a file: what the
//! fault tests start, signal, kill and read back.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

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
/// no enrichment, metrics on a free port; `args` may set any other flag.
pub fn agent_command(data: &Path, tree: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_fine-grained-monitor"));
    cmd.arg("agent")
        .arg("--data-dir")
        .arg(data)
        .arg("--cgroup-root")
        .arg(tree)
        .args(["--node-name", "fault-node"])
        .args(args)
        // Defaults through the environment, so `args` may repeat a flag.
        .env("FGM_INTERVAL", "100ms")
        .env("FGM_ROTATION", "1s")
        .env("FGM_METRICS_ADDR", "127.0.0.1:0")
        .env("FGM_ENRICHMENT", "false")
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

/// A free loopback port (bound, then released for the agent to take).
pub fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("addr").port()
}

/// `GET /metrics` of an agent on `port`: the body, or `None` while it is not up.
pub fn scrape(port: u16) -> Option<String> {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    stream
        .write_all(b"GET /metrics HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .ok()?;
    let mut text = String::new();
    stream.read_to_string(&mut text).ok()?;
    text.split_once("\r\n\r\n")
        .map(|(_, body)| body.to_string())
}

/// The value of an unlabelled sample line `name value` in a scrape.
pub fn metric(text: &str, name: &str) -> Option<f64> {
    text.lines().find_map(|line| {
        let rest = line.strip_prefix(name)?.strip_prefix(' ')?;
        rest.split_whitespace().next()?.parse().ok()
    })
}

/// A v2 cgroup tree of `n` containers in kubelet's systemd layout, each a
/// copy of a fixture container (every v2 file the agent reads: about 18
/// descriptors each when kept open). Returns the container ids.
pub fn many_containers(root: &Path, n: usize) -> Vec<String> {
    let src = container_source();
    std::fs::write(
        root.join("cgroup.controllers"),
        "cpuset cpu io memory hugetlb pids rdma misc\n",
    )
    .expect("v2 root");
    (0..n).map(|i| add_container(root, &src, i)).collect()
}

/// Adds container number `i` (a copy of `src`) to a tree made by [`many_containers`].
pub fn add_container(root: &Path, src: &Path, i: usize) -> String {
    let id = format!("{i:08x}").repeat(8);
    let dir = root.join(format!(
        "kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{i:08x}_0000_4000_8000_000000000000.slice/cri-containerd-{id}.scope"
    ));
    // Built aside and moved in whole: on cgroupfs a cgroup's files exist the
    // moment its directory does.
    let staging = root.join(format!(".staging-{i}"));
    std::fs::create_dir_all(&staging).expect("staging dir");
    for entry in std::fs::read_dir(src).expect("fixture container") {
        let entry = entry.expect("entry");
        std::fs::copy(entry.path(), staging.join(entry.file_name())).expect("copy");
    }
    std::fs::create_dir_all(dir.parent().expect("pod dir")).expect("pod dir");
    std::fs::rename(&staging, &dir).expect("move the container in");
    id
}

/// The fixture container [`many_containers`] copies.
pub fn container_source() -> PathBuf {
    fixture("v2-systemd-containerd").join(
        "kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod0f1e2d3c_4b5a_6978_8796_a5b4c3d2e1f0.slice/cri-containerd-a202020202020202020202020202020202020202020202020202020202020202.scope",
    )
}
