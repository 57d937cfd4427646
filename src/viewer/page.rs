//! The web page: HTML, JavaScript and CSS compiled into the binary (clusters
//! may be air-gapped, so no CDN), uPlot vendored beside them (MIT, see
//! `assets/uPlot.LICENSE`). Assets are served from this fixed table only.

use super::Options;

pub const INDEX_HTML: &str = include_str!("assets/index.html");

const ASSETS: &[(&str, &str, &str)] = &[
    (
        "util.js",
        "text/javascript; charset=utf-8",
        include_str!("assets/util.js"),
    ),
    (
        "overview.js",
        "text/javascript; charset=utf-8",
        include_str!("assets/overview.js"),
    ),
    (
        "charts.js",
        "text/javascript; charset=utf-8",
        include_str!("assets/charts.js"),
    ),
    (
        "breakdown.js",
        "text/javascript; charset=utf-8",
        include_str!("assets/breakdown.js"),
    ),
    (
        "export.js",
        "text/javascript; charset=utf-8",
        include_str!("assets/export.js"),
    ),
    (
        "app.js",
        "text/javascript; charset=utf-8",
        include_str!("assets/app.js"),
    ),
    (
        "app.css",
        "text/css; charset=utf-8",
        include_str!("assets/app.css"),
    ),
    (
        "uPlot.iife.min.js",
        "text/javascript; charset=utf-8",
        include_str!("assets/uPlot.iife.min.js"),
    ),
    (
        "uPlot.min.css",
        "text/css; charset=utf-8",
        include_str!("assets/uPlot.min.css"),
    ),
    (
        "uPlot.LICENSE",
        "text/plain; charset=utf-8",
        include_str!("assets/uPlot.LICENSE"),
    ),
];

/// An embedded asset by exact name: (content type, body).
pub fn asset(name: &str) -> Option<(&'static str, &'static str)> {
    ASSETS
        .iter()
        .find(|(n, _, _)| *n == name)
        .map(|(_, mime, body)| (*mime, *body))
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn shell(title: &str, refresh_secs: u64, body: &str) -> String {
    format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta http-equiv=\"refresh\" content=\"{refresh_secs}\">\
         <title>{title} · fine-grained-monitor</title>\
         <link rel=\"stylesheet\" href=\"/assets/app.css\"></head>\
         <body class=\"notice\"><main>{body}</main></body></html>"
    )
}

/// Shown while there is neither an index nor data: reloads itself at the
/// poll interval and turns into the app as soon as data arrives.
pub fn waiting_page(message: &str, opts: &Options) -> String {
    let poll = opts.poll_interval.as_secs().max(1);
    shell(
        "Waiting",
        poll,
        &format!(
            "<h1>Waiting for metrics data...</h1><p id=\"message\">{}</p>\
             <p>This page checks again every {poll} s. The agent writes its first \
             data file after one rotation interval (90 s by default).</p>",
            escape(message)
        ),
    )
}

/// Shown when the wait ran out: what is wrong and what to check.
pub fn error_page(message: &str, opts: &Options) -> String {
    let dir = escape(&opts.data_dir.display().to_string());
    shell(
        "No data",
        opts.poll_interval.as_secs().max(1),
        &format!(
            "<h1>No metrics data found</h1><p id=\"message\">{}</p>\
             <h2>Troubleshooting</h2><ul>\
             <li>Is the agent running? In a cluster: <code>kubectl get pods -l \
             app.kubernetes.io/name=fine-grained-monitor</code> and <code>kubectl logs \
             &lt;pod&gt; -c agent</code>. On this machine: <code>fine-grained-monitor local</code>.</li>\
             <li>Do agent and viewer use the same directory? The viewer reads <code>{dir}</code>; \
             the agent writes <code>--data-dir</code> (<code>/data</code> in the DaemonSet, a hostPath \
             of <code>/var/lib/fine-grained-monitor</code>).</li>\
             <li>Can the viewer read it? It needs read access to <code>{dir}</code>, \
             <code>index.json</code> and the <code>dt=*/identifier=*/</code> directories.</li>\
             <li>Has a rotation interval passed? Data appears when the first file is complete.</li>\
             </ul><p>This page keeps checking and shows the charts as soon as data appears.</p>",
            escape(message)
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn assets_come_from_the_table_only() {
        assert!(asset("app.js").is_some());
        assert!(asset("uPlot.iife.min.js").is_some_and(|(_, b)| b.contains("uPlot")));
        for bad in ["../Cargo.toml", "", "app.js/..", "/etc/passwd"] {
            assert!(asset(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn notice_pages_escape_and_explain() {
        let opts = Options::new("/data<x>".into());
        let page = waiting_page("in <dir>", &opts);
        assert!(page.contains("Waiting for metrics data..."));
        assert!(page.contains("in &lt;dir&gt;") && !page.contains("<dir>"));
        let page = error_page("none", &opts);
        assert!(page.contains("Troubleshooting") && page.contains("/data&lt;x&gt;"));
    }
}
