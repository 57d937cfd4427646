use super::*;

#[test]
fn short_ids_come_from_container_ids() {
    let full = "containerd://0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
    assert_eq!(short_id(full).as_deref(), Some("0123456789ab"));
    assert_eq!(
        short_id("cri-o://ABCDEF0123456789").as_deref(),
        Some("abcdef012345")
    );
    assert_eq!(
        short_id("0123456789abcdef").as_deref(),
        Some("0123456789ab")
    );
    assert_eq!(short_id("containerd://short"), None);
    assert_eq!(short_id("containerd://zzzzzzzzzzzzzzzz"), None);
}

#[test]
fn the_url_selects_the_containers_over_the_range() {
    let ids = vec!["0123456789ab".to_string(), "ba9876543210".to_string()];
    assert_eq!(
        viewer_url(41234, &ids, Some((1000, 2000))),
        "http://127.0.0.1:41234/#v=charts&c=0123456789ab,ba9876543210&z=1000~2000"
    );
    assert_eq!(
        viewer_url(8050, &ids[..1], None),
        "http://127.0.0.1:8050/#v=charts&c=0123456789ab&r=1h"
    );
    // No container started yet: the overview.
    assert_eq!(viewer_url(8050, &[], None), "http://127.0.0.1:8050/#r=1h");
}

#[test]
fn ranges_from_flags() {
    let now = 10_000_000_000;
    assert_eq!(parse_range(None, None, now).expect("ok"), None);
    assert_eq!(
        parse_range(
            Some("2025-12-30T16:00:00Z"),
            Some("2025-12-30T16:05:00Z"),
            now
        )
        .expect("ok"),
        Some((1_767_110_400_000, 1_767_110_700_000))
    );
    assert_eq!(
        parse_range(Some("5000"), None, now).expect("ok"),
        Some((5000, now))
    );
    assert_eq!(
        parse_range(None, Some("7200000"), now).expect("ok"),
        Some((3_600_000, 7_200_000))
    );
    let e = parse_range(Some("yesterday"), None, now).expect_err("bad");
    assert!(
        e.to_string().starts_with("bad --from: \"yesterday\""),
        "{e}"
    );
    assert!(parse_range(Some("2000"), Some("1000"), now).is_err());
}

fn pod() -> Pod {
    serde_json::from_value(serde_json::json!({
        "metadata": { "name": "web-0", "namespace": "shop" },
        "spec": {
            "initContainers": [{ "name": "init" }],
            "containers": [{ "name": "app" }, { "name": "sidecar" }, { "name": "late" }]
        },
        "status": {
            "initContainerStatuses": [{ "name": "init", "image": "i", "imageID": "", "ready": false,
                "restartCount": 0, "containerID": "containerd://111111111111aaaa" }],
            "containerStatuses": [
                { "name": "app", "image": "i", "imageID": "", "ready": true, "restartCount": 0,
                  "containerID": "containerd://222222222222bbbb" },
                { "name": "sidecar", "image": "i", "imageID": "", "ready": true,
                  "restartCount": 0, "containerID": "containerd://333333333333cccc" },
                { "name": "late", "image": "i", "imageID": "", "ready": false, "restartCount": 0 }
            ]
        }
    }))
    .expect("pod")
}

#[test]
fn every_container_of_the_pod_is_selected_or_the_one_asked() {
    let (ids, not_started) = container_ids(&pod(), None).expect("ids");
    assert_eq!(ids, ["111111111111", "222222222222", "333333333333"]);
    assert_eq!(not_started, ["late"]);
    let (ids, not_started) = container_ids(&pod(), Some("sidecar")).expect("ids");
    assert_eq!(ids, ["333333333333"]);
    assert!(not_started.is_empty());
    let e = container_ids(&pod(), Some("nope")).expect_err("unknown");
    assert_eq!(
        e.to_string(),
        "pod shop/web-0 has no container named nope (it has: init, app, sidecar, late)"
    );
}
