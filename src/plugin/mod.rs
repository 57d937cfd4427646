//! `kubectl fgm` (issue #26): the kubectl plugin. The user's own kubeconfig and rights reach
//! every node's viewer through the API server's port-forward, as `kubectl port-forward` does;
//! no central server, no `kubectl` binary.
//!
//! ```text
//!  cli ─▶ client (kubeconfig, context) ─▶ cluster::Monitors (NodeMonitors + monitor pods)
//!    nodes: + list nodes ─▶ /api/status of each node's viewer ─▶ table | json
//!    open:  pod ─▶ node ─▶ monitor pod ─▶ 127.0.0.1:P ═ port-forward per connection ═▶ viewer
//!    top:   /api/overview of every node (≤ N at once, each ≤ timeout) ─▶ merged ranking
//!    mcp:   stdin/stdout JSON-RPC ─▶ tools/call POSTed to every node's /mcp ─▶ joined answers
//! ```
//!
//! Pure parts (ranking, choosing pods, messages, URLs) are unit-tested beside their modules;
//! [`top::collect`] and [`open::prepare`] are the library entry points the tests call.

pub mod cli;
pub mod cluster;
pub mod error;
pub mod forward;
pub mod mcp;
pub mod nodes;
pub mod open;
pub mod table;
pub mod top;

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
                Output::Table => print!("{}", nodes::render_table(&report)),
                Output::Json => println!("{}", json(&report)),
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
                Output::Table => print!("{}", top::render_table(&report)),
                Output::Json => println!("{}", json(&report)),
            }
        }
        PluginCommand::Open(args) => {
            let plan = open::prepare(
                &client,
                &args.pod,
                &namespace,
                args.container.as_deref(),
                args.from.as_deref(),
                args.to.as_deref(),
            )
            .await?;
            let stop = async {
                // Without a signal handler, stop only with the process.
                if tokio::signal::ctrl_c().await.is_err() {
                    std::future::pending::<()>().await;
                }
            };
            open::serve(&client, &plan, args.port, !args.no_browser, stop).await?;
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
