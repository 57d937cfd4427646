//! Short container ids that stay unique in the index.
//!
//! A container's short id (the `container_id` column and the index.json key)
//! is normally its id's first 12 hex characters. Two containers whose ids
//! share those 12 characters must not become one row set, so the second one
//! seen gets a longer prefix (13, 14, ... characters, as `docker ps` does), or
//! `<hash>-<n>` for a plain cgroup named by its path. The choice is stable:
//! it is kept in the index, and rebuilt from it after a restart.
//!
//! Only the exceptions are held in memory (full id → short id), and only while
//! their index entry exists, so this map is bounded by the index.

use std::collections::HashMap;

use crate::agent::discovery;
use crate::store::index::Index;

/// Full id → short id, for the containers whose short id is not the natural one.
#[derive(Debug, Default)]
pub struct ShortIds {
    aliases: HashMap<String, String>,
}

/// The short id a container gets when nothing else claims it.
pub fn natural(full_id: &str) -> String {
    if is_hex(full_id) && full_id.len() >= 12 {
        full_id[..12].to_ascii_lowercase()
    } else {
        discovery::short_hash(full_id)
    }
}

fn is_hex(id: &str) -> bool {
    id.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Short ids to try, in order, when the natural one is taken by another container.
fn candidates(full_id: &str, natural: &str) -> impl Iterator<Item = String> {
    let prefixes = (13..=full_id.len())
        .filter(move |_| is_hex(full_id))
        .map(move |len| full_id[..len].to_ascii_lowercase());
    let numbered = (2u32..).map(move |n| format!("{natural}-{n}"));
    prefixes.chain(numbered)
}

impl ShortIds {
    /// The exceptions recorded in an index loaded from disk.
    pub fn from_index(index: &Index) -> Self {
        let aliases = index
            .containers
            .iter()
            .filter(|(short, entry)| **short != natural(&entry.full_id))
            .map(|(short, entry)| (entry.full_id.clone(), short.clone()))
            .collect();
        Self { aliases }
    }

    /// The short id of `full_id`, given its natural one: the natural one
    /// unless the index holds another container under it.
    pub fn resolve(&mut self, full_id: &str, natural_id: &str, index: &Index) -> Option<String> {
        if !self.aliases.is_empty()
            && let Some(alias) = self.aliases.get(full_id)
        {
            return Some(alias.clone());
        }
        match index.containers.get(natural_id) {
            Some(entry) if entry.full_id != full_id => {}
            _ => return None,
        }
        let free = |short: &String| {
            index
                .containers
                .get(short)
                .is_none_or(|entry| entry.full_id == full_id)
        };
        let alias = candidates(full_id, natural_id).find(free)?;
        tracing::info!(
            full_id,
            short_id = %alias,
            taken_by = %index.containers.get(natural_id).map_or("", |e| e.full_id.as_str()),
            "two containers share a 12-character id prefix; this one gets a longer short id"
        );
        self.aliases.insert(full_id.to_string(), alias.clone());
        Some(alias)
    }

    /// Forgets the exceptions whose index entry is gone (retention).
    pub fn retain_indexed(&mut self, index: &Index) {
        self.aliases.retain(|full, short| {
            index
                .containers
                .get(short)
                .is_some_and(|e| e.full_id == *full)
        });
    }

    pub fn len(&self) -> usize {
        self.aliases.len()
    }

    pub fn is_empty(&self) -> bool {
        self.aliases.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::index::ContainerEntry;
    use chrono::{TimeZone, Utc};

    fn entry(full_id: &str) -> ContainerEntry {
        let t = Utc.timestamp_opt(1_767_225_600, 0).unwrap();
        ContainerEntry {
            full_id: full_id.to_string(),
            pod_uid: None,
            qos_class: String::new(),
            first_seen: t,
            last_seen: t,
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

    const A: &str = "abcdef012345aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    const B: &str = "abcdef012345bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";
    const C: &str = "abcdef012345bccccccccccccccccccccccccccccccccccccccccccccccccccc";

    #[test]
    fn colliding_prefixes_get_longer_short_ids_stable_across_restarts() {
        let mut index = Index::empty(Utc::now(), 90);
        let mut ids = ShortIds::default();
        assert_eq!(natural(A), "abcdef012345");
        assert_eq!(ids.resolve(A, &natural(A), &index), None, "free: natural");
        index.containers.insert(natural(A), entry(A));
        assert_eq!(ids.resolve(A, &natural(A), &index), None, "its own entry");
        let b = ids.resolve(B, &natural(B), &index).unwrap();
        assert_eq!(b, "abcdef012345b");
        index.containers.insert(b.clone(), entry(B));
        // C shares 13 characters with B: one more.
        let c = ids.resolve(C, &natural(C), &index).unwrap();
        assert_eq!(c, "abcdef012345bc");
        index.containers.insert(c.clone(), entry(C));
        assert_eq!(ids.len(), 2);
        assert_eq!(
            ids.resolve(B, &natural(B), &index).as_deref(),
            Some("abcdef012345b")
        );

        // After a restart the same choices come from the index.
        let mut reloaded = ShortIds::from_index(&index);
        assert_eq!(reloaded.len(), 2);
        assert_eq!(reloaded.resolve(C, &natural(C), &index), Some(c.clone()));
        assert_eq!(reloaded.resolve(A, &natural(A), &index), None);

        // Retention removed C's entry: its exception goes too.
        index.containers.remove(&c);
        reloaded.retain_indexed(&index);
        assert_eq!(reloaded.len(), 1);
    }

    #[test]
    fn plain_cgroups_get_numbered_short_ids() {
        let mut index = Index::empty(Utc::now(), 90);
        let natural_id = natural("/a");
        index.containers.insert(natural_id.clone(), entry("/b"));
        let mut ids = ShortIds::default();
        let got = ids.resolve("/a", &natural_id, &index).unwrap();
        assert_eq!(got, format!("{natural_id}-2"));
        assert!(crate::viewer::query::valid_container_id(&got));
    }
}
