//! The cache task: connect, watch this node's pods (and, with a selector, the
//! selected namespaces), apply every event to the enricher, record failure
//! signals, and retry with backoff whenever the API is unavailable.

use std::collections::HashSet;
use std::path::Path;
use std::pin::pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use chrono::Utc;
use futures::StreamExt;
use k8s_openapi::api::core::v1::{Namespace, Pod};
use kube::core::PartialObjectMeta;
use kube::runtime::watcher::{self, Event};
use kube::{Api, Client};
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use super::events::{self, Dedup};
use super::health::{Backoff, Cause, Health, LogLine, Reporter, Unavailable, classify_watch};
use super::index::{PodIndex, pod_key};
use super::{EnrichConfig, Enricher, client};
use crate::agent::contract::PodMetadata;
use crate::agent::prometheus::SelfMetrics;
use crate::store;

/// Progress of one watch.
#[derive(Debug, Clone, PartialEq)]
enum WatchState {
    Syncing,
    Synced,
    Failed(Unavailable),
}

/// Connection and watch states, folded into one [`Health`] and one log line per change.
#[derive(Debug)]
struct Status {
    node: String,
    connect: Option<Unavailable>,
    pods: WatchState,
    /// `None` without a namespace selector.
    namespaces: Option<WatchState>,
    reporter: Reporter,
    started: Instant,
    metrics: Option<SelfMetrics>,
}

impl Status {
    fn first_failure(&self) -> Option<&Unavailable> {
        let watches = [Some(&self.pods), self.namespaces.as_ref()];
        self.connect
            .iter()
            .chain(watches.into_iter().flatten().filter_map(|w| match w {
                WatchState::Failed(u) => Some(u),
                _ => None,
            }))
            .next()
    }

    fn health(&self) -> Health {
        if let Some(u) = self.first_failure() {
            return Health::unavailable(u);
        }
        let ns_ready = matches!(self.namespaces, None | Some(WatchState::Synced));
        if self.pods == WatchState::Synced && ns_ready {
            Health::Synced
        } else {
            Health::Syncing
        }
    }

    /// Publishes the health and logs its transitions (one line per outage).
    fn publish(&mut self, enricher: &Enricher) {
        let health = self.health();
        if let Some(u) = self.first_failure().cloned()
            && let Some(LogLine::Unavailable(u)) = self.reporter.failed(&u)
        {
            warn!(
                cause = ?u.cause,
                "pod metadata unavailable: {u}; collection continues with short container ids, retrying in the background"
            );
        }
        if health == Health::Synced && *enricher.health.borrow() != Health::Synced {
            let (pods, containers) = enricher.counts();
            if self.reporter.succeeded().is_some() {
                info!(pods, containers, node = %self.node, "pod metadata available again, enrichment resumed");
            } else {
                info!(
                    pods,
                    containers,
                    node = %self.node,
                    elapsed_ms = self.started.elapsed().as_millis() as u64,
                    "pod metadata synced"
                );
            }
        }
        enricher.health.send_if_modified(|h| {
            let changed = *h != health;
            *h = health;
            changed
        });
        if let Some(metrics) = &self.metrics {
            metrics.set_enrichment(enricher.status());
        }
    }
}

type SharedStatus = Mutex<Status>;

fn with_status(status: &SharedStatus, enricher: &Enricher, f: impl FnOnce(&mut Status)) {
    let mut s = status.lock().unwrap_or_else(PoisonError::into_inner);
    f(&mut s);
    s.publish(enricher);
}

pub(super) async fn run(enricher: Arc<Enricher>, config: EnrichConfig, stop: CancellationToken) {
    let selector = config
        .namespace_selector
        .clone()
        .filter(|s| !s.trim().is_empty());
    let status = Mutex::new(Status {
        node: config.node_name.clone(),
        connect: None,
        pods: WatchState::Syncing,
        namespaces: selector.as_ref().map(|_| WatchState::Syncing),
        reporter: Reporter::default(),
        started: Instant::now(),
        metrics: config.metrics.clone(),
    });
    let mut dedup = seed_dedup(&config.data_dir).await;
    let mut backoff = Backoff::new(config.retry_initial, config.retry_max);
    while !stop.is_cancelled() {
        match client::connect(&config.source).await {
            Err(u) => with_status(&status, &enricher, |s| s.connect = Some(u)),
            Ok(connected) => {
                debug!(origin = %connected.origin, "pod metadata: connecting");
                with_status(&status, &enricher, |s| s.connect = None);
                let pods = watch_pods(&connected.client, &config, &enricher, &status, &mut dedup);
                let namespaces = async {
                    match &selector {
                        Some(sel) => {
                            watch_namespaces(&connected.client, sel, &config, &enricher, &status)
                                .await
                        }
                        None => std::future::pending().await,
                    }
                };
                tokio::select! {
                    _ = stop.cancelled() => return,
                    u = pods => debug!(reason = %u, "pod watch needs a new connection"),
                    u = namespaces => debug!(reason = %u, "namespace watch needs a new connection"),
                }
            }
        }
        let Some(delay) = backoff.next() else { return };
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(delay) => {}
        }
    }
}

/// Whether a watch error ends the connection (credentials may have changed on disk).
fn needs_reconnect(u: &Unavailable) -> bool {
    u.cause == Cause::Unauthorized
}

/// A 410 Gone during a watch only means "list again": the watcher does that itself.
fn is_expired(e: &watcher::Error) -> bool {
    matches!(e, watcher::Error::WatchError(s) if s.code == 410)
}

/// Watches this node's pods until the connection must be rebuilt.
async fn watch_pods(
    client: &Client,
    config: &EnrichConfig,
    enricher: &Enricher,
    status: &SharedStatus,
    dedup: &mut Dedup,
) -> Unavailable {
    let api: Api<Pod> = Api::all(client.clone());
    let what = format!("list/watch pods on node {}", config.node_name);
    let wc = watcher::Config::default()
        .fields(&format!("spec.nodeName={}", config.node_name))
        .any_semantic();
    let mut backoff = Backoff::new(config.retry_initial, config.retry_max);
    loop {
        // A new watcher after every failure starts with a full list, so the
        // end of an outage is visible (InitDone) and pods gone meanwhile are dropped.
        let mut stream = pin!(watcher::watcher(api.clone(), wc.clone()));
        let mut pending: Option<PodIndex> = None;
        while let Some(item) = stream.next().await {
            match item {
                Ok(Event::Init) => pending = Some(PodIndex::default()),
                Ok(Event::InitApply(pod)) => {
                    pending.get_or_insert_default().apply(&pod);
                    record(&pod, enricher, dedup, config);
                }
                Ok(Event::InitDone) => {
                    let index = pending.take().unwrap_or_default();
                    let live: HashSet<String> = index.pod_keys().cloned().collect();
                    dedup.retain_pods(&live);
                    save_seen(dedup, &config.data_dir);
                    enricher.replace_index(index);
                    with_status(status, enricher, |s| s.pods = WatchState::Synced);
                    backoff = Backoff::new(config.retry_initial, config.retry_max);
                }
                Ok(Event::Apply(pod)) => {
                    enricher.update_index(|i| i.apply(&pod));
                    record(&pod, enricher, dedup, config);
                }
                Ok(Event::Delete(pod)) => {
                    enricher.update_index(|i| i.delete(&pod));
                    dedup.forget_pod(&pod_key(&pod));
                    save_seen(dedup, &config.data_dir);
                }
                Err(e) if is_expired(&e) => debug!(error = %e, "pod watch expired, listing again"),
                Err(e) => {
                    let u = classify_watch(&what, &e);
                    with_status(status, enricher, |s| s.pods = WatchState::Failed(u.clone()));
                    if needs_reconnect(&u) {
                        return u;
                    }
                    break;
                }
            }
        }
        if let Some(delay) = backoff.next() {
            tokio::time::sleep(delay).await;
        }
    }
}

/// Records the pod's new failure signals, unless its namespace is not selected.
fn record(pod: &Pod, enricher: &Enricher, dedup: &mut Dedup, config: &EnrichConfig) {
    let (data_dir, metrics) = (&config.data_dir, config.metrics.as_ref());
    let namespace = pod.metadata.namespace.as_deref().unwrap_or_default();
    if enricher.namespace_selected(namespace) == Some(false) {
        return;
    }
    let mut fresh = Vec::new();
    for event in events::detect(pod, Utc::now()) {
        let recorded = dedup.admit_one(&event);
        if let Some(m) = metrics {
            m.pod_event(events::kind_name(event.kind), recorded);
        }
        if recorded {
            fresh.push(event);
        }
    }
    if fresh.is_empty() {
        return;
    }
    for e in &fresh {
        info!(
            kind = ?e.kind,
            namespace = %e.namespace,
            pod = %e.pod,
            container = %e.container,
            restart_count = e.restart_count,
            reason = e.reason.as_deref().unwrap_or(""),
            exit_code = e.exit_code,
            "pod event"
        );
    }
    // Small appends to a local file: cheaper inline than a blocking-pool hop.
    if let Err(e) = store::events::append(data_dir, &fresh) {
        warn!(error = %e, "cannot record pod events");
    }
    save_seen(dedup, data_dir);
}

/// Saves the de-duplication set when it changed (it holds live pods only:
/// a small file). A crash between an event's append and this save records
/// that one event again after the restart, never loses it.
fn save_seen(dedup: &mut Dedup, data_dir: &Path) {
    if !dedup.take_changed() {
        return;
    }
    if let Err(e) = store::events::write_seen(data_dir, &dedup.keys()) {
        warn!(error = %e, "cannot save the pod event de-duplication state; a restart may record some events twice");
    }
}

/// Watches the namespaces the selector picks until the connection must be rebuilt.
async fn watch_namespaces(
    client: &Client,
    selector: &str,
    config: &EnrichConfig,
    enricher: &Enricher,
    status: &SharedStatus,
) -> Unavailable {
    let api: Api<PartialObjectMeta<Namespace>> = Api::all(client.clone());
    let what = format!("list/watch namespaces matching {selector:?}");
    let wc = watcher::Config::default().labels(selector).any_semantic();
    let mut backoff = Backoff::new(config.retry_initial, config.retry_max);
    loop {
        let mut stream = pin!(watcher::watcher(api.clone(), wc.clone()));
        let mut pending: Option<HashSet<String>> = None;
        while let Some(item) = stream.next().await {
            let name =
                |m: &PartialObjectMeta<Namespace>| m.metadata.name.clone().unwrap_or_default();
            match item {
                Ok(Event::Init) => pending = Some(HashSet::new()),
                Ok(Event::InitApply(ns)) => {
                    pending.get_or_insert_default().insert(name(&ns));
                }
                Ok(Event::InitDone) => {
                    enricher.set_selected(pending.take().unwrap_or_default());
                    with_status(status, enricher, |s| {
                        s.namespaces = Some(WatchState::Synced)
                    });
                    backoff = Backoff::new(config.retry_initial, config.retry_max);
                }
                // A namespace whose labels stop matching arrives as a delete.
                Ok(Event::Apply(ns)) => enricher.update_selected(|s| {
                    s.insert(name(&ns));
                }),
                Ok(Event::Delete(ns)) => enricher.update_selected(|s| {
                    s.remove(&name(&ns));
                }),
                Err(e) if is_expired(&e) => {
                    debug!(error = %e, "namespace watch expired, listing again")
                }
                Err(e) => {
                    let u = classify_watch(&what, &e);
                    with_status(status, enricher, |s| {
                        s.namespaces = Some(WatchState::Failed(u.clone()))
                    });
                    if needs_reconnect(&u) {
                        return u;
                    }
                    break;
                }
            }
        }
        if let Some(delay) = backoff.next() {
            tokio::time::sleep(delay).await;
        }
    }
}

/// How many days of events files seed the de-duplication set when there is
/// no saved state yet (first start, or an upgrade from a version without it).
const SEED_DAYS: u64 = 2;

/// The de-duplication set: the saved state (live pods only) when there is
/// one, else the last [`SEED_DAYS`] days of events files. Start-up never
/// reads the whole events history.
async fn seed_dedup(data_dir: &Path) -> Dedup {
    let dir = data_dir.to_path_buf();
    let read = tokio::task::spawn_blocking(move || {
        match store::events::read_seen::<Vec<events::EventKey>>(&dir) {
            Ok(Some(keys)) => Ok(Dedup::from_keys(keys)),
            Ok(None) => read_recent(&dir).map(|events| {
                let mut dedup = Dedup::default();
                dedup.seed(&events);
                dedup
            }),
            Err(e) => {
                warn!(error = %e, "pod event de-duplication state unreadable; using the recent events files");
                read_recent(&dir).map(|events| {
                    let mut dedup = Dedup::default();
                    dedup.seed(&events);
                    dedup
                })
            }
        }
    })
    .await;
    match read {
        Ok(Ok(dedup)) => dedup,
        Ok(Err(e)) => {
            warn!(error = %e, "cannot read recorded pod events; some may be recorded again");
            Dedup::default()
        }
        Err(e) => {
            warn!(error = %e, "reading recorded pod events failed");
            Dedup::default()
        }
    }
}

/// Events of the last [`SEED_DAYS`] days.
fn read_recent(
    data_dir: &Path,
) -> Result<Vec<store::events::PodEvent>, store::events::EventsError> {
    let to = Utc::now();
    let from = to - chrono::Duration::days(SEED_DAYS as i64);
    let read = store::events::read_range(data_dir, from, to + chrono::Duration::days(1))?;
    if read.skipped_lines > 0 {
        warn!(
            skipped = read.skipped_lines,
            "unreadable lines in pod events files skipped"
        );
    }
    Ok(read.events)
}
