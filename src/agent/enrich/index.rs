//! Container id → pod identity, kept up to date from pod watch events so a
//! look-up is one hash-map probe (the agent asks for every container every
//! cycle), never a scan of the pod cache.
//!
//! Both the current and the last terminated instance of each container are
//! indexed: the cgroup of a container that just died can outlive its status.

use std::collections::HashMap;
use std::sync::Arc;

use k8s_openapi::api::core::v1::{ContainerStatus, Pod};

use crate::agent::contract::PodInfo;
use crate::store::index::Requests;
use crate::units::parse_quantity;

/// Runtime prefixes the API puts in front of container ids.
const RUNTIME_PREFIXES: [&str; 3] = ["containerd://", "cri-o://", "docker://"];

/// Strips a `containerd://`, `cri-o://` or `docker://` prefix (or any other
/// `<runtime>://`, as runtimes come and go), leaving the bare id.
pub fn strip_runtime_prefix(id: &str) -> &str {
    for prefix in RUNTIME_PREFIXES {
        if let Some(rest) = id.strip_prefix(prefix) {
            return rest;
        }
    }
    match id.find("://") {
        Some(i) => &id[i + 3..],
        None => id,
    }
}

/// The key a pod is tracked under: its UID, else `namespace/name` (the API
/// always sets a UID; the fallback keeps hand-made objects usable).
pub fn pod_key(pod: &Pod) -> String {
    match pod.metadata.uid.as_deref() {
        Some(uid) if !uid.is_empty() => uid.to_string(),
        _ => format!(
            "{}/{}",
            pod.metadata.namespace.as_deref().unwrap_or_default(),
            pod.metadata.name.as_deref().unwrap_or_default()
        ),
    }
}

/// All container statuses of a pod: init, regular and ephemeral containers.
pub fn all_statuses(pod: &Pod) -> impl Iterator<Item = &ContainerStatus> {
    let status = pod.status.as_ref();
    let init = status.and_then(|s| s.init_container_statuses.as_ref());
    let main = status.and_then(|s| s.container_statuses.as_ref());
    let ephemeral = status.and_then(|s| s.ephemeral_container_statuses.as_ref());
    [init, main, ephemeral].into_iter().flatten().flatten()
}

/// A pod's identity without a container: names, UID and labels.
pub fn pod_identity(pod: &Pod) -> PodInfo {
    let meta = &pod.metadata;
    PodInfo {
        pod_name: meta.name.clone().unwrap_or_default(),
        namespace: meta.namespace.clone().unwrap_or_default(),
        pod_uid: meta.uid.clone().unwrap_or_default(),
        labels: meta.labels.clone().unwrap_or_default(),
        container_name: String::new(),
        image: None,
        host_network: pod
            .spec
            .as_ref()
            .and_then(|s| s.host_network)
            .unwrap_or(false),
        requests: None,
    }
}

/// Every (bare container id, identity) pair a pod's statuses name.
pub fn containers_of(pod: &Pod) -> Vec<(String, PodInfo)> {
    let base = pod_identity(pod);
    let mut out = Vec::new();
    for status in all_statuses(pod) {
        let current = status.container_id.as_deref();
        let previous = status
            .last_state
            .as_ref()
            .and_then(|s| s.terminated.as_ref())
            .and_then(|t| t.container_id.as_deref());
        for id in [current, previous].into_iter().flatten() {
            let id = strip_runtime_prefix(id);
            if id.is_empty() || out.iter().any(|(known, _)| known == id) {
                continue;
            }
            let info = PodInfo {
                container_name: status.name.clone(),
                image: (!status.image.is_empty()).then(|| status.image.clone()),
                requests: requests_of(pod, status),
                ..base.clone()
            };
            out.push((id.to_string(), info));
        }
    }
    out
}

/// A container's resource requests: those the kubelet reports it applied
/// (in-place resize), else the pod spec's. `None` when it requests nothing.
pub fn requests_of(pod: &Pod, status: &ContainerStatus) -> Option<Requests> {
    let spec = pod.spec.as_ref();
    let declared = spec
        .into_iter()
        .flat_map(|s| {
            s.containers
                .iter()
                .chain(s.init_containers.iter().flatten())
        })
        .find(|c| c.name == status.name)
        .and_then(|c| c.resources.as_ref());
    let resources = status.resources.as_ref().or(declared)?;
    let requests = resources.requests.as_ref()?;
    let get = |name: &str| requests.get(name).and_then(|q| parse_quantity(&q.0));
    let found = Requests {
        cpu_millicores: get("cpu").map(|cores| (cores * 1000.0).round() as u64),
        memory_bytes: get("memory").map(|bytes| bytes.round() as u64),
    };
    (found != Requests::default()).then_some(found)
}

/// The container-id map, updated per watch event.
#[derive(Debug, Default)]
pub struct PodIndex {
    /// Container id → (pod key, identity); the identity is shared so a look-up
    /// hands out a reference count instead of a deep copy.
    by_container: HashMap<String, (String, Arc<PodInfo>)>,
    /// Per pod: its identity without a container (what the sandbox row
    /// carries) and the container ids it contributed, so an update or delete
    /// removes stale ones.
    by_pod: HashMap<String, (Arc<PodInfo>, Vec<String>)>,
}

impl PodIndex {
    /// An index of exactly these pods (after a full list).
    pub fn from_pods<'a>(pods: impl IntoIterator<Item = &'a Pod>) -> Self {
        let mut index = Self::default();
        for pod in pods {
            index.apply(pod);
        }
        index
    }

    /// Adds or updates a pod.
    pub fn apply(&mut self, pod: &Pod) {
        let key = pod_key(pod);
        self.remove_key(&key);
        let containers = containers_of(pod);
        let ids = containers.iter().map(|(id, _)| id.clone()).collect();
        for (id, info) in containers {
            self.by_container.insert(id, (key.clone(), Arc::new(info)));
        }
        self.by_pod.insert(key, (Arc::new(pod_identity(pod)), ids));
    }

    /// Removes a pod and its containers.
    pub fn delete(&mut self, pod: &Pod) {
        self.remove_key(&pod_key(pod));
    }

    fn remove_key(&mut self, key: &str) {
        let ids = self.by_pod.remove(key).map(|(_, ids)| ids);
        for id in ids.unwrap_or_default() {
            // An id claimed by another pod since (ids are unique in practice) stays.
            if self
                .by_container
                .get(&id)
                .is_some_and(|(owner, _)| owner == key)
            {
                self.by_container.remove(&id);
            }
        }
    }

    /// The identity of a container by its bare id (a runtime prefix is tolerated).
    pub fn lookup(&self, container_id: &str) -> Option<&Arc<PodInfo>> {
        self.by_container
            .get(strip_runtime_prefix(container_id))
            .map(|(_, info)| info)
    }

    /// A pod's identity by its UID, with no container name: what a pod's
    /// sandbox (pause) container is recorded with.
    pub fn lookup_pod(&self, pod_uid: &str) -> Option<&Arc<PodInfo>> {
        self.by_pod.get(pod_uid).map(|(info, _)| info)
    }

    /// Keys ([`pod_key`]) of the pods indexed.
    pub fn pod_keys(&self) -> impl Iterator<Item = &String> {
        self.by_pod.keys()
    }

    pub fn pods(&self) -> usize {
        self.by_pod.len()
    }

    pub fn containers(&self) -> usize {
        self.by_container.len()
    }
}

#[cfg(test)]
mod tests;
