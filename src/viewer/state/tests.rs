use super::*;
use crate::store::reader::ContainerSeries;

fn column(rows: usize) -> Arc<MetricColumn> {
    Arc::new(MetricColumn {
        series: vec![(
            "a".into(),
            ContainerSeries {
                timestamps: vec![0; rows],
                values: vec![0; rows],
            },
        )],
    })
}

#[test]
fn cache_stays_within_its_bytes_and_evicts_least_recent() {
    let one = column(100).heap_bytes() + 64 + 1;
    let mut cache = ColumnCache::new(one * 2 + 10);
    let key = |n: &str| (PathBuf::from(n), "m".to_string());
    cache.put(key("a"), column(100));
    cache.put(key("b"), column(100));
    assert!(cache.get(&key("a")).is_some());
    cache.put(key("c"), column(100));
    assert_eq!(cache.len(), 2);
    assert!(cache.get(&key("b")).is_none(), "b was least recently used");
    assert!(cache.get(&key("a")).is_some());
    assert!(cache.bytes() <= one * 2 + 10);
    cache.put(key("huge"), column(100_000));
    assert!(cache.get(&key("huge")).is_none(), "too big to cache at all");
}
