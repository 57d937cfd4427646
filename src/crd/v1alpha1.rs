//! `fgm.dev/v1alpha1`: the first NodeMonitor API, still served (converted to and
//! from the stored `v1beta1` by the operator's webhook, see [`super::convert`]).
//! Its field names are kept as they were; the renames are in `v1beta1`.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::DaemonSetUpdateStrategy;
use k8s_openapi::api::core::v1::Toleration;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{
    CollectorSpec, DEFAULT_METRICS_PORT, DURATION_PATTERN, ExportSpec, NodeMonitorStatus,
    ProcessesSpec, PullPolicy, ResourcesSpec, SIZE_PATTERN, ViewerSpec, default_data_host_path,
    default_max_age, default_metrics_port, default_tolerations, host_path_rule, name_rule,
    retention_rule, rotation_rule, yes,
};

/// Collects container metrics on selected nodes: a DaemonSet of agent + viewer
/// pods with the RBAC and settings they need.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "fgm.dev",
    version = "v1alpha1",
    kind = "NodeMonitor",
    plural = "nodemonitors",
    shortname = "nm",
    namespaced,
    status = "NodeMonitorStatus",
    derive = "PartialEq",
    doc = "Per-second container metrics on the selected nodes of the cluster.",
    validation = name_rule(),
    printcolumn(
        name = "Desired",
        type_ = "integer",
        description = "Nodes that should run the monitor",
        json_path = ".status.desiredNumberScheduled"
    ),
    printcolumn(
        name = "Ready",
        type_ = "integer",
        description = "Nodes where the monitor pod is ready",
        json_path = ".status.numberReady"
    ),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp")
)]
#[x_kube(validation = rotation_rule(), validation = retention_rule())]
#[serde(rename_all = "camelCase")]
pub struct NodeMonitorSpec {
    /// Container image of the agent and the viewer: the operator's default image,
    /// or one from a repository the operator allows (--allowed-image-repositories)
    /// [default: the operator's --default-image].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 512))]
    pub image: Option<String>,

    /// When the kubelet pulls the image.
    #[serde(default)]
    pub image_pull_policy: PullPolicy,

    /// How often the agent samples and how often it completes a data file.
    #[serde(default)]
    pub collector: CollectorSpec,

    /// How long data is kept on each node.
    #[serde(default)]
    pub retention: RetentionSpec,

    /// Host directory of the data on every node (mounted at /data); it must lie
    /// in or below one of the operator's allowed data roots (--allowed-data-roots).
    #[serde(default = "default_data_host_path")]
    #[schemars(regex(pattern = r"^/"), length(max = 1024))]
    #[x_kube(validation = host_path_rule())]
    pub data_host_path: String,

    /// Resources of the agent and the viewer containers.
    #[serde(default)]
    pub resources: ResourcesSpec,

    /// The viewer container serving charts on each node.
    #[serde(default)]
    pub viewer: ViewerSpec,

    /// Pod metadata (names, namespaces, labels) from the Kubernetes API.
    #[serde(default)]
    pub enrichment: EnrichmentSpec,

    /// The agent's Prometheus endpoint (cAdvisor-named container metrics, self-metrics, /healthz).
    #[serde(default)]
    pub metrics: MetricsSpec,

    /// Which pods are recorded, by the labels of their namespace [default: all].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace_selector: Option<LabelSelector>,

    /// Nodes to monitor, by node label [default: all nodes].
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub node_selector: BTreeMap<String, String>,

    /// Taints the monitor pods tolerate [default: every taint, so every node is covered].
    #[serde(default = "default_tolerations")]
    pub tolerations: Vec<Toleration>,

    /// Priority class of the monitor pods.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 253))]
    pub priority_class_name: Option<String>,

    /// How the DaemonSet replaces pods when the spec changes [default: RollingUpdate, one node at a time].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub update_strategy: Option<DaemonSetUpdateStrategy>,

    /// Upload every node's history to S3-compatible object storage [default: off].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub export: Option<ExportSpec>,

    /// Each container's processes [default: off].
    #[serde(default)]
    pub processes: ProcessesSpec,
}

/// Retention settings of the agent.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RetentionSpec {
    /// Data files older than this are deleted; longer than the rotation.
    #[serde(default = "default_max_age")]
    #[schemars(regex(pattern = DURATION_PATTERN), length(max = 16))]
    pub max_age: String,

    /// Oldest data files are deleted while a node's data exceeds this size (e.g. 10Gi) [default: no limit].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = SIZE_PATTERN), length(max = 24))]
    pub max_bytes: Option<String>,
}

impl Default for RetentionSpec {
    fn default() -> Self {
        Self {
            max_age: default_max_age(),
            max_bytes: None,
        }
    }
}

/// Pod metadata enrichment by the agent.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct EnrichmentSpec {
    /// Look up pod names, namespaces and labels of the node's containers.
    #[serde(default = "yes")]
    pub enabled: bool,
}

impl Default for EnrichmentSpec {
    fn default() -> Self {
        Self { enabled: true }
    }
}

/// The agent's Prometheus endpoint. The agent always serves it (the liveness
/// probe reads `/healthz` there); this says how it is advertised.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct MetricsSpec {
    /// Declare the port as the named container port `metrics` (what a PodMonitor selects).
    #[serde(default = "yes")]
    pub enabled: bool,

    /// Port of the agent's /metrics and /healthz.
    #[serde(default = "default_metrics_port")]
    #[schemars(range(min = 1, max = 65535))]
    pub port: i32,

    /// Add `prometheus.io/scrape`, `prometheus.io/port` and `prometheus.io/path`
    /// annotations to the pods, for annotation-based scrape configs.
    #[serde(default)]
    pub scrape_annotations: bool,
}

impl Default for MetricsSpec {
    fn default() -> Self {
        Self {
            enabled: true,
            port: DEFAULT_METRICS_PORT,
            scrape_annotations: false,
        }
    }
}

impl Default for NodeMonitorSpec {
    fn default() -> Self {
        Self {
            image: None,
            image_pull_policy: PullPolicy::default(),
            collector: CollectorSpec::default(),
            retention: RetentionSpec::default(),
            data_host_path: default_data_host_path(),
            resources: ResourcesSpec::default(),
            viewer: ViewerSpec::default(),
            enrichment: EnrichmentSpec::default(),
            metrics: MetricsSpec::default(),
            namespace_selector: None,
            node_selector: BTreeMap::new(),
            tolerations: default_tolerations(),
            priority_class_name: None,
            update_strategy: None,
            export: None,
            processes: ProcessesSpec::default(),
        }
    }
}
