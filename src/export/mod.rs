//! Export to S3-compatible object storage (issue #19): the agent uploads every
//! rotated data file and its events once, under keys that keep the hive
//! layout with the node in them; compaction (`compact` mode) merges them
//! there; existing engines (DuckDB, Spark) query the bucket.
//!
//! ```text
//!  recorder ─file published─▶ uploader ─PUT─▶ <prefix>/dt=D/node=N/metrics-T.parquet
//!    ◀─ file removed (retention) ─┤  record: <data>/export/uploaded-D.jsonl (fsync, under retention)
//!                               └─ /metrics fgm_export_*, GET /export (JSON) ◀─ operator → status.export
//! ```
//!
//! - [`keys`]: object keys and the visibility rule (merged files hide what they replace).
//! - [`containers`]: the day's container names (`containers.jsonl`) beside the data.
//! - [`record`]: what is uploaded, durable across restarts.
//! - [`uploader`]: the task: queue, HEAD-before-PUT when unsure, backoff, drops.
//! - [`status`]: metrics and the JSON status.
//! - [`compact`]: merging a node's files into larger sorted ones, in the bucket.
//! - [`derived`]: the rates and hourly summaries compaction writes beside them.
//! - [`mirror`]: a node's objects copied into a local data directory for the viewer.

pub mod compact;
pub mod containers;
pub mod derived;
pub mod keys;
pub mod mirror;
pub mod record;
pub mod status;
pub mod uploader;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use clap::Args;

use crate::agent::recorder::RecorderHooks;
use crate::s3::{self, S3Error};
use crate::store::retention::ArtefactKind;
use crate::units::HumanDuration;

pub use status::{ExportMetrics, ExportStatus};

/// Where the bucket is: shared by `agent`, `compact` and the viewer's mirror.
/// Credentials come from the standard AWS environment variables (see
/// [`crate::s3::credentials`]), never from flags.
#[derive(Debug, Clone, Args)]
pub struct BucketArgs {
    /// S3-compatible endpoint URL [default: https://s3.<region>.amazonaws.com].
    #[arg(long, env = "FGM_EXPORT_ENDPOINT", value_name = "URL")]
    pub export_endpoint: Option<String>,

    /// Region used for signing.
    #[arg(long, env = "FGM_EXPORT_REGION", default_value = "us-east-1")]
    pub export_region: String,

    /// Address objects as https://endpoint/bucket/key (most self-hosted stores)
    /// rather than https://bucket.endpoint/key.
    #[arg(long, env = "FGM_EXPORT_PATH_STYLE", default_value_t = false, action = clap::ArgAction::Set)]
    pub export_path_style: bool,

    /// Extra CA certificates (PEM) to trust for the endpoint and STS.
    #[arg(long, env = "FGM_EXPORT_CA_FILE", value_name = "FILE")]
    pub export_ca_file: Option<PathBuf>,

    /// STS endpoint for web identity credentials [default: https://sts.<region>.amazonaws.com
    /// with AWS, else the S3 endpoint itself, where S3-compatible stores answer STS].
    #[arg(long, env = "FGM_EXPORT_STS_ENDPOINT", value_name = "URL")]
    pub export_sts_endpoint: Option<String>,

    /// Longest time one request may take.
    #[arg(long, env = "FGM_EXPORT_TIMEOUT", default_value = "2m")]
    pub export_timeout: HumanDuration,
}

impl BucketArgs {
    /// A client for `bucket`, with credentials from the environment
    /// (`session_name` names web identity sessions).
    pub fn client(&self, bucket: &str, session_name: &str) -> Result<s3::Client, S3Error> {
        let config = s3::BucketConfig::new(
            self.export_endpoint.as_deref(),
            bucket,
            &self.export_region,
            self.export_path_style,
        )?;
        let http = s3::transport::HttpClient::new(
            self.export_ca_file.as_deref(),
            self.export_timeout.get(),
        )?;
        let sts = match (&self.export_sts_endpoint, &self.export_endpoint) {
            (Some(sts), _) => sts.clone(),
            (None, Some(_)) => config.endpoint_url(),
            (None, None) => format!("https://sts.{}.amazonaws.com", self.export_region),
        };
        let source = s3::Source::from_env(|k| std::env::var(k).ok(), &sts, session_name)?;
        let provider = Arc::new(s3::Provider::new(source, http.clone()));
        Ok(s3::Client::new(http, config, provider))
    }
}

/// Export flags of `agent` (and `local`); export is on when a bucket is named.
#[derive(Debug, Clone, Args)]
pub struct ExportArgs {
    /// Upload every rotated data file and the pod events to this bucket.
    #[arg(long, env = "FGM_EXPORT_BUCKET")]
    pub export_bucket: Option<String>,

    /// Key prefix in the bucket (e.g. `fgm/prod-eu`).
    #[arg(long, env = "FGM_EXPORT_PREFIX", default_value = "")]
    pub export_prefix: String,

    #[command(flatten)]
    pub bucket: BucketArgs,

    /// Longest wait between two attempts while uploads fail.
    #[arg(long, env = "FGM_EXPORT_RETRY_MAX", default_value = "5m")]
    pub export_retry_max: HumanDuration,
}

impl ExportArgs {
    /// Whether a bucket is named (export is on).
    pub fn enabled(&self) -> bool {
        self.export_bucket.is_some()
    }
}

/// A running uploader: what to hook into the recorder, and its status.
#[derive(Debug)]
pub struct ExportHandle {
    /// The upload records as an artefact kind of retention, and the queue the
    /// recorder tells of published and removed files (for
    /// [`crate::agent::Agent::start_hooked`]).
    pub hooks: RecorderHooks,
    pub metrics: ExportMetrics,
    pub task: tokio::task::JoinHandle<()>,
}

/// Starts the uploader when `args` name a bucket. Call it with the data
/// directory's lock held: the uploader writes its records there. Settings
/// that cannot work (bad endpoint, no credentials) do not stop the agent: the
/// uploader reports them in its status and metrics, and local collection goes on.
pub fn start(
    args: &ExportArgs,
    data_dir: PathBuf,
    node: &str,
    registry: &mut prometheus_client::registry::Registry,
    stop: tokio_util::sync::CancellationToken,
) -> Option<ExportHandle> {
    let bucket = args.export_bucket.as_deref()?;
    let prefix = keys::normalize_prefix(&args.export_prefix);
    let destination = if prefix.is_empty() {
        format!("s3://{bucket}")
    } else {
        format!("s3://{bucket}/{prefix}")
    };
    let metrics = ExportMetrics::register(registry, destination.clone());
    let client = args.bucket.client(bucket, &format!("fgm-{node}"));
    match &client {
        Ok(_) => tracing::info!(%destination, "exporting data files to object storage"),
        Err(e) => {
            tracing::error!(%destination, error = %e, "export cannot work with these settings; collection goes on locally")
        }
    }
    let config = uploader::UploaderConfig {
        data_dir,
        node: node.to_string(),
        prefix,
        retry_min: Duration::from_secs(1),
        retry_max: args.export_retry_max.get().max(Duration::from_secs(1)),
        rescan_every: Duration::from_secs(600),
        drain: Duration::from_secs(10),
    };
    let (events, received) = tokio::sync::mpsc::unbounded_channel();
    let uploader = uploader::Uploader::new(config, client, metrics.clone());
    let task = tokio::spawn(uploader.run(received, stop));
    let artefacts: Vec<Arc<dyn ArtefactKind>> = vec![Arc::new(record::UploadRecords)];
    Some(ExportHandle {
        hooks: RecorderHooks {
            artefacts,
            events: Some(events),
        },
        metrics,
        task,
    })
}
