//! Logging set-up: text for people, JSON for log pipelines.

use tracing_subscriber::EnvFilter;

use crate::cli::{LogArgs, LogFormat};

/// Why logging could not start (only a bad filter can cause it).
#[derive(Debug, thiserror::Error)]
#[error("invalid --log-level {directives:?}: {source}")]
pub struct LogInitError {
    directives: String,
    source: tracing_subscriber::filter::ParseError,
}

/// Installs the global subscriber; call once at start-up.
pub fn init(args: &LogArgs) -> Result<(), LogInitError> {
    let filter = EnvFilter::try_new(&args.log_level).map_err(|source| LogInitError {
        directives: args.log_level.clone(),
        source,
    })?;
    // Colours only on a terminal: a pod's log (kubectl logs) or a file gets plain text.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi)
        .with_writer(std::io::stderr);
    // A second init (tests) keeps the first subscriber; that is not an error.
    let _ = match args.log_format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .try_init(),
    };
    Ok(())
}
