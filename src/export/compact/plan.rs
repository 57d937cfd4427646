//! What one compaction run does, from one listing (pure).
//!
//! - Merge: a node's raw files that no merged file covers, grouped by the
//!   span their start falls in (hourly by default), once the span is over and
//!   has settled (late uploads of the span's last minutes have landed). A
//!   span with files left over after an earlier merge (a node that uploaded
//!   late) gets another merged file for those: ranges never overlap.
//! - Delete: raw files a merged file covers, once that merged file is older
//!   than `delete_after`, so a query that listed before the merge can still
//!   read them while it runs.
//! - Never delete a raw file that reached the bucket after the merged file
//!   covering it (it would be hidden without being in it): report it.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::export::keys::{self, ObjectKind, ParsedKey};

/// An object of the listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    pub parsed: ParsedKey,
    pub size: u64,
    pub modified: Option<DateTime<Utc>>,
}

/// Raw files of one node and span, merged into `key`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Group {
    pub node: String,
    pub first: DateTime<Utc>,
    pub last: DateTime<Utc>,
    /// Inputs in time order.
    pub inputs: Vec<Listed>,
    pub key: String,
}

/// The run's work.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    pub merges: Vec<Group>,
    pub deletions: Vec<String>,
    /// Raw files hidden by a merged file older than them: kept, reported.
    pub late: Vec<String>,
}

/// Knobs of a run.
#[derive(Debug, Clone, Copy)]
pub struct Rules {
    /// Length of a merged file's span; divides a day.
    pub span: Duration,
    /// Wait this long after a span ends before merging it.
    pub settle: Duration,
    /// Delete replaced raw files once their merged file is this old.
    pub delete_after: Duration,
    /// Merge a span only with at least this many raw files.
    pub min_files: usize,
}

/// Start of the span holding `t`.
pub fn span_start(t: DateTime<Utc>, span: Duration) -> DateTime<Utc> {
    let span = span.as_secs().clamp(1, 86_400) as i64;
    let secs = t.timestamp();
    let start = secs - secs.rem_euclid(span);
    DateTime::from_timestamp(start, 0).unwrap_or(t)
}

fn older_than(modified: Option<DateTime<Utc>>, now: DateTime<Utc>, age: Duration) -> bool {
    let age = chrono::Duration::from_std(age).unwrap_or_default();
    modified.is_some_and(|m| m + age <= now)
}

/// The plan for `objects` (one listing of metrics files) under `prefix` at `now`.
pub fn plan(objects: &[Listed], prefix: &str, now: DateTime<Utc>, rules: Rules) -> Plan {
    plan_keyed(objects, now, rules, |node, first, last| {
        keys::merged_key(prefix, node, first, last)
    })
}

/// [`plan`] for any files named as raw and merged ones are (the metrics, or
/// one of the other datasets), `merged_key(node, first, last)` naming a merged file.
pub fn plan_keyed(
    objects: &[Listed],
    now: DateTime<Utc>,
    rules: Rules,
    merged_key: impl Fn(&str, DateTime<Utc>, DateTime<Utc>) -> String,
) -> Plan {
    let parsed: Vec<ParsedKey> = objects.iter().map(|o| o.parsed.clone()).collect();
    let merged: Vec<&Listed> = objects
        .iter()
        .filter(|o| matches!(o.parsed.kind, ObjectKind::Merged { .. }))
        .collect();
    let covering = |raw: &Listed| -> Option<&Listed> {
        let ObjectKind::Raw { start } = raw.parsed.kind else {
            return None;
        };
        merged.iter().copied().find(|m| {
            m.parsed.node == raw.parsed.node
                && matches!(m.parsed.kind, ObjectKind::Merged { first, last } if first <= start && start <= last)
        })
    };
    let mut out = Plan::default();
    let visible: Vec<&ParsedKey> = keys::visible(&parsed);
    let mut groups: BTreeMap<(String, DateTime<Utc>), Vec<Listed>> = BTreeMap::new();
    let settle = chrono::Duration::from_std(rules.span + rules.settle).unwrap_or_default();
    for object in objects {
        let ObjectKind::Raw { start } = object.parsed.kind else {
            continue;
        };
        match covering(object) {
            Some(m) => {
                let arrived_late = match (object.modified, m.modified) {
                    (Some(raw), Some(merged)) => raw > merged,
                    _ => false,
                };
                if arrived_late {
                    out.late.push(object.parsed.key.clone());
                } else if older_than(m.modified, now, rules.delete_after) {
                    out.deletions.push(object.parsed.key.clone());
                }
            }
            None => {
                debug_assert!(visible.iter().any(|v| v.key == object.parsed.key));
                let bucket = span_start(start, rules.span);
                if bucket + settle <= now {
                    groups
                        .entry((object.parsed.node.clone(), bucket))
                        .or_default()
                        .push(object.clone());
                }
            }
        }
    }
    for ((node, _), mut inputs) in groups {
        if inputs.len() < rules.min_files.max(1) {
            continue;
        }
        let start_of = |l: &Listed| match l.parsed.kind {
            ObjectKind::Raw { start } => start,
            _ => DateTime::<Utc>::MIN_UTC,
        };
        inputs.sort_by_key(start_of);
        let (Some(first), Some(last)) = (inputs.first(), inputs.last()) else {
            continue;
        };
        let (first, last) = (start_of(first), start_of(last));
        out.merges.push(Group {
            key: merged_key(&node, first, last),
            node,
            first,
            last,
            inputs,
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn t(h: u32, m: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 1, 2, h, m, 0).unwrap()
    }

    fn raw(node: &str, h: u32, m: u32, modified: DateTime<Utc>) -> Listed {
        Listed {
            parsed: keys::parse_key("p", &keys::data_key("p", node, t(h, m))).unwrap(),
            size: 10,
            modified: Some(modified),
        }
    }

    fn merged(node: &str, a: (u32, u32), b: (u32, u32), modified: DateTime<Utc>) -> Listed {
        Listed {
            parsed: keys::parse_key("p", &keys::merged_key("p", node, t(a.0, a.1), t(b.0, b.1)))
                .unwrap(),
            size: 10,
            modified: Some(modified),
        }
    }

    fn rules() -> Rules {
        Rules {
            span: Duration::from_secs(3600),
            settle: Duration::from_secs(600),
            delete_after: Duration::from_secs(1800),
            min_files: 2,
        }
    }

    #[test]
    fn closed_spans_merge_per_node_open_ones_wait() {
        let objs = vec![
            raw("a", 10, 0, t(10, 2)),
            raw("a", 10, 30, t(10, 32)),
            raw("a", 11, 0, t(11, 2)),
            raw("a", 11, 30, t(11, 32)),
            raw("b", 10, 15, t(10, 17)),
            raw("b", 10, 45, t(10, 47)),
        ];
        // 11:05: hour 10 ended but has not settled.
        assert!(plan(&objs, "p", t(11, 5), rules()).merges.is_empty());
        // 11:15: hour 10 is closed for both nodes, hour 11 is not.
        let p = plan(&objs, "p", t(11, 15), rules());
        assert_eq!(p.merges.len(), 2);
        assert_eq!(p.merges[0].node, "a");
        assert_eq!((p.merges[0].first, p.merges[0].last), (t(10, 0), t(10, 30)));
        assert_eq!(
            p.merges[0].key,
            "p/dt=2026-01-02/node=a/merged-20260102T100000Z-20260102T103000Z.parquet"
        );
        assert_eq!(p.merges[1].inputs.len(), 2);
        assert!(p.deletions.is_empty());
    }

    #[test]
    fn replaced_files_go_only_after_the_grace_period_and_late_ones_stay() {
        let objs = vec![
            raw("a", 10, 0, t(10, 2)),
            raw("a", 10, 30, t(10, 32)),
            merged("a", (10, 0), (10, 30), t(11, 15)),
            // Uploaded after the merge, inside its range: hidden, never deleted.
            raw("a", 10, 15, t(11, 40)),
            // Uploaded after the merge, after its range: merged next time.
            raw("a", 10, 45, t(11, 41)),
            raw("a", 10, 50, t(11, 42)),
        ];
        let p = plan(&objs, "p", t(11, 30), rules());
        assert!(p.deletions.is_empty(), "merged file only 15 min old");
        let p = plan(&objs, "p", t(12, 0), rules());
        assert_eq!(p.deletions.len(), 2);
        assert_eq!(p.late, vec![objs[3].parsed.key.clone()]);
        assert_eq!(
            p.merges.len(),
            1,
            "the late files after the range merge on their own"
        );
        assert_eq!(
            (p.merges[0].first, p.merges[0].last),
            (t(10, 45), t(10, 50))
        );
        // A single leftover file is not worth a merged file.
        let lone = vec![raw("c", 9, 0, t(9, 1))];
        assert!(plan(&lone, "p", t(12, 0), rules()).merges.is_empty());
    }

    #[test]
    fn spans_divide_the_day() {
        let six = Duration::from_secs(6 * 3600);
        assert_eq!(span_start(t(13, 59), six), t(12, 0));
        assert_eq!(span_start(t(0, 0), six), t(0, 0));
        assert_eq!(span_start(t(23, 59), Duration::from_secs(3600)), t(23, 0));
    }
}
