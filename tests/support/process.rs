//! Child processes of the test control plane and the thread that parents them.
//!
//! Every child is started through `setpriv --pdeathsig KILL`, so the kernel kills it the moment
//! its parent goes away (normal exit, panic, or SIGKILL of the test binary) — the crate forbids
//! `unsafe`, so `prctl` cannot be called from a Rust `pre_exec`. PR_SET_PDEATHSIG fires when the
//! parent *thread* ends, not the process, and the test harness runs each test on a thread of its
//! own that ends with the test; so all children are spawned from one supervisor thread that
//! lives as long as the process.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

type Job = Box<dyn FnOnce() + Send>;

static SUPERVISOR: OnceLock<mpsc::Sender<Job>> = OnceLock::new();

/// Runs `job` on the supervisor thread and returns its result; children spawned inside it are
/// parented by that thread. `job` must not panic (it reports failures as `Err`): a panic would
/// end the thread and with it every child.
pub fn on_supervisor<T: Send + 'static>(job: impl FnOnce() -> T + Send + 'static) -> T {
    let sender = SUPERVISOR.get_or_init(|| {
        let (tx, rx) = mpsc::channel::<Job>();
        std::thread::Builder::new()
            .name("envtest-supervisor".into())
            // The sender lives in a static, so this loop (and the thread) lasts as long as the
            // process does.
            .spawn(move || rx.into_iter().for_each(|job| job()))
            .expect("spawn the envtest supervisor thread");
        tx
    });
    let (reply_tx, reply_rx) = mpsc::sync_channel(1);
    sender
        .send(Box::new(move || {
            // The caller waits on the other end; it only goes away if the caller panicked.
            let _ = reply_tx.send(job());
        }))
        .expect("envtest supervisor thread is gone");
    reply_rx
        .recv()
        .expect("envtest supervisor thread ended while running a job")
}

/// A started child: its name (the binary), process and log file (stdout + stderr).
pub struct Proc {
    pub name: String,
    pub child: Child,
    pub log: PathBuf,
}

impl Proc {
    /// `Err` with the exit status and the log's tail when the process has already exited.
    pub fn check_alive(&mut self) -> Result<(), String> {
        match self.child.try_wait() {
            Ok(None) => Ok(()),
            Ok(Some(status)) => Err(format!(
                "{} exited early ({status}); last log lines from {}:\n{}",
                self.name,
                self.log.display(),
                log_tail(&self.log, 4000)
            )),
            Err(e) => Err(format!("cannot poll {}: {e}", self.name)),
        }
    }
}

/// Processes started so far; kept so the process ids can be reported and children stay owned.
pub static PROCS: Mutex<Vec<(String, u32)>> = Mutex::new(Vec::new());

/// Starts `bin args...` under `setpriv --pdeathsig KILL`, output to `log`. Call it only from
/// the supervisor thread (see [`on_supervisor`]).
pub fn spawn(bin: &Path, args: &[String], log: PathBuf) -> Result<Proc, String> {
    let name = bin
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| bin.display().to_string());
    let out =
        File::create(&log).map_err(|e| format!("cannot create log {}: {e}", log.display()))?;
    let err = out
        .try_clone()
        .map_err(|e| format!("cannot clone log {}: {e}", log.display()))?;
    let child = Command::new("setpriv")
        .args(["--pdeathsig", "KILL", "--"])
        .arg(bin)
        .args(args)
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .spawn()
        .map_err(|e| {
            format!(
                "cannot start {name} through setpriv (util-linux; `apt-get install util-linux`): {e}"
            )
        })?;
    PROCS
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .push((name.clone(), child.id()));
    Ok(Proc { name, child, log })
}

/// A TCP port on 127.0.0.1 that was free a moment ago.
pub fn free_port() -> Result<u16, String> {
    let listener =
        TcpListener::bind("127.0.0.1:0").map_err(|e| format!("cannot bind a free port: {e}"))?;
    listener
        .local_addr()
        .map(|a| a.port())
        .map_err(|e| format!("cannot read a bound port: {e}"))
}

/// Polls `ready` every 100 ms until it returns true, a process in `procs` exits, or `timeout`.
pub fn wait_until(
    what: &str,
    timeout: Duration,
    procs: &mut [&mut Proc],
    mut ready: impl FnMut() -> bool,
) -> Result<(), String> {
    let deadline = Instant::now() + timeout;
    loop {
        if ready() {
            return Ok(());
        }
        let exited = procs.iter_mut().find_map(|p| p.check_alive().err());
        if let Some(e) = exited {
            kill_all(procs);
            return Err(e);
        }
        if Instant::now() > deadline {
            kill_all(procs);
            let logs: Vec<String> = procs
                .iter()
                .map(|p| format!("--- {}:\n{}", p.log.display(), log_tail(&p.log, 2000)))
                .collect();
            return Err(format!(
                "{what} not ready after {timeout:?}\n{}",
                logs.join("\n")
            ));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Kills and reaps `procs` (a start-up that failed must not leave half a control plane).
fn kill_all(procs: &mut [&mut Proc]) {
    for p in procs.iter_mut() {
        let _ = p.child.kill();
        let _ = p.child.wait();
    }
}

/// The last `max` bytes of a log file (lossy UTF-8), for failure messages.
pub fn log_tail(path: &Path, max: u64) -> String {
    let mut text = Vec::new();
    if let Ok(mut f) = File::open(path) {
        let len = f.metadata().map(|m| m.len()).unwrap_or(0);
        let _ = f.seek(SeekFrom::Start(len.saturating_sub(max)));
        let _ = f.read_to_end(&mut text);
    }
    String::from_utf8_lossy(&text).into_owned()
}

/// True while `pid` is a live process (a zombie counts as gone: it no longer runs).
pub fn pid_alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // The state follows the parenthesised command name, which may itself contain ") ".
        Ok(stat) => stat
            .rsplit_once(") ")
            .and_then(|(_, rest)| rest.chars().next())
            .is_some_and(|state| state != 'Z' && state != 'X'),
        Err(_) => false,
    }
}

/// Stops `pid` (SIGTERM, SIGKILL after 5 s) and waits until it is gone; panics naming `what`
/// when it still runs after 30 s.
pub fn stop(pid: u32, what: &str) {
    let kill = |signal: &str| {
        let status = Command::new("kill")
            .args([signal, &pid.to_string()])
            .status()
            .expect("run kill");
        assert!(
            status.success() || !pid_alive(pid),
            "kill {signal} {what} {pid}: {status}"
        );
    };
    kill("-TERM");
    let began = Instant::now();
    while pid_alive(pid) {
        if began.elapsed() > Duration::from_secs(5) {
            kill("-KILL");
        }
        assert!(
            began.elapsed() < Duration::from_secs(30),
            "{what} {pid} does not stop"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Removes the scratch directories in `parent` whose names end in the pid of a process that is
/// gone (`<pid>` or `<name>-<pid>`): a SIGKILLed test binary cannot clean up after itself.
pub fn remove_dirs_of_gone_processes(parent: &Path) {
    let Ok(entries) = std::fs::read_dir(parent) else {
        return;
    };
    for entry in entries.flatten() {
        let stale = entry
            .file_name()
            .to_str()
            .map(|n| n.rsplit_once('-').map_or(n, |(_, pid)| pid))
            .and_then(|pid| pid.parse::<u32>().ok())
            .is_some_and(|pid| !pid_alive(pid));
        if stale {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}
