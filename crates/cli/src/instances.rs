//! `cumulo instances` and `cumulo logs`: EC2 DescribeInstances and GetConsoleOutput, with the
//! local details (processes, loopback ports, CPU) from the region's `/_cumulo/instances`.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use base64::Engine as _;

use crate::OutputFormat;
use crate::common::EndpointArgs;
use crate::render::{say, table};

const VERSION: &str = "2016-11-15";

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
    /// The instance id.
    instance: String,
    /// Keep printing new output as it comes (Ctrl-C to stop).
    #[arg(long, short = 'f')]
    follow: bool,
    #[command(flatten)]
    endpoint: EndpointArgs,
}

async fn local_details(client: &api::Client) -> anyhow::Result<Vec<serde_json::Value>> {
    let body = client.get_text("/_cumulo/instances").await?;
    serde_json::from_str(&body).context("bad /_cumulo/instances answer")
}

pub async fn list(args: ListArgs) -> anyhow::Result<ExitCode> {
    let client = args.endpoint.client();
    let mut params = Vec::new();
    if let Some(state) = &args.state {
        params.push(("Filter.1.Name".to_string(), "instance-state-name".to_string()));
        params.push(("Filter.1.Value.1".to_string(), state.clone()));
    }
    let result = client.call(VERSION, "DescribeInstances", &params).await?;
    let details = local_details(&client).await.unwrap_or_default();
    let detail =
        |id: &str| details.iter().find(|d| d["instanceId"] == id).cloned().unwrap_or_default();
    let mut rows = Vec::new();
    for reservation in result.path("reservationSet").map(|r| r.children.clone()).unwrap_or_default()
    {
        for i in reservation.path("instancesSet").map(|s| s.children.clone()).unwrap_or_default() {
            let state = i.get("instanceState/name").unwrap_or_default().to_string();
            if state == "terminated" && !args.all && args.state.is_none() {
                continue;
            }
            let id = i.get("instanceId").unwrap_or_default().to_string();
            let d = detail(&id);
            let ports: Vec<String> = d["ports"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|p| format!("{}→127.0.0.1:{}", p["expected"], p["host"]))
                .collect();
            let group = i
                .path("tagSet")
                .map(|t| {
                    t.children
                        .iter()
                        .find(|tag| tag.get("key") == Some("aws:autoscaling:groupName"))
                        .and_then(|tag| tag.get("value"))
                        .unwrap_or("")
                        .to_string()
                })
                .unwrap_or_default();
            rows.push(serde_json::json!({
                "instanceId": id,
                "state": state,
                "zone": i.get("placement/availabilityZone"),
                "privateIp": i.get("privateIpAddress"),
                "publicIp": i.get("ipAddress"),
                "type": i.get("instanceType"),
                "group": group,
                "ports": ports,
                "pid": d["appPid"],
                "cpuPercent": d["cpuPercent"],
                "launchTime": i.get("launchTime"),
                "reason": i.get("stateReason/message"),
            }));
        }
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
    let mut printed = 0;
    loop {
        let result = client
            .call(VERSION, "GetConsoleOutput", &[("InstanceId".to_string(), args.instance.clone())])
            .await?;
        let output = base64::engine::general_purpose::STANDARD
            .decode(result.get("output").unwrap_or_default())
            .unwrap_or_default();
        let text = String::from_utf8_lossy(&output);
        if text.len() > printed {
            print!("{}", &text[printed.min(text.len())..]);
            printed = text.len();
        }
        if !args.follow {
            return Ok(ExitCode::SUCCESS);
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}
