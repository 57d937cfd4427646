//! The node agent: discovers containers from the cgroup tree, samples their
//! metrics once per interval and hands each sample to the store.
//!
//! ```text
//!  mountinfo ─▶ hierarchies ─▶ discovery (scan) ─▶ sampler (open files, pread)
//!                                                      │ Cycle
//!             watch channel (Prometheus, #8) ◀─────────┤
//!             recorder: SampleBuffer ─rotation─▶ Parquet + index.json, retention
//! ```
//!
//! - [`mountinfo`]: where the v1/v2 hierarchies are.
//! - [`discovery`]: which cgroups are containers (kubelet layouts, `local` leaves, sandboxes).
//! - [`cgroup_v2`], [`cgroup_v1`]: file parsers; [`sampler`]: open files, read at offset 0.
//! - [`collector`]: one cycle; [`recorder`]: files, index, retention; [`runner`]: the timer loop.
//! - [`kubelet`]: each container's filesystem (layer, logs) from the kubelet's Summary API.
//! - [`processes`]: pid → cgroup from the host's /proc, for counts when the agent has its own PID namespace.
//! - [`data_dir`]: the data directory must be the agent's own (and `prepare-data-dir` makes it so).
//! - [`prometheus`]: `/metrics` (latest cycle + self-metrics); [`contract`]: what other parts consume.

pub mod cgroup_v1;
pub mod cgroup_v2;
pub mod clock;
pub mod collector;
pub mod container_files;
pub mod contract;
pub mod data_dir;
pub mod discovery;
pub mod enrich;
pub mod fds;
pub mod kubelet;
pub mod mountinfo;
pub mod network;
pub mod process_table;
pub mod processes;
pub mod prometheus;
pub mod recorder;
pub mod runner;
pub mod sampler;
pub mod short_ids;
pub mod slots;

pub use contract::{ContainerSample, Cycle, CycleReceiver, InterfaceSample, PodInfo, PodMetadata};
pub use discovery::{DiscoveryMode, Scope};
pub use prometheus::SelfMetrics;
pub use runner::{Agent, AgentConfig, AgentError, AgentHandle};

use std::path::PathBuf;

use clap::Args;

use crate::units::{ByteSize, HumanDuration};

/// Flags of `agent` (and of `local`, which adds the viewer's).
#[derive(Debug, Clone, Args)]
pub struct AgentArgs {
    /// Where Parquet files and index.json are written
    /// [default: /data for `agent`, ~/.local/share/fine-grained-monitor for `local`].
    #[arg(long, env = "FGM_DATA_DIR", value_name = "DIR")]
    pub data_dir: Option<PathBuf>,

    /// Node name, used for the `identifier=` directory [default: $NODE_NAME, else the hostname].
    #[arg(long, env = "FGM_NODE_NAME")]
    pub node_name: Option<String>,

    /// Sampling interval.
    #[arg(long, env = "FGM_INTERVAL", default_value = "1s")]
    pub interval: HumanDuration,

    /// How often the open Parquet file is completed and a new one started.
    #[arg(long, env = "FGM_ROTATION", default_value = "90s")]
    pub rotation: HumanDuration,

    /// Root of the cgroup tree to read: a v2 root or a directory of v1 controller
    /// hierarchies [default: found from /proc/self/mountinfo].
    #[arg(long, env = "FGM_CGROUP_ROOT", value_name = "DIR")]
    pub cgroup_root: Option<PathBuf>,

    /// Whose containers are recorded when several kubelets share the host (kind's nodes):
    /// `auto`, the kubelet `--cgroup-root` holding this agent's own pod ($FGM_POD_UID; every
    /// container when not in a pod); `all`; or a cgroup path such as `/kubelet-2`.
    #[arg(
        long,
        env = "FGM_KUBELET_CGROUP_ROOT",
        value_name = "auto|all|PATH",
        default_value = "auto"
    )]
    pub kubelet_cgroup_root: String,

    /// UID of the agent's own pod (the DaemonSet sets it from `metadata.uid`): what `auto`
    /// above looks for.
    #[arg(long, env = "FGM_POD_UID")]
    pub pod_uid: Option<String>,

    /// Data files older than this are deleted.
    #[arg(long, env = "FGM_RETENTION_MAX_AGE", default_value = "7d")]
    pub retention_max_age: HumanDuration,

    /// Oldest data files are deleted while the data exceeds this size (e.g. 10Gi).
    #[arg(long, env = "FGM_RETENTION_MAX_BYTES")]
    pub retention_max_bytes: Option<ByteSize>,

    /// The host's /proc, used to recognise pod sandbox (pause) containers by
    /// process name; they are recorded and marked `sandbox: true` in index.json.
    #[arg(
        long,
        env = "FGM_PROC_ROOT",
        value_name = "DIR",
        default_value = "/proc"
    )]
    pub proc_root: PathBuf,

    /// Address of the Prometheus endpoint: /metrics (cAdvisor names + self-metrics), /healthz, /.
    #[arg(long, env = "FGM_METRICS_ADDR", default_value = prometheus::DEFAULT_ADDR)]
    pub metrics_addr: std::net::SocketAddr,

    /// Record pod names, namespaces, labels and failure events from the
    /// Kubernetes API (pods of this node only); `false` keeps short ids only.
    #[arg(long, env = "FGM_ENRICHMENT", default_value_t = true, action = clap::ArgAction::Set)]
    pub enrichment: bool,

    /// Kubeconfig for the API [default: in-cluster service account, else $KUBECONFIG or ~/.kube/config].
    #[arg(long, env = "FGM_KUBECONFIG", value_name = "FILE")]
    pub kubeconfig: Option<PathBuf>,

    /// Kubeconfig context to use [default: the current context].
    #[arg(long, env = "FGM_KUBE_CONTEXT")]
    pub kube_context: Option<String>,

    /// Only record pods of namespaces matching this label selector (e.g. `monitoring=on`).
    #[arg(long, env = "FGM_NAMESPACE_SELECTOR", value_name = "SELECTOR")]
    pub namespace_selector: Option<String>,

    /// Longest wait between attempts to reach the API while it is unavailable.
    #[arg(long, env = "FGM_ENRICHMENT_RETRY_MAX", default_value = "30s")]
    pub enrichment_retry_max: HumanDuration,

    /// Limits of the Prometheus endpoint (of the viewer in `local`).
    #[command(flatten)]
    pub http: crate::http::HttpArgs,
    /// How long to wait while another agent holds the data directory (the old
    /// pod of a rolling update writing its last file) before exiting with an
    /// error naming it. Below the liveness probe's first failure (~50 s).
    #[arg(long, env = "FGM_LOCK_WAIT", default_value = "40s")]
    pub lock_wait: HumanDuration,

    /// How often the open interval's tail file is made durable (fsync): what
    /// a kernel or node crash may lose. A crash of the agent alone loses at most
    /// the cycle being written. At least the interval.
    #[arg(long, env = "FGM_TAIL_SYNC", default_value = "10s")]
    pub tail_sync: HumanDuration,

    /// The node's kubelet, asked for each container's filesystem (writable
    /// layer, logs) [default: https://$NODE_IP:10250; `none` turns it off].
    /// Kubernetes mode with enrichment only: it uses the agent's credentials.
    #[arg(long, env = "FGM_KUBELET_URL", value_name = "URL")]
    pub kubelet_url: Option<String>,

    /// How often the kubelet is asked for the containers' filesystems (the
    /// kubelet itself refreshes them about every 10 s to a minute).
    #[arg(long, env = "FGM_FS_INTERVAL", default_value = "30s")]
    pub fs_interval: HumanDuration,

    /// Do not verify the kubelet's serving certificate (kubelets whose
    /// certificate the cluster's CA did not sign, as kubeadm's by default).
    #[arg(long, env = "FGM_KUBELET_INSECURE_TLS", default_value_t = false, action = clap::ArgAction::Set)]
    pub kubelet_insecure_tls: bool,

    /// Record each container's processes (a processes-<start>.parquet dataset:
    /// CPU and RSS every interval, PSS/USS/swap from smaps_rollup, starts and
    /// exits) [default: off in `agent`, on in `local`]. Reading another user's
    /// smaps_rollup needs CAP_SYS_PTRACE (docs/security.md).
    #[arg(long, env = "FGM_PROCESSES", value_name = "BOOL", action = clap::ArgAction::Set)]
    pub processes: Option<bool>,

    /// Processes kept per container by CPU, and again by memory.
    #[arg(long, env = "FGM_PROCESS_TOP_K", default_value_t = 10)]
    pub process_top_k: usize,

    /// PSS, USS and swap (smaps_rollup, the costly read) every this many intervals.
    #[arg(long, env = "FGM_PROCESS_MEMORY_EVERY", default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..))]
    pub process_memory_every: u32,

    /// Process starts and exits recorded per container and interval beyond the
    /// top K (a fork storm is counted, not recorded in full).
    #[arg(long, env = "FGM_PROCESS_MAX_EVENTS", default_value_t = 20)]
    pub process_max_events: usize,

    #[command(flatten)]
    pub export: crate::export::ExportArgs,
}

impl AgentArgs {
    /// Resolves defaults: data directory, node name. `mode` picks the
    /// discovery rule and the data directory default.
    pub fn to_config(&self, mode: DiscoveryMode) -> anyhow::Result<AgentConfig> {
        let data_dir = match (&self.data_dir, mode) {
            (Some(dir), _) => dir.clone(),
            (None, DiscoveryMode::Kubernetes) => PathBuf::from("/data"),
            (None, DiscoveryMode::Local) => default_local_data_dir()?,
        };
        let node_name = match &self.node_name {
            Some(name) => name.clone(),
            None => node_name_from_env_or_host()?,
        };
        Ok(AgentConfig {
            data_dir,
            node_name,
            interval: self.interval.0,
            rotation: self.rotation.0,
            cgroup_root: self.cgroup_root.clone(),
            proc_root: self.proc_root.clone(),
            retention_max_age: self.retention_max_age.0,
            retention_max_bytes: self.retention_max_bytes.map(|b| b.0),
            discovery: mode,
            scope: discovery::Scope::parse(&self.kubelet_cgroup_root, self.pod_uid.as_deref())?,
            // New containers come from inotify events; this is the full-walk
            // period without them (and in `local` mode). A full walk costs about
            // as much as reading every container once (benches/agent_cycle.rs).
            scan_every: 5,
            // Limits and peaks (memory.max, cpu.max, memory.peak, ...) are
            // re-read every 30 cycles: they rarely change or are maxima already.
            limits_every: 30,
            lock_wait: self.lock_wait.0,
            tail_sync: self.tail_sync.0,
            kubelet: self.kubelet_config(mode),
            processes: self
                .processes_enabled(mode)
                .then_some(process_table::ProcessConfig {
                    top_k: self.process_top_k,
                    memory_every: self.process_memory_every,
                    max_events: self.process_max_events,
                }),
        })
    }

    /// `--processes`, defaulting to on in `local` (the user's own machine)
    /// and off in the cluster (it costs CPU and wants CAP_SYS_PTRACE).
    pub fn processes_enabled(&self, mode: DiscoveryMode) -> bool {
        self.processes.unwrap_or(mode == DiscoveryMode::Local)
    }

    /// The kubelet to ask for filesystems: Kubernetes mode, enrichment on
    /// (the same credentials), and an address known.
    fn kubelet_config(&self, mode: DiscoveryMode) -> Option<kubelet::KubeletConfig> {
        if mode != DiscoveryMode::Kubernetes || !self.enrichment {
            return None;
        }
        let node_ip = std::env::var("NODE_IP").ok();
        let url = kubelet::kubelet_url(self.kubelet_url.as_deref(), node_ip.as_deref())?;
        Some(kubelet::KubeletConfig {
            url,
            interval: self.fs_interval.0.max(std::time::Duration::from_secs(1)),
            insecure_tls: self.kubelet_insecure_tls,
            source: enrich::client::ClientSource {
                kubeconfig: self.kubeconfig.clone(),
                context: self.kube_context.clone(),
            },
        })
    }
}

/// `$XDG_DATA_HOME/fine-grained-monitor`, else `~/.local/share/fine-grained-monitor`.
pub fn default_local_data_dir() -> anyhow::Result<PathBuf> {
    if let Some(xdg) = std::env::var_os("XDG_DATA_HOME").filter(|v| !v.is_empty()) {
        return Ok(PathBuf::from(xdg).join("fine-grained-monitor"));
    }
    let home = std::env::var_os("HOME")
        .filter(|v| !v.is_empty())
        .ok_or_else(|| anyhow::anyhow!("HOME is not set: pass --data-dir"))?;
    Ok(PathBuf::from(home).join(".local/share/fine-grained-monitor"))
}

/// `$NODE_NAME` (the DaemonSet sets it from `spec.nodeName`), else the hostname.
fn node_name_from_env_or_host() -> anyhow::Result<String> {
    if let Some(name) = std::env::var("NODE_NAME").ok().filter(|n| !n.is_empty()) {
        return Ok(name);
    }
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").map_err(|e| {
        anyhow::anyhow!(
            "cannot read the hostname from /proc/sys/kernel/hostname ({e}): pass --node-name"
        )
    })?;
    Ok(host.trim().to_string())
}

/// Runs the agent (Kubernetes discovery) and its Prometheus endpoint until
/// `stop` is cancelled. If either part fails, the other is stopped too.
pub async fn run(args: AgentArgs, stop: tokio_util::sync::CancellationToken) -> anyhow::Result<()> {
    let config = args.to_config(DiscoveryMode::Kubernetes)?;
    let listener = tokio::net::TcpListener::bind(args.metrics_addr)
        .await
        .map_err(|e| {
            anyhow::anyhow!("cannot listen on --metrics-addr {}: {e}", args.metrics_addr)
        })?;
    // Before anything writes to the data directory (the enricher writes
    // events, the uploader its records).
    let Some(lock) = runner::lock_data_dir(&config, &stop).await? else {
        return Ok(()); // stopped while waiting
    };
    let mut registry = prometheus_client::registry::Registry::default();
    let export = crate::export::start(
        &args.export,
        config.data_dir.clone(),
        &config.node_name,
        &mut registry,
        stop.clone(),
    );
    let metrics = SelfMetrics::with_registry(registry);
    let (pods, enricher_task) = start_enricher(&args, &config, &metrics, &stop).await;
    let interval = config.interval;
    let (hooks, export_task, export_metrics) = match export {
        Some(e) => (e.hooks, Some(e.task), Some(e.metrics)),
        None => (recorder::RecorderHooks::default(), None, None),
    };
    let handle = Agent::start_hooked(
        config,
        lock,
        pods.clone(),
        metrics.clone(),
        stop.clone(),
        hooks,
    )?;
    let state = prometheus::MetricsState {
        cycles: handle.cycles.clone(),
        pods,
        self_metrics: metrics,
        stale_after: prometheus::health::stale_after(interval),
        started: chrono::Utc::now(),
    };
    let server_stop = stop.clone();
    let limits = crate::http::Limits::from(&args.http);
    // `GET /export` (the uploader's status, read by the operator) on the same
    // hardened server and port as /metrics.
    let router = crate::export::status::with_status_route(prometheus::app(state), export_metrics);
    let server = tokio::spawn(prometheus::serve_router(
        listener,
        router,
        limits,
        server_stop,
    ));
    let agent_result = handle.task.await;
    // The agent finished (stop or failure): the endpoint goes with it.
    stop.cancel();
    if let Some(task) = export_task
        && let Err(e) = task.await
    {
        tracing::warn!(error = %e, "export uploader ended abnormally");
    }
    let server_result = server.await;
    if let Some(task) = enricher_task {
        // Never fails by design; a panic in it should not hide the agent's result.
        if let Err(e) = task.await {
            tracing::warn!(error = %e, "pod metadata enricher ended abnormally");
        }
    }
    agent_result??;
    server_result??;
    Ok(())
}

/// How long `agent` mode waits for the first pod list when a namespace selector
/// is set, so containers of unselected namespaces are not recorded at start-up.
const SELECTOR_SYNC_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

/// The pod metadata enricher of `--enrichment` (on by default); it reports its
/// state through `metrics` (`/healthz`, `fgm_agent_enrichment_state`).
async fn start_enricher(
    args: &AgentArgs,
    config: &AgentConfig,
    metrics: &SelfMetrics,
    stop: &tokio_util::sync::CancellationToken,
) -> (
    Option<std::sync::Arc<dyn PodMetadata>>,
    Option<tokio::task::JoinHandle<()>>,
) {
    match enrich::EnrichConfig::from_args(args, &config.node_name, &config.data_dir) {
        Some(mut enrich_config) => {
            enrich_config.metrics = Some(metrics.clone());
            let selector = enrich_config.namespace_selector.is_some();
            let (enricher, task) = enrich::start(enrich_config, stop.clone());
            metrics.set_enrichment(enricher.status());
            if selector {
                // Bounded: without an API the agent collects anyway (short ids, everything).
                let mut health = enricher.health_changes();
                let first_sync = health.wait_for(|h| *h != enrich::Health::Syncing);
                let _ = tokio::time::timeout(SELECTOR_SYNC_WAIT, first_sync).await;
            }
            (Some(enricher), Some(task))
        }
        None => {
            metrics.set_enrichment(enrich::Enricher::disabled().status());
            (None, None)
        }
    }
}
