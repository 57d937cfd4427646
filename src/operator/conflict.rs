//! Host-directory conflicts: two NodeMonitors must not write one data directory
//! (or one inside the other) on the same node. The apiserver cannot see across
//! objects, so the operator checks: the NodeMonitor created later is refused
//! (Degraded, reason `HostPathConflict`); the earlier one keeps running.
//!
//! Node overlap is judged from the node selectors alone: two selectors are
//! disjoint only when they require different values of one label. Anything else
//! may select a common node now or later, so it counts as overlapping.

use std::collections::BTreeMap;

use kube::{Resource, ResourceExt};

use crate::crd::NodeMonitor;

/// The path without trailing slashes (`/a/` and `/a` are one directory).
fn normalize(path: &str) -> &str {
    let trimmed = path.trim_end_matches('/');
    if trimmed.is_empty() { "/" } else { trimmed }
}

/// Whether one directory is the other or contains it.
pub fn paths_overlap(a: &str, b: &str) -> bool {
    let (a, b) = (normalize(a), normalize(b));
    let inside = |inner: &str, outer: &str| {
        inner == outer
            || (inner.starts_with(outer) && inner[outer.len()..].starts_with('/'))
            || outer == "/"
    };
    inside(a, b) || inside(b, a)
}

/// Whether two node selectors may select a common node.
pub fn selectors_overlap(a: &BTreeMap<String, String>, b: &BTreeMap<String, String>) -> bool {
    !a.iter().any(|(k, v)| b.get(k).is_some_and(|w| w != v))
}

/// Creation order: oldest first, then by namespace and name so the order is total.
fn created_before(a: &NodeMonitor, b: &NodeMonitor) -> bool {
    let key = |nm: &NodeMonitor| {
        (
            nm.creation_timestamp().map(|t| t.0),
            nm.namespace().unwrap_or_default(),
            nm.name_any(),
        )
    };
    key(a) < key(b)
}

/// The earlier NodeMonitor that `me` conflicts with, if any. NodeMonitors being
/// deleted do not count, so removing the earlier one frees the directory.
pub fn host_path_conflict<'a>(
    me: &NodeMonitor,
    others: impl IntoIterator<Item = &'a NodeMonitor>,
) -> Option<&'a NodeMonitor> {
    others
        .into_iter()
        .filter(|other| other.uid() != me.uid() && other.meta().deletion_timestamp.is_none())
        .filter(|other| paths_overlap(&other.spec.data_host_path, &me.spec.data_host_path))
        .filter(|other| selectors_overlap(&other.spec.node_selector, &me.spec.node_selector))
        .filter(|other| created_before(other, me))
        .min_by(|a, b| {
            if created_before(a, b) {
                std::cmp::Ordering::Less
            } else {
                std::cmp::Ordering::Greater
            }
        })
}

/// Whether a change to `changed` may alter the conflict verdict of `other`
/// (same or nested directory), so `other` must be reconciled again.
pub fn affects(changed: &NodeMonitor, other: &NodeMonitor) -> bool {
    changed.uid() != other.uid()
        && paths_overlap(&changed.spec.data_host_path, &other.spec.data_host_path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crd::NodeMonitorSpec;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
    use k8s_openapi::jiff::Timestamp;

    fn nm(name: &str, created: i64, path: &str, selector: &[(&str, &str)]) -> NodeMonitor {
        let mut nm = NodeMonitor::new(
            name,
            NodeMonitorSpec {
                data_host_path: path.into(),
                node_selector: selector
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
                ..NodeMonitorSpec::default()
            },
        );
        nm.metadata.namespace = Some("ns".into());
        nm.metadata.uid = Some(name.into());
        nm.metadata.creation_timestamp = Some(Time(Timestamp::from_second(created).unwrap()));
        nm
    }

    #[test]
    fn paths() {
        assert!(paths_overlap("/var/lib/fgm", "/var/lib/fgm/"));
        assert!(paths_overlap("/var/lib/fgm", "/var/lib/fgm/sub"));
        assert!(!paths_overlap("/var/lib/fgm", "/var/lib/fgm2"));
        assert!(!paths_overlap("/a", "/b"));
    }

    #[test]
    fn selectors() {
        let m = |pairs: &[(&str, &str)]| {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        assert!(selectors_overlap(&m(&[]), &m(&[("role", "db")])));
        assert!(selectors_overlap(&m(&[("a", "1")]), &m(&[("b", "2")])));
        assert!(!selectors_overlap(
            &m(&[("role", "db")]),
            &m(&[("role", "web")])
        ));
    }

    #[test]
    fn later_one_conflicts_earlier_one_does_not() {
        let first = nm("first", 10, "/data/x", &[]);
        let second = nm("second", 20, "/data/x/", &[]);
        let all = [first.clone(), second.clone()];
        assert_eq!(
            host_path_conflict(&second, &all).map(|n| n.name_any()),
            Some("first".into())
        );
        assert!(host_path_conflict(&first, &all).is_none());
    }

    #[test]
    fn disjoint_nodes_or_paths_do_not_conflict() {
        let a = nm("a", 10, "/data/x", &[("role", "db")]);
        let b = nm("b", 20, "/data/x", &[("role", "web")]);
        let c = nm("c", 30, "/data/y", &[]);
        let all = [a, b.clone(), c.clone()];
        assert!(host_path_conflict(&b, &all).is_none());
        assert!(host_path_conflict(&c, &all).is_none());
    }

    #[test]
    fn a_deleted_earlier_monitor_frees_the_path() {
        let mut first = nm("first", 10, "/data/x", &[]);
        first.metadata.deletion_timestamp = Some(Time(Timestamp::from_second(50).unwrap()));
        let second = nm("second", 20, "/data/x", &[]);
        assert!(host_path_conflict(&second, &[first.clone(), second.clone()]).is_none());
        assert!(affects(&first, &second));
        assert!(!affects(&second, &second));
    }
}
