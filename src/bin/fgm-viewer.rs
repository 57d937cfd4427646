fn main() -> anyhow::Result<()> {
    let cli = fine_grained_monitor::cli::parse_viewer();
    fine_grained_monitor::telemetry::init(&cli.log)?;
    anyhow::bail!("the viewer is not built yet")
}
