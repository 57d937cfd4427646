//! The DaemonSet: one pod per selected node with the agent (writes the host data
//! directory, reads the host cgroup tree and /proc) and the viewer (reads the
//! data directory, serves charts on loopback for `kubectl port-forward`).
//!
//! Least privilege, container by container (every one: read-only root
//! filesystem, no privilege escalation, seccomp `RuntimeDefault`):
//!
//! | container | user | capabilities | why |
//! |---|---|---|---|
//! | `prepare-data-dir` (init) | 0 | `CHOWN`, `DAC_READ_SEARCH` | hands the data directory (root-owned when the kubelet creates it or an older agent wrote it) to the agent's user, without following links |
//! | `agent` | 65532 | none; `SYS_PTRACE` with `processes.enabled` | cgroup files and `/proc/<pid>/{stat,cgroup,comm}` are world-readable (processes are counted from the host's `/proc`, no `hostPID`); it owns its data directory. Other users' `smaps_rollup` (PSS) needs `CAP_SYS_PTRACE`, granted by the binary's file capability, hence privilege escalation allowed then |
//! | `viewer` | 65534 | none | reads the world-readable data files through a read-only mount |
//!
//! The data directory is mounted as the allowed root (hostPath) plus a
//! `subPath`, so the kubelet refuses a path below the root that a symlink
//! would lead elsewhere. The ServiceAccount token is mounted into the agent
//! only, and only when it looks pods up.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{
    DaemonSet, DaemonSetSpec, DaemonSetUpdateStrategy, RollingUpdateDaemonSet,
};
use k8s_openapi::api::core::v1::{
    Capabilities, ConfigMapProjection, ConfigMapVolumeSource, Container, ContainerPort,
    DownwardAPIProjection, DownwardAPIVolumeFile, EnvVar, EnvVarSource, HTTPGetAction,
    HostPathVolumeSource, KeyToPath, ObjectFieldSelector, PodSecurityContext, PodSpec,
    PodTemplateSpec, Probe, ProjectedVolumeSource, ResourceRequirements, SeccompProfile,
    SecurityContext, ServiceAccountTokenProjection, Volume, VolumeMount, VolumeProjection,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::rbac::service_account_name;
use super::settings::{SETTINGS_DIR, SETTINGS_KEY};
use super::{labels, owned_meta, selector_labels};
use crate::crd::NodeMonitor;
use crate::operator::policy::Resolved;

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

/// User (and group) of the agent: distroless `nonroot`, the image's default user.
pub const AGENT_UID: i64 = 65532;
/// User (and group) of the viewer: `nobody`, so it shares nothing with the agent.
pub const VIEWER_UID: i64 = 65534;
/// Capabilities of the init container that hands the data directory to the agent.
pub const PREPARE_CAPABILITIES: [&str; 2] = ["CHOWN", "DAC_READ_SEARCH"];
/// Where the agent's ServiceAccount token is mounted (what in-cluster clients read).
pub const TOKEN_DIR: &str = "/var/run/secrets/kubernetes.io/serviceaccount";

const DATA: &str = "data";
const CGROUP: &str = "host-cgroup";
const PROC: &str = "host-proc";
const SETTINGS: &str = "settings";
const TOKEN: &str = "kube-api-access";

fn mount(name: &str, path: &str, read_only: bool) -> VolumeMount {
    VolumeMount {
        name: name.into(),
        mount_path: path.into(),
        read_only: Some(read_only),
        ..VolumeMount::default()
    }
}

/// A host directory the agent only reads, read-only all the way down: a
/// plain read-only hostPath leaves the mounts below it (each v1 cgroup
/// controller under `/sys/fs/cgroup`) writable. `IfPossible` keeps pods
/// starting on runtimes without recursive read-only mounts.
fn host_read_only_mount(name: &str, path: &str) -> VolumeMount {
    VolumeMount {
        recursive_read_only: Some("IfPossible".into()),
        ..mount(name, path, true)
    }
}

/// The data directory at `/data`: the allowed root plus the path below it.
fn data_mount(resolved: &Resolved, read_only: bool) -> VolumeMount {
    let sub_path = &resolved.data.sub_path;
    VolumeMount {
        sub_path: (!sub_path.is_empty()).then(|| sub_path.clone()),
        ..mount(DATA, "/data", read_only)
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

/// Read-only root, no escalation, every capability dropped but `add`, as `uid`.
pub(super) fn locked_down(uid: i64, add: &[&str]) -> SecurityContext {
    SecurityContext {
        read_only_root_filesystem: Some(true),
        allow_privilege_escalation: Some(false),
        privileged: Some(false),
        capabilities: Some(Capabilities {
            drop: Some(vec!["ALL".into()]),
            add: (!add.is_empty()).then(|| add.iter().map(|c| c.to_string()).collect()),
        }),
        run_as_user: Some(uid),
        run_as_group: Some(uid),
        run_as_non_root: Some(uid != 0),
        seccomp_profile: Some(SeccompProfile {
            type_: "RuntimeDefault".into(),
            ..SeccompProfile::default()
        }),
        ..SecurityContext::default()
    }
}

/// Runs once before the agent: checks the data directory and hands it to the
/// agent's user (the only container with any capability, and it reads no input
/// but the directory).
fn prepare_container(nm: &NodeMonitor, resolved: &Resolved) -> Container {
    let quantities = |cpu: &str, mem: &str| {
        Some(BTreeMap::from([
            ("cpu".to_string(), Quantity(cpu.into())),
            ("memory".to_string(), Quantity(mem.into())),
        ]))
    };
    Container {
        name: "prepare-data-dir".into(),
        image: Some(resolved.image.clone()),
        image_pull_policy: Some(nm.spec.image_pull_policy.as_str().into()),
        command: args(&["fine-grained-monitor"]),
        args: args(&[
            "prepare-data-dir",
            "--data-dir",
            "/data",
            "--owner-uid",
            &AGENT_UID.to_string(),
            "--owner-gid",
            &AGENT_UID.to_string(),
        ]),
        resources: Some(ResourceRequirements {
            requests: quantities("10m", "16Mi"),
            limits: quantities("500m", "64Mi"),
            ..ResourceRequirements::default()
        }),
        security_context: Some(locked_down(0, &PREPARE_CAPABILITIES)),
        volume_mounts: Some(vec![data_mount(resolved, false)]),
        ..Container::default()
    }
}

/// The ServiceAccount token, the cluster CA and the namespace, as the kubelet
/// would mount them for every container; here they go to the agent only.
fn token_volume() -> Volume {
    Volume {
        name: TOKEN.into(),
        projected: Some(ProjectedVolumeSource {
            default_mode: Some(0o444),
            sources: Some(vec![
                VolumeProjection {
                    service_account_token: Some(ServiceAccountTokenProjection {
                        path: "token".into(),
                        expiration_seconds: Some(3607),
                        ..ServiceAccountTokenProjection::default()
                    }),
                    ..VolumeProjection::default()
                },
                VolumeProjection {
                    config_map: Some(ConfigMapProjection {
                        name: "kube-root-ca.crt".into(),
                        items: Some(vec![KeyToPath {
                            key: "ca.crt".into(),
                            path: "ca.crt".into(),
                            ..KeyToPath::default()
                        }]),
                        ..ConfigMapProjection::default()
                    }),
                    ..VolumeProjection::default()
                },
                VolumeProjection {
                    downward_api: Some(DownwardAPIProjection {
                        items: Some(vec![DownwardAPIVolumeFile {
                            path: "namespace".into(),
                            field_ref: Some(ObjectFieldSelector {
                                field_path: "metadata.namespace".into(),
                                ..ObjectFieldSelector::default()
                            }),
                            ..DownwardAPIVolumeFile::default()
                        }]),
                    }),
                    ..VolumeProjection::default()
                },
            ]),
            ..ProjectedVolumeSource::default()
        }),
        ..Volume::default()
    }
}

/// An environment variable from a field of the pod (the downward API).
fn field_env(name: &str, field_path: &str) -> EnvVar {
    EnvVar {
        name: name.into(),
        value_from: Some(EnvVarSource {
            field_ref: Some(ObjectFieldSelector {
                field_path: field_path.into(),
                ..ObjectFieldSelector::default()
            }),
            ..EnvVarSource::default()
        }),
        ..EnvVar::default()
    }
}

fn args(list: &[&str]) -> Option<Vec<String>> {
    Some(list.iter().map(|a| a.to_string()).collect())
}

fn agent_container(nm: &NodeMonitor, resolved: &Resolved) -> Container {
    let spec = &nm.spec;
    let mut mounts = vec![
        data_mount(resolved, false),
        host_read_only_mount(CGROUP, "/host/sys/fs/cgroup"),
        host_read_only_mount(PROC, "/host/proc"),
        mount(SETTINGS, SETTINGS_DIR, true),
    ];
    if spec.pod_metadata.enabled {
        mounts.push(mount(TOKEN, TOKEN_DIR, true));
    }
    // Web identity for the export: a projected token of the bucket's audience.
    if let Some((_, token)) = spec.export.as_ref().and_then(super::export::token_volume) {
        mounts.push(token);
    }
    let mut env = vec![field_env("NODE_NAME", "spec.nodeName")];
    // The agent finds its own pod's cgroup and records only its kubelet's containers
    // (several kubelets on one host: kind's nodes).
    env.push(field_env("FGM_POD_UID", "metadata.uid"));
    if spec.pod_metadata.enabled {
        // The node's own kubelet (`/stats/summary`: container filesystems),
        // reached at the node's address: the pod has its own network.
        env.push(field_env("NODE_IP", "status.hostIP"));
    }
    // Export credentials: secretKeyRef (the kubelet reads the Secret, not the
    // operator) or the web identity variables.
    env.extend(spec.export.iter().flat_map(super::export::credential_env));
    Container {
        name: "agent".into(),
        image: Some(resolved.image.clone()),
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
        env: Some(env),
        // The named port is what PodMonitors and scrape configs select.
        ports: spec.metrics.declare_port.then(|| {
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
                port: if spec.metrics.declare_port {
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
        security_context: Some(agent_security(spec.processes.enabled)),
        volume_mounts: Some(mounts),
        ..Container::default()
    }
}

/// The agent's security context. With processes on it may hold
/// `CAP_SYS_PTRACE` (other users' `smaps_rollup`): in its bounding set here,
/// permitted by the binary's file capability, which an exec grants only
/// without `no_new_privs`, hence `allowPrivilegeEscalation`. The agent raises
/// it at start and holds nothing else (docs/security.md).
fn agent_security(processes: bool) -> SecurityContext {
    if !processes {
        return locked_down(AGENT_UID, &[]);
    }
    SecurityContext {
        allow_privilege_escalation: Some(true),
        ..locked_down(AGENT_UID, &["SYS_PTRACE"])
    }
}

fn viewer_container(nm: &NodeMonitor, resolved: &Resolved) -> Container {
    let spec = &nm.spec;
    let port = spec.viewer.port;
    Container {
        name: "viewer".into(),
        image: Some(resolved.image.clone()),
        image_pull_policy: Some(spec.image_pull_policy.as_str().into()),
        command: args(&["fgm-viewer"]),
        // Loopback unless the spec exposes it: `kubectl port-forward` dials
        // loopback inside the pod's network namespace.
        args: args(&[
            "/data",
            &format!("--port={port}"),
            "--no-browser",
            "--bind",
            &spec.viewer.bind_address,
        ]),
        ports: Some(vec![ContainerPort {
            name: Some("http".into()),
            container_port: port,
            protocol: Some("TCP".into()),
            ..ContainerPort::default()
        }]),
        resources: Some(spec.resources.viewer.clone()),
        // nobody: the viewer only reads world-readable files.
        security_context: Some(locked_down(VIEWER_UID, &[])),
        volume_mounts: Some(vec![data_mount(resolved, true)]),
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

/// The DaemonSet of a NodeMonitor whose settings file hashes to `settings_hash`,
/// with the image and data placement the operator's policy granted.
pub fn daemon_set(nm: &NodeMonitor, settings_hash: &str, resolved: &Resolved) -> DaemonSet {
    let spec = &nm.spec;
    let mut containers = vec![agent_container(nm, resolved)];
    if spec.viewer.enabled {
        containers.push(viewer_container(nm, resolved));
    }
    let mut volumes = vec![
        host_path(DATA, resolved.data.root.as_str(), "DirectoryOrCreate"),
        host_path(CGROUP, "/sys/fs/cgroup", "Directory"),
        host_path(PROC, "/proc", "Directory"),
        Volume {
            name: SETTINGS.into(),
            config_map: Some(ConfigMapVolumeSource {
                name: nm.metadata.name.clone().unwrap_or_default(),
                ..ConfigMapVolumeSource::default()
            }),
            ..Volume::default()
        },
    ];
    if spec.pod_metadata.enabled {
        volumes.push(token_volume());
    }
    if let Some((volume, _)) = spec.export.as_ref().and_then(super::export::token_volume) {
        volumes.push(volume);
    }
    let pod = PodSpec {
        init_containers: Some(vec![prepare_container(nm, resolved)]),
        containers,
        service_account_name: Some(service_account_name(nm)),
        // Never in every container: the agent alone mounts the token, when it looks pods up.
        automount_service_account_token: Some(false),
        security_context: Some(PodSecurityContext {
            seccomp_profile: Some(SeccompProfile {
                type_: "RuntimeDefault".into(),
                ..SeccompProfile::default()
            }),
            ..PodSecurityContext::default()
        }),
        node_selector: (!spec.node_selector.is_empty()).then(|| spec.node_selector.clone()),
        tolerations: Some(spec.tolerations.clone()),
        priority_class_name: spec.priority_class_name.clone(),
        // Time for the agent to complete its open data file on SIGTERM.
        termination_grace_period_seconds: Some(30),
        volumes: Some(volumes),
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
