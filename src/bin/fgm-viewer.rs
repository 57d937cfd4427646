//! `fgm-viewer <data-dir> [--port=8050] [--no-browser]`: the viewer alone.

use fine_grained_monitor::{cli, shutdown, telemetry, viewer};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = cli::parse_viewer();
    telemetry::init(&cli.log)?;
    viewer::run(cli.viewer, shutdown::on_signal()).await?;
    Ok(())
}
