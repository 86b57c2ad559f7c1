//! `cumulo serve`: the region as a long-running server.

use std::process::ExitCode;

use crate::common::{RegionArgs, StopSignal, default_data_dir};

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    region: RegionArgs,
    /// Keep state in memory only (nothing is written to disk).
    #[arg(long, conflicts_with = "data_dir")]
    ephemeral: bool,
}

pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    let mut stop = StopSignal::install()?;
    let data_dir = if args.ephemeral {
        None
    } else {
        Some(args.region.data_dir.clone().unwrap_or_else(default_data_dir))
    };
    let region = region::Region::start(args.region.config(data_dir.clone())?).await?;
    let state = data_dir.map(|d| d.display().to_string()).unwrap_or_else(|| "memory only".into());
    eprintln!(
        "Cumulo region {} listening on {} (state: {state})",
        args.region.region, region.endpoint
    );
    eprintln!("Use it with: export AWS_ENDPOINT_URL={}", region.endpoint);
    if args.region.time_scale != 1.0 {
        eprintln!("Timers run {}x faster than AWS's.", args.region.time_scale);
    }
    stop.wait().await;
    eprintln!("Stopping…");
    region.shutdown().await;
    Ok(ExitCode::SUCCESS)
}
