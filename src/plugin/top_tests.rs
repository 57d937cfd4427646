use serde_json::json;

use super::*;

fn answer(rows: Value) -> Value {
    json!({ "rows": rows })
}

fn row(id: &str, pod: &str, cpu: f64, memory: f64) -> Value {
    json!({
        "id": id, "pod_name": pod, "namespace": "shop", "container_name": "app",
        "stats": { "cpu_cores": cpu, "memory_peak_bytes": memory, "throttled_pct": null },
        "oom_kills": 0
    })
}

fn opts(by: Measure, top: usize) -> TopOptions {
    TopOptions {
        by,
        since: Duration::from_secs(900),
        top,
        max_nodes_at_once: 16,
        node_timeout: Duration::from_secs(5),
    }
}

fn target(pod: &str) -> Target {
    Target {
        namespace: "monitoring".into(),
        pod: pod.into(),
        port: 8050,
    }
}

#[test]
fn rows_of_all_nodes_merge_keyed_by_node_and_ranked_highest_first() {
    let answers = vec![
        (
            "n1".to_string(),
            target("m1"),
            Ok(answer(json!([
                row("aaaaaaaaaaaa", "web", 0.5, 1e9),
                row("bbbbbbbbbbbb", "db", 0.1, 4e9)
            ]))),
        ),
        (
            "n2".to_string(),
            target("m2"),
            // The same short id on another node is another container.
            Ok(answer(json!([row("aaaaaaaaaaaa", "burner", 3.0, 1e6)]))),
        ),
        (
            "n3".to_string(),
            target("m3"),
            Err(AskError::Timeout(Duration::from_secs(5))),
        ),
    ];
    let r = report(&opts(Measure::Cpu, 20), answers.clone());
    let keys: Vec<&str> = r.rows.iter().map(|r| r.key.as_str()).collect();
    assert_eq!(
        keys,
        ["n2/aaaaaaaaaaaa", "n1/aaaaaaaaaaaa", "n1/bbbbbbbbbbbb"]
    );
    assert_eq!(r.rows[0].node, "n2");
    assert_eq!(r.rows[0].pod.as_deref(), Some("burner"));
    assert_eq!(r.nodes, 3);
    assert_eq!(
        r.not_answering,
        [NotAnswering {
            node: "n3".into(),
            pod: "monitoring/m3".into(),
            reason: "no answer within 5s".into()
        }]
    );
    let by_memory = report(&opts(Measure::Memory, 1), answers);
    assert_eq!(by_memory.rows.len(), 1);
    assert_eq!(by_memory.rows[0].key, "n1/bbbbbbbbbbbb");
}

#[test]
fn rows_without_the_measure_or_with_nothing_are_left_out() {
    let rows = node_rows(
        "n1",
        &answer(json!([
            row("aaaaaaaaaaaa", "web", 0.0, 1.0),
            { "id": "cccccccccccc", "stats": {}, "oom_kills": 2 },
            { "stats": { "cpu_cores": 1.0 } }
        ])),
        Measure::Cpu,
    );
    assert!(rows.is_empty(), "{rows:?}");
    let oom = node_rows(
        "n1",
        &answer(json!([{ "id": "cccccccccccc", "stats": {}, "oom_kills": 2 }])),
        Measure::Oom,
    );
    assert_eq!(oom.len(), 1);
    assert_eq!(oom[0].value, 2.0);
    assert!(node_rows("n1", &json!({"error": "x"}), Measure::Cpu).is_empty());
}

#[test]
fn network_ranks_pod_rows() {
    let rows = node_rows(
        "n1",
        &answer(
            json!([{ "id": "dddddddddddd", "pod_name": "web", "namespace": "shop",
                         "container_name": null, "sandbox": true,
                         "stats": { "network_bytes_per_sec": 2048.0 } }]),
        ),
        Measure::Network,
    );
    assert_eq!(rows.len(), 1);
    let r = TopReport {
        by: Measure::Network,
        unit: Measure::Network.unit(),
        since_seconds: 900,
        nodes: 1,
        rows,
        not_answering: vec![],
    };
    let table = render_table(&r);
    assert!(table.contains("(pod)"), "{table}");
    assert!(table.contains("2.0 KiB/s"), "{table}");
}

#[test]
fn the_table_has_the_columns_and_lists_nodes_not_answering_after_it() {
    let answers = vec![
        (
            "n1".to_string(),
            target("m1"),
            Ok(answer(json!([row("aaaaaaaaaaaa", "web", 1.5, 1e9)]))),
        ),
        (
            "n2".to_string(),
            target("m2"),
            Err(AskError::Failed("refused".into())),
        ),
    ];
    let table = render_table(&report(&opts(Measure::Cpu, 20), answers));
    let lines: Vec<&str> = table.lines().collect();
    assert!(lines[0].starts_with("NODE"), "{table}");
    for col in ["NAMESPACE", "POD", "CONTAINER", "CPU (cores)"] {
        assert!(lines[0].contains(col), "{table}");
    }
    assert!(
        lines[1].starts_with("n1") && lines[1].ends_with("1.500"),
        "{table}"
    );
    assert!(
        table.contains("1 of 2 node(s) not answering:\n  n2 (monitoring/m2): refused"),
        "{table}"
    );
}

#[test]
fn the_overview_is_asked_from_since_before_now() {
    assert_eq!(
        overview_path(1_000_000_000, Duration::from_secs(900)),
        "/api/overview?from=999100000&top=100"
    );
    assert_eq!(
        overview_path(10, Duration::from_secs(900)),
        "/api/overview?from=0&top=100"
    );
}

#[test]
fn values_print_in_their_units() {
    assert_eq!(Measure::Memory.format(1536.0 * 1024.0 * 1024.0), "1.5 GiB");
    assert_eq!(Measure::Io.format(100.0), "100 B/s");
    assert_eq!(Measure::Throttling.format(12.345), "12.3%");
    assert_eq!(Measure::Oom.format(3.0), "3");
}
