//! The `NodeMonitor` custom resource (`fgm.dev/v1alpha1`): what a user asks for
//! (spec) and what the operator reports back (status).
//!
//! Every spec field is optional; defaults live in the schema so `kubectl get -o
//! yaml` shows the effective values. The apiserver refuses bad specs itself:
//! patterns and ranges per field, and CEL rules across fields (rotation at least
//! the interval, retention longer than rotation). What the schema cannot know,
//! such as two NodeMonitors writing one host directory or the operator's
//! allowed data roots and image repositories, the operator reports in the
//! `Degraded` condition (see `operator::policy`).
//!
//! Durations are written as the agent's flags take them (`500ms`, `1s`, `90s`,
//! `1h30m`, `7d`), so a spec value reaches the agent's settings file unchanged.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::DaemonSetUpdateStrategy;
use k8s_openapi::api::core::v1::{ResourceRequirements, Toleration};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, LabelSelector};
use kube::core::Rule;
use kube::{CustomResource, CustomResourceExt, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

mod export;
pub use export::{
    CompactionSpec, ExportCredentials, ExportSpec, ExportStatusSummary, WebIdentitySpec,
};

/// API group of the custom resource.
pub const GROUP: &str = "fgm.dev";
/// Default host directory of the data (mounted at `/data` in the pod).
pub const DEFAULT_DATA_HOST_PATH: &str = "/var/lib/fine-grained-monitor";
/// Default port of the viewer container.
pub const DEFAULT_VIEWER_PORT: i32 = 8050;
/// Default address of the viewer inside the pod: loopback, reached by `kubectl port-forward`.
pub const DEFAULT_VIEWER_BIND_ADDRESS: &str = "127.0.0.1";
/// Default port of the agent's Prometheus endpoint (the agent's `--metrics-addr` default).
pub const DEFAULT_METRICS_PORT: i32 = 9810;

/// A duration as the agent's flags take it: one `<n>d`, or `<n>h`, `<n>m`, `<n>s`,
/// `<n>ms` parts (the subset both our parser and CEL's `duration()` read).
pub(crate) const DURATION_PATTERN: &str = r"^([0-9]+d|([0-9]+(h|m|s|ms))+)$";
/// A byte size as the agent's flags take it (`10Gi`, `500M`, `1048576`).
const SIZE_PATTERN: &str = r"^[0-9]+(k|K|M|G|T|Ki|Mi|Gi|Ti)?$";

/// CEL expression giving the milliseconds of the duration string at `path`.
/// CEL's `duration()` has no days, so `<n>d` is computed from `n`; no string is
/// built at run time, which keeps the apiserver's cost estimate small.
fn cel_millis(path: &str) -> String {
    format!(
        "({path}.endsWith('d') ? int({path}.substring(0, {path}.size() - 1)) * 86400000 : duration({path}).getMilliseconds())"
    )
}

fn rotation_rule() -> Rule {
    Rule::new(format!(
        "{} >= {}",
        cel_millis("self.collector.rotation"),
        cel_millis("self.collector.interval")
    ))
    .message("collector.rotation must be at least collector.interval")
    .field_path(".collector.rotation")
}

fn retention_rule() -> Rule {
    Rule::new(format!(
        "{} > {}",
        cel_millis("self.retention.maxAge"),
        cel_millis("self.collector.rotation")
    ))
    .message("retention.maxAge must be longer than collector.rotation")
    .field_path(".retention.maxAge")
}

fn interval_rule() -> Rule {
    Rule::new(format!(
        "{} >= 100 && {} <= 3600000",
        cel_millis("self"),
        cel_millis("self")
    ))
    .message("collector.interval must be between 100ms and 1h")
}

fn host_path_rule() -> Rule {
    // The operator normalises `//` and trailing slashes and checks the allowed
    // roots (its settings, unknown to the CRD); `/` in any spelling and `.`/`..`
    // segments are refused here already.
    Rule::new(r"!self.matches('^/+$') && !self.matches('(^|/)[.][.]?(/|$)')")
        .message("dataHostPath must be an absolute directory other than / without . or .. segments")
}

fn name_rule() -> Rule {
    // Children carry the name in a label value, which is limited to 63 characters.
    Rule::new("self.metadata.name.size() <= 63")
        .message("NodeMonitor names are at most 63 characters (they become label values)")
}

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
}

/// Image pull policy of the monitor containers.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
pub enum PullPolicy {
    Always,
    #[default]
    IfNotPresent,
    Never,
}

impl PullPolicy {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Always => "Always",
            Self::IfNotPresent => "IfNotPresent",
            Self::Never => "Never",
        }
    }
}

/// Sampling settings of the agent.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct CollectorSpec {
    /// Time between two samples (100ms to 1h).
    #[serde(default = "default_interval")]
    #[schemars(regex(pattern = DURATION_PATTERN), length(max = 16))]
    #[x_kube(validation = interval_rule())]
    pub interval: String,

    /// Time between two completed data files; at least the interval.
    #[serde(default = "default_rotation")]
    #[schemars(regex(pattern = DURATION_PATTERN), length(max = 16))]
    pub rotation: String,
}

impl Default for CollectorSpec {
    fn default() -> Self {
        Self {
            interval: default_interval(),
            rotation: default_rotation(),
        }
    }
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

/// Container resources; the defaults suit a node with a few hundred containers.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ResourcesSpec {
    /// Agent container [default: requests 64Mi/100m, limits 256Mi/500m].
    #[serde(default = "default_agent_resources")]
    pub agent: ResourceRequirements,

    /// Viewer container [default: requests 32Mi/10m, limits 128Mi/100m].
    #[serde(default = "default_viewer_resources")]
    pub viewer: ResourceRequirements,
}

impl Default for ResourcesSpec {
    fn default() -> Self {
        Self {
            agent: default_agent_resources(),
            viewer: default_viewer_resources(),
        }
    }
}

/// The in-pod viewer (reach it with `kubectl port-forward`).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ViewerSpec {
    /// Run the viewer container.
    #[serde(default = "yes")]
    pub enabled: bool,

    /// Container port of the viewer.
    #[serde(default = "default_viewer_port")]
    #[schemars(range(min = 1, max = 65535))]
    pub port: i32,

    /// Address the viewer listens on inside the pod. Loopback is reached with
    /// `kubectl port-forward`; `0.0.0.0` exposes it to the pod network
    /// (deliberately, e.g. behind a Service).
    #[serde(default = "default_viewer_bind_address")]
    #[schemars(
        regex(pattern = r"^([0-9]{1,3}(\.[0-9]{1,3}){3}|[0-9a-fA-F:]{2,39})$"),
        length(max = 39)
    )]
    pub bind_address: String,
}

impl Default for ViewerSpec {
    fn default() -> Self {
        Self {
            enabled: true,
            port: DEFAULT_VIEWER_PORT,
            bind_address: default_viewer_bind_address(),
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

/// What the operator observed at its last reconcile.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct NodeMonitorStatus {
    /// The spec generation this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,

    /// `Ready`, `Progressing` and `Degraded`, each with a reason and a message.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,

    /// Nodes that should run a monitor pod.
    #[serde(default)]
    pub desired_number_scheduled: i32,

    /// Nodes whose monitor pod is ready.
    #[serde(default)]
    pub number_ready: i32,

    /// Nodes running the pod of the current spec.
    #[serde(default)]
    pub updated_number_scheduled: i32,

    /// Nodes whose monitor pod has been ready long enough to count as available.
    #[serde(default)]
    pub number_available: i32,

    /// The export to object storage, as the agents report it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub export: Option<ExportStatusSummary>,
}

fn yes() -> bool {
    true
}
fn default_interval() -> String {
    "1s".into()
}
fn default_rotation() -> String {
    "90s".into()
}
fn default_max_age() -> String {
    "7d".into()
}
fn default_data_host_path() -> String {
    DEFAULT_DATA_HOST_PATH.into()
}
fn default_viewer_port() -> i32 {
    DEFAULT_VIEWER_PORT
}
fn default_viewer_bind_address() -> String {
    DEFAULT_VIEWER_BIND_ADDRESS.into()
}
fn default_metrics_port() -> i32 {
    DEFAULT_METRICS_PORT
}

/// Tolerate every taint: a monitor that skips tainted nodes misses exactly the
/// nodes people are worried about.
fn default_tolerations() -> Vec<Toleration> {
    vec![Toleration {
        operator: Some("Exists".into()),
        ..Toleration::default()
    }]
}

fn resources(req: (&str, &str), lim: (&str, &str)) -> ResourceRequirements {
    let map = |(mem, cpu): (&str, &str)| {
        BTreeMap::from([
            ("cpu".to_string(), Quantity(cpu.into())),
            ("memory".to_string(), Quantity(mem.into())),
        ])
    };
    ResourceRequirements {
        requests: Some(map(req)),
        limits: Some(map(lim)),
        ..ResourceRequirements::default()
    }
}

fn default_agent_resources() -> ResourceRequirements {
    resources(("64Mi", "100m"), ("256Mi", "500m"))
}

fn default_viewer_resources() -> ResourceRequirements {
    resources(("32Mi", "10m"), ("128Mi", "100m"))
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
        }
    }
}

/// Why the CRD could not be rendered (only a serializer failure can cause it).
#[derive(Debug, thiserror::Error)]
#[error("cannot render the NodeMonitor CRD as YAML: {0}")]
pub struct CrdRenderError(String);

/// The CRD as YAML: what `fine-grained-monitor crd` prints and
/// `crds/nodemonitors.fgm.dev.yaml` holds.
pub fn crd_yaml() -> Result<String, CrdRenderError> {
    serde_saphyr::to_string(&NodeMonitor::crd()).map_err(|e| CrdRenderError(e.to_string()))
}

#[cfg(test)]
mod tests;
