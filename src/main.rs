//! `fine-grained-monitor`: parse the command line, start logging, run the mode.

use fine_grained_monitor::agent::discovery::DiscoveryMode;
use fine_grained_monitor::agent::process_table::capabilities::{self, Ptrace};
use fine_grained_monitor::cli::{self, Mode};
use fine_grained_monitor::{agent, export, local, operator, shutdown, telemetry, viewer};

fn main() -> anyhow::Result<()> {
    let cli = match cli::parse_main() {
        Ok(cli) => cli,
        Err(e) => e.exit(),
    };
    telemetry::init(&cli.log)?;
    // Capabilities belong to each thread: settled before the runtime starts any.
    let processes = match &cli.mode {
        Mode::Agent(args) => args.processes_enabled(DiscoveryMode::Kubernetes),
        Mode::Local(args) => args.agent.processes_enabled(DiscoveryMode::Local),
        _ => false,
    };
    match capabilities::settle(processes) {
        Ok(Some(Ptrace::NotPermitted)) => tracing::warn!(
            "processes on without CAP_SYS_PTRACE: other users' PSS, USS and swap are null (docs/security.md)"
        ),
        Ok(_) => {}
        Err(e) => tracing::warn!(error = %e, "cannot settle the process's capabilities"),
    }
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(run(cli))
}

async fn run(cli: cli::Cli) -> anyhow::Result<()> {
    if let Mode::Crd = cli.mode {
        operator::print_crd()?;
        return Ok(());
    }
    let stop = shutdown::on_signal();
    match cli.mode {
        Mode::Operator(args) => operator::run(args, stop).await?,
        Mode::Agent(args) => agent::run(args, stop).await?,
        Mode::Viewer(args) => viewer::run(args, stop).await?,
        Mode::Local(args) => local::run(args, stop).await?,
        Mode::Compact(args) => tokio::select! {
            result = export::compact::run(args) => result?,
            _ = stop.cancelled() => anyhow::bail!("compaction interrupted; run it again (runs are idempotent)"),
        },
        Mode::Uninstall(args) => operator::uninstall::run(args, stop).await?,
        Mode::Crd => {}
        Mode::PrepareDataDir(args) => agent::data_dir::run_prepare(&args)?,
    }
    Ok(())
}
