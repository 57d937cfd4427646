//! `kubectl fgm` (issue #26): the kubectl plugin. The user's own kubeconfig and rights reach
//! every node's viewer through the API server's port-forward, as `kubectl port-forward` does;
//! no central server, no `kubectl` binary.
//!
//! ```text
//!  cli ─▶ client (kubeconfig, context) ─▶ cluster::Monitors (NodeMonitors + monitor pods)
//!    nodes: + list nodes ─▶ /api/status of each node's viewer ─▶ table | json
//!    open:  pod ─▶ node ─▶ monitor pod ─▶ 127.0.0.1:P ═ port-forward per connection ═▶ viewer
//!           KIND/NAME ─▶ its pods' nodes ─▶ view over them, the pods' containers selected
//!    view:  127.0.0.1:P ─▶ federation (every node's viewer API, ≤ N at once) ─▶ joined answers
//!    top:   /api/overview of every node (≤ N at once, each ≤ timeout) ─▶ merged ranking
//!    mcp:   stdin/stdout JSON-RPC ─▶ tools/call POSTed to every node's /mcp ─▶ joined answers
//! ```
//!
//! Pure parts (ranking, choosing pods, messages, URLs) are unit-tested beside their modules;
//! [`top::collect`] and [`open::prepare`] are the library entry points the tests call.

/// `println!` that survives a closed stdout: `kubectl fgm view | head -1` must not bring the
/// server down when the reader goes away (the lines are for the user; the server is the point).
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout(), $($arg)*);
    }};
}

pub mod cli;
pub mod cluster;
pub mod error;
pub mod federation;
pub mod forward;
pub mod mcp;
pub mod nodes;
pub mod open;
pub mod table;
pub mod top;
pub mod view;
pub mod workload;

use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config};

pub use cli::PluginCli;
use cli::{GlobalArgs, Output, PluginCommand};
pub use error::PluginError;

/// A client from the kubeconfig and context the flags name (kubectl's defaults otherwise),
/// and the namespace to use for pods (`-n`, else the context's).
pub async fn client(global: &GlobalArgs) -> Result<(Client, String), PluginError> {
    let options = KubeConfigOptions {
        context: global.context.clone(),
        ..KubeConfigOptions::default()
    };
    let config = match &global.kubeconfig {
        Some(path) => {
            let kc = Kubeconfig::read_from(path)
                .map_err(|e| PluginError::Kubeconfig(format!("{}: {e}", path.display())))?;
            Config::from_custom_kubeconfig(kc, &options).await
        }
        None => Config::from_kubeconfig(&options).await,
    }
    .map_err(|e| PluginError::Kubeconfig(e.to_string()))?;
    let namespace = global
        .namespace
        .clone()
        .unwrap_or_else(|| config.default_namespace.clone());
    let client = Client::try_from(config).map_err(|e| PluginError::Kubeconfig(e.to_string()))?;
    Ok((client, namespace))
}

fn json(value: &impl serde::Serialize) -> String {
    serde_json::to_string_pretty(value).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"))
}

/// Resolves on Ctrl-C (never, without a signal handler: the process stops with it).
async fn ctrl_c() {
    if tokio::signal::ctrl_c().await.is_err() {
        std::future::pending::<()>().await;
    }
}

/// A token cancelled on Ctrl-C.
fn stop_on_ctrl_c() -> tokio_util::sync::CancellationToken {
    let stop = tokio_util::sync::CancellationToken::new();
    let cancel = stop.clone();
    tokio::spawn(async move {
        ctrl_c().await;
        cancel.cancel();
    });
    stop
}

/// Runs one command; what it prints goes to stdout, the error (in words) to the caller.
pub async fn run(cli: PluginCli) -> Result<(), PluginError> {
    let (client, namespace) = client(&cli.global).await?;
    match cli.command {
        PluginCommand::Nodes(args) => {
            let report = nodes::collect(
                &client,
                usize::from(args.ask.max_nodes_at_once),
                args.ask.node_timeout,
            )
            .await?;
            match args.output {
                Output::Table => say!("{}", nodes::render_table(&report).trim_end()),
                Output::Json => say!("{}", json(&report)),
            }
        }
        PluginCommand::Top(args) => {
            let opts = top::TopOptions {
                by: args.by,
                since: args.since,
                top: usize::from(args.top),
                max_nodes_at_once: usize::from(args.ask.max_nodes_at_once),
                node_timeout: args.ask.node_timeout,
            };
            let report = top::collect(&client, &opts).await?;
            match args.output {
                Output::Table => say!("{}", top::render_table(&report).trim_end()),
                Output::Json => say!("{}", json(&report)),
            }
        }
        PluginCommand::Open(args) => match workload::parse_target(&args.pod)? {
            workload::OpenTarget::Pod(pod) => {
                let plan = open::prepare(
                    &client,
                    &pod,
                    &namespace,
                    args.container.as_deref(),
                    args.from.as_deref(),
                    args.to.as_deref(),
                )
                .await?;
                open::serve(&client, &plan, args.port, !args.no_browser, ctrl_c()).await?;
            }
            workload::OpenTarget::Workload(kind, name) => {
                let range = open::parse_range(
                    args.from.as_deref(),
                    args.to.as_deref(),
                    chrono::Utc::now().timestamp_millis(),
                )?;
                let plan =
                    workload::prepare(&client, kind, &name, &namespace, args.container.as_deref())
                        .await?;
                say!(
                    "{} {}/{}: {} container(s) on {} node(s)",
                    kind.as_str(),
                    plan.namespace,
                    plan.name,
                    plan.keys.len(),
                    plan.nodes.len()
                );
                for why in &plan.left_out {
                    say!("  left out: {why}");
                }
                let filter = federation::NodeFilter {
                    names: plan.nodes.clone(),
                    selector: None,
                };
                let fed = federation::from_cluster(
                    &client,
                    &filter,
                    usize::from(args.ask.max_nodes_at_once),
                    args.ask.node_timeout,
                )
                .await?;
                let hash = open::viewer_hash(&plan.keys, range);
                view::serve(fed, args.port, &hash, !args.no_browser, stop_on_ctrl_c()).await?;
            }
        },
        PluginCommand::View(args) => {
            let filter = federation::NodeFilter {
                names: args.nodes.clone(),
                selector: args.selector.clone(),
            };
            let fed = federation::from_cluster(
                &client,
                &filter,
                usize::from(args.ask.max_nodes_at_once),
                args.ask.node_timeout,
            )
            .await?;
            if fed.nodes().is_empty() {
                return Err(PluginError::NotCovered(
                    "no monitored node matches: kubectl fgm nodes lists the nodes and their monitors"
                        .into(),
                ));
            }
            let hash = open::viewer_hash(&[], None);
            view::serve(fed, args.port, &hash, !args.no_browser, stop_on_ctrl_c()).await?;
        }
        PluginCommand::Mcp(args) => {
            let opts = mcp::McpOptions {
                max_nodes_at_once: usize::from(args.ask.max_nodes_at_once),
                node_timeout: args.ask.node_timeout,
            };
            mcp::serve(&client, opts).await?;
        }
    }
    Ok(())
}
