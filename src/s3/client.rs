//! The S3 calls: where a bucket's objects live (pure: [`BucketConfig`]) and
//! the signed requests ([`Client`]).

use std::sync::Arc;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use http_body_util::Full;

use super::S3Error;
use super::credentials::Provider;
use super::sigv4::{self, EMPTY_SHA256};
use super::transport::{HttpClient, Response};
use super::xml::{self, ListPage};

/// User metadata holding the hex SHA-256 of an object's content: lets a HEAD
/// tell whether an object already holds exactly a local file's bytes.
pub const SHA256_META: &str = "x-amz-meta-fgm-sha256";

/// Largest listing page or error document read back.
const MAX_XML: usize = 16 << 20;

/// Where a bucket's objects are reached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BucketConfig {
    /// `http` or `https`.
    pub scheme: String,
    /// `host[:port]` of the endpoint.
    pub authority: String,
    /// Path of the endpoint (without a trailing `/`), usually empty.
    pub base_path: String,
    pub bucket: String,
    pub region: String,
    /// `https://endpoint/bucket/key` instead of `https://bucket.endpoint/key`.
    pub path_style: bool,
}

impl BucketConfig {
    /// From an endpoint URL (`None`: AWS's regional endpoint), checking each part.
    pub fn new(
        endpoint: Option<&str>,
        bucket: &str,
        region: &str,
        path_style: bool,
    ) -> Result<Self, S3Error> {
        let bad = |what: &str, reason: String| S3Error::Config {
            what: what.to_string(),
            reason,
        };
        if !valid_bucket_name(bucket) {
            return Err(bad(
                "bucket",
                format!(
                    "{bucket:?} is not a bucket name (3-63 lower-case letters, digits, '.' and '-')"
                ),
            ));
        }
        if region.is_empty()
            || !region
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-')
        {
            return Err(bad("region", format!("{region:?} is not a region name")));
        }
        let default_endpoint = format!("https://s3.{region}.amazonaws.com");
        let endpoint = endpoint.unwrap_or(&default_endpoint);
        let uri: http::Uri = endpoint
            .parse()
            .map_err(|e| bad("endpoint", format!("{endpoint:?}: {e}")))?;
        let scheme = uri.scheme_str().unwrap_or_default().to_string();
        if scheme != "http" && scheme != "https" {
            return Err(bad(
                "endpoint",
                format!("{endpoint:?} must start with http:// or https://"),
            ));
        }
        let authority = uri
            .authority()
            .map(|a| a.as_str().to_string())
            .filter(|a| !a.is_empty() && !a.contains('@'))
            .ok_or_else(|| bad("endpoint", format!("{endpoint:?} has no host")))?;
        if uri.query().is_some() {
            return Err(bad(
                "endpoint",
                format!("{endpoint:?} must not have a query"),
            ));
        }
        Ok(Self {
            scheme,
            authority,
            base_path: uri.path().trim_end_matches('/').to_string(),
            bucket: bucket.to_string(),
            region: region.to_string(),
            path_style,
        })
    }

    /// `Host` and encoded path of `key` (`None`: the bucket itself).
    pub fn target(&self, key: Option<&str>) -> (String, String) {
        let key_path = key.map(|k| format!("/{k}")).unwrap_or_default();
        if self.path_style {
            let raw = format!("{}/{}{key_path}", self.base_path, self.bucket);
            (self.authority.clone(), sigv4::encode_path(&raw))
        } else {
            let raw = match key {
                Some(_) => format!("{}{key_path}", self.base_path),
                None => format!("{}/", self.base_path),
            };
            (
                format!("{}.{}", self.bucket, self.authority),
                sigv4::encode_path(&raw),
            )
        }
    }

    /// `s3://bucket/key`, for messages.
    pub fn describe(&self, key: &str) -> String {
        format!("s3://{}/{key}", self.bucket)
    }

    /// The endpoint URL as configured (for STS on S3-compatible servers).
    pub fn endpoint_url(&self) -> String {
        format!("{}://{}{}", self.scheme, self.authority, self.base_path)
    }
}

/// DNS-compatible bucket names (what every S3 implementation accepts).
fn valid_bucket_name(name: &str) -> bool {
    (3..=63).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '.' || c == '-')
        && name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name.ends_with(|c: char| c.is_ascii_alphanumeric())
}

/// What a HEAD or a listing says about an object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectInfo {
    pub key: String,
    pub size: u64,
    /// Our [`SHA256_META`], when the object was written by us.
    pub sha256: Option<String>,
    pub last_modified: Option<DateTime<Utc>>,
}

/// A signed S3 client for one bucket; cheap to clone.
#[derive(Debug, Clone)]
pub struct Client {
    http: HttpClient,
    bucket: BucketConfig,
    credentials: Arc<Provider>,
}

impl Client {
    pub fn new(http: HttpClient, bucket: BucketConfig, credentials: Arc<Provider>) -> Self {
        Self {
            http,
            bucket,
            credentials,
        }
    }

    pub fn bucket(&self) -> &BucketConfig {
        &self.bucket
    }

    /// Uploads `body` as `key` in one PUT: the object appears whole or not at
    /// all, and the server checks the body against its signed SHA-256.
    pub async fn put_object(
        &self,
        key: &str,
        body: Bytes,
        content_type: &str,
    ) -> Result<(), S3Error> {
        let sha = sigv4::sha256_hex(&body);
        let headers = vec![
            ("content-type".to_string(), content_type.to_string()),
            (SHA256_META.to_string(), sha.clone()),
        ];
        self.execute(
            "PutObject",
            "PUT",
            Some(key),
            Vec::new(),
            headers,
            body,
            &sha,
        )
        .await?;
        Ok(())
    }

    /// The object's size and checksum, `None` when there is no such key.
    pub async fn head_object(&self, key: &str) -> Result<Option<ObjectInfo>, S3Error> {
        match self
            .execute(
                "HeadObject",
                "HEAD",
                Some(key),
                Vec::new(),
                Vec::new(),
                Bytes::new(),
                EMPTY_SHA256,
            )
            .await
        {
            Ok(response) => {
                let header = |name: &str| {
                    response
                        .headers
                        .get(name)
                        .and_then(|v| v.to_str().ok())
                        .map(str::to_string)
                };
                Ok(Some(ObjectInfo {
                    key: key.to_string(),
                    size: header("content-length")
                        .and_then(|v| v.parse().ok())
                        .unwrap_or(0),
                    sha256: header(SHA256_META),
                    last_modified: header("last-modified")
                        .and_then(|v| DateTime::parse_from_rfc2822(&v).ok())
                        .map(|t| t.with_timezone(&Utc)),
                }))
            }
            Err(e) if e.reason() == "NotFound" => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The object's bytes (at most `max_bytes`).
    pub async fn get_object(&self, key: &str, max_bytes: usize) -> Result<Bytes, S3Error> {
        let response = self
            .execute_limited(
                "GetObject",
                "GET",
                Some(key),
                Vec::new(),
                Vec::new(),
                Bytes::new(),
                EMPTY_SHA256,
                max_bytes,
            )
            .await?;
        Ok(response.body)
    }

    /// Every object under `prefix` (all pages), and with a `delimiter` the
    /// common prefixes one level down.
    pub async fn list(&self, prefix: &str, delimiter: Option<&str>) -> Result<ListPage, S3Error> {
        let mut all = ListPage::default();
        let mut continuation: Option<String> = None;
        loop {
            let mut query = vec![
                ("list-type".to_string(), "2".to_string()),
                ("prefix".to_string(), prefix.to_string()),
            ];
            if let Some(d) = delimiter {
                query.push(("delimiter".to_string(), d.to_string()));
            }
            if let Some(token) = &continuation {
                query.push(("continuation-token".to_string(), token.clone()));
            }
            let response = self
                .execute(
                    "ListObjectsV2",
                    "GET",
                    None,
                    query,
                    Vec::new(),
                    Bytes::new(),
                    EMPTY_SHA256,
                )
                .await?;
            let text = String::from_utf8_lossy(&response.body);
            let page = xml::parse_list(&text).ok_or_else(|| S3Error::Status {
                op: "ListObjectsV2",
                target: self.bucket.describe(prefix),
                status: response.status.as_u16(),
                code: "MalformedListing".into(),
                message: text.chars().take(200).collect(),
            })?;
            all.objects.extend(page.objects);
            all.prefixes.extend(page.prefixes);
            match page.continuation {
                Some(token) if continuation.as_ref() != Some(&token) => continuation = Some(token),
                _ => break,
            }
        }
        Ok(all)
    }

    /// Creates the bucket (tests and first-time set-up; the agent never does).
    pub async fn create_bucket(&self) -> Result<(), S3Error> {
        match self
            .execute(
                "CreateBucket",
                "PUT",
                None,
                Vec::new(),
                Vec::new(),
                Bytes::new(),
                EMPTY_SHA256,
            )
            .await
        {
            Ok(_) => Ok(()),
            Err(S3Error::Status { code, .. }) if code == "BucketAlreadyOwnedByYou" => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Deletes `key`; a key that is already gone is not an error.
    pub async fn delete_object(&self, key: &str) -> Result<(), S3Error> {
        match self
            .execute(
                "DeleteObject",
                "DELETE",
                Some(key),
                Vec::new(),
                Vec::new(),
                Bytes::new(),
                EMPTY_SHA256,
            )
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if e.reason() == "NotFound" => Ok(()),
            Err(e) => Err(e),
        }
    }

    #[allow(clippy::too_many_arguments)]
    async fn execute(
        &self,
        op: &'static str,
        method: &str,
        key: Option<&str>,
        query: Vec<(String, String)>,
        headers: Vec<(String, String)>,
        body: Bytes,
        payload_sha256: &str,
    ) -> Result<Response, S3Error> {
        self.execute_limited(
            op,
            method,
            key,
            query,
            headers,
            body,
            payload_sha256,
            MAX_XML,
        )
        .await
    }

    #[allow(clippy::too_many_arguments)]
    async fn execute_limited(
        &self,
        op: &'static str,
        method: &str,
        key: Option<&str>,
        query: Vec<(String, String)>,
        extra_headers: Vec<(String, String)>,
        body: Bytes,
        payload_sha256: &str,
        max_body: usize,
    ) -> Result<Response, S3Error> {
        let target = self.bucket.describe(key.unwrap_or(""));
        let creds = self.credentials.get().await?;
        let (host, path) = self.bucket.target(key);
        let now = Utc::now();
        let mut headers = vec![
            ("host".to_string(), host),
            ("x-amz-date".to_string(), sigv4::amz_date(now)),
            (
                "x-amz-content-sha256".to_string(),
                payload_sha256.to_string(),
            ),
        ];
        if let Some(token) = &creds.session_token {
            headers.push(("x-amz-security-token".to_string(), token.clone()));
        }
        headers.extend(extra_headers);
        let signing = sigv4::Request {
            method,
            path: &path,
            query: &query,
            headers: &headers,
            payload_sha256,
        };
        let authorization = sigv4::authorization(&creds, &self.bucket.region, "s3", now, &signing);
        let query_string = sigv4::canonical_query(&query);
        let uri = if query_string.is_empty() {
            format!("{}://{}{path}", self.bucket.scheme, headers[0].1)
        } else {
            format!(
                "{}://{}{path}?{query_string}",
                self.bucket.scheme, headers[0].1
            )
        };
        let mut builder = http::Request::builder().method(method).uri(&uri);
        for (name, value) in &headers {
            builder = builder.header(name.as_str(), value.as_str());
        }
        let request = builder
            .header(http::header::AUTHORIZATION, authorization)
            .body(Full::new(body))
            .map_err(|e| S3Error::Config {
                what: format!("request {uri}"),
                reason: e.to_string(),
            })?;
        let response = self
            .http
            .send(request, max_body)
            .await
            .map_err(|e| e.into_error(op, &target))?;
        if response.status.is_success() {
            return Ok(response);
        }
        let text = String::from_utf8_lossy(&response.body);
        let (code, message) = xml::parse_error(&text).unwrap_or_else(|| {
            (
                response
                    .status
                    .canonical_reason()
                    .unwrap_or("error")
                    .replace(' ', ""),
                String::new(),
            )
        });
        let error = S3Error::Status {
            op,
            target,
            status: response.status.as_u16(),
            code,
            message,
        };
        if error.is_denied() {
            // Temporary keys may have expired early or been revoked: fetch new ones next time.
            self.credentials.invalidate().await;
        }
        Err(error)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_and_virtual_host_targets() {
        let b = BucketConfig::new(Some("http://127.0.0.1:8333"), "fgm", "us-east-1", true).unwrap();
        assert_eq!(
            b.target(Some("p/dt=2026-01-02/node=a/f.parquet")),
            (
                "127.0.0.1:8333".to_string(),
                "/fgm/p/dt%3D2026-01-02/node%3Da/f.parquet".to_string()
            )
        );
        assert_eq!(b.target(None).1, "/fgm");
        let v = BucketConfig::new(None, "my.bucket", "eu-west-1", false).unwrap();
        assert_eq!(v.authority, "s3.eu-west-1.amazonaws.com");
        assert_eq!(
            v.target(Some("k")),
            (
                "my.bucket.s3.eu-west-1.amazonaws.com".to_string(),
                "/k".to_string()
            )
        );
        assert_eq!(v.target(None).1, "/");
        let based = BucketConfig::new(Some("https://gw.example/s3/"), "b-1", "x", true).unwrap();
        assert_eq!(based.target(Some("k")).1, "/s3/b-1/k");
        assert_eq!(based.endpoint_url(), "https://gw.example/s3");
    }

    #[test]
    fn bad_settings_are_named() {
        for (endpoint, bucket, region, what) in [
            (Some("ftp://x"), "bucket", "r", "endpoint"),
            (Some("http://"), "bucket", "r", "endpoint"),
            (Some("http://u:p@host"), "bucket", "r", "endpoint"),
            (None, "Bucket_Upper", "r", "bucket"),
            (None, "ab", "r", "bucket"),
            (None, "bucket", "eu west", "region"),
        ] {
            let e = BucketConfig::new(endpoint, bucket, region, true).unwrap_err();
            assert!(
                matches!(&e, S3Error::Config { what: w, .. } if w == what),
                "{endpoint:?} {bucket} {region}: {e}"
            );
        }
    }
}
