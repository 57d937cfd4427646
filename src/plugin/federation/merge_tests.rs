use super::*;

fn down(node: &str) -> NodeAnswer {
    (
        node.to_string(),
        Err(NotAnswering {
            node: node.into(),
            via: "fgm/monitor-x".into(),
            reason: "no answer within 5s".into(),
            bad_request: None,
        }),
    )
}

fn up(node: &str, v: Value) -> NodeAnswer {
    (node.to_string(), Ok(v))
}

#[test]
fn keys_name_their_node_and_group_by_it_in_first_seen_order() {
    assert_eq!(split_key("n1/abc"), Some(("n1", "abc")));
    assert_eq!(split_key("abc"), None);
    assert_eq!(split_key("/abc"), None);
    assert_eq!(split_key("n1/"), None);
    let groups = group_by_node(&["b/1", "a/2", "b/3"]).unwrap();
    assert_eq!(
        groups,
        vec![
            ("b".to_string(), vec!["1".to_string(), "3".to_string()]),
            ("a".to_string(), vec!["2".to_string()]),
        ]
    );
    let err = group_by_node(&["a/1", "abc"]).unwrap_err();
    assert!(err.contains("\"abc\" names no node"), "{err}");
}

#[test]
fn status_spans_every_answering_node_and_lists_the_silent_ones() {
    let merged = status(
        vec![
            up(
                "a",
                json!({"state": "ready", "containers": 3, "version": "1",
                    "data_range": {"earliest": "2026-01-01T10:00:00Z", "latest": "2026-01-01T11:00:00Z"},
                    "corrupt_files": [{"path": "dt=x/f.parquet", "error": "bad"}]}),
            ),
            up(
                "b",
                json!({"state": "ready", "containers": 2,
                    "data_range": {"earliest": "2026-01-01T09:00:00Z", "latest": "2026-01-01T10:30:00Z"}}),
            ),
            down("c"),
        ],
        "9.9",
    );
    assert_eq!(merged["state"], "ready");
    assert_eq!(merged["containers"], 5);
    assert_eq!(
        merged["data_range"]["earliest"], "2026-01-01T09:00:00Z",
        "{merged}"
    );
    assert_eq!(merged["data_range"]["latest"], "2026-01-01T11:00:00Z");
    assert_eq!(merged["nodes"].as_array().unwrap().len(), 2);
    assert_eq!(merged["not_answering"][0]["node"], "c");
    assert_eq!(merged["corrupt_files"][0]["path"], "a: dt=x/f.parquet");

    let none = status(vec![down("a"), down("b")], "9.9");
    assert_eq!(none["state"], "error");
    let message = none["message"].as_str().unwrap();
    assert!(
        message.contains("None of the 2 node(s) answered"),
        "{message}"
    );
    assert!(message.contains("a (no answer within 5s)"), "{message}");
    assert_eq!(status(vec![], "9.9")["state"], "error");
}

#[test]
fn containers_are_keyed_by_node_and_carry_it() {
    let merged = containers(vec![
        up(
            "a",
            json!({"containers": [{"id": "111", "pod_name": "web"}], "hidden_sandboxes": 1}),
        ),
        up(
            "b",
            json!({"containers": [{"id": "111", "pod_name": "db"}], "hidden_sandboxes": 2}),
        ),
        down("c"),
    ]);
    let list = merged["containers"].as_array().unwrap();
    assert_eq!(list.len(), 2, "the same id on two nodes is two containers");
    assert_eq!(list[0]["id"], "a/111");
    assert_eq!(list[0]["node"], "a");
    assert_eq!(list[1]["id"], "b/111");
    assert_eq!(merged["hidden_sandboxes"], 3);
    assert_eq!(merged["not_answering"][0]["node"], "c");
}

#[test]
fn overview_ranks_again_across_nodes_and_cuts_to_top() {
    let node = |cpu: &[(&str, f64)]| {
        json!({
            "from": "2026-01-01T10:00:00Z", "to": "2026-01-01T10:15:00Z", "slot_ms": 15000,
            "containers": cpu.len(), "files_read": 2, "skipped_files": [],
            "rows": cpu.iter().map(|(id, _)| json!({"id": id})).collect::<Vec<_>>(),
            "rankings": {"cpu": {"unit": "cores", "rows": cpu.iter().map(|(id, v)| json!({"id": id, "value": v})).collect::<Vec<_>>()}},
            "troubled": [{"id": cpu[0].0, "oom_kills": cpu.len(), "other_events": 0}],
            "events": [{"time": format!("2026-01-01T10:0{}:00Z", cpu.len()), "containers": [cpu[0].0]}],
            "events_truncated": false,
        })
    };
    let merged = overview(
        vec![
            up("a", node(&[("a1", 0.5), ("a2", 0.1)])),
            up("b", node(&[("b1", 2.0), ("b2", 0.3), ("b3", 0.2)])),
            down("c"),
        ],
        3,
        100,
    );
    let cpu: Vec<(&str, f64)> = merged["rankings"]["cpu"]["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["id"].as_str().unwrap(), r["value"].as_f64().unwrap()))
        .collect();
    assert_eq!(cpu, vec![("b/b1", 2.0), ("a/a1", 0.5), ("b/b2", 0.3)]);
    assert_eq!(merged["rankings"]["cpu"]["unit"], "cores");
    assert_eq!(merged["rows"].as_array().unwrap().len(), 5);
    assert_eq!(merged["containers"], 5);
    assert_eq!(merged["files_read"], 4);
    assert_eq!(merged["nodes"], 3);
    assert_eq!(merged["not_answering"][0]["node"], "c");
    assert_eq!(merged["troubled"][0]["id"], "b/b1", "3 OOM kills before 2");
    let events = merged["events"].as_array().unwrap();
    assert_eq!(events[0]["node"], "a", "in time order: 10:02 before 10:03");
    assert_eq!(events[0]["containers"][0], "a/a1");
}

#[test]
fn timeseries_keeps_the_order_asked_and_says_who_did_not_answer() {
    let node = |id: &str| {
        json!({"metric": "cpu", "unit": "cores", "files_read": 1, "skipped_files": [{"path": "f", "error": "e"}],
               "series": [{"container": id, "t": [1], "v": [0.5]}]})
    };
    let merged = timeseries(
        vec![up("b", node("2")), up("a", node("1")), down("c")],
        &["a/1", "c/3", "b/2"],
    );
    let ids: Vec<&str> = merged["series"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["container"].as_str().unwrap())
        .collect();
    assert_eq!(ids, vec!["a/1", "b/2"]);
    assert_eq!(merged["metric"], "cpu");
    assert_eq!(merged["files_read"], 2);
    assert_eq!(merged["skipped_files"][0]["path"], "b: f");
    assert_eq!(merged["not_answering"][0]["node"], "c");
}

#[test]
fn events_are_joined_in_time_order_and_the_newest_kept() {
    let merged = events(
        vec![
            up(
                "a",
                json!({"events": [{"time": "2026-01-01T10:00:00Z"}, {"time": "2026-01-01T10:02:00Z"}], "truncated": false}),
            ),
            up(
                "b",
                json!({"events": [{"time": "2026-01-01T10:01:00Z"}], "truncated": false, "skipped_lines": 2}),
            ),
        ],
        2,
    );
    let list = merged["events"].as_array().unwrap();
    assert_eq!(list.len(), 2);
    assert_eq!(list[0]["node"], "b");
    assert_eq!(list[1]["time"], "2026-01-01T10:02:00Z");
    assert_eq!(merged["truncated"], true);
    assert_eq!(merged["skipped_lines"], 2);
}

#[test]
fn metrics_are_the_union_by_name() {
    let merged = metrics(vec![
        up("a", json!({"metrics": [{"name": "cpu"}, {"name": "mem"}]})),
        up("b", json!({"metrics": [{"name": "mem"}, {"name": "net"}]})),
    ]);
    let names: Vec<&str> = merged["metrics"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, vec!["cpu", "mem", "net"]);
}

#[test]
fn a_one_node_answer_is_keyed_back() {
    let v = one_node(
        json!({"container": "abc", "skipped_files": [{"path": "p", "error": "e"}]}),
        "n1",
    );
    assert_eq!(v["container"], "n1/abc");
    assert_eq!(v["node"], "n1");
    assert_eq!(v["skipped_files"][0]["path"], "n1: p");
}
