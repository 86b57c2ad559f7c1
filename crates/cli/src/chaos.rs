//! `cumulo chaos`: break things on purpose and watch the architecture recover.

use std::process::ExitCode;

use crate::common::EndpointArgs;
use crate::render::say;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// What to break (or mend).
    action: Action,
    /// The zone (fail-zone, restore-zone) or the instance id (kill-instance, kill-app).
    target: String,
    /// cpu-burn: the share of the instance's vCPUs to burn.
    #[arg(long, default_value_t = 100.0)]
    percent: f64,
    /// cpu-burn: for how long (AWS time, like `10m`, `90s`).
    #[arg(long = "for", default_value = "10m", value_parser = crate::common::parse_duration)]
    duration: std::time::Duration,
    #[command(flatten)]
    endpoint: EndpointArgs,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug)]
enum Action {
    /// Take a zone down: its instances stop at once and launches there fail.
    FailZone,
    /// Bring a failed zone back.
    RestoreZone,
    /// Kill an instance's machine (all its processes): it stays running with its system
    /// status check failed, until recovered (an alarm's recover action) or replaced.
    KillInstance,
    /// Kill only an instance's app (kill -9): the load balancer's health checks notice.
    KillApp,
    /// Burn CPU inside an instance's own process tree (its CPUUtilization rises).
    CpuBurn,
}

pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    let action = match args.action {
        Action::FailZone => "fail-zone",
        Action::RestoreZone => "restore-zone",
        Action::KillInstance => "kill-instance",
        Action::KillApp => "kill-app",
        Action::CpuBurn => "cpu-burn",
    };
    let query = match args.action {
        Action::CpuBurn => {
            format!("?percent={}&for={}", args.percent, args.duration.as_secs_f64())
        }
        _ => String::new(),
    };
    let client = args.endpoint.client();
    let (ok, text) = client
        .local(http::Method::POST, &format!("/_cumulo/chaos/{action}/{}{query}", args.target))
        .await?;
    if ok {
        say!("{}", text.trim_end());
        Ok(ExitCode::SUCCESS)
    } else {
        eprintln!("error: {}", text.trim_end());
        Ok(ExitCode::FAILURE)
    }
}
