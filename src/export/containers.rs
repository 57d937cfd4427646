//! `containers.jsonl`: who the containers of a node's day are (pure).
//!
//! Data files carry only the 12-hex `container_id`; names live in the node's
//! `index.json`, which never leaves the node. So the uploader also writes, per
//! node and day, one JSON line per container seen that day, beside the data:
//!
//! ```text
//! <prefix>/dt=YYYY-MM-DD/node=<node>/containers.jsonl
//! {"container_id":"…","namespace":"…","pod_name":"…","container_name":"…","pod_uid":"…","qos_class":"…","labels":{…},"first_seen":"…","requests":{…}}
//! ```
//!
//! Queries join it on (node, container_id). `last_seen` is left out so the
//! file only changes when a container appears or its identity changes, and
//! is not uploaded again at every rotation.

use chrono::{NaiveDate, TimeZone, Utc};
use serde::Serialize;

use crate::store::index::Index;

pub const CONTAINERS_OBJECT: &str = "containers.jsonl";

#[derive(Serialize)]
struct Line<'a> {
    container_id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    namespace: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pod_name: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    container_name: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pod_uid: Option<&'a str>,
    qos_class: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    labels: Option<std::collections::BTreeMap<&'a str, &'a str>>,
    first_seen: chrono::DateTime<Utc>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    sandbox: bool,
    /// The pod spec's requests, so a viewer of the bucket draws them too.
    #[serde(skip_serializing_if = "Option::is_none")]
    requests: Option<crate::store::index::Requests>,
}

/// The lines of `day`: containers whose life overlaps it, sorted by id.
pub fn day_file(index: &Index, day: NaiveDate) -> Vec<u8> {
    let start = Utc.from_utc_datetime(&day.and_hms_opt(0, 0, 0).unwrap_or_default());
    let end = start + chrono::Duration::days(1);
    let mut ids: Vec<&String> = index
        .containers
        .iter()
        .filter(|(_, c)| c.first_seen < end && c.last_seen >= start)
        .map(|(id, _)| id)
        .collect();
    ids.sort();
    let mut out = Vec::new();
    for id in ids {
        let c = &index.containers[id];
        let line = Line {
            container_id: id,
            namespace: c.namespace.as_deref(),
            pod_name: c.pod_name.as_deref(),
            container_name: c.container_name.as_deref(),
            pod_uid: c.pod_uid.as_deref(),
            qos_class: &c.qos_class,
            labels: c
                .labels
                .as_ref()
                .map(|l| l.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect()),
            first_seen: c.first_seen,
            sandbox: c.sandbox,
            requests: c.requests,
        };
        if serde_json::to_writer(&mut out, &line).is_ok() {
            out.push(b'\n');
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::index::ContainerEntry;

    fn entry(first: (u32, u32), last: (u32, u32), pod: &str) -> ContainerEntry {
        let t = |(d, h): (u32, u32)| Utc.with_ymd_and_hms(2026, 1, d, h, 0, 0).unwrap();
        ContainerEntry {
            full_id: "f".repeat(64),
            pod_uid: Some("uid".into()),
            qos_class: "Burstable".into(),
            first_seen: t(first),
            last_seen: t(last),
            pod_name: Some(pod.into()),
            namespace: Some("default".into()),
            labels: Some([("app".to_string(), "web".to_string())].into()),
            container_name: Some("app".into()),
            cgroup_path: Some("/x".into()),
            runtime: Some("containerd".into()),
            sandbox: false,
            requests: None,
        }
    }

    #[test]
    fn containers_of_the_day_only_without_last_seen() {
        let mut index = Index::empty(Utc::now(), 90);
        index
            .containers
            .insert("bbbbbbbbbbbb".into(), entry((1, 10), (2, 3), "web-1"));
        index
            .containers
            .insert("aaaaaaaaaaaa".into(), entry((2, 5), (2, 6), "web-0"));
        index
            .containers
            .insert("cccccccccccc".into(), entry((1, 1), (1, 2), "old"));
        let day2 = NaiveDate::from_ymd_opt(2026, 1, 2).unwrap();
        let text = String::from_utf8(day_file(&index, day2)).unwrap();
        let lines: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0]["container_id"], "aaaaaaaaaaaa");
        assert_eq!(lines[0]["pod_name"], "web-0");
        assert_eq!(lines[1]["labels"]["app"], "web");
        assert!(lines[0].get("last_seen").is_none());
        // Same index, same bytes: nothing to upload again.
        assert_eq!(day_file(&index, day2), day_file(&index, day2));
    }
}
