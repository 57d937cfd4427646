//! `fine-grained-monitor compact`: merges the small rotated files in the
//! bucket into one file per node and span (hourly by default), sorted by
//! (container, time), then removes what the merged files replace.
//!
//! ```text
//!  list dt=D/ (each day of --lookback) ─▶ plan (pure) ─▶ GET inputs ─▶ merge ─▶ PUT merged-<first>-<last>.parquet
//!                                              └─▶ DELETE raw files whose merged file is older than --delete-after
//! ```
//!
//! Queries never see a row twice or miss one: a merged file appears whole
//! (one PUT) and hides the raw files it names at once ([`super::keys::visible`]);
//! those are deleted only in a later run, after queries that listed them had
//! time to finish. Runs are idempotent (same inputs, same key), so a run that
//! died is simply run again; the operator runs it as a CronJob that forbids
//! overlapping runs.

pub mod merge;
pub mod plan;

use std::time::Instant;

use bytes::Bytes;
use chrono::{DateTime, Days, Utc};
use clap::Args;

use super::BucketArgs;
use super::keys;
use crate::s3::{self, S3Error};
use crate::units::HumanDuration;

/// Flags of `compact`.
#[derive(Debug, Clone, Args)]
pub struct CompactArgs {
    /// Bucket the agents export to (required; may come from the settings file).
    #[arg(long, env = "FGM_EXPORT_BUCKET")]
    pub export_bucket: Option<String>,

    /// Key prefix the agents export under.
    #[arg(long, env = "FGM_EXPORT_PREFIX", default_value = "")]
    pub export_prefix: String,

    #[command(flatten)]
    pub bucket: BucketArgs,

    /// Length of a merged file (divides a day: 15m, 1h, 6h, 1d ...).
    #[arg(long, env = "FGM_SPAN", default_value = "1h")]
    pub span: HumanDuration,

    /// Wait this long after a span ends before merging it (late uploads land).
    #[arg(long, env = "FGM_SETTLE", default_value = "15m")]
    pub settle: HumanDuration,

    /// Remove replaced files once their merged file is this old (queries
    /// running longer than this may miss them).
    #[arg(long, env = "FGM_DELETE_AFTER", default_value = "30m")]
    pub delete_after: HumanDuration,

    /// Days back from today to look at.
    #[arg(long, env = "FGM_LOOKBACK", default_value = "8d")]
    pub lookback: HumanDuration,

    /// Only this node's files [default: every node].
    #[arg(long, env = "FGM_NODE")]
    pub node: Option<String>,
}

/// Why a run could not finish; what it did before stays valid.
#[derive(Debug, thiserror::Error)]
pub enum CompactError {
    #[error("--span {0} must divide a day (e.g. 15m, 1h, 6h, 1d)")]
    Span(HumanDuration),
    #[error(transparent)]
    S3(#[from] S3Error),
    #[error("--export-bucket (FGM_EXPORT_BUCKET, or `export-bucket` in --config) is required")]
    NoBucket,
    #[error("the merge task panicked: {0}")]
    Panicked(String),
    #[error("merging {key}: {source}")]
    Merge {
        key: String,
        source: merge::MergeError,
    },
}

/// What a run did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Report {
    pub merged_files: usize,
    pub input_files: usize,
    pub input_bytes: u64,
    pub output_bytes: u64,
    pub rows: usize,
    pub deleted: usize,
    /// Raw files that arrived after the merged file hiding them (kept).
    pub late: Vec<String>,
    /// Time spent merging (download, merge, upload).
    pub merge_seconds: f64,
}

impl Report {
    /// Input megabytes merged per second.
    pub fn throughput_mb_s(&self) -> f64 {
        if self.merge_seconds > 0.0 {
            self.input_bytes as f64 / 1e6 / self.merge_seconds
        } else {
            0.0
        }
    }
}

/// Largest input file read into memory.
const MAX_INPUT: usize = 512 << 20;

/// One compaction run at `now` over the days of `args.lookback`, with
/// credentials from the environment.
pub async fn run_once(args: &CompactArgs, now: DateTime<Utc>) -> Result<Report, CompactError> {
    let bucket = args
        .export_bucket
        .as_deref()
        .ok_or(CompactError::NoBucket)?;
    let client = args.bucket.client(bucket, "fgm-compact")?;
    run_with(&client, args, now).await
}

/// [`run_once`] with a given client.
pub async fn run_with(
    client: &s3::Client,
    args: &CompactArgs,
    now: DateTime<Utc>,
) -> Result<Report, CompactError> {
    if args.span.get().as_secs() == 0 || 86_400 % args.span.get().as_secs() != 0 {
        return Err(CompactError::Span(args.span));
    }
    let prefix = keys::normalize_prefix(&args.export_prefix);
    let rules = plan::Rules {
        span: args.span.get(),
        settle: args.settle.get(),
        delete_after: args.delete_after.get(),
        min_files: 2,
    };
    let days = (args.lookback.get().as_secs() / 86_400).max(1);
    let mut report = Report::default();
    let today = now.date_naive();
    let first = today.checked_sub_days(Days::new(days)).unwrap_or(today);
    let mut day = first;
    while day <= today {
        let day_prefix = if prefix.is_empty() {
            format!("{}/", crate::store::layout::day_dir_name(day))
        } else {
            format!("{prefix}/{}/", crate::store::layout::day_dir_name(day))
        };
        let listing = client.list(&day_prefix, None).await?;
        let objects: Vec<plan::Listed> = listing
            .objects
            .into_iter()
            .filter_map(|o| {
                let parsed = keys::parse_key(&prefix, &o.key)?;
                let wanted = args.node.as_deref().is_none_or(|n| n == parsed.node);
                wanted.then_some(plan::Listed {
                    parsed,
                    size: o.size,
                    modified: o.last_modified,
                })
            })
            .collect();
        let work = plan::plan(&objects, &prefix, now, rules);
        for key in &work.late {
            tracing::warn!(%key, "raw file reached the bucket after the merged file covering it: hidden from queries and kept; check the node's clock and upload order");
        }
        report.late.extend(work.late);
        for group in &work.merges {
            merge_group(client, group, &mut report).await?;
        }
        for key in &work.deletions {
            client.delete_object(key).await?;
            report.deleted += 1;
        }
        day = match day.succ_opt() {
            Some(d) => d,
            None => break,
        };
    }
    tracing::info!(
        merged = report.merged_files,
        inputs = report.input_files,
        input_mb = report.input_bytes as f64 / 1e6,
        output_mb = report.output_bytes as f64 / 1e6,
        rows = report.rows,
        deleted = report.deleted,
        mb_per_s = report.throughput_mb_s(),
        "compaction run done"
    );
    Ok(report)
}

async fn merge_group(
    client: &s3::Client,
    group: &plan::Group,
    report: &mut Report,
) -> Result<(), CompactError> {
    let began = Instant::now();
    let mut inputs: Vec<(String, Bytes)> = Vec::with_capacity(group.inputs.len());
    for input in &group.inputs {
        let body = client.get_object(&input.parsed.key, MAX_INPUT).await?;
        inputs.push((input.parsed.key.clone(), body));
    }
    let input_bytes: u64 = inputs.iter().map(|(_, b)| b.len() as u64).sum();
    let node = group.node.clone();
    let merged = tokio::task::spawn_blocking(move || merge::merge(&inputs, &node))
        .await
        .map_err(|e| CompactError::Panicked(e.to_string()))?
        .map_err(|source| CompactError::Merge {
            key: group.key.clone(),
            source,
        })?;
    let output_bytes = merged.bytes.len() as u64;
    client
        .put_object(
            &group.key,
            Bytes::from(merged.bytes),
            "application/vnd.apache.parquet",
        )
        .await?;
    tracing::info!(key = %group.key, inputs = group.inputs.len(), rows = merged.rows, row_groups = merged.row_groups, input_bytes, output_bytes, "merged");
    report.merged_files += 1;
    report.input_files += group.inputs.len();
    report.input_bytes += input_bytes;
    report.output_bytes += output_bytes;
    report.rows += merged.rows;
    report.merge_seconds += began.elapsed().as_secs_f64();
    Ok(())
}

/// `compact` mode: one run (a CronJob schedules the next).
pub async fn run(args: CompactArgs) -> anyhow::Result<()> {
    let report = run_once(&args, Utc::now()).await?;
    if !report.late.is_empty() {
        anyhow::bail!(
            "{} raw file(s) are hidden by merged files they are not in (see the log)",
            report.late.len()
        );
    }
    Ok(())
}
