//! `fgm-viewer s3://bucket/prefix` over several nodes' history: the cluster view of
//! `kubectl fgm view` ([`crate::plugin::view`]) over the exported bucket. Each node's history is
//! copied into its own cache directory (incrementally: files already there are kept) and served
//! by a viewer of its own on a loopback port; the cluster view joins them, every node shown,
//! containers keyed `<node>/<id>` (searching a node's name lists its containers).
//!
//! ```text
//!  s3://b/p ─▶ nodes under it ─▶ mirror each (≤ 4 at once) ─▶ <cache>/<node> ─▶ viewer on 127.0.0.1:0
//!  --bind:--port ─▶ plugin::view::app(Federation of those viewers)
//! ```

use std::net::SocketAddr;
use std::time::Duration;

use futures::StreamExt;
use tokio_util::sync::CancellationToken;

use super::{Options, ViewerArgs, bind, browser_url, open_browser, serve};
use crate::plugin::federation::{FedNode, Federation};
use crate::plugin::forward::Reach;

/// Nodes copied at the same time.
const MIRRORS_AT_ONCE: usize = 4;
/// How long a node's local viewer may take: it reads its own disk, on this machine.
const NODE_TIMEOUT: Duration = Duration::from_secs(30);

/// Copies every node's history under `url`, serves each, and the cluster view over them on
/// `--bind:--port` until `stop`.
pub async fn run(
    args: ViewerArgs,
    url: String,
    nodes: Vec<String>,
    stop: CancellationToken,
) -> anyhow::Result<()> {
    tracing::info!(%url, nodes = nodes.len(), "several nodes under the prefix: copying each node's history for the cluster view");
    let copied: Vec<anyhow::Result<(String, std::path::PathBuf)>> = futures::stream::iter(nodes)
        .map(|node| {
            let (args, url) = (&args, &url);
            async move {
                let dir = args.bucket.prepare_node(url, Some(&node), true).await?;
                Ok((node, dir))
            }
        })
        .buffered(MIRRORS_AT_ONCE)
        .collect()
        .await;
    let mut fed_nodes = Vec::new();
    for copy in copied {
        let (node, dir) = copy?;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let opts = Options::with_tuning(dir, &args.tuning);
        tokio::spawn(serve(listener, opts, stop.clone()));
        fed_nodes.push(FedNode {
            name: node,
            reach: Reach::Direct(addr),
        });
    }
    let fed = Federation::new(fed_nodes, 16, NODE_TIMEOUT);
    let listener = bind(SocketAddr::new(args.bind, args.port)).await?;
    let page = browser_url(listener.local_addr()?);
    tracing::info!(url = %page, nodes = fed.nodes().len(), "cluster view of the bucket listening");
    if !args.no_browser {
        open_browser(&page);
    }
    let limits = crate::http::Limits::from(&args.http);
    crate::http::serve(
        listener,
        crate::plugin::view::app(fed),
        &limits,
        stop.clone(),
    )
    .await?;
    stop.cancel();
    Ok(())
}
