//! `fgm-viewer s3://bucket/prefix --node NAME`: a node's history from the
//! bucket, after the node is gone. Its objects are copied into a local cache
//! laid out as the agent's data directory, and the viewer serves that:
//!
//! ```text
//!  dt=D/node=N/metrics-T.parquet, merged-F-L.parquet ─▶ <cache>/dt=D/identifier=N/metrics-{T|F}.parquet
//!  dt=D/node=N/events.jsonl                          ─▶ <cache>/events/events-D.jsonl
//!  dt=D/node=N/containers.jsonl (every day)          ─▶ <cache>/index.json (names, first/last seen)
//! ```
//!
//! Only what the visibility rule keeps is copied (merged files replace the
//! raw ones they name, which are removed from the cache); a file already in
//! the cache with the same size is not fetched again.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use chrono::{DateTime, NaiveDate, Utc};

use super::keys::{self, ObjectKind, ParsedKey};
use crate::s3::{self, S3Error};
use crate::store::index::{ContainerEntry, Index};
use crate::store::{events, layout};

/// The viewer's flags for `s3://` sources.
#[derive(Debug, Clone, clap::Args)]
pub struct MirrorArgs {
    /// With an s3:// source: the node whose history to show (without it, a prefix holding
    /// several nodes opens the cluster view over all of them).
    #[arg(long, env = "FGM_NODE")]
    pub node: Option<String>,

    /// With an s3:// source: where the node's files are copied (the cluster view: one
    /// directory per node below it)
    /// [default: ~/.cache/fine-grained-monitor/<bucket>/<prefix>/<node>].
    #[arg(long, env = "FGM_CACHE_DIR", value_name = "DIR")]
    pub cache_dir: Option<PathBuf>,

    #[command(flatten)]
    pub bucket: super::BucketArgs,
}

impl MirrorArgs {
    /// Mirrors `url` and returns the local directory to serve.
    pub async fn prepare(&self, url: &str) -> anyhow::Result<PathBuf> {
        self.prepare_node(url, self.node.as_deref(), false).await
    }

    /// The nodes whose history is under `url`, sorted.
    pub async fn nodes(&self, url: &str) -> anyhow::Result<Vec<String>> {
        let (bucket, _) = parse_url(url)?;
        let client = self.bucket.client(&bucket, "fgm-viewer")?;
        Ok(nodes_under(&client, url).await?)
    }

    /// Mirrors `node`'s history (or the only node's) into the cache; with `own_dir`, into a
    /// directory of its own below `--cache-dir` (`<dir>/<node>`), as the bucket's cluster view
    /// keeps one per node.
    pub async fn prepare_node(
        &self,
        url: &str,
        node: Option<&str>,
        own_dir: bool,
    ) -> anyhow::Result<PathBuf> {
        let (bucket, prefix) = parse_url(url)?;
        let client = self.bucket.client(&bucket, "fgm-viewer")?;
        let cache = match &self.cache_dir {
            Some(dir) if own_dir => dir.join(node.unwrap_or("_")),
            Some(dir) => dir.clone(),
            None => {
                let home = std::env::var_os("XDG_CACHE_HOME")
                    .map(PathBuf::from)
                    .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
                    .ok_or_else(|| anyhow::anyhow!("HOME is not set: pass --cache-dir"))?;
                home.join("fine-grained-monitor")
                    .join(&bucket)
                    .join(&prefix)
                    .join(node.unwrap_or("_"))
            }
        };
        let done = mirror(&client, url, node, &cache).await?;
        tracing::info!(node = %done.node, fetched = done.fetched, kept = done.kept, removed = done.removed, cache = %cache.display(), "node history copied from object storage");
        Ok(cache)
    }
}

/// The nodes with objects under `url`, sorted.
pub async fn nodes_under(client: &s3::Client, url: &str) -> Result<Vec<String>, MirrorError> {
    let (_, parsed) = list_under(client, url).await?;
    let nodes: BTreeSet<String> = parsed.into_iter().map(|k| k.node).collect();
    Ok(nodes.into_iter().collect())
}

/// Every object under `url`: its size by key, and the keys that parse as ours.
async fn list_under(
    client: &s3::Client,
    url: &str,
) -> Result<(BTreeMap<String, u64>, Vec<ParsedKey>), MirrorError> {
    let (_, prefix) = parse_url(url)?;
    let listing = client
        .list(
            &if prefix.is_empty() {
                String::new()
            } else {
                format!("{prefix}/")
            },
            None,
        )
        .await?;
    let sizes = listing
        .objects
        .iter()
        .map(|o| (o.key.clone(), o.size))
        .collect();
    let parsed = listing
        .objects
        .iter()
        .filter_map(|o| keys::parse_key(&prefix, &o.key))
        .collect();
    Ok((sizes, parsed))
}

/// Largest object copied.
const MAX_OBJECT: usize = 1 << 30;

/// Why the mirror could not be made.
#[derive(Debug, thiserror::Error)]
pub enum MirrorError {
    #[error("{0:?} is not an s3://bucket/prefix URL")]
    Url(String),
    #[error(transparent)]
    S3(#[from] S3Error),
    #[error("no data of node {node:?} under {url}; nodes there: {nodes}")]
    NoSuchNode {
        node: String,
        url: String,
        nodes: String,
    },
    #[error("{url} holds the history of several nodes ({nodes}): choose one with --node")]
    ChooseNode { url: String, nodes: String },
    #[error("cache {path}: {source}")]
    Cache {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// `(bucket, prefix)` of `s3://bucket/prefix`.
pub fn parse_url(url: &str) -> Result<(String, String), MirrorError> {
    let rest = url
        .strip_prefix("s3://")
        .ok_or_else(|| MirrorError::Url(url.into()))?;
    let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
    if bucket.is_empty() {
        return Err(MirrorError::Url(url.into()));
    }
    Ok((bucket.to_string(), keys::normalize_prefix(prefix)))
}

/// Where in the cache each kept object goes (pure): data files, events days.
pub fn local_path(cache: &Path, key: &ParsedKey) -> Option<PathBuf> {
    match key.kind {
        ObjectKind::Raw { start } | ObjectKind::Merged { first: start, .. } => {
            Some(layout::data_file_path(cache, &key.node, start))
        }
        ObjectKind::Events => Some(events::events_file(cache, key.day)),
        ObjectKind::Containers => None,
    }
}

/// What a mirror run did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Mirrored {
    pub node: String,
    pub fetched: usize,
    pub kept: usize,
    pub removed: usize,
}

/// Copies `node`'s history under `url` into `cache` (the node is required when
/// several are there) and writes its index.json.
pub async fn mirror(
    client: &s3::Client,
    url: &str,
    node: Option<&str>,
    cache: &Path,
) -> Result<Mirrored, MirrorError> {
    let (sizes, parsed) = list_under(client, url).await?;
    let nodes: BTreeSet<&str> = parsed.iter().map(|k| k.node.as_str()).collect();
    let node = match node {
        Some(n) if nodes.contains(n) => n.to_string(),
        Some(n) => {
            return Err(MirrorError::NoSuchNode {
                node: n.into(),
                url: url.into(),
                nodes: nodes.into_iter().collect::<Vec<_>>().join(", "),
            });
        }
        None if nodes.len() == 1 => nodes
            .iter()
            .next()
            .map(|n| n.to_string())
            .unwrap_or_default(),
        None => {
            return Err(MirrorError::ChooseNode {
                url: url.into(),
                nodes: nodes.into_iter().collect::<Vec<_>>().join(", "),
            });
        }
    };
    let own: Vec<ParsedKey> = parsed.into_iter().filter(|k| k.node == node).collect();
    let cache_err = |path: &Path| {
        let path = path.to_path_buf();
        move |source| MirrorError::Cache { path, source }
    };
    std::fs::create_dir_all(cache).map_err(cache_err(cache))?;
    let mut wanted: BTreeSet<PathBuf> = BTreeSet::new();
    let mut out = Mirrored {
        node: node.clone(),
        ..Mirrored::default()
    };
    let mut copy: Vec<&ParsedKey> = keys::visible(&own);
    copy.extend(own.iter().filter(|k| k.kind == ObjectKind::Events));
    for key in copy {
        let Some(path) = local_path(cache, key) else {
            continue;
        };
        wanted.insert(path.clone());
        let size = sizes.get(&key.key).copied().unwrap_or(0);
        if std::fs::metadata(&path).is_ok_and(|m| m.len() == size) {
            out.kept += 1;
            continue;
        }
        let body = client.get_object(&key.key, MAX_OBJECT).await?;
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(cache_err(dir))?;
        }
        // Written under another name and renamed, as the agent does: the viewer never sees half a file.
        let tmp = layout::in_progress_path(&path);
        std::fs::write(&tmp, &body).map_err(cache_err(&tmp))?;
        std::fs::rename(&tmp, &path).map_err(cache_err(&path))?;
        out.fetched += 1;
    }
    // Raw files a merged file replaced since the last mirror.
    if let Ok(listing) = layout::list_data_files(cache, None) {
        for file in listing.files {
            if !wanted.contains(&file.path) && std::fs::remove_file(&file.path).is_ok() {
                out.removed += 1;
            }
        }
    }
    let mut index = Index::empty(Utc::now(), 90);
    let starts: Vec<DateTime<Utc>> = layout::list_data_files(cache, None)
        .map(|l| l.files.into_iter().map(|f| f.start).collect())
        .unwrap_or_default();
    index.data_range.earliest = starts.iter().min().copied();
    index.data_range.latest = starts.iter().max().copied();
    let last_seen = index.data_range.latest.unwrap_or_else(Utc::now);
    for key in own.iter().filter(|k| k.kind == ObjectKind::Containers) {
        let body = client.get_object(&key.key, MAX_OBJECT).await?;
        add_containers(
            &mut index,
            &String::from_utf8_lossy(&body),
            key.day,
            last_seen,
        );
    }
    let index_path = layout::index_path(cache);
    index.save(&index_path).map_err(|e| MirrorError::Cache {
        path: index_path.clone(),
        source: std::io::Error::other(e.to_string()),
    })?;
    Ok(out)
}

/// Adds the containers of one `containers.jsonl` to `index` (pure).
pub fn add_containers(index: &mut Index, text: &str, day: NaiveDate, last_seen: DateTime<Utc>) {
    for line in text.lines() {
        let Ok(v) = serde_json::from_str::<serde_json::Value>(line) else {
            continue;
        };
        let Some(id) = v["container_id"].as_str() else {
            continue;
        };
        let s = |k: &str| v[k].as_str().map(str::to_string);
        let first_seen = s("first_seen")
            .and_then(|t| DateTime::parse_from_rfc3339(&t).ok())
            .map(|t| t.with_timezone(&Utc))
            .unwrap_or_else(|| day.and_hms_opt(0, 0, 0).unwrap_or_default().and_utc());
        let labels = v["labels"].as_object().map(|m| {
            m.iter()
                .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
                .collect()
        });
        index.containers.insert(
            id.to_string(),
            ContainerEntry {
                full_id: id.to_string(),
                pod_uid: s("pod_uid"),
                qos_class: s("qos_class").unwrap_or_default(),
                first_seen,
                last_seen: last_seen.max(first_seen),
                pod_name: s("pod_name"),
                namespace: s("namespace"),
                labels,
                container_name: s("container_name"),
                cgroup_path: None,
                runtime: None,
                sandbox: v["sandbox"].as_bool().unwrap_or(false),
                requests: serde_json::from_value(v["requests"].clone()).ok(),
            },
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn urls_and_cache_paths() {
        assert_eq!(
            parse_url("s3://b/fgm/prod/").unwrap(),
            ("b".to_string(), "fgm/prod".to_string())
        );
        assert_eq!(
            parse_url("s3://b").unwrap(),
            ("b".to_string(), String::new())
        );
        assert!(parse_url("https://b/x").is_err() && parse_url("s3:///x").is_err());
        let cache = Path::new("/c");
        let t = Utc.with_ymd_and_hms(2026, 1, 2, 10, 0, 0).unwrap();
        let merged = keys::parse_key(
            "p",
            &keys::merged_key("p", "n", t, t + chrono::Duration::minutes(58)),
        )
        .unwrap();
        assert_eq!(
            local_path(cache, &merged).unwrap(),
            Path::new("/c/dt=2026-01-02/identifier=n/metrics-20260102T100000Z.parquet")
        );
        let ev = keys::parse_key("p", &keys::events_key("p", "n", t.date_naive())).unwrap();
        assert_eq!(
            local_path(cache, &ev).unwrap(),
            Path::new("/c/events/events-2026-01-02.jsonl")
        );
    }

    #[test]
    fn container_names_come_back_into_the_index() {
        let mut index = Index::empty(Utc::now(), 90);
        let day = NaiveDate::from_ymd_opt(2026, 1, 2).unwrap();
        let last = Utc.with_ymd_and_hms(2026, 1, 2, 12, 0, 0).unwrap();
        add_containers(
            &mut index,
            "{\"container_id\":\"abcdefabcdef\",\"namespace\":\"shop\",\"pod_name\":\"web-0\",\"container_name\":\"app\",\"qos_class\":\"Burstable\",\"labels\":{\"app\":\"web\"},\"first_seen\":\"2026-01-02T09:00:00Z\"}\nnot json\n",
            day,
            last,
        );
        let c = &index.containers["abcdefabcdef"];
        assert_eq!(c.pod_name.as_deref(), Some("web-0"));
        assert_eq!(c.labels.as_ref().unwrap()["app"], "web");
        assert_eq!(c.last_seen, last);
        assert_eq!(index.containers.len(), 1);
    }
}
