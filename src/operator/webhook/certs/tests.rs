use super::*;

fn hosts() -> Vec<String> {
    vec!["svc.ns.svc".into(), "svc.ns.svc.cluster.local".into()]
}

#[test]
fn a_new_bundle_is_served_and_kept() {
    let now = Utc::now();
    let bundle = generate(&hosts(), now).unwrap();
    assert!(bundle.ca_cert.starts_with("-----BEGIN CERTIFICATE-----"));
    certified_key(&bundle).expect("rustls takes the serving certificate and key");
    assert_eq!(judge(Some(&bundle), &hosts(), now), Verdict::Keep);
    assert!(bundle.cert_not_after <= bundle.ca_not_after);
}

#[test]
fn what_is_renewed_and_what_is_replaced() {
    let now = Utc::now();
    let bundle = generate(&hosts(), now).unwrap();
    assert_eq!(judge(None, &hosts(), now), Verdict::Replace);
    let other_hosts = vec!["other.ns.svc".to_string()];
    assert_eq!(judge(Some(&bundle), &other_hosts, now), Verdict::RenewCert);
    let in_300_days = now + Duration::days(300);
    assert_eq!(
        judge(Some(&bundle), &hosts(), in_300_days),
        Verdict::RenewCert
    );
    let in_9_years = now + Duration::days(9 * 365 + 10);
    assert_eq!(judge(Some(&bundle), &hosts(), in_9_years), Verdict::Replace);
    let mut broken = bundle.clone();
    broken.key = "not a key".into();
    assert_eq!(judge(Some(&broken), &hosts(), now), Verdict::RenewCert);
    broken.ca_key = "not a key".into();
    assert_eq!(judge(Some(&broken), &hosts(), now), Verdict::Replace);
}

#[test]
fn the_secret_holds_the_whole_bundle() {
    let bundle = generate(&hosts(), Utc::now()).unwrap();
    let secret = to_secret(&bundle, "ns", Some("5".into()));
    assert_eq!(secret.metadata.name.as_deref(), Some(SECRET_NAME));
    let back = from_secret(&secret).unwrap();
    // Times round-trip through RFC 3339 (sub-second digits kept).
    assert_eq!(back, bundle);
    let mut partial = secret.clone();
    partial.data.as_mut().unwrap().remove("ca.key");
    assert_eq!(from_secret(&partial), None);
}
