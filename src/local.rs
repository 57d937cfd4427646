//! `local` mode: the agent on this machine's own cgroups plus the viewer on
//! the same data directory, so a new user sees the product without a cluster.
//! Every leaf cgroup with processes counts as a container, named by its path.

use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::agent::recorder::RecorderHooks;
use crate::agent::{Agent, DiscoveryMode, SelfMetrics};
use crate::cli::LocalArgs;
use crate::viewer;

/// Runs agent and viewer together until `stop` is cancelled. If one part
/// fails, the others are stopped too.
pub async fn run(args: LocalArgs, stop: CancellationToken) -> anyhow::Result<()> {
    let config = args.agent.to_config(DiscoveryMode::Local)?;
    tracing::info!(data_dir = %config.data_dir.display(), "recording this machine's cgroups");
    // Bind first: a taken port is reported before anything starts.
    let listener = viewer::bind(std::net::SocketAddr::new(args.bind, args.port)).await?;
    let url = viewer::browser_url(listener.local_addr()?);
    let mut viewer_options = viewer::Options::with_tuning(config.data_dir.clone(), &args.viewer);
    viewer_options.http = crate::http::Limits::from(&args.agent.http);
    let mut parts: JoinSet<anyhow::Result<()>> = JoinSet::new();
    // No Prometheus endpoint here: `local` listens on loopback only, for the viewer.
    let agent = if !args.agent.export.enabled() {
        Agent::start(config, None, SelfMetrics::new(), stop.clone())?
    } else {
        // The uploader writes its records in the data directory: lock it first.
        let Some(lock) = crate::agent::runner::lock_data_dir(&config, &stop).await? else {
            return Ok(()); // stopped while waiting
        };
        let mut registry = prometheus_client::registry::Registry::default();
        let export = crate::export::start(
            &args.agent.export,
            config.data_dir.clone(),
            &config.node_name,
            &mut registry,
            stop.clone(),
        );
        let hooks = match export {
            Some(e) => {
                // The recorder holds the only sender: the queue closes when the agent stops.
                parts.spawn(async move { Ok(e.task.await?) });
                e.hooks
            }
            None => RecorderHooks::default(),
        };
        Agent::start_hooked(
            config,
            lock,
            None,
            SelfMetrics::with_registry(registry),
            stop.clone(),
            hooks,
        )?
    };
    parts.spawn(async move { Ok(agent.task.await??) });
    let viewer_stop = stop.clone();
    parts.spawn(async move { Ok(viewer::serve(listener, viewer_options, viewer_stop).await?) });
    tracing::info!(%url, "viewer listening (data appears after the first rotation)");
    if !args.no_browser {
        viewer::open_browser(&url);
    }
    let mut result = Ok(());
    while let Some(joined) = parts.join_next().await {
        let outcome = joined.map_err(anyhow::Error::from).and_then(|r| r);
        if let Err(e) = outcome {
            stop.cancel();
            if result.is_ok() {
                result = Err(e);
            }
        }
    }
    result
}
