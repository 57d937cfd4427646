//! Each pod's network, every interval: the counters of its network
//! namespace's interfaces, read from `/proc/<pid>/net/dev` of one of the
//! pod's processes through `--proc-root` (world-readable: no capability, no
//! `hostNetwork`, no `hostPID`).
//!
//! ```text
//!  sandbox container of a pod ─▶ a pid in its cgroup (process index, or cgroup.procs)
//!        ─▶ open <proc_root>/<pid> once (a handle on that process, not on the number)
//!        ─▶ each interval: <handle>/net/dev ─▶ per-interface counters ─▶ pod totals (lo kept out)
//! ```
//!
//! The handle is a directory descriptor of `/proc/<pid>`: once that process
//! exits, reads through it fail even if the pid is given to another process,
//! so a recycled pid never moves counters to another pod or to the host. The
//! process is found once per pod and checked to be in the sandbox's cgroup;
//! when it goes, another is found at the next interval (that interval's
//! values are null). A new sandbox (the pause container restarted) is a new
//! container: its counters start a series of their own, no jump. Pods on the
//! host's network (known from the pod spec) get none: their namespace is the
//! node's. Without pod metadata (`local` mode, or enrichment off) the
//! sandbox's own namespace decides: a pod counts when its process's
//! `ns/net` is not the host's (pid 1's through `--proc-root`, else the
//! agent's own: in `local` the host's; a link the agent may not read means
//! nothing is recorded), checked once per process.

pub mod netdev;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustix::fd::OwnedFd;
use rustix::fs::{AtFlags, Mode, OFlags};

use super::contract::{Cycle, InterfaceSample};
use crate::store::schema::metric_index;

/// Columns of a pod's totals, in [`netdev::COUNTERS`] order.
fn total_columns() -> [Option<usize>; netdev::COUNTERS.len()] {
    std::array::from_fn(|i| metric_index(&format!("network_{}", netdev::COUNTERS[i])))
}

/// A pod's process, held open.
#[derive(Debug)]
struct Handle {
    /// The sandbox container the process was found in.
    sandbox: String,
    dir: OwnedFd,
    seen: u64,
    /// Whether the process has a network namespace of its own (asked only
    /// when the pod spec is not known).
    own_netns: Option<bool>,
    /// `net/dev`, kept open and read from offset 0 each interval: opening it
    /// every second was a fifth of the agent's CPU at 500 pods.
    netdev: Option<OwnedFd>,
    /// Cycle the process was last seen running.
    alive_at: u64,
}

/// Cycles between checks that a pod's process still runs. Until the check, a
/// kept `net/dev` reads the namespace the process was in, which is still the
/// pod's (never another's), and keeps it referenced: at most this many
/// seconds past the pod's end. Checking every second was as costly as the
/// read itself.
const ALIVE_EVERY: u64 = 10;

/// Reads every pod's interfaces once per interval (see the module docs).
#[derive(Debug)]
pub struct PodNetwork {
    proc_root: PathBuf,
    columns: [Option<usize>; netdev::COUNTERS.len()],
    pods: HashMap<Arc<str>, Handle>,
    cycles: u64,
    buf: Vec<u8>,
    /// pid 1's network namespace (`net:[inode]`), read when first needed.
    host_netns: Option<Option<String>>,
}

impl PodNetwork {
    pub fn new(proc_root: &Path) -> Self {
        Self {
            proc_root: proc_root.to_path_buf(),
            columns: total_columns(),
            pods: HashMap::new(),
            cycles: 0,
            buf: vec![0; 8192],
            host_netns: None,
        }
    }

    /// Pods followed now.
    pub fn pods(&self) -> usize {
        self.pods.len()
    }

    /// Fills the network columns of every pod's sandbox row in `cycle` and
    /// its per-interface samples. `pids_of(cgroup path)`: processes in a
    /// container; `host_network(pod uid)`: from the pod spec, `None` when
    /// not known.
    pub fn sample(
        &mut self,
        cycle: &mut Cycle,
        pids_of: &dyn Fn(&str) -> Vec<u32>,
        host_network: &dyn Fn(&str) -> Option<bool>,
    ) {
        self.cycles += 1;
        let now = self.cycles;
        let mut interfaces = Vec::new();
        for sample in cycle.containers.iter_mut().filter(|s| s.sandbox) {
            let Some(uid) = sample.pod_uid.clone() else {
                continue;
            };
            let known = host_network(&uid);
            if known == Some(true) {
                continue;
            }
            let Some(read) = self.read(&uid, &sample.cgroup_path, pids_of, now, known.is_none())
            else {
                continue;
            };
            let ifaces = netdev::parse(&read);
            for (column, total) in self.columns.iter().zip(netdev::totals(&ifaces)) {
                if let Some(slot) = column.and_then(|c| sample.values.get_mut(c)) {
                    *slot = Some(total);
                }
            }
            for iface in ifaces {
                interfaces.push(InterfaceSample {
                    sandbox: sample.short_id.clone(),
                    pod_uid: uid.clone(),
                    interface: iface.name,
                    counters: iface.counters,
                });
            }
        }
        cycle.network = interfaces;
        self.pods.retain(|_, h| h.seen == now);
    }

    /// `net/dev` of the pod's process, finding one first when needed; with
    /// `ask_netns`, only when that process has a network namespace of its own.
    fn read(
        &mut self,
        uid: &Arc<str>,
        sandbox: &str,
        pids_of: &dyn Fn(&str) -> Vec<u32>,
        now: u64,
        ask_netns: bool,
    ) -> Option<String> {
        if self.pods.get(uid).is_some_and(|h| h.sandbox != sandbox) {
            self.pods.remove(uid);
        }
        if !self.pods.contains_key(uid) {
            let dir = self.find(sandbox, pids_of)?;
            self.pods.insert(
                uid.clone(),
                Handle {
                    sandbox: sandbox.to_string(),
                    dir,
                    seen: now,
                    own_netns: None,
                    netdev: None,
                    alive_at: now,
                },
            );
        }
        let host = if ask_netns { self.host_netns() } else { None };
        let handle = self.pods.get_mut(uid)?;
        handle.seen = now;
        if ask_netns {
            let own = *handle.own_netns.get_or_insert_with(|| {
                let ns = netns_of(&handle.dir);
                matches!((ns, host), (Some(ns), Some(host)) if ns != host)
            });
            if !own {
                return None;
            }
        }
        // A kept file keeps reading its namespace after the process exits: a
        // look-up through the process's handle says whether it still runs,
        // asked when the file is opened and every ALIVE_EVERY cycles.
        let ask = handle.netdev.is_none() || now - handle.alive_at >= ALIVE_EVERY;
        let alive = !ask || rustix::fs::statat(&handle.dir, "net", AtFlags::empty()).is_ok();
        if ask && alive {
            handle.alive_at = now;
        }
        if handle.netdev.is_none() && alive {
            handle.netdev = rustix::fs::openat(
                &handle.dir,
                "net/dev",
                OFlags::RDONLY | OFlags::CLOEXEC,
                Mode::empty(),
            )
            .ok();
        }
        match handle.netdev.as_ref().filter(|_| alive) {
            Some(fd) => read_from_start(fd, &mut self.buf),
            None => {
                // The process exited: another one is found next time.
                self.pods.remove(uid);
                None
            }
        }
    }

    /// Opens `/proc/<pid>` of a process of the sandbox, checked to be in its
    /// cgroup through the opened handle (the pid may have been reused since
    /// it was listed).
    fn find(&mut self, sandbox: &str, pids_of: &dyn Fn(&str) -> Vec<u32>) -> Option<OwnedFd> {
        let leaf = sandbox.rsplit('/').next().unwrap_or(sandbox);
        for pid in pids_of(sandbox) {
            let Ok(dir) = rustix::fs::open(
                self.proc_root.join(pid.to_string()),
                OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
                Mode::empty(),
            ) else {
                continue;
            };
            let in_sandbox = read_at(&dir, "cgroup", &mut self.buf).is_some_and(|text| {
                text.lines()
                    .any(|l| l.rsplit('/').next().is_some_and(|last| last == leaf))
            });
            if in_sandbox {
                return Some(dir);
            }
        }
        None
    }
}

impl PodNetwork {
    /// The host's network namespace, read once: pid 1's through
    /// `--proc-root`, else (pid 1 not dumpable and no CAP_SYS_PTRACE) the
    /// agent's own, which in `local` is the host's.
    fn host_netns(&mut self) -> Option<String> {
        if self.host_netns.is_none() {
            let open = |path: PathBuf| {
                rustix::fs::open(
                    path,
                    OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
                    Mode::empty(),
                )
                .ok()
            };
            let ns = open(self.proc_root.join("1"))
                .as_ref()
                .and_then(netns_of)
                .or_else(|| {
                    open(PathBuf::from("/proc/self"))
                        .as_ref()
                        .and_then(netns_of)
                });
            self.host_netns = Some(ns);
        }
        self.host_netns.clone().flatten()
    }
}

/// The network namespace of a `/proc/<pid>` handle (`net:[inode]`).
fn netns_of(dir: &OwnedFd) -> Option<String> {
    rustix::fs::readlinkat(dir, "ns/net", Vec::new())
        .ok()
        .map(|link| link.to_string_lossy().into_owned())
}

/// A file below a `/proc/<pid>` handle as text; `None` once the process is gone.
fn read_at(dir: &OwnedFd, name: &str, buf: &mut Vec<u8>) -> Option<String> {
    let fd = rustix::fs::openat(dir, name, OFlags::RDONLY | OFlags::CLOEXEC, Mode::empty()).ok()?;
    read_from_start(&fd, buf)
}

/// An open file's whole text, read from offset 0 (a `/proc` file is produced anew).
fn read_from_start(fd: &OwnedFd, buf: &mut Vec<u8>) -> Option<String> {
    let mut len = 0;
    loop {
        if len == buf.len() {
            buf.resize(buf.len() * 2, 0);
        }
        match rustix::io::pread(fd, &mut buf[len..], len as u64) {
            Ok(0) => break,
            Ok(n) => len += n,
            Err(rustix::io::Errno::INTR) => continue,
            Err(_) => return None,
        }
    }
    Some(String::from_utf8_lossy(&buf[..len]).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agent::contract::ContainerSample;
    use crate::store::schema::METRICS;

    const SANDBOX: &str = "kubepods/burstable/pod1/aaaa";

    fn net_dev(rx: i64, tx: i64) -> String {
        format!(
            "Inter-| Receive | Transmit\n face |bytes packets errs drop fifo frame compressed multicast|bytes packets errs drop fifo colls carrier compressed\n\
                 lo: 500 5 0 0 0 0 0 0 500 5 0 0 0 0 0 0\n\
               eth0: {rx} 10 0 1 0 0 0 0 {tx} 20 0 0 0 0 0 0\n"
        )
    }

    fn process(root: &Path, pid: u32, cgroup: &str, rx: i64) {
        let d = root.join(pid.to_string());
        std::fs::create_dir_all(d.join("net")).unwrap();
        std::fs::write(d.join("net/dev"), net_dev(rx, 2 * rx)).unwrap();
        std::fs::write(d.join("cgroup"), format!("0::/{cgroup}\n")).unwrap();
    }

    fn cycle(sandbox: bool, uid: &str, path: &str) -> Cycle {
        Cycle {
            timestamp: None,
            containers: vec![ContainerSample {
                short_id: "aaaa".into(),
                full_id: "aaaa".into(),
                cgroup_path: path.into(),
                values: vec![None; METRICS.len()],
                pod_uid: Some(Arc::from(uid)),
                sandbox,
                devices: Vec::new(),
            }],
            network: Vec::new(),
            processes: Vec::new(),
        }
    }

    fn rx(c: &Cycle) -> Option<i64> {
        c.containers[0].values[metric_index("network_receive_bytes").unwrap()]
    }

    #[test]
    fn a_pods_totals_land_on_its_sandbox_row_and_follow_its_process() {
        let proc = tempfile::tempdir().unwrap();
        process(proc.path(), 10, SANDBOX, 1000);
        // Another pod's process, and one named by a stale listing (not in the sandbox any more).
        process(proc.path(), 11, "kubepods/pod2/bbbb", 7);
        let mut net = PodNetwork::new(proc.path());
        let pids = std::cell::RefCell::new(vec![11u32, 10]);
        let pids_of = |_: &str| pids.borrow().clone();
        let no_host = |_: &str| Some(false);
        let mut c = cycle(true, "uid-1", SANDBOX);
        net.sample(&mut c, &pids_of, &no_host);
        assert_eq!(rx(&c), Some(1000), "eth0 only: lo is not summed in");
        assert_eq!(
            c.containers[0].values[metric_index("network_transmit_bytes").unwrap()],
            Some(2000)
        );
        assert_eq!(
            c.network.len(),
            2,
            "both interfaces in the per-interface data"
        );
        assert_eq!(net.pods(), 1);

        // The process exits: its kept file reads the namespace it left (the pod's) until
        // the next check, then no value that interval (never another process's), then the
        // next one of the sandbox is found.
        std::fs::remove_dir_all(proc.path().join("10")).unwrap();
        for _ in 1..ALIVE_EVERY {
            let mut c = cycle(true, "uid-1", SANDBOX);
            net.sample(&mut c, &pids_of, &no_host);
            assert_eq!(rx(&c), Some(1000));
        }
        let mut c = cycle(true, "uid-1", SANDBOX);
        net.sample(&mut c, &pids_of, &no_host);
        assert_eq!(rx(&c), None, "checked after {ALIVE_EVERY} cycles");
        process(proc.path(), 12, SANDBOX, 3000);
        *pids.borrow_mut() = vec![12];
        let mut c = cycle(true, "uid-1", SANDBOX);
        net.sample(&mut c, &pids_of, &no_host);
        assert_eq!(rx(&c), Some(3000));
    }

    /// `ns/net` of `pid` in the fake /proc: a link to `net:[inode]`.
    fn netns(root: &Path, pid: u32, inode: u32) {
        let d = root.join(pid.to_string()).join("ns");
        std::fs::create_dir_all(&d).unwrap();
        std::os::unix::fs::symlink(format!("net:[{inode}]"), d.join("net")).unwrap();
    }

    #[test]
    fn without_the_pod_spec_a_namespace_of_its_own_decides() {
        let proc = tempfile::tempdir().unwrap();
        netns(proc.path(), 1, 4026531840);
        process(proc.path(), 10, SANDBOX, 1000);
        netns(proc.path(), 10, 4026532999);
        let host_pod = "kubepods/burstable/pod2/bbbb";
        process(proc.path(), 11, host_pod, 7);
        netns(proc.path(), 11, 4026531840);
        let mut net = PodNetwork::new(proc.path());
        let unknown = |_: &str| None;
        let mut c = cycle(true, "uid-1", SANDBOX);
        net.sample(&mut c, &|_| vec![10u32], &unknown);
        assert_eq!(rx(&c), Some(1000), "its own namespace: its interfaces");
        let mut c = cycle(true, "uid-2", host_pod);
        net.sample(&mut c, &|_| vec![11u32], &unknown);
        assert_eq!(
            rx(&c),
            None,
            "the host's namespace: the node's interfaces, not the pod's"
        );
        assert!(c.network.is_empty());
        // The pod spec, when known, decides without asking.
        let mut c = cycle(true, "uid-2", host_pod);
        net.sample(&mut c, &|_| vec![11u32], &|_| Some(false));
        assert_eq!(rx(&c), Some(7));
    }

    #[test]
    fn host_network_and_unknown_pods_and_app_containers_get_nothing() {
        let proc = tempfile::tempdir().unwrap();
        process(proc.path(), 10, SANDBOX, 1000);
        let mut net = PodNetwork::new(proc.path());
        let pids_of = |_: &str| vec![10u32];
        // Unknown and no namespace link to compare (not readable): nothing, as for the host's.
        for host in [Some(true), None] {
            let mut c = cycle(true, "uid-1", SANDBOX);
            net.sample(&mut c, &pids_of, &|_| host);
            assert_eq!(rx(&c), None, "host network {host:?}");
            assert!(c.network.is_empty());
        }
        let mut c = cycle(false, "uid-1", SANDBOX);
        net.sample(&mut c, &pids_of, &|_| Some(false));
        assert_eq!(rx(&c), None, "an app container's row carries no pod totals");
    }
}
