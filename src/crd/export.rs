//! `spec.export` and `status.export`: every node's history in S3-compatible
//! object storage (issue #19).

use kube::KubeSchema;
use kube::core::Rule;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::DURATION_PATTERN;

/// DNS-compatible bucket names.
const BUCKET_PATTERN: &str = r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$";

fn credentials_rule() -> Rule {
    Rule::new("has(self.secretName) != has(self.webIdentity)")
        .message("export.credentials needs exactly one of secretName and webIdentity")
}

/// Upload every rotated data file and the pod events of each node to a bucket.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct ExportSpec {
    /// S3-compatible endpoint URL [default: https://s3.<region>.amazonaws.com].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(
        regex(pattern = r"^https?://[^/?#@\s]+(/[^?#\s]*)?$"),
        length(max = 512)
    )]
    pub endpoint: Option<String>,

    /// Bucket name.
    #[schemars(regex(pattern = BUCKET_PATTERN))]
    pub bucket: String,

    /// Key prefix in the bucket: objects go to <prefix>/dt=YYYY-MM-DD/node=<node>/.
    #[serde(default)]
    #[schemars(regex(pattern = r"^[A-Za-z0-9!_.*'()/-]*$"), length(max = 256))]
    pub prefix: String,

    /// Region used for signing.
    #[serde(default = "default_region")]
    #[schemars(regex(pattern = r"^[a-z0-9-]+$"), length(max = 64))]
    pub region: String,

    /// Address objects as https://endpoint/bucket/key (most self-hosted stores).
    #[serde(default)]
    pub path_style: bool,

    /// Where the keys come from: a Secret, or the pods' own identity.
    #[x_kube(validation = credentials_rule())]
    pub credentials: ExportCredentials,

    /// Merging each node's small files into hourly ones in the bucket.
    #[serde(default)]
    pub compaction: CompactionSpec,
}

/// Credentials of the agents (and of the compaction job).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ExportCredentials {
    /// A Secret in the NodeMonitor's namespace with the keys AWS_ACCESS_KEY_ID and
    /// AWS_SECRET_ACCESS_KEY (and optionally AWS_SESSION_TOKEN). The pods read it
    /// through their environment; the operator never reads it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 253))]
    pub secret_name: Option<String>,

    /// The pods' own identity: a projected ServiceAccount token traded at STS
    /// (AssumeRoleWithWebIdentity) for temporary keys of a role (IRSA-style).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub web_identity: Option<WebIdentitySpec>,
}

/// A role the NodeMonitor's ServiceAccount may assume with its token.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct WebIdentitySpec {
    /// ARN of the role whose trust policy names system:serviceaccount:<namespace>:<NodeMonitor name>.
    #[schemars(length(min = 1, max = 2048))]
    pub role_arn: String,

    /// Audience of the projected token.
    #[serde(default = "default_audience")]
    #[schemars(length(min = 1, max = 253))]
    pub audience: String,

    /// STS endpoint URL [default: AWS's regional STS, or the S3 endpoint when one is set].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(
        regex(pattern = r"^https?://[^/?#@\s]+(/[^?#\s]*)?$"),
        length(max = 512)
    )]
    pub sts_endpoint: Option<String>,
}

/// The compaction CronJob (the operator's image in `compact` mode).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CompactionSpec {
    /// Run compaction.
    #[serde(default = "yes")]
    pub enabled: bool,

    /// Cron schedule of the runs.
    #[serde(default = "default_schedule")]
    #[schemars(length(min = 9, max = 64))]
    pub schedule: String,

    /// Length of a merged file; divides a day (15m, 1h, 6h, 1d).
    #[serde(default = "default_span")]
    #[schemars(regex(pattern = DURATION_PATTERN), length(max = 16))]
    pub span: String,

    /// Replaced files are removed once their merged file is this old (longer
    /// than the longest query you run).
    #[serde(default = "default_delete_after")]
    #[schemars(regex(pattern = DURATION_PATTERN), length(max = 16))]
    pub delete_after: String,
}

impl Default for CompactionSpec {
    fn default() -> Self {
        Self {
            enabled: true,
            schedule: default_schedule(),
            span: default_span(),
            delete_after: default_delete_after(),
        }
    }
}

/// What the agents report about the export (the operator reads their
/// `GET /export` on the metrics port).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ExportStatusSummary {
    /// `s3://bucket/prefix`.
    pub destination: String,
    /// Most recent successful upload of any node (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_upload: Option<String>,
    /// Files (and bytes) waiting on all nodes.
    pub backlog_files: i64,
    pub backlog_bytes: i64,
    /// Files retention removed before upload, since each agent started.
    pub dropped_files: i64,
    /// Agents that answered, and those whose uploads fail.
    pub nodes_reporting: i32,
    pub nodes_failing: i32,
    /// Last successful compaction run (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_compaction: Option<String>,
}

fn yes() -> bool {
    true
}
fn default_region() -> String {
    "us-east-1".into()
}
fn default_audience() -> String {
    "sts.amazonaws.com".into()
}
fn default_schedule() -> String {
    "17 * * * *".into()
}
fn default_span() -> String {
    "1h".into()
}
fn default_delete_after() -> String {
    "30m".into()
}
