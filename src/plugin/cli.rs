//! `kubectl fgm` flags (clap derive). Every flag has an `FGM_<FLAG>` environment twin; the
//! kubeconfig, context and namespace flags behave as kubectl's (unset: `$KUBECONFIG` or
//! `~/.kube/config`, its current context and that context's namespace).

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

use super::top::Measure;

/// Per-second container history of any pod, and the cluster's top containers, through the
/// monitor pods' viewers (your own credentials; port-forwards, no `kubectl` binary needed).
#[derive(Debug, Parser)]
#[command(name = "kubectl-fgm", bin_name = "kubectl fgm", version, long_about = None)]
pub struct PluginCli {
    #[command(flatten)]
    pub global: GlobalArgs,

    #[command(subcommand)]
    pub command: PluginCommand,
}

/// The kubectl-like connection flags.
#[derive(Debug, Clone, Args)]
pub struct GlobalArgs {
    /// Kubeconfig file (default: `$KUBECONFIG`, else `~/.kube/config`).
    #[arg(long, env = "FGM_KUBECONFIG", global = true, value_name = "FILE")]
    pub kubeconfig: Option<PathBuf>,

    /// Kubeconfig context (default: the current context).
    #[arg(long, env = "FGM_CONTEXT", global = true, value_name = "NAME")]
    pub context: Option<String>,

    /// Namespace of the pod to open (default: the context's namespace).
    #[arg(
        short = 'n',
        long,
        env = "FGM_NAMESPACE",
        global = true,
        value_name = "NAMESPACE"
    )]
    pub namespace: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum PluginCommand {
    /// Every node: whether a NodeMonitor covers it, its monitor pod, version and data range.
    Nodes(NodesArgs),
    /// A pod's per-second history in the browser: its node's viewer, on 127.0.0.1
    /// (`deployment/NAME`, `statefulset/NAME`, `job/NAME`…: every pod of it, across nodes).
    Open(OpenArgs),
    /// The viewer on 127.0.0.1 over every monitored node: the overview ranks containers across
    /// nodes, a chart holds containers of several nodes.
    View(ViewArgs),
    /// The cluster's top containers by one measure, first row the highest.
    Top(TopArgs),
    /// An MCP server on stdin/stdout for AI assistants, answering for every monitored node.
    Mcp(McpArgs),
}

#[derive(Debug, Clone, Args)]
pub struct McpArgs {
    #[command(flatten)]
    pub ask: AskArgs,
}

/// How a report is printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Output {
    Table,
    Json,
}

/// Flags of every command that asks the nodes' viewers.
#[derive(Debug, Clone, Args)]
pub struct AskArgs {
    /// How long one node's viewer may take to answer (port-forward included) before it is
    /// shown as not answering.
    #[arg(long, env = "FGM_NODE_TIMEOUT", default_value = "5s", value_parser = parse_duration, value_name = "DURATION")]
    pub node_timeout: Duration,

    /// Nodes asked at the same time (one port-forward each).
    #[arg(long, env = "FGM_MAX_NODES_AT_ONCE", default_value_t = 16, value_parser = clap::value_parser!(u16).range(1..=256), value_name = "N")]
    pub max_nodes_at_once: u16,
}

#[derive(Debug, Clone, Args)]
pub struct NodesArgs {
    /// Output format.
    #[arg(
        short = 'o',
        long,
        env = "FGM_OUTPUT",
        value_enum,
        default_value = "table"
    )]
    pub output: Output,

    #[command(flatten)]
    pub ask: AskArgs,
}

#[derive(Debug, Clone, Args)]
pub struct OpenArgs {
    /// The pod, or `KIND/NAME` of a deployment, statefulset, daemonset, replicaset or job (in
    /// `-n`, else the context's namespace).
    #[arg(env = "FGM_POD", value_name = "POD")]
    pub pod: String,

    /// Only this container of the pod (default: all of them).
    #[arg(short = 'c', long, env = "FGM_CONTAINER", value_name = "CONTAINER")]
    pub container: Option<String>,

    /// Start of the range: RFC 3339 or milliseconds since the epoch (with `--to`, default:
    /// one hour before it; neither: the viewer's last 15 minutes, live).
    #[arg(long, env = "FGM_FROM", value_name = "TIME")]
    pub from: Option<String>,

    /// End of the range: RFC 3339 or milliseconds since the epoch (default: now).
    #[arg(long, env = "FGM_TO", value_name = "TIME")]
    pub to: Option<String>,

    /// Local port of the viewer on 127.0.0.1 (0: any free port).
    #[arg(long, env = "FGM_PORT", default_value_t = 0, value_name = "PORT")]
    pub port: u16,

    /// Print the URL without opening a browser.
    #[arg(long, env = "FGM_NO_BROWSER")]
    pub no_browser: bool,

    #[command(flatten)]
    pub ask: AskArgs,
}

#[derive(Debug, Clone, Args)]
pub struct ViewArgs {
    /// Only nodes whose labels match this selector (e.g. `pool=web`; needs the right to list
    /// nodes).
    #[arg(short = 'l', long, env = "FGM_SELECTOR", value_name = "SELECTOR")]
    pub selector: Option<String>,

    /// Only these nodes (comma-separated names).
    #[arg(long, env = "FGM_NODES", value_delimiter = ',', value_name = "NODES")]
    pub nodes: Vec<String>,

    /// Local port of the cluster view on 127.0.0.1 (0: any free port).
    #[arg(long, env = "FGM_PORT", default_value_t = 0, value_name = "PORT")]
    pub port: u16,

    /// Print the URL without opening a browser.
    #[arg(long, env = "FGM_NO_BROWSER")]
    pub no_browser: bool,

    #[command(flatten)]
    pub ask: AskArgs,
}

#[derive(Debug, Clone, Args)]
pub struct TopArgs {
    /// The measure to rank by.
    #[arg(long, env = "FGM_BY", value_enum, default_value = "cpu")]
    pub by: Measure,

    /// How far back to look (e.g. `15m`, `1h`, `24h`).
    #[arg(long, env = "FGM_SINCE", default_value = "15m", value_parser = parse_duration, value_name = "DURATION")]
    pub since: Duration,

    /// Rows shown.
    #[arg(long, env = "FGM_TOP", default_value_t = 20, value_parser = clap::value_parser!(u16).range(1..=1000), value_name = "N")]
    pub top: u16,

    /// Output format.
    #[arg(
        short = 'o',
        long,
        env = "FGM_OUTPUT",
        value_enum,
        default_value = "table"
    )]
    pub output: Output,

    #[command(flatten)]
    pub ask: AskArgs,
}

/// `--since` and `--node-timeout`: the crate's durations (`500ms`, `15m`, `1h30m`, `7d`).
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    crate::units::parse_duration(text).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn flags_are_consistent_and_have_environment_twins() {
        PluginCli::command().debug_assert();
        let cmd = PluginCli::command();
        let mut all: Vec<&clap::Arg> = cmd.get_arguments().collect();
        for sub in cmd.get_subcommands() {
            all.extend(sub.get_arguments());
        }
        for arg in all {
            let id = arg.get_id().as_str();
            if ["help", "version"].contains(&id) {
                continue;
            }
            assert!(arg.get_env().is_some(), "--{id} has no environment twin");
        }
    }

    #[test]
    fn since_parses_the_crates_durations() {
        assert_eq!(parse_duration("15m"), Ok(Duration::from_secs(900)));
        assert_eq!(parse_duration("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration("24h"), Ok(Duration::from_secs(86_400)));
        assert!(
            parse_duration("15").is_err(),
            "a bare number guesses a unit"
        );
        assert!(parse_duration("0s").is_err());
        assert!(parse_duration("soon").is_err());
    }

    #[test]
    fn kubectl_style_flags_parse_anywhere() {
        let cli = PluginCli::try_parse_from([
            "kubectl-fgm",
            "open",
            "web-0",
            "-n",
            "shop",
            "--context",
            "prod",
            "--no-browser",
        ])
        .expect("parses");
        assert_eq!(cli.global.namespace.as_deref(), Some("shop"));
        assert_eq!(cli.global.context.as_deref(), Some("prod"));
        let cli = PluginCli::try_parse_from(["kubectl-fgm", "top", "--by", "memory", "-o", "json"])
            .expect("parses");
        match cli.command {
            PluginCommand::Top(t) => {
                assert_eq!(t.by, Measure::Memory);
                assert_eq!(t.output, Output::Json);
                assert_eq!(t.since, Duration::from_secs(900));
                assert_eq!(t.ask.max_nodes_at_once, 16);
                assert_eq!(t.ask.node_timeout, Duration::from_secs(5));
            }
            other => panic!("not top: {other:?}"),
        }
    }
}
