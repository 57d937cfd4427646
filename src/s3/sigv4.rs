//! AWS Signature Version 4 for S3 requests (pure): canonical request, string
//! to sign, signing key and the `Authorization` header value.
//!
//! Only what our requests use: header-based signing (no presigned URLs), the
//! payload hash sent in `x-amz-content-sha256`. Checked against the worked
//! examples of the S3 API reference ("Signature Calculations for the
//! Authorization Header").

use chrono::{DateTime, Utc};
use ring::{digest, hmac};

use super::credentials::Credentials;

/// `x-amz-content-sha256` of an empty body.
pub const EMPTY_SHA256: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

/// One request as SigV4 sees it.
#[derive(Debug, Clone)]
pub struct Request<'a> {
    pub method: &'a str,
    /// The path exactly as sent, already URI-encoded (see [`encode_path`]).
    pub path: &'a str,
    /// Query parameters, not encoded; sorted and encoded here.
    pub query: &'a [(String, String)],
    /// Headers to sign (name, value); `host` and the `x-amz-*` ones at least.
    pub headers: &'a [(String, String)],
    /// Hex SHA-256 of the body (`x-amz-content-sha256`).
    pub payload_sha256: &'a str,
}

/// Hex SHA-256 of `data`.
pub fn sha256_hex(data: &[u8]) -> String {
    hex(digest::digest(&digest::SHA256, data).as_ref())
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(DIGITS[usize::from(b >> 4)] as char);
        out.push(DIGITS[usize::from(b & 0xf)] as char);
    }
    out
}

/// URI-encodes `s` the SigV4 way: unreserved characters (A-Z a-z 0-9 - _ . ~)
/// stay, everything else is `%XX` (upper-case hex); `/` stays when `keep_slash`.
pub fn uri_encode(s: &str, keep_slash: bool) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        let unreserved = b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~');
        if unreserved || (keep_slash && b == b'/') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The request path of an object key (or a bucket, for path-style), encoded
/// once as S3 expects: `/` separates segments, everything else is escaped.
pub fn encode_path(path: &str) -> String {
    uri_encode(path, true)
}

/// The query string as sent and as signed: pairs sorted by key then value.
pub fn canonical_query(query: &[(String, String)]) -> String {
    let mut pairs: Vec<(String, String)> = query
        .iter()
        .map(|(k, v)| (uri_encode(k, false), uri_encode(v, false)))
        .collect();
    pairs.sort();
    pairs
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&")
}

/// Lower-case names, sorted; values trimmed with inner runs of spaces collapsed.
fn canonical_headers(headers: &[(String, String)]) -> (String, String) {
    let mut list: Vec<(String, String)> = headers
        .iter()
        .map(|(k, v)| {
            (
                k.to_ascii_lowercase(),
                v.split_whitespace().collect::<Vec<_>>().join(" "),
            )
        })
        .collect();
    list.sort();
    let canonical = list.iter().map(|(k, v)| format!("{k}:{v}\n")).collect();
    let signed = list
        .iter()
        .map(|(k, _)| k.as_str())
        .collect::<Vec<_>>()
        .join(";");
    (canonical, signed)
}

/// The canonical request and the signed-headers list.
pub fn canonical_request(req: &Request<'_>) -> (String, String) {
    let (headers, signed) = canonical_headers(req.headers);
    let text = format!(
        "{}\n{}\n{}\n{}\n{}\n{}",
        req.method,
        req.path,
        canonical_query(req.query),
        headers,
        signed,
        req.payload_sha256
    );
    (text, signed)
}

/// `YYYYMMDD'T'HHMMSS'Z'`, the `x-amz-date` header.
pub fn amz_date(time: DateTime<Utc>) -> String {
    time.format("%Y%m%dT%H%M%SZ").to_string()
}

fn hmac_sha256(key: &[u8], data: &str) -> hmac::Tag {
    hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, key), data.as_bytes())
}

/// The `Authorization` header value of `req` at `time` (which must also be the
/// request's `x-amz-date`).
pub fn authorization(
    creds: &Credentials,
    region: &str,
    service: &str,
    time: DateTime<Utc>,
    req: &Request<'_>,
) -> String {
    let (canonical, signed) = canonical_request(req);
    let date = time.format("%Y%m%d").to_string();
    let scope = format!("{date}/{region}/{service}/aws4_request");
    let string_to_sign = format!(
        "AWS4-HMAC-SHA256\n{}\n{scope}\n{}",
        amz_date(time),
        sha256_hex(canonical.as_bytes())
    );
    let secret = format!("AWS4{}", creds.secret_access_key);
    let k_date = hmac_sha256(secret.as_bytes(), &date);
    let k_region = hmac_sha256(k_date.as_ref(), region);
    let k_service = hmac_sha256(k_region.as_ref(), service);
    let k_signing = hmac_sha256(k_service.as_ref(), "aws4_request");
    let signature = hex(hmac_sha256(k_signing.as_ref(), &string_to_sign).as_ref());
    format!(
        "AWS4-HMAC-SHA256 Credential={}/{scope}, SignedHeaders={signed}, Signature={signature}",
        creds.access_key_id
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn example_creds() -> Credentials {
        Credentials::new(
            "AKIAIOSFODNN7EXAMPLE",
            "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
            None,
            None,
        )
    }

    fn example_time() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2013, 5, 24, 0, 0, 0).unwrap()
    }

    fn headers(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    /// S3 API reference, "Example: GET Object".
    #[test]
    fn get_object_example_signature() {
        let h = headers(&[
            ("Host", "examplebucket.s3.amazonaws.com"),
            ("Range", "bytes=0-9"),
            ("x-amz-content-sha256", EMPTY_SHA256),
            ("x-amz-date", "20130524T000000Z"),
        ]);
        let req = Request {
            method: "GET",
            path: "/test.txt",
            query: &[],
            headers: &h,
            payload_sha256: EMPTY_SHA256,
        };
        let auth = authorization(&example_creds(), "us-east-1", "s3", example_time(), &req);
        assert_eq!(
            auth,
            "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, \
             SignedHeaders=host;range;x-amz-content-sha256;x-amz-date, \
             Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41"
        );
    }

    /// S3 API reference, "Example: GET Bucket (List Objects)": query parameters are sorted.
    #[test]
    fn list_objects_example_signature() {
        let h = headers(&[
            ("host", "examplebucket.s3.amazonaws.com"),
            ("x-amz-content-sha256", EMPTY_SHA256),
            ("x-amz-date", "20130524T000000Z"),
        ]);
        let query = vec![
            ("prefix".to_string(), "J".to_string()),
            ("max-keys".to_string(), "2".to_string()),
        ];
        let req = Request {
            method: "GET",
            path: "/",
            query: &query,
            headers: &h,
            payload_sha256: EMPTY_SHA256,
        };
        let auth = authorization(&example_creds(), "us-east-1", "s3", example_time(), &req);
        assert!(
            auth.ends_with(
                "Signature=34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7"
            ),
            "{auth}"
        );
    }

    /// S3 API reference, "Example: PUT Object": the key's `$` is escaped, the body hashed.
    #[test]
    fn put_object_example_signature() {
        let body = "Welcome to Amazon S3.";
        let sha = sha256_hex(body.as_bytes());
        assert_eq!(
            sha,
            "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072"
        );
        let h = headers(&[
            ("date", "Fri, 24 May 2013 00:00:00 GMT"),
            ("host", "examplebucket.s3.amazonaws.com"),
            ("x-amz-content-sha256", &sha),
            ("x-amz-date", "20130524T000000Z"),
            ("x-amz-storage-class", "REDUCED_REDUNDANCY"),
        ]);
        let path = encode_path("/test$file.text");
        assert_eq!(path, "/test%24file.text");
        let req = Request {
            method: "PUT",
            path: &path,
            query: &[],
            headers: &h,
            payload_sha256: &sha,
        };
        let auth = authorization(&example_creds(), "us-east-1", "s3", example_time(), &req);
        assert!(
            auth.ends_with(
                "Signature=98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd"
            ),
            "{auth}"
        );
    }

    #[test]
    fn encoding_keeps_unreserved_only() {
        assert_eq!(
            encode_path("/p/dt=2026-01-02/node=a b/x~y_z.parquet"),
            "/p/dt%3D2026-01-02/node%3Da%20b/x~y_z.parquet"
        );
        assert_eq!(uri_encode("a/b+c", false), "a%2Fb%2Bc");
        let q = vec![
            ("prefix".to_string(), "p/dt=1".to_string()),
            ("list-type".to_string(), "2".to_string()),
            ("continuation-token".to_string(), "a b".to_string()),
        ];
        assert_eq!(
            canonical_query(&q),
            "continuation-token=a%20b&list-type=2&prefix=p%2Fdt%3D1"
        );
    }
}
