use super::*;

#[test]
fn names_are_unique_snake_case() {
    let mut seen = std::collections::HashSet::new();
    for m in METRICS {
        assert!(seen.insert(m.name), "duplicate {}", m.name);
        assert!(
            m.name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        );
    }
}

#[test]
fn schema_round_trips_kinds() {
    let cols = metric_columns(&arrow_schema());
    assert_eq!(cols.len(), METRICS.len());
    let cpu = &cols[metric_index("cpu_usage_usec").unwrap()];
    assert_eq!(cpu.kind, MetricKind::Counter);
    assert_eq!(cpu.unit, "usec");
    let mem = &cols[metric_index("memory_current_bytes").unwrap()];
    assert_eq!(mem.kind, MetricKind::Gauge);
}

#[test]
fn every_metric_has_a_title_and_a_resource_group() {
    for m in METRICS {
        assert!(!m.title.is_empty() && m.title.len() <= 32, "{}", m.name);
        assert_ne!(m.group(), Group::Other, "{} has no resource group", m.name);
    }
    let titles: std::collections::HashSet<_> = METRICS.iter().map(|m| m.title).collect();
    assert_eq!(titles.len(), METRICS.len(), "titles are unique");
    assert_eq!(Group::of("cpu_pressure_some_usec"), Group::Cpu);
    assert_eq!(Group::of("gpu_memory_bytes"), Group::Other);
}

#[test]
fn display_units_follow_kind_and_unit() {
    let unit = |name: &str| {
        let def = METRICS.iter().find(|m| m.name == name).unwrap();
        display_unit(def.kind, def.unit, def.name)
    };
    assert_eq!(unit("cpu_usage_usec"), ("cores".into(), 1e6));
    assert_eq!(
        unit("io_pressure_some_usec"),
        ("% time stalled".into(), 1e4)
    );
    assert_eq!(unit("io_read_bytes"), ("bytes/s".into(), 1.0));
    assert_eq!(unit("memory_pgfault"), ("/s".into(), 1.0));
    assert_eq!(unit("memory_working_set_bytes"), ("bytes".into(), 1.0));
    assert_eq!(unit("cpu_quota_usec"), ("usec".into(), 1.0));
}

#[test]
fn limit_lines_name_columns_that_exist_in_the_same_unit() {
    for m in METRICS {
        for line in limit_lines(m.name) {
            for column in line.columns() {
                let def = METRICS.iter().find(|d| d.name == column);
                let def = def.unwrap_or_else(|| panic!("{column} is not a metric"));
                assert_eq!(def.kind, MetricKind::Gauge, "{column}");
                if let LimitLine::Column { .. } = line {
                    assert_eq!(def.unit, m.unit, "{} vs {column}", m.name);
                }
            }
        }
    }
    assert_eq!(limit_lines("cpu_usage_usec"), &[LimitLine::CpuQuota]);
    assert_eq!(
        request_of("memory_working_set_bytes"),
        Some(RequestKind::Memory)
    );
    assert_eq!(request_of("io_read_bytes"), None);
}
