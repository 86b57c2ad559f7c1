//! Cumulo's command line. `main` parses arguments and runs one command; each command lives in
//! its own module. Errors are reported here, at the edge, with `anyhow`.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod ca;
mod chaos;
mod common;
mod events;
mod inputs;
mod instances;
mod monitoring;
mod render;
mod serve;
mod stacks;
mod up;
mod validate;

#[derive(Parser, Debug)]
#[command(name = "cumulo", version, about = "A local AWS region for highly available web apps")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run a template: start a region, deploy it with live events, print its outputs, keep
    /// running; Ctrl-C deletes the stack and stops.
    Up(up::Args),
    /// Run the region as a server: the AWS API on 127.0.0.1:4566, state in a data directory.
    Serve(serve::Args),
    /// Create or update a stack through a change set, as `aws cloudformation deploy` does.
    Deploy(stacks::DeployArgs),
    /// Show what deploying a template would change (a change set), without changing anything.
    Diff(stacks::DiffArgs),
    /// Delete a stack and wait until it is gone.
    Delete(stacks::StackArgs),
    /// Stacks and their status.
    Status(stacks::StatusArgs),
    /// A stack's events, oldest first.
    Events(stacks::StackArgs),
    /// A stack's outputs.
    Outputs(stacks::StackArgs),
    /// Check a template: every problem, each at file:line:column, or a summary.
    Validate(validate::Args),
    /// Break things on purpose: fail or restore a zone, kill an instance or its app, burn CPU.
    Chaos(chaos::Args),
    /// The local CA certificate that HTTPS listeners' certificates chain to (PEM).
    Ca(ca::Args),
    /// Instances: state, zone, addresses, processes, CPU.
    Instances(instances::ListArgs),
    /// An instance's console output (its UserData's stdout and stderr), or a CloudWatch Logs
    /// group's events (`--group G [--stream S] [--filter PATTERN]`).
    Logs(instances::LogsArgs),
    /// CloudWatch metrics as compact charts of the last window (AWS/EC2, AWS/ApplicationELB, ...).
    Metrics(monitoring::MetricsArgs),
    /// CloudWatch alarms: state, reason, last change (or one alarm's history).
    Alarms(monitoring::AlarmsArgs),
    /// The local mailbox of SNS's email subscriptions (confirmation links, alarm mails).
    Mail(monitoring::MailArgs),
    /// The demo web app instances run in examples: "Hello from INSTANCE in ZONE", /health,
    /// /index.html (the greeting, 503 while failing), /fail and /recover, /burn (CPU), /slow.
    DemoApp(instance_tools::demo::Args),
    /// (internal) Supervise an instance's processes.
    #[command(name = "__supervise", hide = true)]
    Supervise { spec: std::path::PathBuf },
    /// (internal) Burn CPU inside an instance (`cumulo chaos cpu-burn`).
    #[command(name = "__burn", hide = true)]
    Burn { spec: std::path::PathBuf },
    /// (internal) The AWS operations the endpoint answers, as JSON (scripts/coverage.py).
    #[command(name = "__api-actions", hide = true)]
    ApiActions,
}

/// Output format for commands that print results.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum OutputFormat {
    #[default]
    Table,
    Json,
}

pub fn main() -> ExitCode {
    // Under a helper's name (`cfn-signal`, ... linked on instances' PATH), be that helper.
    let argv: Vec<String> = std::env::args().collect();
    if let Some(code) = instance_tools::dispatch(&argv) {
        return code;
    }
    let cli = Cli::parse();
    if let Command::Supervise { spec } = &cli.command {
        return supervisor::run_shim(spec);
    }
    if let Command::Burn { spec } = &cli.command {
        return supervisor::run_burn(spec);
    }
    if let Command::ApiActions = &cli.command {
        let all: serde_json::Map<String, serde_json::Value> = api::coverage::implemented()
            .into_iter()
            .map(|(service, actions)| (service.to_string(), actions.into()))
            .collect();
        render::say!("{}", serde_json::Value::Object(all));
        return ExitCode::SUCCESS;
    }
    init_tracing();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Up(args) => up::run(args).await,
            Command::Serve(args) => serve::run(args).await,
            Command::Deploy(args) => stacks::deploy(args).await,
            Command::Diff(args) => stacks::diff(args).await,
            Command::Delete(args) => stacks::delete(args).await,
            Command::Status(args) => stacks::status(args).await,
            Command::Events(args) => stacks::events(args).await,
            Command::Outputs(args) => stacks::outputs(args).await,
            Command::Validate(args) => validate::run(args),
            Command::Instances(args) => instances::list(args).await,
            Command::Ca(args) => ca::run(args).await,
            Command::Chaos(args) => chaos::run(args).await,
            Command::Logs(args) => instances::logs(args).await,
            Command::Metrics(args) => monitoring::metrics(args).await,
            Command::Alarms(args) => monitoring::alarms(args).await,
            Command::Mail(args) => monitoring::mail(args).await,
            Command::DemoApp(args) => {
                instance_tools::demo::run(args).await.map(|()| ExitCode::SUCCESS)
            }
            Command::Supervise { .. } | Command::Burn { .. } | Command::ApiActions => {
                Ok(ExitCode::SUCCESS)
            }
        }
    });
    // Background tasks (a closing server, a timer) must not keep the process alive. Real time:
    // the process is ending, and a client command has no region clock.
    runtime.shutdown_timeout(std::time::Duration::from_millis(200));
    match result {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

/// Logs go to stderr; `CUMULO_LOG` (or `RUST_LOG`) sets the filter, `warn` by default.
fn init_tracing() {
    use tracing_subscriber::EnvFilter;
    let filter = std::env::var("CUMULO_LOG")
        .ok()
        .or_else(|| std::env::var("RUST_LOG").ok())
        .and_then(|f| EnvFilter::try_new(f).ok())
        .unwrap_or_else(|| EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .try_init();
}
