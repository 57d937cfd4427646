//! The webhook's certificate, managed by the operator (no cert-manager, no
//! chart-generated keys, so `helm template`, GitOps and `kubectl apply -k` work
//! alike): a CA and a serving certificate in the Secret [`SECRET_NAME`] of the
//! operator's namespace, shared by every replica.
//!
//! ```text
//!  start, then every 6 h ─▶ Secret ok? ── yes ─▶ serve it
//!                              │ no: missing, unreadable, other host names,
//!                              │     serving cert < 90 days left, CA < 1 year left
//!                              ▼
//!          new serving cert (same CA) or new CA + cert ─▶ create / replace
//!          (resourceVersion precondition: two replicas never both win) ─▶ serve it
//! ```
//!
//! The CA (ECDSA P-256, 10 years) is what the CRD's `caBundle` names; the
//! serving certificate (1 year) is renewed under the same CA, so the
//! `caBundle` does not change when it is.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

use chrono::{DateTime, Datelike, Duration, Utc};
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{ObjectMeta, PostParams};
use kube::{Api, Client};
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose,
};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

/// Name of the Secret holding the webhook's CA and serving certificate.
pub const SECRET_NAME: &str = "fine-grained-monitor-webhook-tls";
const HOSTS_ANNOTATION: &str = "fgm.dev/webhook-hosts";
const CERT_NOT_AFTER: &str = "fgm.dev/tls-not-after";
const CA_NOT_AFTER: &str = "fgm.dev/ca-not-after";
const CA_DAYS: i64 = 3650;
const CERT_DAYS: i64 = 365;
const RENEW_CERT_BEFORE_DAYS: i64 = 90;
const RENEW_CA_BEFORE_DAYS: i64 = 365;
const CA_NAME: &str = "fine-grained-monitor webhook CA";

/// What went wrong with the webhook's certificate.
#[derive(Debug, thiserror::Error)]
pub enum CertError {
    #[error("cannot make the webhook certificate: {0}")]
    Generate(#[from] rcgen::Error),
    #[error("cannot {action} Secret {namespace}/{SECRET_NAME}: {source}")]
    Api {
        action: &'static str,
        namespace: String,
        source: kube::Error,
    },
    #[error("Secret {namespace}/{SECRET_NAME} changed under every attempt to write it")]
    Contended { namespace: String },
    #[error("webhook certificate unusable: {0}")]
    Unusable(String),
}

/// The PEM files of one CA + serving certificate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Bundle {
    pub ca_cert: String,
    pub ca_key: String,
    pub cert: String,
    pub key: String,
    pub hosts: Vec<String>,
    pub cert_not_after: DateTime<Utc>,
    pub ca_not_after: DateTime<Utc>,
}

/// A day as rcgen takes it (its `time` type, not named here).
macro_rules! date {
    ($t:expr) => {{
        let t: DateTime<Utc> = $t;
        rcgen::date_time_ymd(t.year(), t.month() as u8, t.day() as u8)
    }};
}

fn ca_params(not_after: DateTime<Utc>, now: DateTime<Utc>) -> CertificateParams {
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, CA_NAME);
    params.distinguished_name = dn;
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    params.not_before = date!(now - Duration::days(1));
    params.not_after = date!(not_after);
    params
}

/// A serving certificate for `hosts` signed by the CA (`ca_key`, with the CA's
/// own subject and usages).
fn serving_cert(
    ca_key: &KeyPair,
    ca_not_after: DateTime<Utc>,
    hosts: &[String],
    now: DateTime<Utc>,
) -> Result<(String, String, DateTime<Utc>), CertError> {
    let issuer = Issuer::new(ca_params(ca_not_after, now), ca_key);
    let mut params = CertificateParams::new(hosts.to_vec())?;
    let mut dn = DistinguishedName::new();
    dn.push(
        DnType::CommonName,
        hosts.first().cloned().unwrap_or_default(),
    );
    params.distinguished_name = dn;
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    let not_after = (now + Duration::days(CERT_DAYS)).min(ca_not_after);
    params.not_before = date!(now - Duration::days(1));
    params.not_after = date!(not_after);
    let key = KeyPair::generate()?;
    let cert = params.signed_by(&key, &issuer)?;
    Ok((cert.pem(), key.serialize_pem(), not_after))
}

/// A new CA and serving certificate for `hosts`.
pub fn generate(hosts: &[String], now: DateTime<Utc>) -> Result<Bundle, CertError> {
    let ca_not_after = now + Duration::days(CA_DAYS);
    let ca_key = KeyPair::generate()?;
    let ca_cert = ca_params(ca_not_after, now).self_signed(&ca_key)?;
    let (cert, key, cert_not_after) = serving_cert(&ca_key, ca_not_after, hosts, now)?;
    Ok(Bundle {
        ca_cert: ca_cert.pem(),
        ca_key: ca_key.serialize_pem(),
        cert,
        key,
        hosts: hosts.to_vec(),
        cert_not_after,
        ca_not_after,
    })
}

/// `bundle` with a new serving certificate for `hosts` under the same CA.
pub fn renew(bundle: &Bundle, hosts: &[String], now: DateTime<Utc>) -> Result<Bundle, CertError> {
    let ca_key = KeyPair::from_pem(&bundle.ca_key)?;
    let (cert, key, cert_not_after) = serving_cert(&ca_key, bundle.ca_not_after, hosts, now)?;
    Ok(Bundle {
        cert,
        key,
        cert_not_after,
        hosts: hosts.to_vec(),
        ..bundle.clone()
    })
}

/// What to do with the bundle found in the Secret.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    Keep,
    RenewCert,
    Replace,
}

/// Judges a stored bundle: keep it, renew its serving certificate, or start over.
pub fn judge(bundle: Option<&Bundle>, hosts: &[String], now: DateTime<Utc>) -> Verdict {
    let Some(b) = bundle else {
        return Verdict::Replace;
    };
    if KeyPair::from_pem(&b.ca_key).is_err()
        || b.ca_not_after < now + Duration::days(RENEW_CA_BEFORE_DAYS)
    {
        return Verdict::Replace;
    }
    if b.hosts != hosts
        || b.cert_not_after < now + Duration::days(RENEW_CERT_BEFORE_DAYS)
        || certified_key(b).is_err()
    {
        return Verdict::RenewCert;
    }
    Verdict::Keep
}

fn text(data: &BTreeMap<String, ByteString>, key: &str) -> Option<String> {
    data.get(key)
        .and_then(|v| String::from_utf8(v.0.clone()).ok())
}

fn time(annotations: &BTreeMap<String, String>, key: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(annotations.get(key)?)
        .ok()
        .map(|t| t.to_utc())
}

/// The bundle a Secret holds (None when anything is missing).
pub fn from_secret(secret: &Secret) -> Option<Bundle> {
    let data = secret.data.as_ref()?;
    let annotations = secret.metadata.annotations.as_ref()?;
    Some(Bundle {
        ca_cert: text(data, "ca.crt")?,
        ca_key: text(data, "ca.key")?,
        cert: text(data, "tls.crt")?,
        key: text(data, "tls.key")?,
        hosts: annotations
            .get(HOSTS_ANNOTATION)?
            .split(',')
            .map(str::to_string)
            .collect(),
        cert_not_after: time(annotations, CERT_NOT_AFTER)?,
        ca_not_after: time(annotations, CA_NOT_AFTER)?,
    })
}

fn to_secret(bundle: &Bundle, namespace: &str, resource_version: Option<String>) -> Secret {
    let bytes = |s: &str| ByteString(s.as_bytes().to_vec());
    Secret {
        metadata: ObjectMeta {
            name: Some(SECRET_NAME.into()),
            namespace: Some(namespace.into()),
            resource_version,
            labels: Some(BTreeMap::from([(
                "app.kubernetes.io/managed-by".to_string(),
                "fine-grained-monitor-operator".to_string(),
            )])),
            annotations: Some(BTreeMap::from([
                (HOSTS_ANNOTATION.to_string(), bundle.hosts.join(",")),
                (
                    CERT_NOT_AFTER.to_string(),
                    bundle.cert_not_after.to_rfc3339(),
                ),
                (CA_NOT_AFTER.to_string(), bundle.ca_not_after.to_rfc3339()),
            ])),
            ..ObjectMeta::default()
        },
        type_: Some("Opaque".into()),
        data: Some(BTreeMap::from([
            ("ca.crt".to_string(), bytes(&bundle.ca_cert)),
            ("ca.key".to_string(), bytes(&bundle.ca_key)),
            ("tls.crt".to_string(), bytes(&bundle.cert)),
            ("tls.key".to_string(), bytes(&bundle.key)),
        ])),
        ..Secret::default()
    }
}

/// The bundle for `hosts` from the Secret in `namespace`, made or renewed when needed.
pub async fn ensure(
    client: &Client,
    namespace: &str,
    hosts: &[String],
) -> Result<Bundle, CertError> {
    let api: Api<Secret> = Api::namespaced(client.clone(), namespace);
    let err = |action: &'static str| {
        let namespace = namespace.to_string();
        move |source| CertError::Api {
            action,
            namespace,
            source,
        }
    };
    for _ in 0..5 {
        let now = Utc::now();
        let existing = api.get_opt(SECRET_NAME).await.map_err(err("read"))?;
        let found = existing.as_ref().and_then(from_secret);
        let bundle = match judge(found.as_ref(), hosts, now) {
            Verdict::Keep => return found.ok_or_else(|| CertError::Unusable("vanished".into())),
            Verdict::RenewCert => {
                let old = found.ok_or_else(|| CertError::Unusable("vanished".into()))?;
                let b = renew(&old, hosts, now)?;
                tracing::info!(secret = SECRET_NAME, hosts = %hosts.join(","), "renewed the webhook's serving certificate");
                b
            }
            Verdict::Replace => {
                tracing::info!(secret = SECRET_NAME, hosts = %hosts.join(","), "made a new webhook CA and serving certificate");
                generate(hosts, now)?
            }
        };
        let result = match &existing {
            None => api
                .create(&PostParams::default(), &to_secret(&bundle, namespace, None))
                .await
                .map(|_| ()),
            Some(secret) => api
                .replace(
                    SECRET_NAME,
                    &PostParams::default(),
                    &to_secret(&bundle, namespace, secret.metadata.resource_version.clone()),
                )
                .await
                .map(|_| ()),
        };
        match result {
            Ok(()) => return Ok(bundle),
            // Another replica wrote it first: use theirs.
            Err(kube::Error::Api(e)) if e.code == 409 => continue,
            Err(e) => return Err(err("write")(e)),
        }
    }
    Err(CertError::Contended {
        namespace: namespace.into(),
    })
}

/// The serving certificate and key as rustls serves them.
pub fn certified_key(bundle: &Bundle) -> Result<Arc<CertifiedKey>, CertError> {
    let certs = CertificateDer::pem_slice_iter(bundle.cert.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| CertError::Unusable(format!("tls.crt: {e}")))?;
    if certs.is_empty() {
        return Err(CertError::Unusable("tls.crt holds no certificate".into()));
    }
    let key = PrivateKeyDer::from_pem_slice(bundle.key.as_bytes())
        .map_err(|e| CertError::Unusable(format!("tls.key: {e}")))?;
    let signer = rustls::crypto::ring::sign::any_supported_type(&key)
        .map_err(|e| CertError::Unusable(format!("tls.key: {e}")))?;
    Ok(Arc::new(CertifiedKey::new(certs, signer)))
}

/// The certificate the webhook serves, swapped when it is renewed.
#[derive(Debug)]
pub struct Resolver(RwLock<Arc<CertifiedKey>>);

impl Resolver {
    pub fn new(key: Arc<CertifiedKey>) -> Self {
        Self(RwLock::new(key))
    }

    pub fn set(&self, key: Arc<CertifiedKey>) {
        *self.0.write().unwrap_or_else(|p| p.into_inner()) = key;
    }
}

impl ResolvesServerCert for Resolver {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.0.read().unwrap_or_else(|p| p.into_inner()).clone())
    }
}

#[cfg(test)]
mod tests;
