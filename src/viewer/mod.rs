//! The viewer: a read-only web app over a data directory.
//!
//! ```text
//!  index.json ─┐                    ┌─ /api/status, /api/containers, /api/metrics
//!  newest file ┼─▶ state (polled) ──┼─ /api/timeseries (rates, min/max downsampling)
//!  data files ─┘   + column cache   ├─ /api/events (OOM kills, restarts)
//!  events/*.jsonl ──────────────────┼─ / and /assets/* (page, uPlot, embedded)
//!  processes-*.parquet ─────────────┼─ /api/processes (one container's processes)
//!  devices-, network-*.parquet ─────┼─ /api/breakdown (IO per device, network per interface)
//!                                   └─ /mcp (tools for AI assistants, over the API above)
//! ```
//!
//! Start-up reads `index.json` and the newest file's footer only, so it does
//! not grow with the number of files. Without an index the page says it is
//! waiting, and the state is rebuilt from the data files when they exist.

pub mod api;
pub mod breakdown;
pub mod bucket_cluster;
pub mod cache;
pub mod chart;
pub mod export;
pub mod files;
pub mod mcp;
pub mod overview;
pub mod page;
pub mod parallel;
pub mod params;
pub mod processes;
pub mod query;
pub mod series;
pub mod state;
pub mod study;

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use clap::Args;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::units::{ByteSize, HumanDuration};

pub use api::app;
pub use state::Viewer;

/// Flags of `viewer` and `fgm-viewer`.
#[derive(Debug, Clone, Args)]
pub struct ViewerArgs {
    /// Data directory written by the agent, or `s3://bucket/prefix` of an export
    /// (a node's history is copied into --cache-dir and served from there).
    #[arg(env = "FGM_DATA_DIR", default_value = "/data", value_name = "DATA_DIR")]
    pub data_dir: PathBuf,

    #[command(flatten)]
    pub bucket: crate::export::mirror::MirrorArgs,

    /// Port to listen on.
    #[arg(long, env = "FGM_PORT", default_value_t = 8050)]
    pub port: u16,

    /// Address to listen on (loopback by default: reach it with kubectl port-forward).
    #[arg(long, env = "FGM_BIND", default_value = "127.0.0.1")]
    pub bind: IpAddr,

    /// Do not open a browser.
    #[arg(long, env = "FGM_NO_BROWSER")]
    pub no_browser: bool,

    #[command(flatten)]
    pub tuning: TuningArgs,

    #[command(flatten)]
    pub http: crate::http::HttpArgs,
}

/// Viewer settings shared by `viewer`, `fgm-viewer` and `local`.
#[derive(Debug, Clone, Args)]
pub struct TuningArgs {
    /// How long to wait for data before the page explains what may be wrong.
    #[arg(long, env = "FGM_WAITING_TIMEOUT", default_value = "3m")]
    pub waiting_timeout: HumanDuration,

    /// Memory for decoded data kept between requests (e.g. 64Mi).
    #[arg(long, env = "FGM_CACHE_SIZE", default_value = "64Mi")]
    pub cache_size: ByteSize,

    /// How often the data directory is checked for a new index.
    #[arg(long, env = "FGM_POLL_INTERVAL", default_value = "5s", hide = true)]
    pub poll_interval: HumanDuration,

    /// Most rows one export (CSV or Parquet) may hold; a larger selection is refused with a message.
    #[arg(long, env = "FGM_EXPORT_MAX_ROWS", default_value_t = export::DEFAULT_MAX_ROWS,
          value_parser = clap::value_parser!(u64).range(1..=export::MAX_ROWS as u64))]
    pub export_max_rows: u64,
}

/// What [`serve`] needs.
#[derive(Debug, Clone)]
pub struct Options {
    pub data_dir: PathBuf,
    pub waiting_timeout: Duration,
    pub cache_bytes: usize,
    pub poll_interval: Duration,
    /// Most rows one export may hold.
    pub export_max_rows: usize,
    /// Timeouts and caps of the HTTP server.
    pub http: crate::http::Limits,
}

impl Options {
    /// Defaults: wait 3 minutes, 64 MiB cache, poll every 5 s, 200,000 rows per export.
    pub fn new(data_dir: PathBuf) -> Self {
        Self {
            data_dir,
            waiting_timeout: Duration::from_secs(180),
            cache_bytes: 64 << 20,
            poll_interval: Duration::from_secs(5),
            export_max_rows: export::DEFAULT_MAX_ROWS as usize,
            http: crate::http::Limits::default(),
        }
    }

    pub fn with_tuning(data_dir: PathBuf, tuning: &TuningArgs) -> Self {
        Self {
            data_dir,
            waiting_timeout: tuning.waiting_timeout.get(),
            cache_bytes: usize::try_from(tuning.cache_size.0).unwrap_or(usize::MAX),
            poll_interval: tuning.poll_interval.get().max(Duration::from_millis(10)),
            export_max_rows: usize::try_from(tuning.export_max_rows).unwrap_or(usize::MAX),
            http: crate::http::Limits::default(),
        }
    }
}

/// Serves the viewer until `stop` is cancelled.
pub async fn run(mut args: ViewerArgs, stop: CancellationToken) -> anyhow::Result<()> {
    // `s3://bucket/prefix`: serve a node's exported history from a local copy.
    if let Some(url) = args
        .data_dir
        .to_str()
        .filter(|d| d.starts_with("s3://"))
        .map(str::to_string)
    {
        // Several nodes there and none chosen: the cluster view over all of them.
        if args.bucket.node.is_none() {
            let nodes = args.bucket.nodes(&url).await?;
            if nodes.len() > 1 {
                return bucket_cluster::run(args, url, nodes, stop).await;
            }
        }
        args.data_dir = args.bucket.prepare(&url).await?;
    }
    let addr = SocketAddr::new(args.bind, args.port);
    let listener = bind(addr).await?;
    let url = browser_url(listener.local_addr()?);
    tracing::info!(%url, data_dir = %args.data_dir.display(), "viewer listening");
    if !args.no_browser {
        open_browser(&url);
    }
    let mut opts = Options::with_tuning(args.data_dir, &args.tuning);
    opts.http = crate::http::Limits::from(&args.http);
    serve(listener, opts, stop).await?;
    Ok(())
}

/// Binds the viewer's address, naming it when that fails.
pub async fn bind(addr: SocketAddr) -> anyhow::Result<TcpListener> {
    TcpListener::bind(addr)
        .await
        .map_err(|e| anyhow::anyhow!("viewer cannot listen on {addr}: {e} (try another --port)"))
}

/// The URL a user opens for `addr` (a wildcard bind is reached on loopback).
pub fn browser_url(addr: SocketAddr) -> String {
    let host = match addr.ip() {
        ip if ip.is_unspecified() => "127.0.0.1".to_string(),
        IpAddr::V6(ip) => format!("[{ip}]"),
        ip => ip.to_string(),
    };
    format!("http://{host}:{}/", addr.port())
}

/// Loads the data directory, then answers requests on `listener` until
/// `stop` is cancelled, re-reading the index every poll interval.
pub async fn serve(
    listener: TcpListener,
    opts: Options,
    stop: CancellationToken,
) -> std::io::Result<()> {
    if !opts.data_dir.is_dir() {
        tracing::warn!(data_dir = %opts.data_dir.display(), "data directory does not exist yet; waiting for it");
    }
    let viewer = Arc::new(Viewer::new(opts));
    let first = viewer.clone();
    if let Err(e) = tokio::task::spawn_blocking(move || first.refresh()).await {
        tracing::error!(error = %e, "loading the data directory failed; serving what there is");
    }
    let poller = tokio::spawn(poll(viewer.clone(), stop.clone()));
    let limits = viewer.opts.http.clone();
    let result = crate::http::serve(listener, app(viewer), &limits, stop.clone()).await;
    stop.cancel();
    let _ = poller.await;
    result
}

async fn poll(viewer: Arc<Viewer>, stop: CancellationToken) {
    let mut tick = tokio::time::interval(viewer.opts.poll_interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await;
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tick.tick() => {}
        }
        let v = viewer.clone();
        if let Err(e) = tokio::task::spawn_blocking(move || v.refresh()).await {
            tracing::error!(error = %e, "refreshing the data directory failed");
        }
    }
}

/// Opens `url` in the user's browser when there is one ($BROWSER, xdg-open,
/// open). Not finding one is normal (servers, containers) and only logged.
pub fn open_browser(url: &str) {
    let mut candidates: Vec<String> = Vec::new();
    if let Ok(browser) = std::env::var("BROWSER")
        && !browser.trim().is_empty()
    {
        candidates.push(browser);
    }
    candidates.extend(["xdg-open".to_string(), "open".to_string()]);
    for program in candidates {
        let spawned = std::process::Command::new(&program)
            .arg(url)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn();
        if let Ok(mut child) = spawned {
            tracing::info!(%program, %url, "opened the browser");
            // Reap it so no zombie is left behind.
            std::thread::spawn(move || child.wait());
            return;
        }
    }
    tracing::info!(%url, "no browser found; open the URL yourself");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn browser_url_uses_loopback_for_wildcards() {
        let url = |s: &str| browser_url(s.parse().unwrap());
        assert_eq!(url("0.0.0.0:8050"), "http://127.0.0.1:8050/");
        assert_eq!(url("127.0.0.1:9"), "http://127.0.0.1:9/");
        assert_eq!(url("[::1]:8050"), "http://[::1]:8050/");
    }
}
