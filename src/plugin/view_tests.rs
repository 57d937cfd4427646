use super::*;
use crate::plugin::forward::Reach;

#[test]
fn a_parameter_is_replaced_and_the_others_kept_encoded() {
    let p = pairs(Some(
        "containers=a%2F1%2Cb%2F2&metric=cpu_usage_usec&from=10",
    ))
    .unwrap();
    assert_eq!(param(&p, "containers"), Some("a/1,b/2"));
    let path = path_with("/api/timeseries", &p, "containers", "1");
    assert_eq!(
        path,
        "/api/timeseries?metric=cpu_usage_usec&from=10&containers=1"
    );
    assert!(pairs(Some("a=%zz")).is_ok(), "serde_urlencoded is lenient");
    assert_eq!(path_of("/api/status", None), "/api/status");
    assert_eq!(
        path_of("/api/overview", Some("top=3")),
        "/api/overview?top=3"
    );
}

#[test]
fn keys_without_a_node_are_a_bad_request() {
    let err = grouped("a/1,abc").unwrap_err();
    assert_eq!(err.0, StatusCode::BAD_REQUEST);
    assert!(err.1.contains("<node>/<id>"), "{}", err.1);
    let (keys, groups) = grouped(" a/1 , b/2,a/3,").unwrap();
    assert_eq!(keys, vec!["a/1", "b/2", "a/3"]);
    assert_eq!(groups.len(), 2);
}

#[test]
fn unknown_nodes_are_listed_not_asked() {
    let fed = Federation::new(
        vec![FedNode {
            name: "a".into(),
            reach: Reach::Direct("127.0.0.1:1".parse().unwrap()),
        }],
        4,
        Duration::from_secs(1),
    );
    let (known, unknown) = resolve(
        &fed,
        vec![
            ("a".into(), vec!["1".into()]),
            ("gone".into(), vec!["2".into()]),
        ],
    );
    assert_eq!(known.len(), 1);
    assert_eq!(unknown[0].node, "gone");
    assert!(unknown[0].reason.contains("not a monitored node"));
}
