//! The `NodeMonitor` custom resource: what a user asks for (spec) and what the
//! operator reports back (status), in two served versions:
//!
//! ```text
//!  fgm.dev/v1alpha1 (served)  ──┐  the operator's conversion webhook (convert.rs):
//!                               ├─ field renames, both ways, nothing lost
//!  fgm.dev/v1beta1 (served, stored) ◀┘  the operator itself works on v1beta1
//! ```
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

use k8s_openapi::api::core::v1::{ResourceRequirements, Toleration};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::{
    CustomResourceConversion, CustomResourceDefinition, ServiceReference, WebhookClientConfig,
    WebhookConversion,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::core::Rule;
use kube::{CustomResourceExt, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

pub mod convert;
mod export;
pub mod v1alpha1;
pub mod v1beta1;
pub use export::{
    CompactionSpec, ExportCredentials, ExportSpec, ExportStatusSummary, WebIdentitySpec,
};
pub use v1beta1::{MetricsSpec, NodeMonitor, NodeMonitorSpec, PodMetadataSpec, RetentionSpec};

/// Name of the CustomResourceDefinition.
pub const CRD_NAME: &str = "nodemonitors.fgm.dev";
/// The version the apiserver stores and the operator works on.
pub const STORAGE_VERSION: &str = "v1beta1";
/// Every served version, oldest first.
pub const VERSIONS: [&str; 2] = ["v1alpha1", "v1beta1"];
/// Path of the conversion webhook on the operator's webhook port.
pub const CONVERSION_PATH: &str = "/convert";
/// Where the generated CRD sends conversions until the operator names its own
/// Service (the chart's and config/'s defaults).
pub const DEFAULT_WEBHOOK_SERVICE: (&str, &str) = (
    "fine-grained-monitor",
    "fine-grained-monitor-operator-webhook",
);

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
pub(crate) const SIZE_PATTERN: &str = r"^[0-9]+(k|K|M|G|T|Ki|Mi|Gi|Ti)?$";

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

/// Each container's processes (a `processes-<start>.parquet` dataset per node):
/// CPU and RSS every interval for the top processes, PSS/USS/swap from
/// `smaps_rollup`, starts and exits. Costs CPU on the node, and the agent gains
/// `CAP_SYS_PTRACE` (docs/security.md).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ProcessesSpec {
    /// Record processes [default: off].
    #[serde(default)]
    pub enabled: bool,

    /// Processes kept per container by CPU, and again by memory.
    #[serde(default = "default_process_top_k")]
    #[schemars(range(min = 1, max = 1000))]
    pub top_k: i32,

    /// PSS, USS and swap are read every this many intervals (the costly read).
    #[serde(default = "default_process_memory_every")]
    #[schemars(range(min = 1, max = 3600))]
    pub memory_every: i32,
}

fn default_process_top_k() -> i32 {
    10
}

fn default_process_memory_every() -> i32 {
    10
}

impl Default for ProcessesSpec {
    fn default() -> Self {
        Self {
            enabled: false,
            top_k: default_process_top_k(),
            memory_every: default_process_memory_every(),
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

/// Why the CRD could not be rendered (only a serializer failure can cause it).
#[derive(Debug, thiserror::Error)]
#[error("cannot render the NodeMonitor CRD as YAML: {0}")]
pub struct CrdRenderError(String);

/// How the apiserver reaches the conversion webhook.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WebhookTarget {
    /// A Service in front of the operator's pods (in a cluster): namespace, name, port.
    Service {
        namespace: String,
        name: String,
        port: i32,
    },
    /// A URL (an operator outside the cluster, e.g. a test's).
    Url(String),
}

/// The CRD with both versions (`v1beta1` stored) converted by the webhook at
/// `target`, trusting `ca_bundle` (PEM; `None` leaves the field out).
pub fn crd_with_webhook(
    target: &WebhookTarget,
    ca_bundle: Option<&[u8]>,
) -> CustomResourceDefinition {
    let mut crd = kube::core::crd::merge_crds(
        vec![v1alpha1::NodeMonitor::crd(), v1beta1::NodeMonitor::crd()],
        STORAGE_VERSION,
    )
    .unwrap_or_else(|e| unreachable!("the two versions share group, kind and scope: {e}"));
    let mut client_config = WebhookClientConfig {
        ca_bundle: ca_bundle.map(|b| k8s_openapi::ByteString(b.to_vec())),
        ..WebhookClientConfig::default()
    };
    match target {
        WebhookTarget::Service {
            namespace,
            name,
            port,
        } => {
            client_config.service = Some(ServiceReference {
                namespace: namespace.clone(),
                name: name.clone(),
                path: Some(CONVERSION_PATH.into()),
                port: Some(*port),
            });
        }
        WebhookTarget::Url(url) => client_config.url = Some(url.clone()),
    }
    crd.spec.conversion = Some(CustomResourceConversion {
        strategy: "Webhook".into(),
        webhook: Some(WebhookConversion {
            client_config: Some(client_config),
            conversion_review_versions: vec!["v1".into()],
        }),
    });
    crd
}

/// The CRD as `fine-grained-monitor crd` prints it: both versions, conversions
/// sent to the default Service (the operator names its own when it starts and
/// adds its CA; until then a `v1alpha1` request fails instead of being
/// mistranslated).
pub fn crd() -> CustomResourceDefinition {
    let (namespace, name) = DEFAULT_WEBHOOK_SERVICE;
    crd_with_webhook(
        &WebhookTarget::Service {
            namespace: namespace.into(),
            name: name.into(),
            port: 443,
        },
        None,
    )
}

/// The CRD as YAML: what `fine-grained-monitor crd` prints and
/// `crds/nodemonitors.fgm.dev.yaml` holds.
pub fn crd_yaml() -> Result<String, CrdRenderError> {
    serde_saphyr::to_string(&crd()).map_err(|e| CrdRenderError(e.to_string()))
}

#[cfg(test)]
mod tests;
