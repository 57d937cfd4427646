//! A cache bounded in bytes. Data files never change once renamed, so an
//! entry never goes stale; one of a file removed by retention stops being
//! asked for and ages out.

use std::collections::HashMap;
use std::hash::Hash;

/// Which entry gives way when the cache is full.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Eviction {
    /// The one used least recently.
    LeastRecentlyUsed,
    /// The one with the lowest priority given at insertion (a file's start
    /// time): a new entry older than everything kept is not kept at all.
    OldestFirst,
}

pub struct Cache<K, V> {
    max_bytes: usize,
    bytes: usize,
    tick: i64,
    eviction: Eviction,
    /// key -> (value, size, rank); the lowest rank is evicted first.
    entries: HashMap<K, (V, usize, i64)>,
}

impl<K: Eq + Hash + Clone, V: Clone> Cache<K, V> {
    pub fn new(max_bytes: usize, eviction: Eviction) -> Self {
        Self {
            max_bytes,
            bytes: 0,
            tick: 0,
            eviction,
            entries: HashMap::new(),
        }
    }

    pub fn get(&mut self, key: &K) -> Option<V> {
        self.tick += 1;
        let tick = self.tick;
        let lru = self.eviction == Eviction::LeastRecentlyUsed;
        self.entries.get_mut(key).map(|(value, _, rank)| {
            if lru {
                *rank = tick;
            }
            value.clone()
        })
    }

    /// Inserts `value` of `size` bytes; `priority` ranks it for
    /// [`Eviction::OldestFirst`] and is ignored otherwise.
    pub fn put(&mut self, key: K, value: V, size: usize, priority: i64) {
        if size > self.max_bytes {
            return;
        }
        self.tick += 1;
        let rank = match self.eviction {
            Eviction::LeastRecentlyUsed => self.tick,
            Eviction::OldestFirst => priority,
        };
        if self.eviction == Eviction::OldestFirst && self.bytes + size > self.max_bytes {
            let lowest = self.entries.values().map(|(_, _, r)| *r).min();
            if lowest.is_some_and(|lowest| rank < lowest) {
                return;
            }
        }
        if let Some((_, old, _)) = self.entries.insert(key.clone(), (value, size, rank)) {
            self.bytes -= old;
        }
        self.bytes += size;
        while self.bytes > self.max_bytes {
            let Some(victim) = self
                .entries
                .iter()
                .filter(|(k, _)| **k != key)
                .min_by_key(|(_, (_, _, rank))| *rank)
                .map(|(k, _)| k.clone())
            else {
                break;
            };
            if let Some((_, size, _)) = self.entries.remove(&victim) {
                self.bytes -= size;
            }
        }
    }

    pub fn bytes(&self) -> usize {
        self.bytes
    }
    pub fn len(&self) -> usize {
        self.entries.len()
    }
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn least_recently_used_gives_way_and_sizes_stay_bounded() {
        let mut cache = Cache::new(210, Eviction::LeastRecentlyUsed);
        cache.put("a", 1, 100, 0);
        cache.put("b", 2, 100, 0);
        assert_eq!(cache.get(&"a"), Some(1));
        cache.put("c", 3, 100, 0);
        assert_eq!(cache.len(), 2);
        assert_eq!(cache.get(&"b"), None, "b was least recently used");
        assert_eq!(cache.get(&"a"), Some(1));
        assert!(cache.bytes() <= 210);
        cache.put("huge", 4, 1000, 0);
        assert_eq!(cache.get(&"huge"), None, "too big to cache at all");
    }

    #[test]
    fn oldest_first_keeps_the_newest_and_does_not_thrash() {
        let mut cache = Cache::new(300, Eviction::OldestFirst);
        for start in [10, 20, 30] {
            cache.put(start, start, 100, start);
        }
        // A newer file pushes out the oldest.
        cache.put(40, 40, 100, 40);
        assert_eq!(cache.get(&10), None);
        assert_eq!(cache.get(&40), Some(40));
        // An older one than everything kept is not kept: a scan of a range
        // larger than the cache leaves the newest part in place.
        cache.put(5, 5, 100, 5);
        assert_eq!(cache.get(&5), None);
        assert_eq!((cache.get(&20), cache.get(&30)), (Some(20), Some(30)));
        // Reading does not change who goes first.
        cache.get(&20);
        cache.put(50, 50, 100, 50);
        assert_eq!(cache.get(&20), None);
        assert_eq!(cache.bytes(), 300);
    }
}
