//! `cumulo instances` and `cumulo logs`: EC2 DescribeInstances and GetConsoleOutput, with the
//! local details (processes, loopback ports, CPU) from the region's `/_cumulo/instances`.

use std::process::ExitCode;
use std::time::Duration;

use api::ec2_client::InstanceState;

use crate::OutputFormat;
use crate::common::EndpointArgs;
use crate::render::{say, table};

#[derive(clap::Args, Debug)]
pub struct ListArgs {
    /// Only instances in this state (running, stopped, terminated, ...).
    #[arg(long)]
    state: Option<String>,
    /// Show terminated instances too.
    #[arg(long, short = 'a')]
    all: bool,
    #[command(flatten)]
    endpoint: EndpointArgs,
    #[arg(long, value_enum, default_value_t)]
    output: OutputFormat,
}

#[derive(clap::Args, Debug)]
pub struct LogsArgs {
    /// The instance id (its console output); or, with --group, nothing.
    #[arg(required_unless_present = "group")]
    instance: Option<String>,
    /// A CloudWatch Logs group instead: its events, oldest first.
    #[arg(long)]
    group: Option<String>,
    /// With --group: only this stream.
    #[arg(long, requires = "group")]
    stream: Option<String>,
    /// With --group: only events matching this filter pattern (CloudWatch Logs' syntax).
    #[arg(long, requires = "group")]
    filter: Option<String>,
    /// Keep printing new output as it comes (Ctrl-C to stop).
    #[arg(long, short = 'f')]
    follow: bool,
    #[command(flatten)]
    endpoint: EndpointArgs,
}

pub async fn list(args: ListArgs) -> anyhow::Result<ExitCode> {
    let client = args.endpoint.client();
    let instances = client.describe_instances(args.state.as_deref()).await?;
    let details = client.local_instances().await.unwrap_or_default();
    let mut rows = Vec::new();
    for i in instances {
        if i.state == InstanceState::Terminated && !args.all && args.state.is_none() {
            continue;
        }
        let d = details.iter().find(|d| d.instance_id == i.instance_id);
        let ports: Vec<String> = d
            .into_iter()
            .flat_map(|d| &d.ports)
            .map(|p| format!("{}→127.0.0.1:{}", p.expected, p.host))
            .collect();
        rows.push(serde_json::json!({
            "instanceId": i.instance_id,
            "state": i.state.name(),
            "zone": i.zone,
            "privateIp": i.private_ip,
            "publicIp": i.public_ip,
            "type": i.instance_type,
            "group": i.tag("aws:autoscaling:groupName").unwrap_or(""),
            "ports": ports,
            "pid": d.and_then(|d| d.app_pid),
            "cpuPercent": d.and_then(|d| d.cpu_percent),
            "launchTime": i.launch_time,
            "reason": i.state_reason,
        }));
    }
    match args.output {
        OutputFormat::Json => say!("{}", serde_json::Value::Array(rows)),
        OutputFormat::Table => {
            if rows.is_empty() {
                say!("No instances.");
                return Ok(ExitCode::SUCCESS);
            }
            let mut t =
                table(["Instance", "State", "Zone", "Private IP", "Ports", "PID", "CPU", "Group"]);
            for r in &rows {
                let s = |k: &str| r[k].as_str().unwrap_or("").to_string();
                let ports = r["ports"]
                    .as_array()
                    .map(|p| p.iter().filter_map(|x| x.as_str()).collect::<Vec<_>>().join(" "))
                    .unwrap_or_default();
                let cpu = r["cpuPercent"].as_f64().map(|c| format!("{c:.1}%")).unwrap_or_default();
                let pid = r["pid"].as_u64().map(|p| p.to_string()).unwrap_or_default();
                t.add_row([
                    s("instanceId"),
                    s("state"),
                    s("zone"),
                    s("privateIp"),
                    ports,
                    pid,
                    cpu,
                    s("group"),
                ]);
            }
            say!("{t}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn logs(args: LogsArgs) -> anyhow::Result<ExitCode> {
    let client = args.endpoint.client();
    if let Some(group) = &args.group {
        let mut since: Option<i64> = None;
        loop {
            let events = client
                .filter_log_events(group, args.stream.as_deref(), args.filter.as_deref(), since)
                .await?;
            for e in &events {
                let at = jiff::Timestamp::from_millisecond(e.timestamp)
                    .map(clock::iso8601)
                    .unwrap_or_default();
                say!("{at} {} {}", e.stream, e.message);
                since = Some(since.map_or(e.timestamp + 1, |s| s.max(e.timestamp + 1)));
            }
            if !args.follow {
                return Ok(ExitCode::SUCCESS);
            }
            // Real time: a client polling a region over HTTP does not share its clock.
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
    let Some(instance) = &args.instance else { return Ok(ExitCode::FAILURE) };
    let mut printed = 0;
    loop {
        let text = client.console_output(instance).await?;
        if text.len() > printed {
            print!("{}", &text[printed.min(text.len())..]);
            printed = text.len();
        }
        if !args.follow {
            return Ok(ExitCode::SUCCESS);
        }
        // Real time: a client polling a region over HTTP does not share its clock.
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}
