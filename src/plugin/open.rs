//! `kubectl fgm open POD`: the pod's node, the monitor pod on it, and a local listener on
//! 127.0.0.1 whose every connection is a new port-forward to that pod's viewer; the page opens
//! with the pod's containers selected.
//!
//! ```text
//!  get pod ─▶ node ─▶ Monitors::load ─▶ choose_pod(node) ─▶ OpenPlan {target, ids, range}
//!  serve: 127.0.0.1:P ─accept─▶ forward::pipe (one port-forward per connection) until Ctrl-C
//! ```

use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use kube::api::Api;
use kube::{Client, ResourceExt};
use serde::Serialize;

use super::cluster::{Monitors, choose_pod, node_labels, uncovered_message};
use super::error::{Action, PluginError, api_error};
use super::forward::{self, Target};

/// The range shown when neither `--from` nor `--to` is given (a viewer preset, live).
pub const DEFAULT_PRESET: &str = "1h";
/// `--from` alone, or `--to` alone: the other end is this far away.
pub const DEFAULT_SPAN_MS: i64 = 3_600_000;

/// What `open` will serve.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OpenPlan {
    pub namespace: String,
    pub pod: String,
    pub node: String,
    /// The NodeMonitor (`namespace/name`) whose pod is asked.
    pub monitor: String,
    /// The monitor pod and its viewer port.
    #[serde(skip)]
    pub target: Target,
    /// Short ids (12 hex) of the containers selected.
    pub container_ids: Vec<String>,
    /// Containers of the pod without an id yet (not started).
    pub not_started: Vec<String>,
    /// `(from_ms, to_ms)`, or `None` for the preset.
    pub range: Option<(i64, i64)>,
}

impl OpenPlan {
    /// The page's URL on the local `port`.
    pub fn url(&self, port: u16) -> String {
        viewer_url(port, &self.container_ids, self.range)
    }
}

/// The viewer page with `ids` selected over `range`.
pub fn viewer_url(port: u16, ids: &[String], range: Option<(i64, i64)>) -> String {
    format!("http://127.0.0.1:{port}/{}", viewer_hash(ids, range))
}

/// The page's state in its URL hash: `v` view, `c` containers, `r` preset, `z` zoom
/// `from~to` in ms.
pub fn viewer_hash(ids: &[String], range: Option<(i64, i64)>) -> String {
    let mut hash = Vec::new();
    if !ids.is_empty() {
        hash.push("v=charts".to_string());
        hash.push(format!("c={}", ids.join(",")));
    }
    match range {
        Some((from, to)) => hash.push(format!("z={from}~{to}")),
        None => hash.push(format!("r={DEFAULT_PRESET}")),
    }
    format!("#{}", hash.join("&"))
}

/// The short id of a `containerID` (`containerd://<64 hex>`): its first 12 hex digits.
pub fn short_id(container_id: &str) -> Option<String> {
    let hex = container_id
        .split_once("://")
        .map_or(container_id, |(_, id)| id);
    let short: String = hex.chars().take(12).collect();
    (short.len() == 12 && short.chars().all(|c| c.is_ascii_hexdigit()))
        .then(|| short.to_ascii_lowercase())
}

/// `--from`/`--to` into a range in ms (`now_ms` for a missing `--to`).
pub fn parse_range(
    from: Option<&str>,
    to: Option<&str>,
    now_ms: i64,
) -> Result<Option<(i64, i64)>, PluginError> {
    let time = |flag: &'static str, text: &str| {
        crate::viewer::query::parse_time(text)
            .map(|t| t.timestamp_millis())
            .ok_or_else(|| PluginError::BadFlag {
                flag,
                reason: format!("{text:?} is neither RFC 3339 nor milliseconds since the epoch"),
            })
    };
    let range = match (from, to) {
        (None, None) => return Ok(None),
        (Some(f), None) => (time("from", f)?, now_ms),
        (None, Some(t)) => {
            let to = time("to", t)?;
            (to.saturating_sub(DEFAULT_SPAN_MS), to)
        }
        (Some(f), Some(t)) => (time("from", f)?, time("to", t)?),
    };
    if range.0 >= range.1 {
        return Err(PluginError::BadFlag {
            flag: "from",
            reason: "the range must start before it ends".into(),
        });
    }
    Ok(Some(range))
}

/// The selected containers' short ids, and the names of those not started yet.
pub fn container_ids(
    pod: &Pod,
    only: Option<&str>,
) -> Result<(Vec<String>, Vec<String>), PluginError> {
    let status = pod.status.as_ref();
    let statuses = status
        .into_iter()
        .flat_map(|s| {
            s.init_container_statuses
                .iter()
                .flatten()
                .chain(s.container_statuses.iter().flatten())
                .chain(s.ephemeral_container_statuses.iter().flatten())
        })
        .collect::<Vec<_>>();
    let mut names: Vec<String> = pod
        .spec
        .iter()
        .flat_map(|s| {
            s.init_containers
                .iter()
                .flatten()
                .map(|c| c.name.clone())
                .chain(s.containers.iter().map(|c| c.name.clone()))
        })
        .collect();
    for s in &statuses {
        if !names.contains(&s.name) {
            names.push(s.name.clone());
        }
    }
    if let Some(name) = only
        && !names.iter().any(|n| n == name)
    {
        return Err(PluginError::NoSuchContainer {
            namespace: pod.namespace().unwrap_or_default(),
            name: pod.name_any(),
            container: name.to_string(),
            known: names.join(", "),
        });
    }
    let mut ids = Vec::new();
    let mut not_started = Vec::new();
    for name in names
        .iter()
        .filter(|n| only.is_none_or(|o| o == n.as_str()))
    {
        let id = statuses
            .iter()
            .find(|s| &s.name == name)
            .and_then(|s| s.container_id.as_deref())
            .and_then(short_id);
        match id {
            Some(id) if !ids.contains(&id) => ids.push(id),
            Some(_) => {}
            None => not_started.push(name.clone()),
        }
    }
    Ok((ids, not_started))
}

/// Finds the pod, its node and the monitor pod covering it.
pub async fn prepare(
    client: &Client,
    pod: &str,
    namespace: &str,
    container: Option<&str>,
    from: Option<&str>,
    to: Option<&str>,
) -> Result<OpenPlan, PluginError> {
    let range = parse_range(from, to, chrono::Utc::now().timestamp_millis())?;
    let found = Api::<Pod>::namespaced(client.clone(), namespace)
        .get_opt(pod)
        .await
        .map_err(|e| api_error(Action::new("get", "pods", Some(namespace)), e))?
        .ok_or_else(|| PluginError::PodNotFound {
            namespace: namespace.into(),
            name: pod.into(),
        })?;
    let node = found
        .spec
        .as_ref()
        .and_then(|s| s.node_name.clone())
        .ok_or_else(|| PluginError::Unscheduled {
            namespace: namespace.into(),
            name: pod.into(),
        })?;
    let (container_ids, not_started) = container_ids(&found, container)?;
    let monitors = Monitors::load(client).await?;
    let Some(chosen) = choose_pod(&monitors.pods, &node) else {
        let labels = node_labels(client, &node).await;
        return Err(PluginError::NotCovered(uncovered_message(
            &node,
            labels.as_ref(),
            &monitors.monitors,
            &monitors.pods,
        )));
    };
    Ok(OpenPlan {
        namespace: namespace.into(),
        pod: pod.into(),
        node,
        monitor: format!("{}/{}", chosen.namespace, chosen.monitor),
        target: Target {
            namespace: chosen.namespace.clone(),
            pod: chosen.name.clone(),
            port: chosen
                .viewer_port
                .unwrap_or(super::cluster::DEFAULT_VIEWER_PORT),
        },
        container_ids,
        not_started,
        range,
    })
}

/// Opens `url` in the browser with `xdg-open` (or `open` on macOS); false when it cannot.
pub fn open_browser(url: &str) -> bool {
    let opener = if cfg!(target_os = "macos") {
        "open"
    } else {
        "xdg-open"
    };
    std::process::Command::new(opener)
        .arg(url)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .is_ok()
}

/// A listener on 127.0.0.1:`port` (0: any free port) and its address.
pub async fn listen_local(
    port: u16,
) -> Result<(tokio::net::TcpListener, std::net::SocketAddr), PluginError> {
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .map_err(|source| PluginError::Io {
            what: format!("listen on 127.0.0.1:{port}"),
            source,
        })?;
    let local = listener.local_addr().map_err(|source| PluginError::Io {
        what: "local address".into(),
        source,
    })?;
    Ok((listener, local))
}

/// Binds 127.0.0.1:`port`, checks one port-forward, prints the URL, opens the browser unless
/// told not to, and forwards every connection until `stop` resolves.
pub async fn serve(
    client: &Client,
    plan: &OpenPlan,
    port: u16,
    browser: bool,
    stop: impl std::future::Future<Output = ()>,
) -> Result<(), PluginError> {
    let (listener, local) = listen_local(port).await?;
    // One port-forward first, so a refusal is said now rather than in the browser.
    let probe = tokio::time::timeout(Duration::from_secs(15), forward::open(client, &plan.target))
        .await
        .map_err(|_| PluginError::Forward {
            pod: format!("{}/{}", plan.target.namespace, plan.target.pod),
            reason: "no answer within 15s".into(),
        })??;
    probe.forwarder.abort();
    let url = plan.url(local.port());
    say!(
        "pod {}/{} on node {} (monitor {}, pod {}/{})",
        plan.namespace,
        plan.pod,
        plan.node,
        plan.monitor,
        plan.target.namespace,
        plan.target.pod
    );
    if !plan.not_started.is_empty() {
        say!("not started yet (no data): {}", plan.not_started.join(", "));
    }
    say!("{url}");
    if browser && !open_browser(&url) {
        say!("(no browser opener found: open the URL yourself)");
    }
    say!("forwarding; press Ctrl-C to stop");
    tokio::pin!(stop);
    loop {
        tokio::select! {
            _ = &mut stop => return Ok(()),
            accepted = listener.accept() => {
                let Ok((conn, _)) = accepted else { continue };
                let client = client.clone();
                let target = plan.target.clone();
                tokio::spawn(async move {
                    if let Err(e) = forward::pipe(&client, &target, conn).await {
                        eprintln!("kubectl-fgm: {e}");
                    }
                });
            }
        }
    }
}

#[cfg(test)]
#[path = "open_tests.rs"]
mod tests;
