//! One shutdown signal for every task of a process: SIGTERM (Kubernetes) or
//! SIGINT (Ctrl-C) cancels the token; tasks finish their current step and
//! return (the agent renames its open file, servers drain).

use tokio_util::sync::CancellationToken;

/// A token cancelled on the first SIGTERM or SIGINT.
pub fn on_signal() -> CancellationToken {
    let token = CancellationToken::new();
    let trigger = token.clone();
    tokio::spawn(async move {
        let name = wait_for_signal().await;
        tracing::info!(signal = name, "shutting down");
        trigger.cancel();
    });
    token
}

async fn wait_for_signal() -> &'static str {
    use tokio::signal::unix::{SignalKind, signal};
    match (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) {
        (Ok(mut term), Ok(mut int)) => tokio::select! {
            _ = term.recv() => "SIGTERM",
            _ = int.recv() => "SIGINT",
        },
        _ => {
            // Without signal handlers (unusual sandboxes) fall back to Ctrl-C only.
            let _ = tokio::signal::ctrl_c().await;
            "SIGINT"
        }
    }
}
