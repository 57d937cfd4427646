//! `index.json`: what containers exist and what time the data covers, so the
//! viewer starts without opening a single data file.
//!
//! Written to `index.json.tmp`, synced, then renamed over `index.json` and
//! the directory synced, so a reader sees the old or the new index, never
//! half of one, and a power cut keeps one of the two. Schema version 2
//! adds pod metadata; version 1 files load (the new fields are absent).

use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

pub const SCHEMA_VERSION: u32 = 2;

/// The whole index file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Index {
    pub schema_version: u32,
    pub updated_at: DateTime<Utc>,
    /// Keyed by the 12-hex short container id.
    #[serde(default)]
    pub containers: BTreeMap<String, ContainerEntry>,
    #[serde(default)]
    pub data_range: DataRange,
}

/// One container ever seen within the retention window.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ContainerEntry {
    pub full_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod_uid: Option<String>,
    /// `Guaranteed`, `Burstable`, `BestEffort`, or empty outside Kubernetes.
    #[serde(default)]
    pub qos_class: String,
    pub first_seen: DateTime<Utc>,
    pub last_seen: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub labels: Option<HashMap<String, String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container_name: Option<String>,
    /// cgroup path relative to the hierarchy root (how `local` mode names a container).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cgroup_path: Option<String>,
    /// `containerd`, `crio`, `docker`, or absent for a plain cgroup.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runtime: Option<String>,
    /// True for a pod's sandbox (pause) container.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub sandbox: bool,
    /// The pod spec's resource requests for this container, when it has any
    /// (cgroups hold limits, not requests). Added after version 2 was
    /// defined: optional, so indexes without it load, and older readers
    /// ignore it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requests: Option<Requests>,
}

impl ContainerEntry {
    /// What a data file alone says of a container: its id and when it was seen
    /// (names and pod come later, from the agent's next sighting).
    pub fn seen(id: &str, first: DateTime<Utc>, last: DateTime<Utc>) -> Self {
        Self {
            full_id: id.to_string(),
            pod_uid: None,
            qos_class: String::new(),
            first_seen: first,
            last_seen: last,
            pod_name: None,
            namespace: None,
            labels: None,
            container_name: None,
            cgroup_path: None,
            runtime: None,
            sandbox: false,
            requests: None,
        }
    }
}

/// A container's resource requests, as the pod spec gives them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Requests {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_millicores: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_bytes: Option<u64>,
}

/// Time covered by finished data files.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DataRange {
    pub earliest: Option<DateTime<Utc>>,
    pub latest: Option<DateTime<Utc>>,
    #[serde(default)]
    pub rotation_interval_sec: u64,
}

/// Why an index could not be read or written, with the file at fault.
#[derive(Debug, thiserror::Error)]
pub enum IndexError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} is not a valid index (line {line}, column {column}): {message}")]
    Parse {
        path: PathBuf,
        line: usize,
        column: usize,
        message: String,
    },
    #[error("{path} has schema_version {version}; this build reads versions 1 to {SCHEMA_VERSION}")]
    TooNew { path: PathBuf, version: u32 },
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
}

impl Index {
    pub fn empty(now: DateTime<Utc>, rotation_interval_sec: u64) -> Self {
        Self {
            schema_version: SCHEMA_VERSION,
            updated_at: now,
            containers: BTreeMap::new(),
            data_range: DataRange {
                earliest: None,
                latest: None,
                rotation_interval_sec,
            },
        }
    }

    /// Parses index text; `path` only names the file in errors.
    pub fn parse(text: &str, path: &Path) -> Result<Self, IndexError> {
        let index: Index = serde_json::from_str(text).map_err(|e| IndexError::Parse {
            path: path.to_path_buf(),
            line: e.line(),
            column: e.column(),
            message: e.to_string(),
        })?;
        if index.schema_version > SCHEMA_VERSION {
            return Err(IndexError::TooNew {
                path: path.to_path_buf(),
                version: index.schema_version,
            });
        }
        Ok(index)
    }

    /// Loads `path`; `Ok(None)` when it does not exist.
    pub fn load(path: &Path) -> Result<Option<Self>, IndexError> {
        match super::bounds::read_text_at_most(path, super::bounds::MAX_INDEX_BYTES) {
            Ok(text) => Self::parse(&text, path).map(Some),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(source) => Err(IndexError::Read {
                path: path.to_path_buf(),
                source,
            }),
        }
    }

    /// Writes the index atomically: temporary file, fsync, rename, directory fsync.
    pub fn save(&self, path: &Path) -> Result<(), IndexError> {
        let err = |source| IndexError::Write {
            path: path.to_path_buf(),
            source,
        };
        let mut out = self.clone();
        out.schema_version = SCHEMA_VERSION;
        let json = serde_json::to_vec_pretty(&out).map_err(|e| err(e.into()))?;
        let tmp = tmp_path(path);
        let mut file = std::fs::File::create(&tmp).map_err(err)?;
        file.write_all(&json).map_err(err)?;
        file.sync_all().map_err(err)?;
        drop(file);
        super::durable::rename_synced(&tmp, path).map_err(err)?;
        Ok(())
    }

    /// Extends `data_range` to cover a finished file's samples.
    pub fn extend_range(&mut self, first: DateTime<Utc>, last: DateTime<Utc>) {
        let range = &mut self.data_range;
        range.earliest = Some(range.earliest.map_or(first, |e| e.min(first)));
        range.latest = Some(range.latest.map_or(last, |l| l.max(last)));
    }
}

fn tmp_path(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_os_string();
    name.push(".tmp");
    PathBuf::from(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    const V1: &str = r#"{
      "schema_version": 1,
      "updated_at": "2025-12-30T16:05:00Z",
      "containers": {
        "abc123def456": {
          "full_id": "abc123def456789abcdef",
          "pod_name": "coredns-5dd5756b68-xyz",
          "namespace": "kube-system",
          "qos_class": "Burstable",
          "first_seen": "2025-12-28T10:00:00Z",
          "last_seen": "2025-12-30T16:05:00Z"
        }
      },
      "data_range": {
        "earliest": "2025-12-22T00:00:00Z",
        "latest": "2025-12-30T16:05:00Z",
        "rotation_interval_sec": 90
      }
    }"#;

    #[test]
    fn version_1_loads() {
        let index = Index::parse(V1, Path::new("index.json")).unwrap();
        assert_eq!(index.schema_version, 1);
        let c = &index.containers["abc123def456"];
        assert_eq!(c.pod_name.as_deref(), Some("coredns-5dd5756b68-xyz"));
        assert_eq!(c.labels, None);
        assert_eq!(index.data_range.rotation_interval_sec, 90);
    }

    #[test]
    fn version_2_round_trips_through_disk() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("index.json");
        let mut index = Index::parse(V1, &path).unwrap();
        let entry = index.containers.get_mut("abc123def456").unwrap();
        entry.labels = Some(HashMap::from([("app".into(), "dns".into())]));
        entry.container_name = Some("coredns".into());
        entry.requests = Some(Requests {
            cpu_millicores: Some(100),
            memory_bytes: None,
        });
        index.save(&path).unwrap();
        let back = Index::load(&path).unwrap().unwrap();
        assert_eq!(back.schema_version, 2);
        assert_eq!(back.containers, index.containers);
        assert!(!dir.path().join("index.json.tmp").exists());
    }

    #[test]
    fn errors_name_the_file_and_place() {
        let err = Index::parse(
            "{\"schema_version\": 2,\n oops}",
            Path::new("/d/index.json"),
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("/d/index.json") && err.contains("line 2"),
            "{err}"
        );
        let err = Index::parse(
            r#"{"schema_version": 9, "updated_at": "2025-12-30T16:05:00Z"}"#,
            Path::new("i"),
        )
        .unwrap_err();
        assert!(matches!(err, IndexError::TooNew { version: 9, .. }));
    }

    #[test]
    fn missing_index_is_none() {
        let dir = tempfile::tempdir().unwrap();
        assert!(
            Index::load(&dir.path().join("index.json"))
                .unwrap()
                .is_none()
        );
    }
}
