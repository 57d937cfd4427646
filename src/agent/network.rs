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
//! node's. Without pod metadata nothing says which pods those are, so
//! nothing is recorded.

pub mod netdev;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustix::fd::OwnedFd;
use rustix::fs::{Mode, OFlags};

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
}

/// Reads every pod's interfaces once per interval (see the module docs).
#[derive(Debug)]
pub struct PodNetwork {
    proc_root: PathBuf,
    columns: [Option<usize>; netdev::COUNTERS.len()],
    pods: HashMap<Arc<str>, Handle>,
    cycles: u64,
    buf: Vec<u8>,
}

impl PodNetwork {
    pub fn new(proc_root: &Path) -> Self {
        Self {
            proc_root: proc_root.to_path_buf(),
            columns: total_columns(),
            pods: HashMap::new(),
            cycles: 0,
            buf: vec![0; 8192],
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
            if host_network(&uid) != Some(false) {
                continue;
            }
            let Some(read) = self.read(&uid, &sample.cgroup_path, pids_of, now) else {
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

    /// `net/dev` of the pod's process, finding one first when needed.
    fn read(
        &mut self,
        uid: &Arc<str>,
        sandbox: &str,
        pids_of: &dyn Fn(&str) -> Vec<u32>,
        now: u64,
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
                },
            );
        }
        let handle = self.pods.get_mut(uid)?;
        handle.seen = now;
        match read_at(&handle.dir, "net/dev", &mut self.buf) {
            Some(text) => Some(text),
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

/// A file below a `/proc/<pid>` handle as text; `None` once the process is gone.
fn read_at(dir: &OwnedFd, name: &str, buf: &mut Vec<u8>) -> Option<String> {
    let fd = rustix::fs::openat(dir, name, OFlags::RDONLY | OFlags::CLOEXEC, Mode::empty()).ok()?;
    let mut len = 0;
    loop {
        if len == buf.len() {
            buf.resize(buf.len() * 2, 0);
        }
        match rustix::io::read(&fd, &mut buf[len..]) {
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

        // The process exits: no value this interval (never another process's), then the
        // next one of the sandbox is found.
        std::fs::remove_dir_all(proc.path().join("10")).unwrap();
        let mut c = cycle(true, "uid-1", SANDBOX);
        net.sample(&mut c, &pids_of, &no_host);
        assert_eq!(rx(&c), None);
        process(proc.path(), 12, SANDBOX, 3000);
        *pids.borrow_mut() = vec![12];
        let mut c = cycle(true, "uid-1", SANDBOX);
        net.sample(&mut c, &pids_of, &no_host);
        assert_eq!(rx(&c), Some(3000));
    }

    #[test]
    fn host_network_and_unknown_pods_and_app_containers_get_nothing() {
        let proc = tempfile::tempdir().unwrap();
        process(proc.path(), 10, SANDBOX, 1000);
        let mut net = PodNetwork::new(proc.path());
        let pids_of = |_: &str| vec![10u32];
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
