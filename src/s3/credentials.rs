//! Where the S3 client's keys come from, read from the standard AWS
//! environment variables so that both ways a pod gets an identity work:
//!
//! - static keys: `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY` (and
//!   `AWS_SESSION_TOKEN`), which the DaemonSet fills from the Secret a
//!   NodeMonitor names (`secretKeyRef`: the operator never reads the Secret);
//! - web identity (IRSA-style): `AWS_WEB_IDENTITY_TOKEN_FILE` + `AWS_ROLE_ARN`
//!   (+ `AWS_ROLE_SESSION_NAME`). The token file (a projected service-account
//!   token, rotated by the kubelet) is read again at every refresh and traded
//!   at STS (`AssumeRoleWithWebIdentity`, unsigned) for temporary keys, which
//!   are renewed five minutes before they expire.
//!
//! Web identity wins when both are set, as in the AWS SDKs.

use std::path::PathBuf;
use std::time::Duration;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use http_body_util::Full;
use tokio::sync::Mutex;

use super::transport::HttpClient;
use super::{S3Error, xml};

/// Keys for signing. `Debug` never prints the secret or the token.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    pub access_key_id: String,
    pub secret_access_key: String,
    pub session_token: Option<String>,
    /// When temporary keys stop working.
    pub expires: Option<DateTime<Utc>>,
}

impl Credentials {
    pub fn new(
        access_key_id: &str,
        secret_access_key: &str,
        session_token: Option<&str>,
        expires: Option<DateTime<Utc>>,
    ) -> Self {
        Self {
            access_key_id: access_key_id.to_string(),
            secret_access_key: secret_access_key.to_string(),
            session_token: session_token.map(str::to_string),
            expires,
        }
    }
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &"<redacted>")
            .field(
                "session_token",
                &self.session_token.as_ref().map(|_| "<redacted>"),
            )
            .field("expires", &self.expires)
            .finish()
    }
}

/// How to get temporary keys from a web identity token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebIdentity {
    pub token_file: PathBuf,
    pub role_arn: String,
    pub session_name: String,
    /// STS endpoint URL (`https://sts.<region>.amazonaws.com`, or the S3
    /// endpoint for servers that answer STS there, like SeaweedFS).
    pub sts_endpoint: String,
    pub duration: Duration,
}

/// Where credentials come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    Static(Credentials),
    WebIdentity(WebIdentity),
}

impl Source {
    /// The source the environment describes (`get` looks a variable up);
    /// `sts_endpoint` is used for web identity. Names what is missing.
    pub fn from_env(
        get: impl Fn(&str) -> Option<String>,
        sts_endpoint: &str,
        default_session_name: &str,
    ) -> Result<Self, S3Error> {
        let var = |name: &str| get(name).filter(|v| !v.trim().is_empty());
        if let Some(token_file) = var("AWS_WEB_IDENTITY_TOKEN_FILE") {
            let role_arn = var("AWS_ROLE_ARN").ok_or_else(|| {
                S3Error::Credentials(
                    "AWS_WEB_IDENTITY_TOKEN_FILE is set but AWS_ROLE_ARN is not".into(),
                )
            })?;
            return Ok(Source::WebIdentity(WebIdentity {
                token_file: PathBuf::from(token_file),
                role_arn,
                session_name: var("AWS_ROLE_SESSION_NAME")
                    .unwrap_or_else(|| default_session_name.to_string()),
                sts_endpoint: sts_endpoint.to_string(),
                duration: Duration::from_secs(3600),
            }));
        }
        match (var("AWS_ACCESS_KEY_ID"), var("AWS_SECRET_ACCESS_KEY")) {
            (Some(id), Some(secret)) => Ok(Source::Static(Credentials::new(
                id.trim(),
                secret.trim(),
                var("AWS_SESSION_TOKEN").as_deref().map(str::trim),
                None,
            ))),
            (Some(_), None) => Err(S3Error::Credentials(
                "AWS_ACCESS_KEY_ID is set but AWS_SECRET_ACCESS_KEY is not".into(),
            )),
            _ => Err(S3Error::Credentials(
                "no credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (a NodeMonitor's \
                 spec.export.credentials.secretRef does this), or AWS_WEB_IDENTITY_TOKEN_FILE and \
                 AWS_ROLE_ARN (spec.export.credentials.webIdentity)"
                    .into(),
            )),
        }
    }
}

/// Renew temporary keys this long before they expire.
const REFRESH_BEFORE: Duration = Duration::from_secs(300);

/// Hands out current credentials, fetching and caching temporary ones.
#[derive(Debug)]
pub struct Provider {
    source: Source,
    http: HttpClient,
    cached: Mutex<Option<Credentials>>,
}

impl Provider {
    pub fn new(source: Source, http: HttpClient) -> Self {
        Self {
            source,
            http,
            cached: Mutex::new(None),
        }
    }

    pub fn source(&self) -> &Source {
        &self.source
    }

    /// Current credentials; temporary ones are renewed when about to expire.
    pub async fn get(&self) -> Result<Credentials, S3Error> {
        let web = match &self.source {
            Source::Static(c) => return Ok(c.clone()),
            Source::WebIdentity(web) => web,
        };
        let mut cached = self.cached.lock().await;
        let fresh = cached.as_ref().is_some_and(|c| {
            c.expires.is_none_or(|exp| {
                let margin = chrono::Duration::from_std(REFRESH_BEFORE).unwrap_or_default();
                Utc::now() + margin < exp
            })
        });
        if !fresh {
            *cached = Some(assume_role_with_web_identity(&self.http, web).await?);
        }
        cached
            .clone()
            .ok_or_else(|| S3Error::Credentials("no credentials".into()))
    }

    /// Forgets temporary keys (the server said they expired or were refused).
    pub async fn invalidate(&self) {
        *self.cached.lock().await = None;
    }
}

/// The form body of an `AssumeRoleWithWebIdentity` call (pure).
pub fn sts_form(web: &WebIdentity, token: &str) -> String {
    let pairs = [
        ("Action", "AssumeRoleWithWebIdentity"),
        ("Version", "2011-06-15"),
        ("RoleArn", web.role_arn.as_str()),
        ("RoleSessionName", web.session_name.as_str()),
        ("WebIdentityToken", token),
        ("DurationSeconds", &web.duration.as_secs().to_string()),
    ];
    pairs
        .iter()
        .map(|(k, v)| format!("{k}={}", super::sigv4::uri_encode(v, false)))
        .collect::<Vec<_>>()
        .join("&")
}

/// Temporary credentials from an STS answer (pure); `Err` carries STS's error.
pub fn parse_sts_response(status: u16, body: &str) -> Result<Credentials, S3Error> {
    if !(200..300).contains(&status) {
        let (code, message) = xml::parse_error(body)
            .unwrap_or_else(|| ("HTTP".into(), body.chars().take(200).collect()));
        return Err(S3Error::Status {
            op: "AssumeRoleWithWebIdentity",
            target: "STS".into(),
            status,
            code,
            message,
        });
    }
    let field = |name: &str| {
        xml::text(body, name).ok_or_else(|| {
            S3Error::Credentials(format!("STS answer without {name}: {}", snippet(body)))
        })
    };
    let expires = field("Expiration")
        .ok()
        .and_then(|t| DateTime::parse_from_rfc3339(t.trim()).ok())
        .map(|t| t.with_timezone(&Utc));
    Ok(Credentials::new(
        field("AccessKeyId")?.trim(),
        field("SecretAccessKey")?.trim(),
        Some(field("SessionToken")?.trim()),
        expires,
    ))
}

fn snippet(body: &str) -> String {
    body.chars().take(200).collect()
}

async fn assume_role_with_web_identity(
    http: &HttpClient,
    web: &WebIdentity,
) -> Result<Credentials, S3Error> {
    let token = tokio::fs::read_to_string(&web.token_file)
        .await
        .map_err(|e| {
            S3Error::Credentials(format!(
                "cannot read the web identity token {}: {e}",
                web.token_file.display()
            ))
        })?;
    let request = http::Request::post(&web.sts_endpoint)
        .header(
            http::header::CONTENT_TYPE,
            "application/x-www-form-urlencoded",
        )
        .header(http::header::ACCEPT, "application/xml")
        .body(Full::new(Bytes::from(sts_form(web, token.trim()))))
        .map_err(|e| S3Error::Config {
            what: format!("STS endpoint {:?}", web.sts_endpoint),
            reason: e.to_string(),
        })?;
    let response = http
        .send(request, 1 << 20)
        .await
        .map_err(|e| e.into_error("AssumeRoleWithWebIdentity", &web.sts_endpoint))?;
    let body = String::from_utf8_lossy(&response.body);
    let creds = parse_sts_response(response.status.as_u16(), &body)?;
    tracing::info!(role = %web.role_arn, access_key_id = %creds.access_key_id, expires = ?creds.expires, "temporary credentials from STS (web identity)");
    Ok(creds)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| map.get(k).cloned()
    }

    #[test]
    fn environment_picks_the_source_and_names_what_is_missing() {
        let s = Source::from_env(
            env(&[
                ("AWS_ACCESS_KEY_ID", "AK"),
                ("AWS_SECRET_ACCESS_KEY", "SK\n"),
            ]),
            "http://sts",
            "fgm",
        )
        .unwrap();
        assert_eq!(s, Source::Static(Credentials::new("AK", "SK", None, None)));
        let s = Source::from_env(
            env(&[
                ("AWS_ACCESS_KEY_ID", "AK"),
                ("AWS_SECRET_ACCESS_KEY", "SK"),
                ("AWS_WEB_IDENTITY_TOKEN_FILE", "/t"),
                ("AWS_ROLE_ARN", "arn:aws:iam::1:role/r"),
            ]),
            "http://sts",
            "fgm-node-a",
        )
        .unwrap();
        let Source::WebIdentity(web) = s else {
            panic!("web identity wins")
        };
        assert_eq!(web.session_name, "fgm-node-a");
        assert_eq!(web.token_file, PathBuf::from("/t"));
        let e = Source::from_env(env(&[("AWS_WEB_IDENTITY_TOKEN_FILE", "/t")]), "s", "n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("AWS_ROLE_ARN"), "{e}");
        let e = Source::from_env(env(&[]), "s", "n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("AWS_ACCESS_KEY_ID"), "{e}");
        let e = Source::from_env(env(&[("AWS_ACCESS_KEY_ID", "AK")]), "s", "n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("AWS_SECRET_ACCESS_KEY"), "{e}");
    }

    #[test]
    fn secrets_are_not_printed() {
        let c = Credentials::new("AKID", "very-secret", Some("tok-secret"), None);
        let shown = format!("{c:?}");
        assert!(shown.contains("AKID"));
        assert!(!shown.contains("very-secret") && !shown.contains("tok-secret"));
    }

    #[test]
    fn sts_form_and_answers() {
        let web = WebIdentity {
            token_file: PathBuf::from("/t"),
            role_arn: "arn:aws:iam::123:role/fgm".into(),
            session_name: "fgm-n1".into(),
            sts_endpoint: "http://sts".into(),
            duration: Duration::from_secs(900),
        };
        assert_eq!(
            sts_form(&web, "a.b+c"),
            "Action=AssumeRoleWithWebIdentity&Version=2011-06-15&RoleArn=arn%3Aaws%3Aiam%3A%3A123%3Arole%2Ffgm\
             &RoleSessionName=fgm-n1&WebIdentityToken=a.b%2Bc&DurationSeconds=900"
        );
        let ok = r#"<AssumeRoleWithWebIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
  <AssumeRoleWithWebIdentityResult><Credentials>
    <AccessKeyId>ASIA1</AccessKeyId><SecretAccessKey>sec</SecretAccessKey>
    <SessionToken>tok</SessionToken><Expiration>2026-01-02T11:00:00Z</Expiration>
  </Credentials></AssumeRoleWithWebIdentityResult></AssumeRoleWithWebIdentityResponse>"#;
        let c = parse_sts_response(200, ok).unwrap();
        assert_eq!(c.access_key_id, "ASIA1");
        assert_eq!(c.session_token.as_deref(), Some("tok"));
        assert_eq!(c.expires.unwrap().to_rfc3339(), "2026-01-02T11:00:00+00:00");
        let denied = r#"<ErrorResponse><Error><Type>Sender</Type><Code>InvalidIdentityToken</Code><Message>token expired</Message></Error></ErrorResponse>"#;
        let e = parse_sts_response(400, denied).unwrap_err();
        assert_eq!(e.reason(), "AccessDenied");
        assert!(e.to_string().contains("token expired"), "{e}");
    }
}
