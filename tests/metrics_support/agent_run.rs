//! The real agent on a fixture cgroup tree, with its Prometheus endpoint on a
//! free loopback port: what the end-to-end tests and the scrape-load bench run.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use chrono::Utc;
use fine_grained_monitor::agent::prometheus::{MetricsState, health, serve};
use fine_grained_monitor::agent::{
    Agent, AgentConfig, AgentError, DiscoveryMode, PodInfo, PodMetadata, SelfMetrics,
};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::fixture::CgroupFixture;

/// Pod metadata for the first fixture container only.
pub struct FirstPod(pub String);

impl PodMetadata for FirstPod {
    fn lookup(&self, full_container_id: &str) -> Option<Arc<PodInfo>> {
        (full_container_id == self.0).then(|| {
            Arc::new(PodInfo {
                pod_name: "checkout-7d9f".into(),
                namespace: "shop".into(),
                pod_uid: "0b8f0000-aaaa-bbbb-cccc-000000000000".into(),
                labels: BTreeMap::from([("app".into(), "checkout".into())]),
                container_name: "server".into(),
                image: Some("registry.example/checkout:2.1".into()),
                host_network: false,
                requests: None,
            })
        })
    }
}

pub struct AgentRun {
    pub addr: SocketAddr,
    pub fixture: Arc<CgroupFixture>,
    pub data_dir: PathBuf,
    pub metrics: SelfMetrics,
    /// The agent's cycles, as the endpoint sees them.
    pub cycles: fine_grained_monitor::agent::CycleReceiver,
    pub stop: CancellationToken,
    agent: JoinHandle<Result<(), AgentError>>,
    server: JoinHandle<std::io::Result<()>>,
    moving: Arc<AtomicBool>,
    writer: Option<std::thread::JoinHandle<()>>,
    _tmp: tempfile::TempDir,
}

impl AgentRun {
    /// Starts the agent on `containers` fixture containers whose counters a
    /// thread moves every `move_every`, sampling every `interval`.
    pub async fn start(
        containers: usize,
        interval: Duration,
        rotation: Duration,
        move_every: Duration,
    ) -> Self {
        let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let fixture = Arc::new(CgroupFixture::create(
            &tmp.path().join("cgroup"),
            containers,
        ));
        let proc_root = tmp.path().join("proc");
        std::fs::create_dir_all(&proc_root).unwrap_or_else(|e| panic!("{e}"));
        let data_dir = tmp.path().join("data");
        let moving = Arc::new(AtomicBool::new(true));
        let writer = {
            let (fixture, moving) = (fixture.clone(), moving.clone());
            std::thread::spawn(move || {
                let mut generation = 1;
                while moving.load(Ordering::Relaxed) {
                    fixture.write_all(generation);
                    generation += 1;
                    std::thread::sleep(move_every);
                }
            })
        };
        let pods: Arc<dyn PodMetadata> = Arc::new(FirstPod(fixture.containers[0].full_id.clone()));
        let config = AgentConfig {
            data_dir: data_dir.clone(),
            node_name: "node-a".into(),
            interval,
            rotation,
            cgroup_root: Some(fixture.root.clone()),
            proc_root,
            retention_max_age: Duration::from_secs(3600),
            retention_max_bytes: None,
            discovery: DiscoveryMode::Kubernetes,
            scope: fine_grained_monitor::agent::Scope::All,
            scan_every: 1,
            limits_every: 1,
            lock_wait: Duration::from_secs(5),
            tail_sync: Duration::from_secs(10),
            kubelet: None,
            processes: None,
        };
        let stop = CancellationToken::new();
        let metrics = SelfMetrics::new();
        let handle = Agent::start(config, Some(pods.clone()), metrics.clone(), stop.clone())
            .unwrap_or_else(|e| panic!("agent start: {e}"));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let addr = listener.local_addr().unwrap_or_else(|e| panic!("{e}"));
        let server = tokio::spawn(serve(
            listener,
            MetricsState {
                cycles: handle.cycles.clone(),
                pods: Some(pods),
                self_metrics: metrics.clone(),
                stale_after: health::stale_after(interval),
                started: Utc::now(),
            },
            Default::default(),
            stop.clone(),
        ));
        Self {
            addr,
            fixture,
            data_dir,
            metrics,
            cycles: handle.cycles,
            stop,
            agent: handle.task,
            server,
            moving,
            writer: Some(writer),
            _tmp: tmp,
        }
    }

    /// Stops the agent (it writes its open file) and the server; returns the
    /// temporary directory's guard so the data can still be read.
    pub async fn stop(mut self) -> tempfile::TempDir {
        self.stop.cancel();
        (&mut self.agent)
            .await
            .unwrap_or_else(|e| panic!("{e}"))
            .unwrap_or_else(|e| panic!("agent: {e}"));
        (&mut self.server)
            .await
            .unwrap_or_else(|e| panic!("{e}"))
            .unwrap_or_else(|e| panic!("server: {e}"));
        self.moving.store(false, Ordering::Relaxed);
        if let Some(w) = self.writer.take() {
            w.join().unwrap_or_else(|_| panic!("fixture writer thread"));
        }
        let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        std::mem::replace(&mut self._tmp, tmp)
    }
}

impl Drop for AgentRun {
    fn drop(&mut self) {
        // A failing test still stops the writer thread and the tasks.
        self.moving.store(false, Ordering::Relaxed);
        self.stop.cancel();
    }
}
