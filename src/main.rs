use fine_grained_monitor::cli::{self, Mode};

fn main() -> anyhow::Result<()> {
    let cli = match cli::parse_main() {
        Ok(cli) => cli,
        Err(e) => e.exit(),
    };
    fine_grained_monitor::telemetry::init(&cli.log)?;
    match cli.mode {
        Mode::Operator(_) | Mode::Agent(_) | Mode::Viewer(_) | Mode::Crd | Mode::Local(_) => {
            anyhow::bail!("this mode is not built yet")
        }
    }
}
