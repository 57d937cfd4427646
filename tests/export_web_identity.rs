//! Web identity (IRSA-style) credentials end to end, with real parts only:
//! the test control plane's kube-apiserver is the OIDC issuer (as EKS's is),
//! a ServiceAccount token projected for the audience `fgm-s3` is the
//! agent's `AWS_WEB_IDENTITY_TOKEN_FILE`, and SeaweedFS's STS
//! (`AssumeRoleWithWebIdentity`) checks it against the apiserver's JWKS and a
//! role whose trust policy names that ServiceAccount. A token of another
//! ServiceAccount is refused with a clear status.

// Test crate: a panic is the failure report.
#![allow(clippy::unwrap_used)]

mod s3_support;
mod support;

use std::time::Duration;

use k8s_openapi::api::authentication::v1::TokenRequest;
use k8s_openapi::api::core::v1::ServiceAccount;
use k8s_openapi::api::rbac::v1::ClusterRoleBinding;
use kube::api::{Api, PostParams};
use s3_support::{S3Server, start_agent};

const AUDIENCE: &str = "fgm-s3";
const ROLE_ARN: &str = "arn:aws:iam::000000000000:role/fgm-exporter";
const BUCKET: &str = "web-identity";

/// The IAM settings: the apiserver as OIDC provider, one role for one ServiceAccount.
fn iam_config(cp: &support::ControlPlane, namespace: &str) -> serde_json::Value {
    serde_json::json!({
        "sts": {
            "tokenDuration": "1h",
            "maxSessionLength": "12h",
            "issuer": "seaweedfs-sts",
            // base64 of a 32-byte test key.
            "signingKey": "ZmdtLXRlc3Qtc3RzLXNpZ25pbmcta2V5LTMyLWJ5dGVz"
        },
        "providers": [{
            "name": "kubernetes",
            "type": "oidc",
            "enabled": true,
            "config": {
                "issuer": "https://kubernetes.default.svc.cluster.local",
                "clientId": AUDIENCE,
                "jwksUri": format!("{}/openid/v1/jwks", cp.server),
                "tlsCaCert": cp.pki.ca_cert.display().to_string()
            }
        }],
        "policy": { "defaultEffect": "Deny" },
        "roles": [{
            "roleName": "fgm-exporter",
            "roleArn": ROLE_ARN,
            "trustPolicy": {
                "Version": "2012-10-17",
                "Statement": [{
                    "Effect": "Allow",
                    "Principal": { "Federated": "kubernetes" },
                    "Action": ["sts:AssumeRoleWithWebIdentity"],
                    "Condition": { "StringEquals": {
                        "oidc:sub": format!("system:serviceaccount:{namespace}:fgm-exporter")
                    } }
                }]
            },
            "attachedPolicies": ["export-writer"]
        }],
        "policies": [{
            "name": "export-writer",
            "document": {
                "Version": "2012-10-17",
                "Statement": [{
                    "Effect": "Allow",
                    "Action": ["s3:PutObject", "s3:GetObject", "s3:ListBucket"],
                    "Resource": [format!("arn:aws:s3:::{BUCKET}"), format!("arn:aws:s3:::{BUCKET}/*")]
                }]
            }
        }]
    })
}

/// A token of ServiceAccount `name` for the S3 audience, as the kubelet projects it.
async fn token(client: &kube::Client, namespace: &str, name: &str) -> String {
    let sas: Api<ServiceAccount> = Api::namespaced(client.clone(), namespace);
    let sa: ServiceAccount =
        serde_json::from_value(serde_json::json!({ "metadata": { "name": name } })).unwrap();
    sas.create(&PostParams::default(), &sa).await.unwrap();
    let request: TokenRequest = serde_json::from_value(serde_json::json!({
        "spec": { "audiences": [AUDIENCE], "expirationSeconds": 3600 }
    }))
    .unwrap();
    sas.create_token_request(name, &PostParams::default(), &request)
        .await
        .unwrap()
        .status
        .unwrap()
        .token
        .unwrap()
}

#[test]
fn a_projected_service_account_token_is_traded_at_sts_for_upload_keys() {
    let cp = support::control_plane();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let (namespace, good, wrong) = rt.block_on(async {
        let client = cp.client().await;
        let namespace = cp.namespace(&client, "wi").await;
        // Anyone may read the issuer's public keys (what a cloud IAM does with a cluster's issuer).
        let binding: ClusterRoleBinding = serde_json::from_value(serde_json::json!({
            "metadata": { "name": format!("fgm-test-oidc-discovery-{namespace}") },
            "roleRef": { "apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                         "name": "system:service-account-issuer-discovery" },
            "subjects": [{ "apiGroup": "rbac.authorization.k8s.io", "kind": "Group",
                           "name": "system:unauthenticated" }]
        }))
        .unwrap();
        Api::<ClusterRoleBinding>::all(client.clone())
            .create(&PostParams::default(), &binding)
            .await
            .unwrap();
        let good = token(&client, &namespace, "fgm-exporter").await;
        let wrong = token(&client, &namespace, "someone-else").await;
        (namespace, good, wrong)
    });
    let server = S3Server::start("web-identity", Some(iam_config(cp, &namespace)));
    let admin = rt.block_on(server.bucket(BUCKET));
    let tokens = tempfile::tempdir().unwrap();
    let write_token = |name: &str, t: &str| {
        let path = tokens.path().join(name);
        std::fs::write(&path, t).unwrap();
        path.display().to_string()
    };
    let env = |file: String| {
        vec![
            ("AWS_WEB_IDENTITY_TOKEN_FILE", file),
            ("AWS_ROLE_ARN", ROLE_ARN.to_string()),
        ]
    };

    // The trusted ServiceAccount's token: temporary keys, uploads.
    let data = tempfile::tempdir().unwrap();
    let agent = start_agent(
        &server,
        data.path(),
        "node-w",
        BUCKET,
        &env(write_token("good", &good)),
        &[],
    );
    let status = agent.wait_status("uploads with STS keys", Duration::from_secs(90), |s| {
        s["uploadedFiles"].as_u64() >= Some(2)
    });
    assert_eq!(status["failing"], false, "{status}");
    agent.stop();
    let listed = rt.block_on(admin.list("fgm/test/", None)).unwrap().objects;
    assert!(listed.len() >= 2, "{listed:?}");
    assert!(listed.iter().all(|o| o.key.contains("/node=node-w/")));

    // Another ServiceAccount's token, valid but not trusted by the role: refused.
    let data = tempfile::tempdir().unwrap();
    let agent = start_agent(
        &server,
        data.path(),
        "node-x",
        BUCKET,
        &env(write_token("wrong", &wrong)),
        &[],
    );
    let status = agent.wait_status("refused by STS", Duration::from_secs(60), |s| {
        s["failing"] == true
    });
    assert_eq!(status["reason"], "AccessDenied", "{status}");
    assert!(
        status["message"]
            .as_str()
            .is_some_and(|m| m.contains("AssumeRoleWithWebIdentity") && m.contains("trust policy")),
        "{status}"
    );
    agent.stop();
    let listed = rt.block_on(admin.list("fgm/test/", None)).unwrap().objects;
    assert!(
        listed.iter().all(|o| !o.key.contains("/node=node-x/")),
        "{listed:?}"
    );
}
