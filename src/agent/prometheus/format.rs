//! The two exposition formats, chosen from the `Accept` header: Prometheus
//! text 0.0.4 (the default) and OpenMetrics 1.0.0 (when the client prefers it,
//! as Prometheus does by default).
//!
//! Self-metrics come from `prometheus-client`, which only writes OpenMetrics;
//! [`openmetrics_to_text`] turns that into the 0.0.4 form (counter families
//! named with `_total`, no `# UNIT`, no `# EOF`).

use std::collections::HashSet;

pub const TEXT_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";
pub const OPENMETRICS_CONTENT_TYPE: &str =
    "application/openmetrics-text; version=1.0.0; charset=utf-8";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Prometheus text exposition 0.0.4.
    Text,
    /// OpenMetrics text 1.0.0.
    OpenMetrics,
}

impl Format {
    pub fn content_type(self) -> &'static str {
        match self {
            Format::Text => TEXT_CONTENT_TYPE,
            Format::OpenMetrics => OPENMETRICS_CONTENT_TYPE,
        }
    }

    /// Picks the format from an `Accept` header: OpenMetrics when it has a
    /// higher (or equal, and earlier) quality than plain text, text otherwise,
    /// including for a missing, malformed or unsupported header.
    pub fn negotiate(accept: Option<&str>) -> Format {
        let Some(accept) = accept else {
            return Format::Text;
        };
        let mut best: Option<(f32, Format)> = None;
        for range in accept.split(',') {
            let mut parts = range.split(';').map(str::trim);
            let media = parts.next().unwrap_or("").to_ascii_lowercase();
            let mut q = 1.0f32;
            for param in parts {
                if let Some((k, v)) = param.split_once('=')
                    && k.trim().eq_ignore_ascii_case("q")
                {
                    q = v.trim().parse().unwrap_or(0.0);
                }
            }
            let format = match media.as_str() {
                "application/openmetrics-text" => Format::OpenMetrics,
                "text/plain" | "text/*" | "*/*" => Format::Text,
                _ => continue,
            };
            if q > 0.0 && best.is_none_or(|(bq, _)| q > bq) {
                best = Some((q, format));
            }
        }
        best.map_or(Format::Text, |(_, f)| f)
    }
}

/// Label value escaping shared by both formats: backslash, quote, newline.
pub fn write_escaped_label_value(out: &mut String, value: &str) {
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

/// Sample timestamp: integer milliseconds in 0.0.4, seconds in OpenMetrics.
pub fn write_timestamp(out: &mut String, ms: i64, format: Format) {
    use std::fmt::Write as _;
    let _ = match format {
        Format::Text => write!(out, "{ms}"),
        Format::OpenMetrics => write!(out, "{}.{:03}", ms.div_euclid(1000), ms.rem_euclid(1000)),
    };
}

/// Rewrites `prometheus-client`'s OpenMetrics output as text 0.0.4.
pub fn openmetrics_to_text(openmetrics: &str, out: &mut String) {
    // HELP precedes TYPE, so first learn which families are counters.
    let counters: HashSet<&str> = openmetrics
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|rest| rest.split_once(' '))
        .filter(|(_, kind)| *kind == "counter")
        .map(|(name, _)| name)
        .collect();
    for line in openmetrics.lines() {
        if line == "# EOF" || line.starts_with("# UNIT ") {
            continue;
        }
        let meta = line
            .strip_prefix("# HELP ")
            .map(|r| ("# HELP ", r))
            .or_else(|| line.strip_prefix("# TYPE ").map(|r| ("# TYPE ", r)));
        if let Some((prefix, rest)) = meta {
            let (name, tail) = rest.split_once(' ').unwrap_or((rest, ""));
            out.push_str(prefix);
            out.push_str(name);
            if counters.contains(name) {
                out.push_str("_total");
            }
            out.push(' ');
            out.push_str(tail);
            out.push('\n');
            continue;
        }
        out.push_str(line);
        out.push('\n');
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn negotiates_openmetrics_as_prometheus_asks() {
        let prometheus = "application/openmetrics-text;version=1.0.0;escaping=allow-utf-8;q=0.5,\
                          application/openmetrics-text;version=0.0.1;q=0.4,\
                          text/plain;version=1.0.0;escaping=allow-utf-8;q=0.3,\
                          text/plain;version=0.0.4;q=0.2,*/*;q=0.1";
        assert_eq!(Format::negotiate(Some(prometheus)), Format::OpenMetrics);
        assert_eq!(
            Format::negotiate(Some("application/openmetrics-text")),
            Format::OpenMetrics
        );
    }

    #[test]
    fn falls_back_to_text() {
        assert_eq!(Format::negotiate(None), Format::Text);
        assert_eq!(Format::negotiate(Some("*/*")), Format::Text);
        assert_eq!(Format::negotiate(Some("application/json")), Format::Text);
        assert_eq!(Format::negotiate(Some(";;;,,q=")), Format::Text);
        assert_eq!(
            Format::negotiate(Some("text/plain;q=0.9,application/openmetrics-text;q=0.5")),
            Format::Text
        );
        assert_eq!(
            Format::negotiate(Some("application/openmetrics-text;q=0")),
            Format::Text
        );
    }

    #[test]
    fn escapes_label_values() {
        let mut s = String::new();
        write_escaped_label_value(&mut s, "a\\b\"c\nd");
        assert_eq!(s, "a\\\\b\\\"c\\nd");
    }

    #[test]
    fn timestamps_per_format() {
        let mut s = String::new();
        write_timestamp(&mut s, 1_700_000_000_123, Format::Text);
        s.push(' ');
        write_timestamp(&mut s, 1_700_000_000_005, Format::OpenMetrics);
        assert_eq!(s, "1700000000123 1700000000.005");
    }

    #[test]
    fn converts_counters_and_drops_openmetrics_only_lines() {
        let om = "# HELP fgm_cycles Cycles.\n# TYPE fgm_cycles counter\nfgm_cycles_total 3\n\
                  # HELP fgm_size Size.\n# TYPE fgm_size gauge\n# UNIT fgm_size bytes\nfgm_size 2\n# EOF\n";
        let mut out = String::new();
        openmetrics_to_text(om, &mut out);
        assert_eq!(
            out,
            "# HELP fgm_cycles_total Cycles.\n# TYPE fgm_cycles_total counter\nfgm_cycles_total 3\n\
             # HELP fgm_size Size.\n# TYPE fgm_size gauge\nfgm_size 2\n"
        );
    }
}
