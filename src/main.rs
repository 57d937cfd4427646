//! `fine-grained-monitor`: parse the command line, start logging, run the mode.

use fine_grained_monitor::cli::{self, Mode};
use fine_grained_monitor::{agent, export, local, operator, shutdown, telemetry, viewer};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = match cli::parse_main() {
        Ok(cli) => cli,
        Err(e) => e.exit(),
    };
    telemetry::init(&cli.log)?;
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
