//! What a run needs for the rates and summaries beside each merged file (pure):
//! the seed of a group (the object holding its node's samples just before
//! the group, so the first rows of the span get their rates too), and the
//! derived objects no merged file commits (left by a run that died), to delete.

use chrono::{DateTime, Utc};

use super::plan::{Group, Listed};
use crate::export::derived::{self, DerivedKey};
use crate::export::keys::{self, ObjectKind, ParsedKey};

/// A derived object of the listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DerivedListed {
    pub parsed: DerivedKey,
    pub modified: Option<DateTime<Utc>>,
}

fn start_of(p: &ParsedKey) -> Option<DateTime<Utc>> {
    match p.kind {
        ObjectKind::Raw { start } => Some(start),
        ObjectKind::Merged { first, .. } => Some(first),
        ObjectKind::Events | ObjectKind::Containers => None,
    }
}

/// The object holding `group`'s node's last samples before `group.first`,
/// from `listed` (this day's and the day before's objects): the visible
/// object (a merged file, or a raw file none covers) starting last before
/// the group; for a merged file, its last raw file when still listed (the
/// same rows, a fraction of the bytes). `None` when the node has nothing
/// earlier (its first data, or older than the listing).
pub fn seed(group: &Group, listed: &[Listed]) -> Option<Listed> {
    let own: Vec<&Listed> = listed
        .iter()
        .filter(|l| l.parsed.node == group.node)
        .collect();
    let parsed: Vec<ParsedKey> = own.iter().map(|l| l.parsed.clone()).collect();
    let best = keys::visible(&parsed)
        .into_iter()
        .filter_map(|p| Some((start_of(p)?, p)))
        .filter(|(start, _)| *start < group.first)
        .max_by_key(|(start, _)| *start)?
        .1;
    let pick = match best.kind {
        ObjectKind::Merged { last, .. } => own
            .iter()
            .find(|l| l.parsed.kind == ObjectKind::Raw { start: last })
            .map(|l| &l.parsed)
            .unwrap_or(best),
        _ => best,
    };
    own.into_iter().find(|l| l.parsed.key == pick.key).cloned()
}

/// Derived objects to delete: those whose merged file is neither listed nor
/// about to be written by this run, once older than `delete_after` (a run
/// that died between its derived objects and its merged file left them;
/// no query reads them).
pub fn orphans(
    derived: &[DerivedListed],
    main: &[Listed],
    merges: &[Group],
    now: DateTime<Utc>,
    delete_after: std::time::Duration,
) -> Vec<String> {
    let age = chrono::Duration::from_std(delete_after).unwrap_or_default();
    derived
        .iter()
        .filter(|d| {
            !main
                .iter()
                .any(|m| derived::belongs_to(&d.parsed, &m.parsed))
        })
        .filter(|d| {
            !merges.iter().any(|g| {
                g.node == d.parsed.node && g.first == d.parsed.first && g.last == d.parsed.last
            })
        })
        .filter(|d| d.modified.is_some_and(|m| m + age <= now))
        .map(|d| d.parsed.key.clone())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::export::derived::Dataset;
    use chrono::TimeZone;

    fn t(d: u32, h: u32, m: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 1, d, h, m, 0).unwrap()
    }

    fn listed(key: String) -> Listed {
        Listed {
            parsed: keys::parse_key("p", &key).unwrap(),
            size: 1,
            modified: Some(t(9, 0, 0)),
        }
    }

    fn raw(node: &str, at: DateTime<Utc>) -> Listed {
        listed(keys::data_key("p", node, at))
    }

    fn merged(node: &str, a: DateTime<Utc>, b: DateTime<Utc>) -> Listed {
        listed(keys::merged_key("p", node, a, b))
    }

    fn group(node: &str, first: DateTime<Utc>) -> Group {
        Group {
            node: node.into(),
            first,
            last: first,
            inputs: Vec::new(),
            key: keys::merged_key("p", node, first, first),
        }
    }

    #[test]
    fn the_seed_is_the_data_just_before_the_group() {
        let g = group("a", t(2, 11, 0));
        // Raw files of the previous hour, not compacted yet: the last one.
        let objs = vec![
            raw("a", t(2, 10, 57)),
            raw("a", t(2, 10, 58)),
            raw("b", t(2, 10, 59)),
            g_input(&g),
        ];
        assert_eq!(seed(&g, &objs).unwrap().parsed.key, objs[1].parsed.key);
        // Compacted, its raw files still there: the merged file's last raw file.
        let mut objs2 = objs.clone();
        objs2.push(merged("a", t(2, 10, 57), t(2, 10, 58)));
        assert_eq!(seed(&g, &objs2).unwrap().parsed.key, objs[1].parsed.key);
        // Raw files deleted (or only the first left): the merged file itself.
        let objs3 = vec![
            raw("a", t(2, 10, 57)),
            merged("a", t(2, 10, 57), t(2, 10, 58)),
        ];
        assert_eq!(seed(&g, &objs3).unwrap().parsed.key, objs3[1].parsed.key);
        // Midnight: the day before's last merged file.
        let g0 = group("a", t(3, 0, 0));
        let objs4 = vec![merged("a", t(2, 23, 0), t(2, 23, 58)), raw("a", t(3, 0, 1))];
        assert_eq!(seed(&g0, &objs4).unwrap().parsed.key, objs4[0].parsed.key);
        // A node's first data has none.
        assert_eq!(seed(&group("b", t(2, 10, 0)), &objs), None);
    }

    fn g_input(g: &Group) -> Listed {
        raw(&g.node, g.first)
    }

    #[test]
    fn orphans_are_derived_objects_no_merged_file_commits() {
        let d = |node: &str, a, b, modified| DerivedListed {
            parsed: derived::parse("p", &derived::key("p", Dataset::Rates, node, a, a, b)).unwrap(),
            modified: Some(modified),
        };
        let main = vec![merged("a", t(2, 10, 0), t(2, 10, 58))];
        let now = t(2, 13, 0);
        let all = vec![
            d("a", t(2, 10, 0), t(2, 10, 58), t(2, 11, 0)), // committed
            d("a", t(2, 11, 0), t(2, 11, 58), t(2, 12, 0)), // died before its merged file
            d("a", t(2, 12, 0), t(2, 12, 58), t(2, 12, 50)), // too recent
            d("a", t(2, 9, 0), t(2, 9, 58), t(2, 10, 0)),   // rewritten by this run
        ];
        let merges = vec![Group {
            last: t(2, 9, 58),
            ..group("a", t(2, 9, 0))
        }];
        let gone = orphans(
            &all,
            &main,
            &merges,
            now,
            std::time::Duration::from_secs(1800),
        );
        assert_eq!(gone, vec![all[1].parsed.key.clone()]);
    }
}
