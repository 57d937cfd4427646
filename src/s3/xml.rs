//! Just enough XML for S3 and STS answers (pure): the text of named elements
//! of flat documents such as `ListBucketResult`, `Error` and
//! `AssumeRoleWithWebIdentityResponse`. No DTDs, no CDATA, no namespaces
//! beyond ignoring `xmlns` attributes: those documents have none of them.

use chrono::{DateTime, Utc};

/// The inner text (raw, still escaped) of every `<tag>` element, in document
/// order. Elements may carry attributes; `<tag/>` yields an empty string.
/// Nested elements of the same name are not supported (S3 has none).
pub fn elements<'a>(xml: &'a str, tag: &str) -> Vec<&'a str> {
    let mut out = Vec::new();
    let open = format!("<{tag}");
    let close = format!("</{tag}>");
    let mut rest = xml;
    while let Some(at) = rest.find(&open) {
        let after = &rest[at + open.len()..];
        // `<tagX` is another element: the name must end here.
        let Some(next) = after.chars().next() else {
            break;
        };
        if !(next == '>' || next == '/' || next.is_whitespace()) {
            rest = after;
            continue;
        }
        let Some(gt) = after.find('>') else {
            break;
        };
        if after[..gt].ends_with('/') {
            out.push("");
            rest = &after[gt + 1..];
            continue;
        }
        let body = &after[gt + 1..];
        let Some(end) = body.find(&close) else {
            break;
        };
        out.push(&body[..end]);
        rest = &body[end + close.len()..];
    }
    out
}

/// The unescaped text of the first `<tag>` element.
pub fn text(xml: &str, tag: &str) -> Option<String> {
    elements(xml, tag).first().map(|t| unescape(t))
}

/// Replaces the five predefined entities and numeric character references;
/// an unknown entity is kept as written.
pub fn unescape(s: &str) -> String {
    if !s.contains('&') {
        return s.to_string();
    }
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(amp) = rest.find('&') {
        out.push_str(&rest[..amp]);
        let tail = &rest[amp..];
        let Some(semi) = tail.find(';').filter(|&i| i <= 10) else {
            out.push('&');
            rest = &tail[1..];
            continue;
        };
        let entity = &tail[1..semi];
        let decoded = match entity {
            "amp" => Some('&'),
            "lt" => Some('<'),
            "gt" => Some('>'),
            "quot" => Some('"'),
            "apos" => Some('\''),
            _ => entity
                .strip_prefix("#x")
                .or_else(|| entity.strip_prefix("#X"))
                .and_then(|h| u32::from_str_radix(h, 16).ok())
                .or_else(|| entity.strip_prefix('#').and_then(|d| d.parse().ok()))
                .and_then(char::from_u32),
        };
        match decoded {
            Some(c) => {
                out.push(c);
                rest = &tail[semi + 1..];
            }
            None => {
                out.push('&');
                rest = &tail[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// One object of a listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedObject {
    pub key: String,
    pub size: u64,
    pub last_modified: Option<DateTime<Utc>>,
}

/// One page of `ListObjectsV2`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListPage {
    pub objects: Vec<ListedObject>,
    /// `CommonPrefixes` (with a delimiter): the "directories".
    pub prefixes: Vec<String>,
    /// Set when the listing goes on.
    pub continuation: Option<String>,
}

/// Parses a `ListBucketResult`; `None` when the document is not one.
pub fn parse_list(xml: &str) -> Option<ListPage> {
    if !xml.contains("<ListBucketResult") {
        return None;
    }
    let mut page = ListPage::default();
    for contents in elements(xml, "Contents") {
        let key = text(contents, "Key")?;
        let size = text(contents, "Size")
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(0);
        let last_modified = text(contents, "LastModified")
            .and_then(|t| DateTime::parse_from_rfc3339(t.trim()).ok())
            .map(|t| t.with_timezone(&Utc));
        page.objects.push(ListedObject {
            key,
            size,
            last_modified,
        });
    }
    for common in elements(xml, "CommonPrefixes") {
        if let Some(p) = text(common, "Prefix") {
            page.prefixes.push(p);
        }
    }
    let truncated = text(xml, "IsTruncated").is_some_and(|t| t.trim() == "true");
    page.continuation = text(xml, "NextContinuationToken").filter(|t| truncated && !t.is_empty());
    Some(page)
}

/// `Code` and `Message` of an S3 or STS error document.
pub fn parse_error(xml: &str) -> Option<(String, String)> {
    let code = text(xml, "Code")?;
    Some((code, text(xml, "Message").unwrap_or_default()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIST: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Name>b</Name><Prefix>p/</Prefix>
<KeyCount>2</KeyCount><MaxKeys>1000</MaxKeys><IsTruncated>true</IsTruncated>
<NextContinuationToken>tok&amp;1</NextContinuationToken>
<Contents><Key>p/dt=2026-01-02/node=a/metrics-20260102T100000Z.parquet</Key><LastModified>2026-01-02T10:01:31.000Z</LastModified><ETag>&quot;abc&quot;</ETag><Size>1234</Size><StorageClass>STANDARD</StorageClass></Contents>
<Contents><Key>p/a&lt;b</Key><Size>0</Size></Contents>
<CommonPrefixes><Prefix>p/dt=2026-01-02/</Prefix></CommonPrefixes>
</ListBucketResult>"#;

    #[test]
    fn list_page_with_continuation_and_prefixes() {
        let page = parse_list(LIST).unwrap();
        assert_eq!(page.objects.len(), 2);
        assert_eq!(
            page.objects[0].key,
            "p/dt=2026-01-02/node=a/metrics-20260102T100000Z.parquet"
        );
        assert_eq!(page.objects[0].size, 1234);
        assert_eq!(
            page.objects[0].last_modified.unwrap().to_rfc3339(),
            "2026-01-02T10:01:31+00:00"
        );
        assert_eq!(page.objects[1].key, "p/a<b");
        assert_eq!(page.prefixes, vec!["p/dt=2026-01-02/".to_string()]);
        assert_eq!(page.continuation.as_deref(), Some("tok&1"));
        let last = LIST.replace(
            "<IsTruncated>true</IsTruncated>",
            "<IsTruncated>false</IsTruncated>",
        );
        assert_eq!(parse_list(&last).unwrap().continuation, None);
        assert_eq!(parse_list("<Error><Code>x</Code></Error>"), None);
    }

    #[test]
    fn errors_and_entities() {
        let e = r#"<?xml version="1.0"?><Error><Code>AccessDenied</Code><Message>Access &#68;enied &#x26; more</Message><Resource>/b</Resource></Error>"#;
        assert_eq!(
            parse_error(e),
            Some(("AccessDenied".into(), "Access Denied & more".into()))
        );
        assert_eq!(unescape("a &bogus; b & c"), "a &bogus; b & c");
        // `<Key>` must not match `<KeyCount>`.
        assert_eq!(elements("<KeyCount>3</KeyCount><Key>k</Key>", "Key"), ["k"]);
        assert_eq!(
            elements("<Empty/><Empty a=\"1\">x</Empty>", "Empty"),
            ["", "x"]
        );
    }
}
