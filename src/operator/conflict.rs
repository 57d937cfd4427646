//! Host-directory conflicts: two NodeMonitors must not write one data directory
//! (or one inside the other) on the same node, whatever their namespaces. The
//! apiserver cannot see across objects, so the operator checks: the NodeMonitor
//! created later is refused (Degraded, reason `HostPathConflict`); the earlier
//! one keeps running. Ties in creation time go to namespace, then name, so
//! every replica and every reconcile gives the same verdict.
//!
//! Paths are compared in their normalised spelling (`//a/b/`, `/a/./b` and
//! `/a/b` are one directory, see [`HostPath`]). A NodeMonitor the policy
//! refuses runs nothing, so it holds no directory.
//!
//! Node overlap is judged from the node selectors alone: two selectors are
//! disjoint only when they require different values of one label. Anything else
//! may select a common node now or later, so it counts as overlapping.

use std::collections::BTreeMap;

use kube::{Resource, ResourceExt};

use super::policy::{HostPath, Policy};
use crate::crd::NodeMonitor;

/// Whether one directory is the other or contains it, in normalised spelling
/// (false when either is not a valid absolute path).
pub fn paths_overlap(a: &str, b: &str) -> bool {
    match (HostPath::parse("a", a), HostPath::parse("b", b)) {
        (Ok(a), Ok(b)) => a.overlaps(&b),
        _ => false,
    }
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
/// deleted, or refused by `policy`, do not count, so removing the earlier one
/// frees the directory.
pub fn host_path_conflict<'a>(
    me: &NodeMonitor,
    others: impl IntoIterator<Item = &'a NodeMonitor>,
    policy: &Policy,
) -> Option<&'a NodeMonitor> {
    let mine = policy.held_path(&me.spec)?;
    others
        .into_iter()
        .filter(|other| other.uid() != me.uid() && other.meta().deletion_timestamp.is_none())
        .filter(|other| {
            policy
                .held_path(&other.spec)
                .is_some_and(|theirs| theirs.overlaps(&mine))
        })
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
/// (same or nested directory, or `other` is refused for a conflict now and
/// `changed` may have moved away), so `other` must be reconciled again.
pub fn affects(changed: &NodeMonitor, other: &NodeMonitor) -> bool {
    let blocked_by_conflict = other.status.as_ref().is_some_and(|s| {
        s.conditions
            .iter()
            .any(|c| c.type_ == "Degraded" && c.status == "True" && c.reason == "HostPathConflict")
    });
    changed.uid() != other.uid()
        && (blocked_by_conflict
            || paths_overlap(&changed.spec.data_host_path, &other.spec.data_host_path))
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

    fn policy() -> Policy {
        Policy {
            data_roots: vec!["/data".parse().unwrap()],
            ..Policy::default()
        }
    }

    fn in_ns(mut nm: NodeMonitor, ns: &str) -> NodeMonitor {
        nm.metadata.uid = Some(format!("{ns}/{}", nm.name_any()));
        nm.metadata.namespace = Some(ns.into());
        nm
    }

    #[test]
    fn paths() {
        assert!(paths_overlap("/var/lib/fgm", "/var/lib/fgm/"));
        assert!(paths_overlap("/var/lib/fgm", "/var/lib/fgm/sub"));
        assert!(paths_overlap("//var/lib/fgm", "/var/lib/./fgm/sub"));
        assert!(!paths_overlap("/var/lib/fgm", "/var/lib/fgm2"));
        assert!(!paths_overlap("/a", "/b"));
        assert!(!paths_overlap("/a/../b", "/b"), "not a valid path");
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
            host_path_conflict(&second, &all, &policy()).map(|n| n.name_any()),
            Some("first".into())
        );
        assert!(host_path_conflict(&first, &all, &policy()).is_none());
    }

    #[test]
    fn one_directory_spelled_two_ways_in_two_namespaces_conflicts() {
        let first = in_ns(nm("a", 10, "//data/./x/", &[]), "team-b");
        let second = in_ns(nm("a", 20, "/data/x", &[]), "team-a");
        let all = [second.clone(), first.clone()];
        assert_eq!(
            host_path_conflict(&second, &all, &policy()).map(|n| n.namespace()),
            Some(Some("team-b".into()))
        );
        assert!(host_path_conflict(&first, &all, &policy()).is_none());
    }

    #[test]
    fn equal_creation_times_are_ordered_by_namespace_then_name() {
        let a = in_ns(nm("z", 10, "/data/x", &[]), "ns-a");
        let b = in_ns(nm("a", 10, "/data/x", &[]), "ns-b");
        for all in [[a.clone(), b.clone()], [b.clone(), a.clone()]] {
            assert_eq!(
                host_path_conflict(&b, &all, &policy()).map(|n| n.namespace()),
                Some(Some("ns-a".into()))
            );
            assert!(host_path_conflict(&a, &all, &policy()).is_none());
        }
    }

    #[test]
    fn a_refused_monitor_holds_no_directory() {
        // Earlier, but its image is refused: it runs nothing.
        let mut refused = nm("refused", 10, "/data/x", &[]);
        refused.spec.image = Some("evil.io/x:1".into());
        let later = nm("later", 20, "/data/x", &[]);
        let all = [refused.clone(), later.clone()];
        assert!(host_path_conflict(&later, &all, &policy()).is_none());
        // Outside the allowed roots: refused too.
        let outside = nm("outside", 5, "/etc", &[]);
        assert!(host_path_conflict(&later, &[outside, later.clone()], &policy()).is_none());
    }

    #[test]
    fn disjoint_nodes_or_paths_do_not_conflict() {
        let a = nm("a", 10, "/data/x", &[("role", "db")]);
        let b = nm("b", 20, "/data/x", &[("role", "web")]);
        let c = nm("c", 30, "/data/y", &[]);
        let all = [a, b.clone(), c.clone()];
        assert!(host_path_conflict(&b, &all, &policy()).is_none());
        assert!(host_path_conflict(&c, &all, &policy()).is_none());
    }

    #[test]
    fn a_deleted_earlier_monitor_frees_the_path() {
        let mut first = nm("first", 10, "/data/x", &[]);
        first.metadata.deletion_timestamp = Some(Time(Timestamp::from_second(50).unwrap()));
        let second = nm("second", 20, "/data/x", &[]);
        assert!(host_path_conflict(&second, &[first.clone(), second.clone()], &policy()).is_none());
        assert!(affects(&first, &second));
        assert!(!affects(&second, &second));
    }

    #[test]
    fn a_monitor_blocked_by_a_conflict_is_rechecked_on_any_change() {
        let moved = nm("moved", 10, "/data/elsewhere", &[]);
        let mut blocked = nm("blocked", 20, "/data/x", &[]);
        assert!(!affects(&moved, &blocked));
        blocked.status = Some(crate::crd::NodeMonitorStatus {
            conditions: vec![k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition {
                type_: "Degraded".into(),
                status: "True".into(),
                reason: "HostPathConflict".into(),
                message: String::new(),
                observed_generation: None,
                last_transition_time: Time(Timestamp::UNIX_EPOCH),
            }],
            ..Default::default()
        });
        assert!(affects(&moved, &blocked));
    }
}
