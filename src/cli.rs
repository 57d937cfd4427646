//! Command line: one binary, seven modes (`operator`, `agent`, `viewer`, `crd`,
//! `local`, `compact` (object storage, issue #19), and `uninstall`, the chart's pre-delete hook), plus the `fgm-viewer` alias. Every flag has an `FGM_<FLAG>`
//! environment twin. A settings file (`--config`, e.g. the ConfigMap the
//! operator mounts) fills in flags that neither the command line nor the
//! environment set: command line > environment > settings file > default.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::{Path, PathBuf};

use clap::parser::ValueSource;
use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::agent::AgentArgs;
use crate::operator::OperatorArgs;
use crate::viewer::ViewerArgs;

/// Per-second container metrics for Kubernetes nodes.
#[derive(Debug, Parser)]
#[command(name = "fine-grained-monitor", version, about, long_about = None)]
pub struct Cli {
    #[command(flatten)]
    pub log: LogArgs,

    /// YAML settings file: a map of flag names (without `--`) to values. Used for
    /// flags that are set neither on the command line nor in the environment.
    #[arg(long, env = "FGM_CONFIG", global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,

    #[command(subcommand)]
    pub mode: Mode,
}

#[derive(Debug, Subcommand)]
pub enum Mode {
    /// Reconcile NodeMonitor resources into per-node DaemonSets.
    Operator(OperatorArgs),
    /// Record this node's containers every second (runs inside the DaemonSet).
    Agent(AgentArgs),
    /// Serve charts of a data directory (same as `fgm-viewer`).
    Viewer(ViewerArgs),
    /// Print the NodeMonitor CustomResourceDefinition as YAML.
    Crd,
    /// Hand a data directory to the agent's user (the DaemonSet's init container).
    PrepareDataDir(crate::agent::data_dir::PrepareArgs),
    /// Record this machine's cgroups and serve the viewer: no cluster needed.
    Local(LocalArgs),
    /// Merge the small files agents exported to object storage into hourly ones (one run).
    Compact(crate::export::compact::CompactArgs),
    /// Delete a Helm release's NodeMonitors and wait until the operator has finalized them
    /// (the chart's pre-delete hook).
    Uninstall(crate::operator::uninstall::UninstallArgs),
}

/// `local` = agent + viewer on this machine, with a data directory in the user's home.
#[derive(Debug, Args)]
pub struct LocalArgs {
    #[command(flatten)]
    pub agent: AgentArgs,

    /// Port of the viewer.
    #[arg(long, env = "FGM_PORT", default_value_t = 8050)]
    pub port: u16,

    /// Address the viewer listens on.
    #[arg(long, env = "FGM_BIND", default_value = "127.0.0.1")]
    pub bind: std::net::IpAddr,

    /// Do not open a browser.
    #[arg(long, env = "FGM_NO_BROWSER")]
    pub no_browser: bool,

    #[command(flatten)]
    pub viewer: crate::viewer::TuningArgs,
}

/// `fgm-viewer <data-dir> [--port=8050] [--no-browser]`.
#[derive(Debug, Parser)]
#[command(
    name = "fgm-viewer",
    version,
    about = "Serve charts of a fine-grained-monitor data directory"
)]
pub struct ViewerCli {
    #[command(flatten)]
    pub log: LogArgs,

    #[command(flatten)]
    pub viewer: ViewerArgs,
}

#[derive(Debug, Clone, Args)]
pub struct LogArgs {
    /// Log format.
    #[arg(long, env = "FGM_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text, global = true)]
    pub log_format: LogFormat,

    /// Log filter: a level (`info`, `debug`) or tracing directives
    /// (`info,fine_grained_monitor::agent=debug`).
    #[arg(long, env = "FGM_LOG_LEVEL", default_value = "info", global = true)]
    pub log_level: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

/// A settings file that could not be used, with the file and the entry at fault.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read settings file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("settings file {path} is not a YAML map of flag names to values: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("settings file {path}: unknown setting {key:?} for `{mode}` (known: {known})")]
    UnknownKey {
        path: PathBuf,
        key: String,
        mode: String,
        known: String,
    },
    #[error("settings file {path}: setting {key:?} must be a string, number or boolean")]
    BadValue { path: PathBuf, key: String },
}

/// Parses the main binary's command line, applying the settings file if one is named.
pub fn parse_main() -> Result<Cli, clap::Error> {
    parse_with_config::<Cli>(std::env::args_os().collect())
}

/// Parses `fgm-viewer`'s command line.
pub fn parse_viewer() -> ViewerCli {
    ViewerCli::parse()
}

pub(crate) fn parse_with_config<T: Parser>(argv: Vec<OsString>) -> Result<T, clap::Error> {
    let mut cmd = T::command();
    let matches = cmd.try_get_matches_from_mut(argv.clone())?;
    let config_path = matches.get_one::<PathBuf>("config").cloned();
    let Some(path) = config_path else {
        return T::from_arg_matches(&matches);
    };
    let extra = match config_args(&cmd, &matches, &path) {
        Ok(extra) => extra,
        Err(e) => return Err(cmd.error(clap::error::ErrorKind::InvalidValue, e.to_string())),
    };
    let mut full = argv;
    full.extend(extra.into_iter().map(OsString::from));
    let matches = cmd.try_get_matches_from_mut(full)?;
    T::from_arg_matches(&matches)
}

/// The `--flag=value` arguments a settings file adds for the selected mode.
fn config_args(
    cmd: &clap::Command,
    matches: &clap::ArgMatches,
    path: &Path,
) -> Result<Vec<String>, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let (mode_cmd, mode_matches) = match matches.subcommand() {
        Some((name, sub)) => (cmd.find_subcommand(name).unwrap_or(cmd), sub),
        None => (cmd, matches),
    };
    settings_to_args(&text, path, mode_cmd, mode_matches)
}

/// Pure core of the settings file: each entry becomes `--key=value` unless the flag
/// was already given on the command line or in the environment.
fn settings_to_args(
    text: &str,
    path: &Path,
    mode_cmd: &clap::Command,
    mode_matches: &clap::ArgMatches,
) -> Result<Vec<String>, ConfigError> {
    let entries: BTreeMap<String, serde_json::Value> = if text.trim().is_empty() {
        BTreeMap::new()
    } else {
        serde_saphyr::from_str(text).map_err(|e| ConfigError::Parse {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?
    };
    let known: Vec<&clap::Arg> = mode_cmd
        .get_arguments()
        .filter(|a| a.get_long().is_some() && a.get_id() != "config")
        .collect();
    let mut out = Vec::new();
    for (key, value) in entries {
        let long = key.replace('_', "-");
        let Some(arg) = known.iter().find(|a| a.get_long() == Some(long.as_str())) else {
            return Err(ConfigError::UnknownKey {
                path: path.to_path_buf(),
                key,
                mode: mode_cmd.get_name().to_string(),
                known: known
                    .iter()
                    .filter_map(|a| a.get_long())
                    .collect::<Vec<_>>()
                    .join(", "),
            });
        };
        let already_set = matches!(
            mode_matches.value_source(arg.get_id().as_str()),
            Some(ValueSource::CommandLine | ValueSource::EnvVariable)
        );
        if already_set {
            continue;
        }
        let is_switch = matches!(arg.get_action(), clap::ArgAction::SetTrue);
        match value {
            serde_json::Value::Bool(true) if is_switch => out.push(format!("--{long}")),
            serde_json::Value::Bool(false) if is_switch => {}
            serde_json::Value::String(s) if is_switch => {
                if s == "true" {
                    out.push(format!("--{long}"));
                }
            }
            serde_json::Value::String(s) => out.push(format!("--{long}={s}")),
            serde_json::Value::Number(n) => out.push(format!("--{long}={n}")),
            serde_json::Value::Bool(b) => out.push(format!("--{long}={b}")),
            _ => {
                return Err(ConfigError::BadValue {
                    path: path.to_path_buf(),
                    key,
                });
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;
    use std::io::Write;

    fn argv(args: &[&str]) -> Vec<OsString> {
        args.iter().map(OsString::from).collect()
    }

    #[test]
    fn cli_is_well_formed() {
        Cli::command().debug_assert();
        ViewerCli::command().debug_assert();
    }

    #[test]
    fn every_flag_has_an_fgm_env_twin() {
        fn check(cmd: &clap::Command, path: &str) {
            for arg in cmd.get_arguments() {
                if arg.get_long().is_none() || ["help", "version"].contains(&arg.get_id().as_str())
                {
                    continue;
                }
                let env = arg.get_env().and_then(|e| e.to_str()).unwrap_or("");
                let expected = format!(
                    "FGM_{}",
                    arg.get_long()
                        .unwrap_or_default()
                        .replace('-', "_")
                        .to_uppercase()
                );
                assert_eq!(env, expected, "{path} --{:?}", arg.get_long());
            }
            for sub in cmd.get_subcommands() {
                check(sub, &format!("{path} {}", sub.get_name()));
            }
        }
        check(&Cli::command(), "fine-grained-monitor");
        check(&ViewerCli::command(), "fgm-viewer");
    }

    #[test]
    fn settings_file_fills_only_unset_flags() {
        let mut file = tempfile::NamedTempFile::new().unwrap();
        writeln!(file, "interval: 2s\nrotation: 120s\nretention_max_age: 3d").unwrap();
        let path = file.path().to_str().unwrap();
        let cli: Cli = parse_with_config(argv(&[
            "fgm",
            "--config",
            path,
            "agent",
            "--rotation",
            "60s",
        ]))
        .unwrap();
        let Mode::Agent(agent) = cli.mode else {
            panic!("agent mode expected")
        };
        assert_eq!(agent.interval.to_string(), "2s");
        assert_eq!(
            agent.rotation.to_string(),
            "1m",
            "command line wins over the file"
        );
        assert_eq!(agent.retention_max_age.to_string(), "3d");
    }

    #[test]
    fn settings_file_unknown_key_names_file_and_key() {
        let mut file = tempfile::NamedTempFile::new().unwrap();
        writeln!(file, "intervall: 2s").unwrap();
        let path = file.path().to_str().unwrap();
        let err = parse_with_config::<Cli>(argv(&["fgm", "--config", path, "agent"]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("intervall") && err.contains(path), "{err}");
    }

    #[test]
    fn settings_file_bad_value_is_reported_by_clap() {
        let mut file = tempfile::NamedTempFile::new().unwrap();
        writeln!(file, "interval: soon").unwrap();
        let path = file.path().to_str().unwrap();
        let err = parse_with_config::<Cli>(argv(&["fgm", "--config", path, "agent"]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("soon"), "{err}");
    }
}
