//! Each container's filesystem, from the node's own kubelet: its writable
//! layer's bytes and inodes and its log files' bytes, every `--fs-interval`
//! (30 s by default).
//!
//! ```text
//!  GET https://<node IP>:10250/stats/summary (the agent's token: `nodes/stats` get)
//!     ─▶ (pod UID, container name) → rootfs used bytes, rootfs inodes used, logs used bytes
//!     ─▶ the newest answer, set on each container's rows until the next one
//! ```
//!
//! Walking a container's layer would cost the node far more (a million files
//! a minute on a busy node) and needs root on containerd's snapshot
//! directories; the runtime measures the layer already and the kubelet's
//! Summary API serves it, which is what the OpenTelemetry `kubeletstats`
//! receiver uses. The kubelet's serving certificate is verified with the
//! cluster's CA (the service account's `ca.crt`) unless
//! `--kubelet-insecure-tls` says not to (kubelets with self-signed serving
//! certificates, as kubeadm makes by default).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::enrich::client::{ClientSource, load_config};
use crate::store::schema::metric_index;

/// One container's filesystem, as the kubelet reports it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FsStats {
    pub usage_bytes: Option<i64>,
    pub inodes_used: Option<i64>,
    pub log_bytes: Option<i64>,
}

/// The newest answer: pod UID → container name → filesystem (nested so a
/// cycle looks containers up by `&str`, without building keys).
pub type FsByContainer = HashMap<String, HashMap<String, FsStats>>;

/// A container's entry in the newest answer.
pub fn lookup<'a>(fs: &'a FsByContainer, pod_uid: &str, container: &str) -> Option<&'a FsStats> {
    fs.get(pod_uid)?.get(container)
}

#[derive(Debug, Deserialize)]
struct Summary {
    #[serde(default)]
    pods: Vec<PodStats>,
}

#[derive(Debug, Deserialize)]
struct PodStats {
    #[serde(rename = "podRef")]
    pod_ref: PodRef,
    #[serde(default)]
    containers: Vec<ContainerStats>,
}

#[derive(Debug, Deserialize)]
struct PodRef {
    uid: String,
}

#[derive(Debug, Deserialize)]
struct ContainerStats {
    name: String,
    rootfs: Option<FsValues>,
    logs: Option<FsValues>,
}

#[derive(Debug, Deserialize)]
struct FsValues {
    #[serde(rename = "usedBytes")]
    used_bytes: Option<i64>,
    #[serde(rename = "inodesUsed")]
    inodes_used: Option<i64>,
}

/// Parses the kubelet's `/stats/summary`.
pub fn parse_summary(json: &[u8]) -> Result<FsByContainer, serde_json::Error> {
    let summary: Summary = serde_json::from_slice(json)?;
    let mut out: FsByContainer = HashMap::new();
    for pod in summary.pods {
        let containers = out.entry(pod.pod_ref.uid).or_default();
        for c in pod.containers {
            let rootfs = c.rootfs.as_ref();
            containers.insert(
                c.name,
                FsStats {
                    usage_bytes: rootfs.and_then(|r| r.used_bytes),
                    inodes_used: rootfs.and_then(|r| r.inodes_used),
                    log_bytes: c.logs.and_then(|l| l.used_bytes),
                },
            );
        }
    }
    Ok(out)
}

/// The filesystem columns of the schema, in [`FsStats`] order.
pub fn columns() -> [Option<usize>; 3] {
    [
        metric_index("fs_usage_bytes"),
        metric_index("fs_inodes_used"),
        metric_index("fs_log_bytes"),
    ]
}

/// Sets a row's filesystem columns.
pub fn apply(stats: &FsStats, columns: &[Option<usize>; 3], values: &mut [Option<i64>]) {
    for (column, value) in
        columns
            .iter()
            .zip([stats.usage_bytes, stats.inodes_used, stats.log_bytes])
    {
        if let Some(slot) = column.and_then(|c| values.get_mut(c)) {
            *slot = value;
        }
    }
}

/// Where and how often the kubelet is asked.
#[derive(Debug, Clone)]
pub struct KubeletConfig {
    /// `https://<node IP>:10250`.
    pub url: String,
    pub interval: Duration,
    pub insecure_tls: bool,
    /// The credentials: the agent's own (its service account in a pod).
    pub source: ClientSource,
}

/// The kubelet's address from `--kubelet-url`, else from `$NODE_IP` (the
/// DaemonSet sets it from `status.hostIP`); `None` when neither says, or the
/// flag is `none`.
pub fn kubelet_url(flag: Option<&str>, node_ip: Option<&str>) -> Option<String> {
    match flag.map(str::trim) {
        Some("none") | Some("") => None,
        Some(url) => Some(url.trim_end_matches('/').to_string()),
        None => {
            let ip = node_ip.map(str::trim).filter(|ip| !ip.is_empty())?;
            // An IPv6 host needs brackets in a URL.
            let host = if ip.contains(':') {
                format!("[{ip}]")
            } else {
                ip.to_string()
            };
            Some(format!("https://{host}:10250"))
        }
    }
}

/// A watch channel's receiving end holding the newest answer (empty before the first).
pub type FsReceiver = watch::Receiver<Arc<FsByContainer>>;

/// Starts [`run`] on the current runtime.
pub fn start(
    config: KubeletConfig,
    stop: CancellationToken,
) -> (FsReceiver, tokio::task::JoinHandle<()>) {
    let (tx, rx) = watch::channel(Arc::new(FsByContainer::new()));
    (rx, tokio::spawn(run(config, tx, stop)))
}

/// Asks the kubelet every interval and publishes the newest answer; logs a
/// failure once (and when it works again). Ends with `stop`.
pub async fn run(
    config: KubeletConfig,
    publish: watch::Sender<Arc<FsByContainer>>,
    stop: CancellationToken,
) {
    let mut failing: Option<String> = None;
    let mut client: Option<kube::Client> = None;
    loop {
        if client.is_none() {
            match connect(&config).await {
                Ok(c) => client = Some(c),
                Err(e) => {
                    note_failure(&config, &mut failing, e);
                }
            }
        }
        if let Some(c) = &client {
            match fetch(c).await {
                Ok(stats) => {
                    if failing.take().is_some() {
                        tracing::info!(kubelet = %config.url, "container filesystem figures available again");
                    }
                    publish.send_replace(Arc::new(stats));
                }
                Err(e) => {
                    // Stale figures are worse than none: the columns go null.
                    publish.send_replace(Arc::new(FsByContainer::new()));
                    note_failure(&config, &mut failing, e);
                }
            }
        }
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(config.interval) => {}
        }
    }
}

fn note_failure(config: &KubeletConfig, failing: &mut Option<String>, error: String) {
    if failing.as_deref() != Some(error.as_str()) {
        tracing::warn!(kubelet = %config.url, error = %error, "container filesystem figures unavailable (fs_* columns null); retrying every --fs-interval");
    }
    *failing = Some(error);
}

async fn connect(config: &KubeletConfig) -> Result<kube::Client, String> {
    // The agent's credentials: its token authenticates to the kubelet (which
    // asks the API server whether it may read `nodes/stats`); the cluster's
    // CA signed the kubelet's serving certificate in most clusters.
    let (mut kube, _) = load_config(&config.source)
        .await
        .map_err(|e| e.to_string())?;
    kube.cluster_url = config
        .url
        .parse()
        .map_err(|e| format!("--kubelet-url {}: {e}", config.url))?;
    kube.accept_invalid_certs = config.insecure_tls;
    kube.tls_server_name = None;
    kube.connect_timeout = Some(Duration::from_secs(5));
    kube.read_timeout = Some(Duration::from_secs(20));
    kube::Client::try_from(kube).map_err(|e| e.to_string())
}

async fn fetch(client: &kube::Client) -> Result<FsByContainer, String> {
    let request = http::Request::get("/stats/summary")
        .body(Vec::new())
        .map_err(|e| e.to_string())?;
    let text = client
        .request_text(request)
        .await
        .map_err(|e| match e {
            kube::Error::Api(s) if s.code == 403 => format!(
                "the kubelet refused /stats/summary ({}): the agent's ServiceAccount needs `nodes/stats` get",
                s.message
            ),
            other => other.to_string(),
        })?;
    parse_summary(text.as_bytes())
        .map_err(|e| format!("the kubelet's /stats/summary does not parse: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Trimmed from a real node's `/stats/summary`.
    const SUMMARY: &str = r#"{"node":{"nodeName":"fgm-node"},"pods":[
      {"podRef":{"name":"web","namespace":"shop","uid":"u-1"},
       "containers":[
         {"name":"app","rootfs":{"usedBytes":134217728,"inodesUsed":12},"logs":{"usedBytes":4096,"inodesUsed":1}},
         {"name":"sidecar","rootfs":{"usedBytes":8192}}]},
      {"podRef":{"name":"db","namespace":"shop","uid":"u-2"},"containers":[]}]}"#;

    #[test]
    fn the_summary_gives_each_containers_layer_and_logs() {
        let stats = parse_summary(SUMMARY.as_bytes()).unwrap();
        let app = lookup(&stats, "u-1", "app").copied();
        assert_eq!(
            app,
            Some(FsStats {
                usage_bytes: Some(134_217_728),
                inodes_used: Some(12),
                log_bytes: Some(4096)
            })
        );
        let sidecar = lookup(&stats, "u-1", "sidecar")
            .copied()
            .unwrap_or_default();
        assert_eq!(sidecar.usage_bytes, Some(8192));
        assert_eq!(
            (sidecar.inodes_used, sidecar.log_bytes),
            (None, None),
            "absent: null"
        );
        assert!(lookup(&stats, "u-2", "app").is_none());
        assert!(lookup(&stats, "u-9", "app").is_none());
        assert!(parse_summary(b"{not json").is_err());
        assert!(parse_summary(br#"{"pods":[{"podRef":{"uid":"u"},"containers":[{"name":"a","rootfs":{"usedBytes":"x"}}]}]}"#).is_err());
        let mut row = vec![None; crate::store::schema::METRICS.len()];
        apply(&app.unwrap_or_default(), &columns(), &mut row);
        assert_eq!(
            row[metric_index("fs_usage_bytes").unwrap()],
            Some(134_217_728)
        );
    }
}

#[cfg(test)]
mod url_tests {
    use super::kubelet_url;

    #[test]
    fn the_kubelet_is_the_nodes_own_unless_the_flag_says() {
        assert_eq!(
            kubelet_url(None, Some("10.0.0.7")).as_deref(),
            Some("https://10.0.0.7:10250")
        );
        assert_eq!(
            kubelet_url(None, Some("fd00::7")).as_deref(),
            Some("https://[fd00::7]:10250")
        );
        assert_eq!(
            kubelet_url(Some("https://k:1/"), Some("10.0.0.7")).as_deref(),
            Some("https://k:1")
        );
        assert_eq!(kubelet_url(Some("none"), Some("10.0.0.7")), None);
        assert_eq!(kubelet_url(None, None), None);
        assert_eq!(kubelet_url(None, Some(" ")), None);
    }
}
