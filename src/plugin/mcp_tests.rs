use super::*;

fn found(node: &str, v: Value) -> (String, String, NodeAnswer) {
    (node.into(), format!("monitoring/nm-{node}"), Ok(Ok(v)))
}

fn refused(node: &str, m: &str) -> (String, String, NodeAnswer) {
    (
        node.into(),
        format!("monitoring/nm-{node}"),
        Ok(Err(m.into())),
    )
}

fn silent(node: &str) -> (String, String, NodeAnswer) {
    (
        node.into(),
        format!("monitoring/nm-{node}"),
        Err("no answer within 5s".into()),
    )
}

#[test]
fn every_node_tool_takes_a_node_and_list_nodes_is_added() {
    let tools = tools();
    let names: Vec<&str> = tools.iter().filter_map(|t| t["name"].as_str()).collect();
    for name in [
        "top_containers",
        "container_summary",
        "container_events",
        "study",
        "list_containers",
        "list_metrics",
        "list_nodes",
    ] {
        assert!(names.contains(&name), "{name} in {names:?}");
    }
    for t in tools.iter().filter(|t| t["name"] != "list_nodes") {
        assert_eq!(
            t["inputSchema"]["properties"]["node"]["type"], "string",
            "{t}"
        );
        assert!(
            join_of(t["name"].as_str().unwrap(), &json!({})).is_some(),
            "{t}"
        );
    }
    assert_eq!(join_of("nope", &json!({})), None);
}

#[test]
fn rankings_of_all_nodes_are_ranked_again_and_silent_nodes_listed() {
    let a = json!({"by": "cpu", "unit": "cores", "from": "x", "to": "y", "containers": [
        {"container_id": "a1", "value": 0.2}, {"container_id": "a2", "value": 0.05}]});
    let b = json!({"by": "cpu", "unit": "cores", "from": "x", "to": "y", "containers": [
        {"container_id": "b1", "value": 0.9}]});
    let out = join(
        Join::Ranked,
        vec![found("a", a), silent("c"), found("b", b)],
    )
    .unwrap();
    let rows: Vec<(&str, &str)> = out["containers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["node"].as_str().unwrap(),
                r["container_id"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(rows, vec![("b", "b1"), ("a", "a1"), ("a", "a2")]);
    assert_eq!(out["unit"], "cores");
    assert_eq!(out["not_answering"][0]["node"], "c");
    assert_eq!(out["nodes_answered"], json!(["a", "b"]));
    assert!(out.get("from").is_none(), "each node's own range, not one");
}

#[test]
fn events_of_all_nodes_come_in_time_order() {
    let a = json!({"events": [{"time": "2026-01-01T10:00:05Z", "kind": "restart"}]});
    let b = json!({"events": [{"time": "2026-01-01T10:00:01Z", "kind": "oom_killed"}]});
    let out = join(Join::Listed("events"), vec![found("a", a), found("b", b)]).unwrap();
    assert_eq!(out["events"][0]["node"], "b");
    assert_eq!(out["events"][1]["node"], "a");
}

#[test]
fn one_container_is_answered_by_the_node_that_has_it() {
    let no = "no container matches \"web\": list_containers names them";
    let out = join(
        Join::One,
        vec![refused("a", no), found("b", json!({"cpu": 1})), silent("c")],
    )
    .unwrap();
    assert_eq!(out["node"], "b");
    assert_eq!(out["not_answering"][0]["node"], "c");
    let err = join(
        Join::One,
        vec![refused("a", no), refused("b", no), silent("c")],
    )
    .unwrap_err();
    assert_eq!(err, format!("a, b: {no}; not answering: c"));
    let err = join(
        Join::One,
        vec![found("a", json!({})), found("b", json!({}))],
    )
    .unwrap_err();
    assert!(
        err.contains("2 nodes (a, b)") && err.contains("node"),
        "{err}"
    );
}

#[test]
fn a_nodes_answer_is_its_result_its_tool_error_or_why_it_did_not_answer() {
    let ok = json!({"jsonrpc": "2.0", "id": 1, "result": {"structuredContent": {"x": 1}, "isError": false}});
    assert_eq!(node_result(Ok(ok)), Ok(Ok(json!({"x": 1}))));
    let tool_error = json!({"jsonrpc": "2.0", "id": 1, "result": {
        "content": [{"type": "text", "text": "top=0: from 1 to 50"}], "isError": true}});
    assert_eq!(
        node_result(Ok(tool_error)),
        Ok(Err("top=0: from 1 to 50".into()))
    );
    let rpc = json!({"jsonrpc": "2.0", "id": 1, "error": {"code": -32602, "message": "no tool"}});
    assert_eq!(node_result(Ok(rpc)), Err("no tool".into()));
    let timeout = node_result(Err(AskError::Timeout(Duration::from_secs(5))));
    assert_eq!(timeout, Err("no answer within 5s".into()));
}

#[test]
fn a_named_node_must_be_monitored() {
    let t = |n: &str| {
        (
            n.to_string(),
            Target {
                namespace: "m".into(),
                pod: format!("p-{n}"),
                port: 8050,
            },
        )
    };
    let picked = chosen(vec![t("a"), t("b")], Some("b")).unwrap();
    assert_eq!(picked.len(), 1);
    assert_eq!(chosen(vec![t("a")], None).unwrap().len(), 1);
    let err = chosen(vec![t("a"), t("b")], Some("z")).unwrap_err();
    assert!(err.contains("\"z\"") && err.contains("a, b"), "{err}");
}
