//! Query-ready history (issue #24): for every merged file, compaction also
//! writes the container rates and hourly summaries of the same rows, under
//! prefixes of their own so no glob of the raw layout reads them.
//!
//! ```text
//! <prefix>/rates/dt=YYYY-MM-DD/hour=HH/node=<node>/rates-<first>-<last>.parquet          one row per raw row of that hour: rates of the interval ending there
//! <prefix>/summaries/dt=YYYY-MM-DD/hour=HH/node=<node>/summaries-<first>-<last>.parquet  per (container, metric) of that hour: count/sum/min/max and histogram buckets
//! ```
//!
//! `dt` and `hour` are the clock hour (UTC) of the rows inside, not of the
//! span: a merged span gets an object per hour its rows fall in (its last
//! raw file may run into the next hour), so a query of a time range reads
//! the objects of its hours only, pruned from the keys without opening any.
//!
//! Exactly once: they are written (one PUT each) before the merged file
//! `merged-<first>-<last>.parquet` they belong to, and count only once that
//! merged file is in the same listing ([`committed`]). The merged file is the
//! commit: a run that dies before it leaves derived objects no query reads
//! (a later run writes them again under the same keys, or deletes them as
//! orphans), and rows not yet compacted are read from the raw files, whose
//! rates the SQL views derive themselves.

pub mod build;
pub mod histogram;
pub mod rates;
pub mod read;
pub mod summary;

use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};

use super::keys::{ObjectKind, ParsedKey};
use crate::store::layout;

/// Format version of the rates and summaries files (`fgm.format_version`
/// in their footer, beside `fgm.dataset`).
pub const FORMAT_VERSION: &str = "1";
/// Footer key naming the dataset (`rates` or `summaries`).
pub const DATASET_KEY: &str = "fgm.dataset";
/// Footer key: the clock hour of the rows (RFC 3339, UTC).
pub const HOUR_KEY: &str = "fgm.hour";

const TIME_FORMAT: &str = "%Y%m%dT%H%M%SZ";

/// A derived dataset.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Dataset {
    Rates,
    Summaries,
}

impl Dataset {
    pub const ALL: [Dataset; 2] = [Dataset::Rates, Dataset::Summaries];

    /// Its directory under the prefix and the start of its object names.
    pub fn name(self) -> &'static str {
        match self {
            Dataset::Rates => "rates",
            Dataset::Summaries => "summaries",
        }
    }
}

fn join(prefix: &str, rest: &str) -> String {
    if prefix.is_empty() {
        rest.to_string()
    } else {
        format!("{prefix}/{rest}")
    }
}

/// `<prefix>/<dataset>/dt=<day>/`: what a run lists.
pub fn day_prefix(prefix: &str, dataset: Dataset, day: NaiveDate) -> String {
    join(
        prefix,
        &format!("{}/{}/", dataset.name(), layout::day_dir_name(day)),
    )
}

/// Key of `dataset` for the rows of `hour` (its start) of `node`'s merged
/// span `first..=last`.
pub fn key(
    prefix: &str,
    dataset: Dataset,
    node: &str,
    hour: DateTime<Utc>,
    first: DateTime<Utc>,
    last: DateTime<Utc>,
) -> String {
    format!(
        "{}hour={}/node={node}/{}-{}-{}.parquet",
        day_prefix(prefix, dataset, hour.date_naive()),
        hour.format("%H"),
        dataset.name(),
        first.format(TIME_FORMAT),
        last.format(TIME_FORMAT)
    )
}

/// A derived object's key, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DerivedKey {
    pub key: String,
    pub dataset: Dataset,
    /// Start of the clock hour of its rows.
    pub hour: DateTime<Utc>,
    pub node: String,
    pub first: DateTime<Utc>,
    pub last: DateTime<Utc>,
}

fn parse_time(s: &str) -> Option<DateTime<Utc>> {
    NaiveDateTime::parse_from_str(s, TIME_FORMAT)
        .ok()
        .map(|t| t.and_utc())
}

/// Parses `key` (a full key under `prefix`); `None` for anything else.
pub fn parse(prefix: &str, key: &str) -> Option<DerivedKey> {
    let rest = if prefix.is_empty() {
        key
    } else {
        key.strip_prefix(prefix)?.strip_prefix('/')?
    };
    let mut parts = rest.split('/');
    let dataset = match parts.next()? {
        "rates" => Dataset::Rates,
        "summaries" => Dataset::Summaries,
        _ => return None,
    };
    let day = layout::parse_day_dir_name(parts.next()?)?;
    let hour: u32 = parts.next()?.strip_prefix("hour=")?.parse().ok()?;
    let hour = day.and_hms_opt(hour, 0, 0)?.and_utc();
    let node = parts.next()?.strip_prefix("node=")?;
    layout::check_node_name(node).ok()?;
    let name = parts.next()?;
    if parts.next().is_some() {
        return None;
    }
    let range = name
        .strip_prefix(dataset.name())?
        .strip_prefix('-')?
        .strip_suffix(".parquet")?;
    let (first, last) = range.split_once('-')?;
    let (first, last) = (parse_time(first)?, parse_time(last)?);
    (first <= last).then(|| DerivedKey {
        key: key.to_string(),
        dataset,
        hour,
        node: node.to_string(),
        first,
        last,
    })
}

/// True when `merged` is the merged file of `d`'s node and span.
pub fn belongs_to(d: &DerivedKey, merged: &ParsedKey) -> bool {
    merged.node == d.node
        && matches!(merged.kind, ObjectKind::Merged { first, last } if first == d.first && last == d.last)
}

/// The derived objects a query reads: those whose merged file is in `main`
/// (listed before `derived`, so a merged file seen implies its derived
/// objects, written before it, are listed too).
pub fn committed<'a>(derived: &'a [DerivedKey], main: &[ParsedKey]) -> Vec<&'a DerivedKey> {
    derived
        .iter()
        .filter(|d| main.iter().any(|m| belongs_to(d, m)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::export::keys;
    use chrono::TimeZone;

    fn t(h: u32, m: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 1, 2, h, m, 0).unwrap()
    }

    #[test]
    fn keys_round_trip_and_stay_out_of_the_raw_globs() {
        let k = key(
            "fgm/p",
            Dataset::Rates,
            "n-1",
            t(11, 0),
            t(10, 0),
            t(10, 58),
        );
        assert_eq!(
            k,
            "fgm/p/rates/dt=2026-01-02/hour=11/node=n-1/rates-20260102T100000Z-20260102T105800Z.parquet"
        );
        let p = parse("fgm/p", &k).unwrap();
        assert_eq!(
            (p.dataset, p.node.as_str(), p.hour, p.first, p.last),
            (Dataset::Rates, "n-1", t(11, 0), t(10, 0), t(10, 58))
        );
        let s = key("", Dataset::Summaries, "n", t(0, 0), t(0, 0), t(0, 0));
        assert_eq!(
            s,
            "summaries/dt=2026-01-02/hour=00/node=n/summaries-20260102T000000Z-20260102T000000Z.parquet"
        );
        assert_eq!(parse("", &s).unwrap().dataset, Dataset::Summaries);
        // Not a raw-layout key: `<prefix>/dt=*/node=*/*.parquet` never matches it.
        assert_eq!(keys::parse_key("fgm/p", &k), None);
        for foreign in [
            "fgm/p/rates/dt=2026-01-02/hour=10/node=n/summaries-20260102T100000Z-20260102T105800Z.parquet",
            "fgm/p/rates/dt=2026-01-02/hour=10/node=n/rates-20260102T110000Z-20260102T100000Z.parquet",
            "fgm/p/other/dt=2026-01-02/hour=10/node=n/rates-20260102T100000Z-20260102T105800Z.parquet",
            "fgm/p/rates/dt=2026-01-02/hour=10/node=n/x/rates-20260102T100000Z-20260102T105800Z.parquet",
            "fgm/p/rates/dt=2026-01-02/hour=24/node=n/rates-20260102T100000Z-20260102T105800Z.parquet",
            "fgm/p/rates/dt=2026-01-02/node=n/rates-20260102T100000Z-20260102T105800Z.parquet",
        ] {
            assert_eq!(parse("fgm/p", foreign), None, "{foreign}");
        }
    }

    #[test]
    fn derived_objects_count_only_with_their_merged_file() {
        let merged = |node: &str, a: u32, b: u32| {
            keys::parse_key("p", &keys::merged_key("p", node, t(a, 0), t(b, 0))).unwrap()
        };
        let raw = keys::parse_key("p", &keys::data_key("p", "a", t(9, 0))).unwrap();
        let derived = |node: &str, a: u32, b: u32| {
            parse(
                "p",
                &key("p", Dataset::Rates, node, t(a, 0), t(a, 0), t(b, 0)),
            )
            .unwrap()
        };
        let all = vec![
            derived("a", 10, 10), // committed
            derived("a", 11, 11), // its run died before the merged file
            derived("b", 10, 10), // another node's merged file does not commit it
            derived("a", 10, 11), // a different span of the same node
        ];
        let main = vec![raw, merged("a", 10, 10), merged("c", 10, 10)];
        let seen: Vec<&str> = committed(&all, &main)
            .iter()
            .map(|d| d.key.as_str())
            .collect();
        assert_eq!(seen, vec![all[0].key.as_str()]);
    }
}
