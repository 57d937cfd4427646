use super::*;
use kube::core::Status;

fn api(code: u16, message: &str) -> kube::Error {
    kube::Error::Api(Status::failure(message, "Reason").with_code(code).boxed())
}

#[test]
fn classifies_api_statuses() {
    let denied = classify_watch(
        "list pods",
        &watcher::Error::InitialListFailed(api(
            403,
            "pods is forbidden: User \"system:serviceaccount:x:y\" cannot list",
        )),
    );
    assert_eq!(denied.cause, Cause::Forbidden);
    let text = denied.to_string();
    assert!(
        text.starts_with("RBAC denied: list pods: 403 pods is forbidden"),
        "{text}"
    );
    assert!(text.contains("get/list/watch on pods"), "{text}");
    assert_eq!(
        classify_api("w", &api(401, "Unauthorized")).cause,
        Cause::Unauthorized
    );
    assert_eq!(
        classify_api("w", &api(400, "bad selector")).cause,
        Cause::Rejected
    );
    let gone =
        watcher::Error::WatchError(Status::failure("too old", "Expired").with_code(410).boxed());
    assert_eq!(classify_watch("w", &gone).cause, Cause::Rejected);
}

#[test]
fn health_serializes_for_the_health_endpoint() {
    let h = Health::unavailable(&Unavailable::new(Cause::Unreachable, "connection refused"));
    assert_eq!(
        serde_json::to_value(&h).unwrap(),
        serde_json::json!({"state": "unavailable", "cause": "unreachable",
            "reason": "API server unreachable: connection refused"})
    );
    assert_eq!(
        serde_json::to_value(Health::Synced).unwrap(),
        serde_json::json!({"state": "synced"})
    );
    assert_eq!(Health::Syncing.to_string(), "syncing");
}

#[test]
fn one_log_line_per_outage_and_per_cause() {
    let mut r = Reporter::default();
    let down = Unavailable::new(Cause::Unreachable, "refused");
    assert!(
        r.succeeded().is_none(),
        "no recovery line without an outage"
    );
    assert!(matches!(r.failed(&down), Some(LogLine::Unavailable(_))));
    assert!(r.failed(&down).is_none(), "retries stay quiet");
    let denied = Unavailable::new(Cause::Forbidden, "403");
    assert!(r.failed(&denied).is_some(), "a new cause is worth a line");
    assert_eq!(r.succeeded(), Some(LogLine::Resumed));
    assert!(r.succeeded().is_none());
    assert!(r.failed(&down).is_some(), "the next outage is logged again");
}

#[test]
fn backoff_doubles_to_the_cap_and_resets() {
    use kube::runtime::utils::Backoff as _;
    let mut b = Backoff::new(Duration::from_millis(500), Duration::from_secs(3));
    let first: Vec<_> = b.by_ref().take(5).map(|d| d.as_millis()).collect();
    assert_eq!(first, [500, 1000, 2000, 3000, 3000]);
    b.reset();
    assert_eq!(b.next(), Some(Duration::from_millis(500)));
}

#[test]
fn details_stay_on_one_line() {
    let u = Unavailable::new(Cause::BadKubeconfig, "parse error:\n  line 1\n\tcolumn 2");
    assert_eq!(u.detail, "parse error: line 1 column 2");
}

#[test]
fn source_chain_keeps_hidden_causes() {
    let inner = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "connection refused");
    let outer = std::io::Error::other(inner);
    assert_eq!(source_chain(&outer), "connection refused");
}
