//! Object keys in the bucket (pure), and which objects a query should read.
//!
//! ```text
//! <prefix>/dt=YYYY-MM-DD/node=<node>/metrics-YYYYMMDDTHHMMSSZ.parquet      a rotated file, as the agent wrote it
//! <prefix>/dt=YYYY-MM-DD/node=<node>/merged-<first>-<last>.parquet         compaction of the files starting first..=last
//! <prefix>/dt=YYYY-MM-DD/node=<node>/events.jsonl                          the node's pod events of that day
//! <prefix>/dt=YYYY-MM-DD/node=<node>/containers.jsonl                      names of the day's containers
//! ```
//!
//! Day first, then node (both hive partitions): the common question is "a
//! time range, every node", which a `dt=` glob answers without listing other
//! days; `node=` (not the local `identifier=`) because that is the column
//! name people query by. A merged file names the first and last raw file it
//! replaces, so the visibility rule needs names only: a raw file is hidden
//! when a merged file of its node covers its start ([`visible`]).

use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};

use crate::store::layout;

const TIME_FORMAT: &str = "%Y%m%dT%H%M%SZ";
pub const EVENTS_OBJECT: &str = "events.jsonl";
pub const MERGED_PREFIX: &str = "merged-";

/// `prefix` without leading or trailing slashes (`""` for the bucket root).
pub fn normalize_prefix(prefix: &str) -> String {
    prefix.trim_matches('/').to_string()
}

fn join(prefix: &str, rest: &str) -> String {
    if prefix.is_empty() {
        rest.to_string()
    } else {
        format!("{prefix}/{rest}")
    }
}

/// The `dt=<day>/node=<node>/` directory of a node's day under `prefix`.
pub fn node_day_prefix(prefix: &str, day: NaiveDate, node: &str) -> String {
    join(
        prefix,
        &format!("{}/node={node}/", layout::day_dir_name(day)),
    )
}

/// Key of the rotated file of `node` starting at `start`.
pub fn data_key(prefix: &str, node: &str, start: DateTime<Utc>) -> String {
    format!(
        "{}{}",
        node_day_prefix(prefix, start.date_naive(), node),
        layout::data_file_name(start)
    )
}

/// Key of a file of another per-node dataset (network, devices, processes):
/// `<prefix>/<dataset>/dt=YYYY-MM-DD/node=<node>/<dataset>-<start>.parquet`, a
/// prefix of its own so no glob over the metrics objects reads it.
pub fn dataset_key(
    prefix: &str,
    dataset: layout::Dataset,
    node: &str,
    start: DateTime<Utc>,
) -> String {
    join(
        prefix,
        &format!(
            "{}/{}/node={node}/{}",
            dataset.name(),
            layout::day_dir_name(start.date_naive()),
            dataset.file_name(start)
        ),
    )
}

/// The `<dataset>/dt=<day>/` directory of a dataset's day under `prefix`.
pub fn dataset_day_prefix(prefix: &str, dataset: layout::Dataset, day: NaiveDate) -> String {
    join(
        prefix,
        &format!("{}/{}/", dataset.name(), layout::day_dir_name(day)),
    )
}

/// Key of the merged file replacing `node`'s `dataset` files starting
/// `first..=last`, beside them: `<dataset>/dt=<first's day>/node=<node>/merged-<first>-<last>.parquet`
/// (named as the metrics' merged files are, so one visibility rule reads both).
pub fn dataset_merged_key(
    prefix: &str,
    dataset: layout::Dataset,
    node: &str,
    first: DateTime<Utc>,
    last: DateTime<Utc>,
) -> String {
    format!(
        "{}node={node}/{MERGED_PREFIX}{}-{}.parquet",
        dataset_day_prefix(prefix, dataset, first.date_naive()),
        first.format(TIME_FORMAT),
        last.format(TIME_FORMAT)
    )
}

/// Parses a key of `dataset` under `prefix` (a raw file as the agent exported
/// it, or a merged one); `None` for anything else.
pub fn parse_dataset_key(prefix: &str, dataset: layout::Dataset, key: &str) -> Option<ParsedKey> {
    let rest = if prefix.is_empty() {
        key
    } else {
        key.strip_prefix(prefix)?.strip_prefix('/')?
    };
    let rest = rest.strip_prefix(dataset.name())?.strip_prefix('/')?;
    let mut parts = rest.split('/');
    let day = layout::parse_day_dir_name(parts.next()?)?;
    let node = parts.next()?.strip_prefix("node=")?;
    layout::check_node_name(node).ok()?;
    let name = parts.next()?;
    if parts.next().is_some() {
        return None;
    }
    let kind = match layout::Dataset::parse_file_name(name) {
        Some((d, start)) if d == dataset => ObjectKind::Raw { start },
        Some(_) => return None,
        None => parse_merged_name(name)?,
    };
    Some(ParsedKey {
        key: key.to_string(),
        day,
        node: node.to_string(),
        kind,
    })
}

/// `merged-<first>-<last>.parquet`.
fn parse_merged_name(name: &str) -> Option<ObjectKind> {
    let range = name.strip_prefix(MERGED_PREFIX)?.strip_suffix(".parquet")?;
    let (first, last) = range.split_once('-')?;
    let (first, last) = (parse_time(first)?, parse_time(last)?);
    (first <= last).then_some(ObjectKind::Merged { first, last })
}

/// Key of `node`'s events of `day`.
pub fn events_key(prefix: &str, node: &str, day: NaiveDate) -> String {
    format!("{}{EVENTS_OBJECT}", node_day_prefix(prefix, day, node))
}

/// Key of the merged file replacing `node`'s raw files starting `first..=last`
/// (same day: the directory is `first`'s).
pub fn merged_key(prefix: &str, node: &str, first: DateTime<Utc>, last: DateTime<Utc>) -> String {
    format!(
        "{}{MERGED_PREFIX}{}-{}.parquet",
        node_day_prefix(prefix, first.date_naive(), node),
        first.format(TIME_FORMAT),
        last.format(TIME_FORMAT)
    )
}

/// Key of `node`'s container names of `day`.
pub fn containers_key(prefix: &str, node: &str, day: NaiveDate) -> String {
    format!(
        "{}{}",
        node_day_prefix(prefix, day, node),
        super::containers::CONTAINERS_OBJECT
    )
}

/// What a key under the prefix is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ObjectKind {
    Raw {
        start: DateTime<Utc>,
    },
    Merged {
        first: DateTime<Utc>,
        last: DateTime<Utc>,
    },
    Events,
    Containers,
}

/// A key of ours, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedKey {
    pub key: String,
    pub day: NaiveDate,
    pub node: String,
    pub kind: ObjectKind,
}

fn parse_time(s: &str) -> Option<DateTime<Utc>> {
    NaiveDateTime::parse_from_str(s, TIME_FORMAT)
        .ok()
        .map(|t| t.and_utc())
}

/// Parses `key` (a full key under `prefix`); `None` for anything not ours.
pub fn parse_key(prefix: &str, key: &str) -> Option<ParsedKey> {
    let rest = if prefix.is_empty() {
        key
    } else {
        key.strip_prefix(prefix)?.strip_prefix('/')?
    };
    let mut parts = rest.split('/');
    let day = layout::parse_day_dir_name(parts.next()?)?;
    let node = parts.next()?.strip_prefix("node=")?;
    layout::check_node_name(node).ok()?;
    let name = parts.next()?;
    if parts.next().is_some() {
        return None;
    }
    let kind = if name == EVENTS_OBJECT {
        ObjectKind::Events
    } else if name == super::containers::CONTAINERS_OBJECT {
        ObjectKind::Containers
    } else if let Some(start) = layout::parse_data_file_name(name) {
        ObjectKind::Raw { start }
    } else {
        parse_merged_name(name)?
    };
    Some(ParsedKey {
        key: key.to_string(),
        day,
        node: node.to_string(),
        kind,
    })
}

/// True when `raw` (a raw file's start) is covered by a merged file of the same node.
fn covered(merged: &[&ParsedKey], node: &str, start: DateTime<Utc>) -> bool {
    merged.iter().any(|m| {
        m.node == node && matches!(m.kind, ObjectKind::Merged { first, last } if first <= start && start <= last)
    })
}

/// The Parquet objects a query must read so that every row counts once: every
/// merged file, and the raw files no merged file covers. Computed from one
/// listing: compaction writes a merged file before it deletes what it
/// replaces, so any listing gives complete, duplicate-free data.
pub fn visible(keys: &[ParsedKey]) -> Vec<&ParsedKey> {
    let merged: Vec<&ParsedKey> = keys
        .iter()
        .filter(|k| matches!(k.kind, ObjectKind::Merged { .. }))
        .collect();
    keys.iter()
        .filter(|k| match k.kind {
            ObjectKind::Merged { .. } => true,
            ObjectKind::Raw { start } => !covered(&merged, &k.node, start),
            ObjectKind::Events | ObjectKind::Containers => false,
        })
        .collect()
}

/// Raw files a merged file covers (candidates for deletion once it is old enough).
pub fn superseded(keys: &[ParsedKey]) -> Vec<&ParsedKey> {
    let merged: Vec<&ParsedKey> = keys
        .iter()
        .filter(|k| matches!(k.kind, ObjectKind::Merged { .. }))
        .collect();
    keys.iter()
        .filter(|k| matches!(k.kind, ObjectKind::Raw { start } if covered(&merged, &k.node, start)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn t(h: u32, m: u32, s: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 1, 2, h, m, s).unwrap()
    }

    #[test]
    fn datasets_have_prefixes_of_their_own() {
        let k = dataset_key("fgm/prod", layout::Dataset::Network, "node-a", t(10, 1, 30));
        assert_eq!(
            k,
            "fgm/prod/network/dt=2026-01-02/node=node-a/network-20260102T100130Z.parquet"
        );
        // Not a metrics object: compaction and the views' globs leave it alone.
        assert!(parse_key("fgm/prod", &k).is_none());
        let k = dataset_key("", layout::Dataset::Processes, "n", t(0, 0, 0));
        assert_eq!(
            k,
            "processes/dt=2026-01-02/node=n/processes-20260102T000000Z.parquet"
        );
    }

    #[test]
    fn dataset_keys_parse_raw_and_merged() {
        let raw = dataset_key("fgm", layout::Dataset::Devices, "n-1", t(10, 1, 30));
        let p = parse_dataset_key("fgm", layout::Dataset::Devices, &raw).unwrap();
        assert_eq!(p.node, "n-1");
        assert_eq!(
            p.kind,
            ObjectKind::Raw {
                start: t(10, 1, 30)
            }
        );
        // Another dataset's key, or the metrics' keys, are not this dataset's.
        assert!(parse_dataset_key("fgm", layout::Dataset::Network, &raw).is_none());
        assert!(
            parse_dataset_key(
                "fgm",
                layout::Dataset::Devices,
                &data_key("fgm", "n-1", t(10, 1, 30))
            )
            .is_none()
        );
        let merged = dataset_merged_key(
            "fgm",
            layout::Dataset::Devices,
            "n-1",
            t(10, 0, 0),
            t(10, 58, 30),
        );
        assert_eq!(
            merged,
            "fgm/devices/dt=2026-01-02/node=n-1/merged-20260102T100000Z-20260102T105830Z.parquet"
        );
        let p = parse_dataset_key("fgm", layout::Dataset::Devices, &merged).unwrap();
        assert_eq!(
            p.kind,
            ObjectKind::Merged {
                first: t(10, 0, 0),
                last: t(10, 58, 30)
            }
        );
        assert!(
            dataset_day_prefix("fgm", layout::Dataset::Devices, t(0, 0, 0).date_naive())
                .ends_with("devices/dt=2026-01-02/")
        );
        // A file named as another dataset's, in this dataset's directory: not ours.
        let odd = raw.replace("/devices-", "/network-");
        assert!(parse_dataset_key("fgm", layout::Dataset::Devices, &odd).is_none());
    }

    #[test]
    fn keys_round_trip() {
        let k = data_key("fgm/prod", "node-a", t(10, 1, 30));
        assert_eq!(
            k,
            "fgm/prod/dt=2026-01-02/node=node-a/metrics-20260102T100130Z.parquet"
        );
        let p = parse_key("fgm/prod", &k).unwrap();
        assert_eq!(p.node, "node-a");
        assert_eq!(
            p.kind,
            ObjectKind::Raw {
                start: t(10, 1, 30)
            }
        );
        let m = merged_key("", "n", t(10, 0, 0), t(10, 58, 30));
        assert_eq!(
            m,
            "dt=2026-01-02/node=n/merged-20260102T100000Z-20260102T105830Z.parquet"
        );
        assert_eq!(
            parse_key("", &m).unwrap().kind,
            ObjectKind::Merged {
                first: t(10, 0, 0),
                last: t(10, 58, 30)
            }
        );
        let e = events_key("p", "n", t(0, 0, 0).date_naive());
        assert_eq!(e, "p/dt=2026-01-02/node=n/events.jsonl");
        assert_eq!(parse_key("p", &e).unwrap().kind, ObjectKind::Events);
        for foreign in [
            "p/dt=2026-01-02/node=n/notes.txt",
            "p/dt=2026-01-02/node=../metrics-20260102T100130Z.parquet",
            "p/other/node=n/events.jsonl",
            "q/dt=2026-01-02/node=n/events.jsonl",
            "p/dt=2026-01-02/node=n/x/events.jsonl",
            "p/dt=2026-01-02/node=n/merged-20260102T110000Z-20260102T100000Z.parquet",
        ] {
            assert_eq!(parse_key("p", foreign), None, "{foreign}");
        }
        assert_eq!(normalize_prefix("/a/b/"), "a/b");
    }

    #[test]
    fn visibility_counts_every_file_once_at_every_step_of_compaction() {
        let raw = |node: &str, m: u32| parse_key("", &data_key("", node, t(10, m, 0))).unwrap();
        let merged = |node: &str, a: u32, b: u32| {
            parse_key("", &merged_key("", node, t(10, a, 0), t(10, b, 0))).unwrap()
        };
        let names = |v: Vec<&ParsedKey>| v.iter().map(|k| k.key.clone()).collect::<Vec<_>>();
        // Before: three raw files of a, one of b.
        let before = vec![raw("a", 0), raw("a", 2), raw("a", 4), raw("b", 2)];
        assert_eq!(visible(&before).len(), 4);
        // Merged written, raw not deleted yet: the merged one replaces a's first two.
        let mut during = before.clone();
        during.push(merged("a", 0, 2));
        assert_eq!(
            names(visible(&during)),
            names(vec![&during[2], &during[3], &during[4]])
        );
        assert_eq!(
            names(superseded(&during)),
            names(vec![&during[0], &during[1]])
        );
        // Half the raw files deleted: the same rows.
        let partial = vec![
            during[1].clone(),
            during[2].clone(),
            during[3].clone(),
            during[4].clone(),
        ];
        assert_eq!(visible(&partial).len(), 3);
        // Another node's merged file never hides a's raw files.
        let other = vec![raw("a", 4), merged("b", 0, 10)];
        assert_eq!(visible(&other).len(), 2);
    }
}
