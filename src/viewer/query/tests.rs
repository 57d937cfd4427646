use super::*;
use std::collections::HashMap;

#[test]
fn times_parse_as_millis_or_rfc3339() {
    let t = parse_time("2025-12-30T16:00:00Z").unwrap();
    assert_eq!(parse_time(&t.timestamp_millis().to_string()), Some(t));
    assert_eq!(parse_time("2025-12-30T17:00:00+01:00"), Some(t));
    assert_eq!(parse_time("yesterday"), None);
}

#[test]
fn rates_divide_by_elapsed_time_and_skip_resets() {
    let t = [0, 1000, 2000, 4000, 5000, 6000];
    let v = [0, 500_000, 1_500_000, 2_500_000, 10, NULL_VALUE];
    let r = counter_rates(&t, &v);
    assert_eq!(r.t, vec![1000, 2000, 4000, 5000, 6000]);
    assert_eq!(
        r.v,
        vec![
            Some(500_000.0),
            Some(1_000_000.0),
            Some(500_000.0),
            None,
            None
        ]
    );
}

#[test]
fn downsampling_keeps_a_one_second_spike() {
    let n = 86_400;
    let mut p = Points::default();
    for i in 0..n {
        p.t.push(i * 1000);
        p.v.push(Some(if i == 40_000 { 1e9 } else { (i % 7) as f64 }));
    }
    let d = downsample_min_max(&p, 0, n * 1000, 1000);
    assert!(d.len() <= 1000, "{}", d.len());
    assert!(d.len() >= 900, "{}", d.len());
    let peak = d.v.iter().flatten().copied().fold(0.0, f64::max);
    assert_eq!(peak, 1e9);
    let at = d.v.iter().position(|v| *v == Some(1e9)).unwrap();
    assert_eq!(d.t[at], 40_000_000, "the spike keeps its own time");
    assert!(d.t.is_sorted());
    assert_eq!(d.v.iter().flatten().copied().fold(f64::MAX, f64::min), 0.0);
}

#[test]
fn downsampling_keeps_gaps_and_small_series() {
    let p = Points {
        t: (0..10).collect(),
        v: (0..10).map(|i| (i < 5).then_some(i as f64)).collect(),
    };
    assert_eq!(downsample_min_max(&p, 0, 10, 100), p);
    let d = downsample_min_max(&p, 0, 10, 4);
    assert_eq!(d.v, vec![Some(0.0), Some(4.0), None]);
    let c = clip(p, 2, 4);
    assert_eq!(c.t, vec![2, 3, 4]);
}

#[test]
fn search_terms_all_match() {
    let entry = ContainerEntry {
        full_id: "abc".into(),
        pod_uid: None,
        qos_class: String::new(),
        first_seen: Utc::now(),
        last_seen: Utc::now(),
        pod_name: Some("web-7d9f".into()),
        namespace: Some("shop".into()),
        labels: Some(HashMap::from([("app".into(), "frontend".into())])),
        container_name: Some("nginx".into()),
        cgroup_path: None,
        runtime: None,
        sandbox: false,
        requests: None,
    };
    assert!(container_matches("abc123def456", &entry, ""));
    assert!(container_matches("abc123def456", &entry, "WEB shop"));
    assert!(container_matches("abc123def456", &entry, "app=frontend"));
    assert!(container_matches("abc123def456", &entry, "front"));
    assert!(container_matches("abc123def456", &entry, "abc123"));
    assert!(!container_matches("abc123def456", &entry, "app=backend"));
    assert!(!container_matches(
        "abc123def456",
        &entry,
        "web kube-system"
    ));
}

#[test]
fn ids_cannot_carry_paths() {
    assert!(valid_container_id("abc123def456"));
    for bad in ["", "..", "../etc", "a/b", "a b", "%2e"] {
        assert!(!valid_container_id(bad), "{bad}");
    }
}

#[test]
fn steps_keep_where_a_level_changes() {
    let mut s = Steps::default();
    let levels = [
        Some(2.0),
        Some(2.0),
        Some(2.0),
        None,
        None,
        Some(1.0),
        Some(1.0),
    ];
    for (i, v) in levels.into_iter().enumerate() {
        s.push(i as i64, v);
    }
    let p = s.finish();
    assert_eq!(p.t, vec![0, 2, 3, 4, 5, 6]);
    assert_eq!(
        p.v,
        vec![Some(2.0), Some(2.0), None, None, Some(1.0), Some(1.0)]
    );
    let mut one = Steps::default();
    one.push(5, Some(3.0));
    assert_eq!(one.finish().t, vec![5]);
}
