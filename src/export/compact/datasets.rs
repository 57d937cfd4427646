//! Compaction of the other per-node datasets (network, devices, processes):
//! the metrics' rule on each dataset's own prefix. A node's raw files of a
//! closed span become one `merged-<first>-<last>.parquet` beside them, which
//! hides them at once; they are deleted in a later run, after the grace
//! period. No rates or summaries are derived from these.
//!
//! ```text
//!  list <dataset>/dt=D/ ─▶ plan (the metrics' plan, dataset keys)
//!    ─▶ GET inputs ─▶ merge (by container, the dataset's footer) ─▶ PUT merged
//!    └─▶ DELETE raw files whose merged file is older than --delete-after
//! ```

use std::time::Instant;

use bytes::Bytes;
use chrono::{DateTime, NaiveDate, Utc};

use super::{CompactError, MAX_INPUT, PARQUET, Report, merge, plan};
use crate::export::keys;
use crate::s3;
use crate::store::datasets;
use crate::store::layout::Dataset;

/// One day of one run: where, which node's files, when, with which rules.
#[derive(Debug, Clone, Copy)]
pub struct RunDay<'a> {
    pub prefix: &'a str,
    pub day: NaiveDate,
    /// Only this node's files when given.
    pub node: Option<&'a str>,
    pub now: DateTime<Utc>,
    pub rules: plan::Rules,
}

/// Compacts `dataset`'s files of the day.
pub async fn compact_day(
    client: &s3::Client,
    dataset: Dataset,
    run: RunDay<'_>,
    report: &mut Report,
) -> Result<(), CompactError> {
    let RunDay {
        prefix,
        day,
        node,
        now,
        rules,
    } = run;
    let listing = client
        .list(&keys::dataset_day_prefix(prefix, dataset, day), None)
        .await?;
    let objects: Vec<plan::Listed> = listing
        .objects
        .into_iter()
        .filter_map(|o| {
            let parsed = keys::parse_dataset_key(prefix, dataset, &o.key)?;
            let wanted = node.is_none_or(|n| n == parsed.node);
            wanted.then_some(plan::Listed {
                parsed,
                size: o.size,
                modified: o.last_modified,
            })
        })
        .collect();
    let work = plan::plan_keyed(&objects, now, rules, |node, first, last| {
        keys::dataset_merged_key(prefix, dataset, node, first, last)
    });
    for key in &work.late {
        tracing::warn!(%key, dataset = dataset.name(), "raw file reached the bucket after the merged file covering it: hidden from queries and kept; check the node's clock and upload order");
    }
    report.late.extend(work.late.iter().cloned());
    for group in &work.merges {
        merge_group(client, dataset, group, report).await?;
    }
    for key in &work.deletions {
        client.delete_object(key).await?;
        report.dataset_deleted += 1;
    }
    Ok(())
}

async fn merge_group(
    client: &s3::Client,
    dataset: Dataset,
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
    let (node, key) = (group.node.clone(), group.key.clone());
    let merged = tokio::task::spawn_blocking(move || {
        merge::merge_dataset(&inputs, &node, datasets::spec(dataset))
            .map_err(|source| CompactError::Merge { key, source })
    })
    .await
    .map_err(|e| CompactError::Panicked(e.to_string()))??;
    let output_bytes = merged.bytes.len() as u64;
    client
        .put_object(&group.key, Bytes::from(merged.bytes), PARQUET)
        .await?;
    tracing::info!(key = %group.key, dataset = dataset.name(), inputs = group.inputs.len(), rows = merged.rows, input_bytes, output_bytes, "merged");
    report.dataset_merged_files += 1;
    report.dataset_input_files += group.inputs.len();
    report.dataset_rows += merged.rows;
    report.input_bytes += input_bytes;
    report.output_bytes += output_bytes;
    report.merge_seconds += began.elapsed().as_secs_f64();
    Ok(())
}
