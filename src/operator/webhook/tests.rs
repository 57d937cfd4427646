use std::sync::Arc;

use chrono::Utc;
use rustls_pki_types::pem::PemObject;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::*;

fn review(desired: &str, objects: Vec<serde_json::Value>) -> ConversionReview {
    serde_json::from_value(json!({
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "ConversionReview",
        "request": {"uid": "u-1", "desiredAPIVersion": desired, "objects": objects},
    }))
    .unwrap()
}

fn alpha(name: &str) -> serde_json::Value {
    json!({
        "apiVersion": "fgm.dev/v1alpha1", "kind": "NodeMonitor",
        "metadata": {"name": name, "namespace": "ns"},
        "spec": {"retention": {"maxBytes": "1Gi"}, "enrichment": {"enabled": false}},
    })
}

#[test]
fn a_review_is_answered_object_by_object_in_order() {
    let answered = answer(review("fgm.dev/v1beta1", vec![alpha("a"), alpha("b")]));
    let response = answered.response.unwrap();
    assert_eq!(response.uid, "u-1");
    assert_eq!(
        response.result.status,
        Some(kube::core::response::StatusSummary::Success)
    );
    let names: Vec<_> = response
        .converted_objects
        .iter()
        .map(|o| o["metadata"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["a", "b"]);
    assert_eq!(
        response.converted_objects[0]["spec"]["retention"]["maxSize"],
        "1Gi"
    );
    assert_eq!(
        response.converted_objects[1]["apiVersion"],
        "fgm.dev/v1beta1"
    );
}

#[test]
fn an_unconvertible_object_fails_the_review_with_the_reason() {
    let answered = answer(review("fgm.dev/v9", vec![alpha("a")]));
    let response = answered.response.unwrap();
    assert_eq!(response.uid, "u-1");
    assert_eq!(
        response.result.status,
        Some(kube::core::response::StatusSummary::Failure)
    );
    assert!(
        response
            .result
            .message
            .contains("fgm.dev/v1alpha1 and fgm.dev/v1beta1")
    );
    assert!(response.converted_objects.is_empty());
}

#[test]
fn hosts_come_from_the_service_or_the_url() {
    let service = WebhookTarget::Service {
        namespace: "fgm".into(),
        name: "hook".into(),
        port: 443,
    };
    assert_eq!(
        hosts(&service),
        ["hook.fgm.svc", "hook.fgm.svc.cluster.local"]
    );
    let url = |u: &str| hosts(&WebhookTarget::Url(u.into()));
    assert_eq!(url("https://127.0.0.1:9443/convert"), ["127.0.0.1"]);
    assert_eq!(url("https://[::1]:9443/convert"), ["::1"]);
    assert_eq!(url("https://hook.example/convert"), ["hook.example"]);
}

/// Serves the webhook with `served`, posts one review trusting `trusted` (PEM),
/// returns the HTTP response or the TLS error.
async fn post_over_tls(served: &certs::Bundle, trusted: &str) -> Result<String, String> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let resolver = Arc::new(certs::Resolver::new(certs::certified_key(served).unwrap()));
    let stop = CancellationToken::new();
    let server = tokio::spawn(serve(listener, resolver, Default::default(), stop.clone()));
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls_pki_types::CertificateDer::pem_slice_iter(trusted.as_bytes()) {
        roots.add(cert.unwrap()).unwrap();
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let name = rustls_pki_types::ServerName::try_from("127.0.0.1").unwrap();
    let result = match connector.connect(name, tcp).await {
        Ok(mut tls) => {
            let body = serde_json::to_vec(&review("fgm.dev/v1beta1", vec![alpha("a")])).unwrap();
            let head = format!(
                "POST /convert HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            );
            tls.write_all(head.as_bytes()).await.unwrap();
            tls.write_all(&body).await.unwrap();
            let mut out = String::new();
            let _ = tls.read_to_string(&mut out).await;
            Ok(out)
        }
        Err(e) => Err(e.to_string()),
    };
    stop.cancel();
    server.await.unwrap();
    result
}

#[tokio::test]
async fn the_webhook_answers_over_tls_to_a_client_trusting_its_ca() {
    let now = Utc::now();
    let bundle = certs::generate(&["127.0.0.1".to_string()], now).unwrap();
    let out = post_over_tls(&bundle, &bundle.ca_cert).await.unwrap();
    assert!(out.starts_with("HTTP/1.1 200"), "{out}");
    assert!(out.contains(r#""maxSize":"1Gi""#), "{out}");

    // A renewed serving certificate is trusted through the same caBundle.
    let renewed = certs::renew(&bundle, &["127.0.0.1".to_string()], now).unwrap();
    assert_ne!(renewed.cert, bundle.cert);
    let out = post_over_tls(&renewed, &bundle.ca_cert).await.unwrap();
    assert!(out.starts_with("HTTP/1.1 200"), "{out}");

    // Another CA is refused by the client: the caBundle is what makes it trusted.
    let other = certs::generate(&["127.0.0.1".to_string()], now).unwrap();
    let err = post_over_tls(&bundle, &other.ca_cert).await.unwrap_err();
    assert!(err.contains("invalid peer certificate"), "{err}");
}
