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
    #[command(flatten)]
    endpoint: EndpointArgs,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug)]
enum Action {
    /// Take a zone down: its instances stop at once and launches there fail.
    FailZone,
    /// Bring a failed zone back.
    RestoreZone,
    /// Kill an instance's machine (all its processes): EC2 sees it stop.
    KillInstance,
    /// Kill only an instance's app (kill -9): the load balancer's health checks notice.
    KillApp,
}

pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    let action = match args.action {
        Action::FailZone => "fail-zone",
        Action::RestoreZone => "restore-zone",
        Action::KillInstance => "kill-instance",
        Action::KillApp => "kill-app",
    };
    let client = args.endpoint.client();
    let (ok, text) = client
        .local(http::Method::POST, &format!("/_cumulo/chaos/{action}/{}", args.target))
        .await?;
    if ok {
        say!("{}", text.trim_end());
        Ok(ExitCode::SUCCESS)
    } else {
        eprintln!("error: {}", text.trim_end());
        Ok(ExitCode::FAILURE)
    }
}
