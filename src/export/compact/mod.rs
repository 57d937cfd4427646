//! `fine-grained-monitor compact`: merges the small rotated files in the
//! bucket into one file per node and span (hourly by default), sorted by
//! (container, time), then removes what the merged files replace.
//!
//! ```text
//!  list dt=D/, rates/dt=D/, summaries/dt=D/ (each day of --lookback)
//!  (then each other dataset's <dataset>/dt=D/ alike: [`datasets`])
//!    ─▶ plan (pure) ─▶ GET inputs (+ the seed: the data just before them)
//!    ─▶ merge + derive ─▶ PUT rates-…, PUT summaries-…, then PUT merged-<first>-<last>.parquet
//!    └─▶ DELETE raw files whose merged file is older than --delete-after,
//!        and derived objects no merged file commits (a run that died)
//! ```
//!
//! Queries never see a row twice or miss one: a merged file appears whole
//! (one PUT) and hides the raw files it names at once ([`super::keys::visible`]);
//! those are deleted only in a later run, after queries that listed them had
//! time to finish. The rates and summaries of the same rows are written
//! before it and count only once it exists ([`super::derived::committed`]),
//! so the merged file commits all three at once. Runs are idempotent (same
//! inputs, same keys), so a run that died is simply run again; the operator
//! runs it as a CronJob that forbids overlapping runs.

pub mod datasets;
pub mod derive_plan;
pub mod merge;
pub mod plan;

use std::time::Instant;

use bytes::Bytes;
use chrono::{DateTime, Days, Utc};
use clap::Args;

use super::BucketArgs;
use super::derived::{self, Dataset, build::DeriveError};
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
    #[error("rates and summaries of {key}: {source}")]
    Derive { key: String, source: DeriveError },
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
    /// Time spent merging (download, merge, derive, upload).
    pub merge_seconds: f64,
    /// Bytes of the rates and summaries objects written.
    pub rates_bytes: u64,
    pub summaries_bytes: u64,
    /// Rows of the summaries objects.
    pub summary_rows: usize,
    /// Part of `merge_seconds` spent deriving rates and summaries (CPU-bound,
    /// in the blocking task) and uploading them.
    pub derive_seconds: f64,
    /// Groups whose first rows got their rates from the data before them.
    pub seeded: usize,
    /// Derived objects of runs that died before their merged file, deleted.
    pub orphans_deleted: usize,
    /// The other datasets (network, devices, processes): merged files written,
    /// raw files merged, their rows, raw files deleted.
    pub dataset_merged_files: usize,
    pub dataset_input_files: usize,
    pub dataset_rows: usize,
    pub dataset_deleted: usize,
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
const PARQUET: &str = "application/vnd.apache.parquet";

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
    // The day before the first: seeds of its first hour.
    let mut earlier = match first.pred_opt() {
        Some(d) => list_day(client, &prefix, d, args.node.as_deref()).await?,
        None => Vec::new(),
    };
    let mut day = first;
    while day <= today {
        let objects = list_day(client, &prefix, day, args.node.as_deref()).await?;
        let mut derived_objects = Vec::new();
        for dataset in Dataset::ALL {
            let listing = client
                .list(&derived::day_prefix(&prefix, dataset, day), None)
                .await?;
            derived_objects.extend(listing.objects.into_iter().filter_map(|o| {
                let parsed = derived::parse(&prefix, &o.key)?;
                let wanted = args.node.as_deref().is_none_or(|n| n == parsed.node);
                wanted.then_some(derive_plan::DerivedListed {
                    parsed,
                    modified: o.last_modified,
                })
            }));
        }
        let work = plan::plan(&objects, &prefix, now, rules);
        for key in &work.late {
            tracing::warn!(%key, "raw file reached the bucket after the merged file covering it: hidden from queries and kept; check the node's clock and upload order");
        }
        report.late.extend(work.late.iter().cloned());
        let both_days: Vec<plan::Listed> = earlier.iter().chain(&objects).cloned().collect();
        for group in &work.merges {
            let seed = derive_plan::seed(group, &both_days);
            merge_group(client, &prefix, group, seed.as_ref(), &mut report).await?;
        }
        for key in &work.deletions {
            client.delete_object(key).await?;
            report.deleted += 1;
        }
        let orphans = derive_plan::orphans(
            &derived_objects,
            &both_days,
            &work.merges,
            now,
            rules.delete_after,
        );
        for key in &orphans {
            tracing::info!(%key, "deleting rates or summaries whose merged file was never written");
            client.delete_object(key).await?;
            report.orphans_deleted += 1;
        }
        for dataset in crate::store::layout::Dataset::ALL {
            let run = datasets::RunDay {
                prefix: &prefix,
                day,
                node: args.node.as_deref(),
                now,
                rules,
            };
            datasets::compact_day(client, dataset, run, &mut report).await?;
        }
        earlier = objects;
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
        rates_mb = report.rates_bytes as f64 / 1e6,
        summaries_mb = report.summaries_bytes as f64 / 1e6,
        derive_s = report.derive_seconds,
        dataset_merged = report.dataset_merged_files,
        dataset_inputs = report.dataset_input_files,
        dataset_deleted = report.dataset_deleted,
        mb_per_s = report.throughput_mb_s(),
        "compaction run done"
    );
    Ok(report)
}

/// The parsed objects of `day` (one listing), of `node` only when given.
async fn list_day(
    client: &s3::Client,
    prefix: &str,
    day: chrono::NaiveDate,
    node: Option<&str>,
) -> Result<Vec<plan::Listed>, CompactError> {
    let day_prefix = if prefix.is_empty() {
        format!("{}/", crate::store::layout::day_dir_name(day))
    } else {
        format!("{prefix}/{}/", crate::store::layout::day_dir_name(day))
    };
    let listing = client.list(&day_prefix, None).await?;
    Ok(listing
        .objects
        .into_iter()
        .filter_map(|o| {
            let parsed = keys::parse_key(prefix, &o.key)?;
            let wanted = node.is_none_or(|n| n == parsed.node);
            wanted.then_some(plan::Listed {
                parsed,
                size: o.size,
                modified: o.last_modified,
            })
        })
        .collect())
}

async fn merge_group(
    client: &s3::Client,
    prefix: &str,
    group: &plan::Group,
    seed: Option<&plan::Listed>,
    report: &mut Report,
) -> Result<(), CompactError> {
    let began = Instant::now();
    let mut inputs: Vec<(String, Bytes)> = Vec::with_capacity(group.inputs.len());
    for input in &group.inputs {
        let body = client.get_object(&input.parsed.key, MAX_INPUT).await?;
        inputs.push((input.parsed.key.clone(), body));
    }
    let seed = match seed {
        Some(s) => match client.get_object(&s.parsed.key, MAX_INPUT).await {
            Ok(body) => Some((s.parsed.key.clone(), body)),
            // Deleted since the listing (an earlier run's grace period ended):
            // the first rows of the span go without rates.
            Err(e) if e.reason() == "NotFound" => {
                tracing::warn!(key = %s.parsed.key, "seed of the span vanished; its first samples get no rates");
                None
            }
            Err(e) => return Err(e.into()),
        },
        None => None,
    };
    let input_bytes: u64 = inputs.iter().map(|(_, b)| b.len() as u64).sum();
    let node = group.node.clone();
    let key = group.key.clone();
    let seeded = seed.is_some();
    let (merged, derived, derive_cpu) = tokio::task::spawn_blocking(move || {
        let merged = merge::merge(&inputs, &node).map_err(|source| CompactError::Merge {
            key: key.clone(),
            source,
        })?;
        let began = Instant::now();
        let derived = derived::build::derive(&inputs, seed.as_ref(), &node)
            .map_err(|source| CompactError::Derive { key, source })?;
        Ok::<_, CompactError>((merged, derived, began.elapsed().as_secs_f64()))
    })
    .await
    .map_err(|e| CompactError::Panicked(e.to_string()))??;
    let output_bytes = merged.bytes.len() as u64;
    // Derived objects first: the merged file, last, commits them (see the module doc).
    let uploads_began = Instant::now();
    let (mut rates_bytes, mut summaries_bytes, mut summary_rows) = (0u64, 0u64, 0usize);
    for hour in derived {
        let Some(start) = chrono::DateTime::from_timestamp_millis(hour.hour_ms) else {
            continue;
        };
        let key =
            |dataset| derived::key(prefix, dataset, &group.node, start, group.first, group.last);
        rates_bytes += hour.rates.len() as u64;
        summaries_bytes += hour.summaries.len() as u64;
        summary_rows += hour.summary_rows;
        client
            .put_object(&key(Dataset::Rates), Bytes::from(hour.rates), PARQUET)
            .await?;
        client
            .put_object(
                &key(Dataset::Summaries),
                Bytes::from(hour.summaries),
                PARQUET,
            )
            .await?;
    }
    let derived_upload = uploads_began.elapsed().as_secs_f64();
    client
        .put_object(&group.key, Bytes::from(merged.bytes), PARQUET)
        .await?;
    tracing::info!(key = %group.key, inputs = group.inputs.len(), rows = merged.rows, row_groups = merged.row_groups, input_bytes, output_bytes, rates_bytes, summaries_bytes, seeded, "merged");
    report.merged_files += 1;
    report.input_files += group.inputs.len();
    report.input_bytes += input_bytes;
    report.output_bytes += output_bytes;
    report.rows += merged.rows;
    report.rates_bytes += rates_bytes;
    report.summaries_bytes += summaries_bytes;
    report.summary_rows += summary_rows;
    report.derive_seconds += derive_cpu + derived_upload;
    report.seeded += usize::from(seeded);
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
