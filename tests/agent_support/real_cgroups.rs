//! Real cgroups of this machine for the agent's tests: a kubelet-layout
//! container (`kubepods/besteffort/<pod>/<container>` in every hierarchy) with
//! a process in it, removed on drop; the agent binary run as another user.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fine_grained_monitor::agent::mountinfo::{self, Hierarchies};

pub const POD: &str = "podab12cd34-0000-4000-8000-00000000f17e";
pub const CONTAINER: &str = "c0ffee17c0ffee17c0ffee17c0ffee17c0ffee17c0ffee17c0ffee17c0ffee17";

/// Joins every hierarchy's leaf, then spins until the test is gone.
pub const BUSY_LOOP: &str = "for f in \"$@\"; do echo $$ > \"$f\" || exit 1; done; while kill -0 $PPID 2>/dev/null; do :; done";

/// Test cgroups (one base per hierarchy) and the process in them; removed on drop.
pub struct Cgroups {
    pub bases: Vec<PathBuf>,
    pub child: Option<Child>,
}

impl Cgroups {
    pub fn leaf(base: &Path) -> PathBuf {
        base.join("kubepods/besteffort").join(POD).join(CONTAINER)
    }
}

impl Drop for Cgroups {
    fn drop(&mut self) {
        if let Some(child) = &mut self.child {
            let _ = child.kill();
            let _ = child.wait();
        }
        for base in &self.bases {
            let leaf = Self::leaf(base);
            let mut dirs = vec![leaf.clone()];
            let mut d = leaf.as_path();
            while let Some(parent) = d.parent() {
                dirs.push(parent.to_path_buf());
                if parent == base {
                    break;
                }
                d = parent;
            }
            // Whatever the child left in the container (a reparented grandchild) goes too:
            // a populated cgroup cannot be removed and would be seen by later runs.
            for pid in std::fs::read_to_string(leaf.join("cgroup.procs"))
                .unwrap_or_default()
                .split_whitespace()
                .filter_map(|p| rustix::process::Pid::from_raw(p.parse().ok()?))
            {
                let _ = rustix::process::kill_process(pid, rustix::process::Signal::KILL);
            }
            for dir in dirs {
                for _ in 0..100 {
                    if !dir.exists() || std::fs::remove_dir(&dir).is_ok() {
                        break;
                    }
                    std::thread::sleep(Duration::from_millis(20));
                }
            }
        }
    }
}

pub fn require_root() {
    assert_eq!(
        fine_grained_monitor::agent::data_dir::effective_uid(),
        0,
        "this test creates cgroups and runs the agent as another user: it needs root"
    );
}

/// This process's cgroup in the hierarchy of `v1_controller` (v2: `None`).
pub fn own_cgroup(v1_controller: Option<&str>) -> String {
    let text = std::fs::read_to_string("/proc/self/cgroup").unwrap();
    for line in text.lines() {
        let mut parts = line.splitn(3, ':');
        let (Some(_), Some(controllers), Some(path)) = (parts.next(), parts.next(), parts.next())
        else {
            continue;
        };
        let matches = match v1_controller {
            Some(c) => controllers.split(',').any(|x| x == c),
            None => controllers.is_empty(),
        };
        if matches {
            return path.trim_start_matches('/').to_string();
        }
    }
    String::new()
}

/// A kubelet-layout container with a busy loop in every hierarchy; returns the
/// guard and the `--cgroup-root` (`links`, holding one link per hierarchy, or
/// the v2 base on a pure v2 host).
pub fn kubelet_container(links: &Path) -> (Cgroups, PathBuf) {
    kubelet_container_running(links, BUSY_LOOP)
}

/// [`kubelet_container`] running `script` (sh; `$@` are the `cgroup.procs` files to join
/// first, `$PPID` the test: stop when it is gone).
pub fn kubelet_container_running(links: &Path, script: &str) -> (Cgroups, PathBuf) {
    let h: Hierarchies = mountinfo::from_mountinfo_file(Path::new("/proc/self/mountinfo"))
        .expect("cgroup hierarchies mounted");
    let name = format!(
        "fgm-nonroot-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0)
    );
    let mut guard = Cgroups {
        bases: Vec::new(),
        child: None,
    };
    let mut root = links.to_path_buf();
    let mut seen = Vec::new();
    for (controller, mount) in &h.v1 {
        if seen.contains(mount) {
            continue;
        }
        seen.push(mount.clone());
        let base = mount.join(own_cgroup(Some(controller))).join(&name);
        std::fs::create_dir(&base).unwrap();
        guard.bases.push(base.clone());
        std::fs::create_dir_all(Cgroups::leaf(&base)).unwrap();
        std::os::unix::fs::symlink(&base, links.join(mount.file_name().unwrap())).unwrap();
    }
    if let Some(v2) = &h.v2 {
        let base = v2.join(&name);
        std::fs::create_dir(&base).unwrap();
        guard.bases.push(base.clone());
        // Pure v2: every level above the leaf hands the controllers down.
        let mut level = base.clone();
        for part in ["kubepods", "besteffort", POD] {
            if !h.is_v1() {
                for c in ["+cpu", "+memory", "+pids"] {
                    let _ = std::fs::write(level.join("cgroup.subtree_control"), c);
                }
            }
            level = level.join(part);
            std::fs::create_dir(&level).unwrap();
        }
        std::fs::create_dir(Cgroups::leaf(&base)).unwrap();
        if h.is_v1() {
            std::os::unix::fs::symlink(&base, links.join("unified")).unwrap();
        } else {
            root = base;
        }
    }
    let mut cmd = Command::new("sh");
    cmd.arg("-c").arg(script).arg("sh");
    for base in &guard.bases {
        cmd.arg(Cgroups::leaf(base).join("cgroup.procs"));
    }
    guard.child = Some(cmd.stdin(Stdio::null()).spawn().unwrap());
    (guard, root)
}

/// Runs the agent binary as `uid` for `run_for` (SIGTERM, then it writes its
/// open file); returns its exit status and output.
pub fn run_as(uid: u32, args: &[String], run_for: Duration) -> (std::process::ExitStatus, String) {
    run_binary_as(
        Path::new(env!("CARGO_BIN_EXE_fine-grained-monitor")),
        uid,
        args,
        run_for,
    )
}

/// [`run_as`] with another binary (a copy carrying a file capability).
pub fn run_binary_as(
    binary: &Path,
    uid: u32,
    args: &[String],
    run_for: Duration,
) -> (std::process::ExitStatus, String) {
    let mut child = Command::new(binary)
        .args(args)
        .uid(uid)
        .gid(uid)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + run_for;
    while Instant::now() < deadline {
        if child.try_wait().unwrap().is_some() {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    if child.try_wait().unwrap().is_none() {
        let _ = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status();
    }
    let out = child.wait_with_output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status, text)
}
