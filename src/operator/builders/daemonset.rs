//! The DaemonSet: one pod per selected node with the agent (writes the host data
//! directory, reads the host cgroup tree and /proc) and the viewer (reads the
//! data directory, serves charts on its port).
//!
//! Security: read-only root filesystems, every capability dropped, no privilege
//! escalation, host paths read-only except the data directory, and the viewer
//! runs as nobody. The agent stays uid 0 (without capabilities) because the data
//! directory on the host belongs to root.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{
    DaemonSet, DaemonSetSpec, DaemonSetUpdateStrategy, RollingUpdateDaemonSet,
};
use k8s_openapi::api::core::v1::{
    Capabilities, ConfigMapVolumeSource, Container, ContainerPort, EnvVar, EnvVarSource,
    HTTPGetAction, HostPathVolumeSource, ObjectFieldSelector, PodSpec, PodTemplateSpec, Probe,
    SecurityContext, Volume, VolumeMount,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::ResourceExt;

use super::settings::{SETTINGS_DIR, SETTINGS_KEY};
use super::{labels, owned_meta, selector_labels};
use crate::crd::NodeMonitor;

/// Pod-template annotation holding the settings hash: a settings change changes
/// the template, so the DaemonSet rolls the pods (the agent reads its settings
/// once, at start).
pub const SETTINGS_HASH_ANNOTATION: &str = "fgm.dev/settings-hash";
/// The image used when the spec names none.
pub const DEFAULT_IMAGE: &str = concat!(
    "ghcr.io/fine-grained-monitor/fine-grained-monitor:",
    env!("CARGO_PKG_VERSION")
);
/// Default port of the agent's /metrics and /healthz (`spec.metrics.port`).
pub const AGENT_METRICS_PORT: i32 = crate::crd::DEFAULT_METRICS_PORT;

const DATA: &str = "data";
const CGROUP: &str = "host-cgroup";
const PROC: &str = "host-proc";
const SETTINGS: &str = "settings";

fn mount(name: &str, path: &str, read_only: bool) -> VolumeMount {
    VolumeMount {
        name: name.into(),
        mount_path: path.into(),
        read_only: Some(read_only),
        ..VolumeMount::default()
    }
}

fn host_path(name: &str, path: &str, kind: &str) -> Volume {
    Volume {
        name: name.into(),
        host_path: Some(HostPathVolumeSource {
            path: path.into(),
            type_: Some(kind.into()),
        }),
        ..Volume::default()
    }
}

fn locked_down(run_as_user: i64) -> SecurityContext {
    SecurityContext {
        read_only_root_filesystem: Some(true),
        allow_privilege_escalation: Some(false),
        capabilities: Some(Capabilities {
            drop: Some(vec!["ALL".into()]),
            ..Capabilities::default()
        }),
        run_as_user: Some(run_as_user),
        run_as_non_root: Some(run_as_user != 0),
        ..SecurityContext::default()
    }
}

fn args(list: &[&str]) -> Option<Vec<String>> {
    Some(list.iter().map(|a| a.to_string()).collect())
}

fn agent_container(nm: &NodeMonitor, image: &str) -> Container {
    let spec = &nm.spec;
    Container {
        name: "agent".into(),
        image: Some(image.into()),
        image_pull_policy: Some(spec.image_pull_policy.as_str().into()),
        command: args(&["fine-grained-monitor"]),
        args: args(&[
            "agent",
            "--config",
            &format!("{SETTINGS_DIR}/{SETTINGS_KEY}"),
            "--data-dir",
            "/data",
            "--cgroup-root",
            "/host/sys/fs/cgroup",
            "--proc-root",
            "/host/proc",
        ]),
        env: Some(vec![EnvVar {
            name: "NODE_NAME".into(),
            value_from: Some(EnvVarSource {
                field_ref: Some(ObjectFieldSelector {
                    field_path: "spec.nodeName".into(),
                    ..ObjectFieldSelector::default()
                }),
                ..EnvVarSource::default()
            }),
            ..EnvVar::default()
        }]),
        // The named port is what PodMonitors and scrape configs select.
        ports: spec.metrics.enabled.then(|| {
            vec![ContainerPort {
                name: Some("metrics".into()),
                container_port: spec.metrics.port,
                protocol: Some("TCP".into()),
                ..ContainerPort::default()
            }]
        }),
        liveness_probe: Some(Probe {
            http_get: Some(HTTPGetAction {
                path: Some("/healthz".into()),
                port: if spec.metrics.enabled {
                    IntOrString::String("metrics".into())
                } else {
                    IntOrString::Int(spec.metrics.port)
                },
                ..HTTPGetAction::default()
            }),
            initial_delay_seconds: Some(10),
            period_seconds: Some(20),
            ..Probe::default()
        }),
        resources: Some(spec.resources.agent.clone()),
        security_context: Some(locked_down(0)),
        volume_mounts: Some(vec![
            mount(DATA, "/data", false),
            mount(CGROUP, "/host/sys/fs/cgroup", true),
            mount(PROC, "/host/proc", true),
            mount(SETTINGS, SETTINGS_DIR, true),
        ]),
        ..Container::default()
    }
}

fn viewer_container(nm: &NodeMonitor, image: &str) -> Container {
    let spec = &nm.spec;
    let port = spec.viewer.port;
    Container {
        name: "viewer".into(),
        image: Some(image.into()),
        image_pull_policy: Some(spec.image_pull_policy.as_str().into()),
        command: args(&["fgm-viewer"]),
        args: args(&[
            "/data",
            &format!("--port={port}"),
            "--no-browser",
            "--bind",
            "0.0.0.0",
        ]),
        ports: Some(vec![ContainerPort {
            name: Some("http".into()),
            container_port: port,
            protocol: Some("TCP".into()),
            ..ContainerPort::default()
        }]),
        resources: Some(spec.resources.viewer.clone()),
        // nobody: the viewer only reads world-readable files.
        security_context: Some(locked_down(65534)),
        volume_mounts: Some(vec![mount(DATA, "/data", true)]),
        ..Container::default()
    }
}

/// The settings hash, and the conventional Prometheus scrape annotations when asked for.
fn pod_annotations(nm: &NodeMonitor, settings_hash: &str) -> BTreeMap<String, String> {
    let mut annotations = BTreeMap::from([(
        SETTINGS_HASH_ANNOTATION.to_string(),
        settings_hash.to_string(),
    )]);
    let metrics = &nm.spec.metrics;
    if metrics.scrape_annotations {
        for (k, v) in [
            ("prometheus.io/scrape", "true".to_string()),
            ("prometheus.io/port", metrics.port.to_string()),
            ("prometheus.io/path", "/metrics".to_string()),
        ] {
            annotations.insert(k.to_string(), v);
        }
    }
    annotations
}

/// The DaemonSet of a NodeMonitor whose settings file hashes to `settings_hash`.
pub fn daemon_set(nm: &NodeMonitor, settings_hash: &str, default_image: &str) -> DaemonSet {
    let spec = &nm.spec;
    let image = spec.image.as_deref().unwrap_or(default_image);
    let mut containers = vec![agent_container(nm, image)];
    if spec.viewer.enabled {
        containers.push(viewer_container(nm, image));
    }
    let pod = PodSpec {
        containers,
        service_account_name: Some(nm.name_any()),
        // The token is only needed to look pods up.
        automount_service_account_token: Some(spec.enrichment.enabled),
        node_selector: (!spec.node_selector.is_empty()).then(|| spec.node_selector.clone()),
        tolerations: Some(spec.tolerations.clone()),
        priority_class_name: spec.priority_class_name.clone(),
        // Time for the agent to complete its open data file on SIGTERM.
        termination_grace_period_seconds: Some(30),
        volumes: Some(vec![
            host_path(DATA, &spec.data_host_path, "DirectoryOrCreate"),
            host_path(CGROUP, "/sys/fs/cgroup", "Directory"),
            host_path(PROC, "/proc", "Directory"),
            Volume {
                name: SETTINGS.into(),
                config_map: Some(ConfigMapVolumeSource {
                    name: nm.name_any(),
                    ..ConfigMapVolumeSource::default()
                }),
                ..Volume::default()
            },
        ]),
        ..PodSpec::default()
    };
    DaemonSet {
        metadata: owned_meta(nm),
        spec: DaemonSetSpec {
            selector: LabelSelector {
                match_labels: Some(selector_labels(nm)),
                ..LabelSelector::default()
            },
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(labels(nm)),
                    annotations: Some(pod_annotations(nm, settings_hash)),
                    ..ObjectMeta::default()
                }),
                spec: Some(pod),
            },
            update_strategy: Some(
                spec.update_strategy
                    .clone()
                    .unwrap_or_else(replace_then_start),
            ),
            ..DaemonSetSpec::default()
        },
        ..DaemonSet::default()
    }
}

/// The default update strategy: on each node the old pod goes first, then
/// the new one starts (RollingUpdate, maxUnavailable 1, maxSurge 0). One agent
/// writes a data directory at a time (its lock); the new agent waits for the
/// old one's last file (`--lock-wait`) instead of both running at once.
pub fn replace_then_start() -> DaemonSetUpdateStrategy {
    DaemonSetUpdateStrategy {
        type_: Some("RollingUpdate".into()),
        rolling_update: Some(RollingUpdateDaemonSet {
            max_unavailable: Some(IntOrString::Int(1)),
            max_surge: Some(IntOrString::Int(0)),
        }),
    }
}

#[cfg(test)]
mod tests;
