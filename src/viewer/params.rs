//! Query-string parameters of the API and their validation. Every value is
//! checked before use: a bad or out-of-range one is a 400 naming it and the
//! accepted range, never a panic, and nothing here ever becomes a path.

use std::collections::BTreeSet;

use chrono::{DateTime, Duration, TimeZone, Utc};
use serde::Deserialize;

use super::query::{parse_time, valid_container_id};

/// Longest range a request may cover.
pub const MAX_RANGE_DAYS: i64 = 400;
/// Most containers one request may name (bounds the response).
pub const MAX_CONTAINERS: usize = 50;

/// A parameter that cannot be used: answered 400 with this text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct BadParam(pub String);

fn bad(text: impl Into<String>) -> BadParam {
    BadParam(text.into())
}

/// Raw query-string values; each endpoint validates the ones it reads.
#[derive(Debug, Default, Clone, Deserialize)]
pub struct Params {
    pub from: Option<String>,
    pub to: Option<String>,
    pub containers: Option<String>,
    pub container: Option<String>,
    pub metric: Option<String>,
    pub metrics: Option<String>,
    pub points: Option<String>,
    pub top: Option<String>,
    pub format: Option<String>,
    pub max_rows: Option<String>,
    pub kind: Option<String>,
    pub q: Option<String>,
    pub include_sandbox: Option<String>,
    pub check: Option<String>,
    pub dataset: Option<String>,
}

/// Earliest and latest time a request may name: data files are named by
/// UTC second in years 1970 to 9999, and so are ranges.
fn time_bounds() -> (DateTime<Utc>, DateTime<Utc>) {
    let first = Utc.timestamp_opt(0, 0).single().unwrap_or_default();
    let last = Utc
        .with_ymd_and_hms(9999, 12, 31, 23, 59, 59)
        .single()
        .unwrap_or_default();
    (first, last)
}

/// One time parameter: milliseconds since the epoch or RFC 3339, in years 1970 to 9999.
pub fn parse_time_param(
    name: &str,
    value: Option<&str>,
) -> Result<Option<DateTime<Utc>>, BadParam> {
    let text = match value {
        None => return Ok(None),
        Some(t) if t.trim().is_empty() => return Ok(None),
        Some(t) => t,
    };
    let time = parse_time(text).ok_or_else(|| {
        bad(format!(
            "{name}={text:?} is not a time: use RFC 3339 (2025-12-30T16:00:00Z) or milliseconds since the epoch"
        ))
    })?;
    let (first, last) = time_bounds();
    if time < first || time > last {
        return Err(bad(format!(
            "{name}={text:?} is out of range: times run from 1970-01-01 to 9999-12-31"
        )));
    }
    Ok(Some(time))
}

/// `[from, to]`: `to` defaults to `latest` (the newest data) or now, `from`
/// to `default_span` before `to`. At most [`MAX_RANGE_DAYS`] long.
pub fn parse_range(
    p: &Params,
    latest: Option<DateTime<Utc>>,
    default_span: Duration,
) -> Result<(DateTime<Utc>, DateTime<Utc>), BadParam> {
    let to = parse_time_param("to", p.to.as_deref())?
        .or(latest)
        .unwrap_or_else(Utc::now);
    let from = match parse_time_param("from", p.from.as_deref())? {
        Some(from) => from,
        None => to
            .checked_sub_signed(default_span)
            .unwrap_or(to)
            .max(time_bounds().0),
    };
    if from > to {
        return Err(bad(format!("from ({from}) is after to ({to})")));
    }
    if to - from > Duration::days(MAX_RANGE_DAYS) {
        return Err(bad(format!(
            "range from {from} to {to} is longer than {MAX_RANGE_DAYS} days"
        )));
    }
    Ok((from, to))
}

/// A comma-separated list of container ids, de-duplicated, in the order given.
pub fn parse_containers(
    value: Option<&str>,
    required: bool,
    max: usize,
) -> Result<Vec<String>, BadParam> {
    let mut seen = BTreeSet::new();
    let ids: Vec<String> = value
        .unwrap_or("")
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty() && seen.insert(*s))
        .map(str::to_string)
        .collect();
    if required && ids.is_empty() {
        return Err(bad(
            "containers is required: a comma-separated list of container ids",
        ));
    }
    if ids.len() > max {
        return Err(bad(format!(
            "{} containers requested; at most {max} per request",
            ids.len()
        )));
    }
    if let Some(wrong) = ids.iter().find(|id| !valid_container_id(id)) {
        return Err(bad(format!("{wrong:?} is not a container id")));
    }
    Ok(ids)
}

/// A whole number parameter in `range`, `default` when absent.
pub fn parse_count(
    name: &str,
    value: Option<&str>,
    default: usize,
    range: std::ops::RangeInclusive<usize>,
) -> Result<usize, BadParam> {
    match value.map(str::trim) {
        None | Some("") => Ok(default),
        Some(text) => text
            .parse::<usize>()
            .ok()
            .filter(|n| range.contains(n))
            .ok_or_else(|| {
                bad(format!(
                    "{name}={text:?} must be a number from {} to {}",
                    range.start(),
                    range.end()
                ))
            }),
    }
}

/// `true`/`1` or `false`/`0`, false when absent.
pub fn parse_bool(name: &str, value: Option<&str>) -> Result<bool, BadParam> {
    match value {
        None | Some("") | Some("false") | Some("0") => Ok(false),
        Some("true") | Some("1") => Ok(true),
        Some(other) => Err(bad(format!("{name} must be true or false, not {other:?}"))),
    }
}

/// One of `choices`, the first when absent.
pub fn parse_choice<'a>(
    name: &str,
    value: Option<&str>,
    choices: &[&'a str],
) -> Result<&'a str, BadParam> {
    match value {
        None | Some("") => Ok(choices[0]),
        Some(v) => choices.iter().find(|c| **c == v).copied().ok_or_else(|| {
            bad(format!(
                "{name}={v:?} must be one of {}",
                choices.join(", ")
            ))
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(from: Option<&str>, to: Option<&str>) -> Params {
        Params {
            from: from.map(str::to_string),
            to: to.map(str::to_string),
            ..Params::default()
        }
    }

    #[test]
    fn ranges_default_to_a_span_before_the_newest_data() {
        let latest = Utc.with_ymd_and_hms(2025, 12, 30, 12, 0, 0).unwrap();
        let (from, to) =
            parse_range(&params(None, None), Some(latest), Duration::hours(1)).unwrap();
        assert_eq!((to - from, to), (Duration::hours(1), latest));
    }

    #[test]
    fn out_of_range_times_are_refused_not_overflowed() {
        let cases = [
            (Some("-8334601228800000"), None, "out of range"),
            (None, Some("253402300800000"), "out of range"),
            (Some("1e400"), None, "not a time"),
            (Some("99999999999999999999"), None, "not a time"),
            (
                Some("2025-12-30T02:00:00Z"),
                Some("2025-12-30T01:00:00Z"),
                "is after",
            ),
            (
                Some("1971-01-01T00:00:00Z"),
                Some("2025-01-01T00:00:00Z"),
                "longer than 400 days",
            ),
        ];
        for (from, to, expected) in cases {
            let err = parse_range(&params(from, to), None, Duration::hours(1)).unwrap_err();
            assert!(err.0.contains(expected), "{from:?} {to:?}: {err}");
        }
        // A default `from` never runs before the epoch.
        let (from, to) =
            parse_range(&params(None, Some("1000")), None, Duration::hours(1)).unwrap();
        assert_eq!((from.timestamp_millis(), to.timestamp_millis()), (0, 1000));
    }

    #[test]
    fn counts_choices_and_bools() {
        assert_eq!(parse_count("points", None, 1000, 2..=10), Ok(1000));
        assert_eq!(parse_count("points", Some("10"), 1000, 2..=10), Ok(10));
        for v in ["1", "11", "-1", "x", "18446744073709551616"] {
            let err = parse_count("points", Some(v), 1000, 2..=10).unwrap_err();
            assert!(err.0.contains("from 2 to 10"), "{v}: {err}");
        }
        assert_eq!(parse_choice("format", None, &["csv", "parquet"]), Ok("csv"));
        assert!(parse_choice("format", Some("xml"), &["csv", "parquet"]).is_err());
        assert_eq!(parse_bool("b", Some("1")), Ok(true));
        assert!(parse_bool("b", Some("yes")).is_err());
    }

    #[test]
    fn container_lists_keep_order_and_refuse_paths() {
        let ids = parse_containers(Some("bbb, aaa,bbb"), true, 5).unwrap();
        assert_eq!(ids, vec!["bbb", "aaa"]);
        assert!(parse_containers(Some(""), true, 5).is_err());
        assert_eq!(parse_containers(None, false, 5), Ok(vec![]));
        assert!(
            parse_containers(Some("a,b,c"), true, 2)
                .unwrap_err()
                .0
                .contains("at most 2")
        );
        assert!(parse_containers(Some("../etc"), true, 2).is_err());
    }
}
