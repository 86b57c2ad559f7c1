//! `cumulo metrics` and `cumulo alarms`: CloudWatch's metrics as compact terminal charts and
//! its alarms with their state and reason, read through the CloudWatch API.

use std::process::ExitCode;

use api::cloudwatch_client::Metric;

use crate::OutputFormat;
use crate::common::EndpointArgs;
use crate::render::{say, table};

#[derive(clap::Args, Debug)]
pub struct MetricsArgs {
    /// Only this namespace (`AWS/EC2`, `AWS/ApplicationELB`, `AWS/AutoScaling`, a custom one).
    namespace: Option<String>,
    /// Only this metric name.
    #[arg(long)]
    name: Option<String>,
    /// Only metrics with this dimension (`K=V`, or `K` for any value); repeatable.
    #[arg(long = "dimension", short = 'd')]
    dimensions: Vec<String>,
    /// The statistic to chart (`Average`, `Sum`, `Maximum`, `p99`, ...).
    #[arg(long, default_value = "Average")]
    stat: String,
    /// The period of each point, in seconds (AWS time).
    #[arg(long, default_value_t = 60)]
    period: i64,
    /// How far back to chart (AWS time, like `30m`, `3h`).
    #[arg(long, default_value = "30m", value_parser = crate::common::parse_duration)]
    since: std::time::Duration,
    /// At most this many metrics.
    #[arg(long, default_value_t = 40)]
    limit: usize,
    #[command(flatten)]
    endpoint: EndpointArgs,
    #[arg(long, value_enum, default_value_t)]
    output: OutputFormat,
}

#[derive(clap::Args, Debug)]
pub struct AlarmsArgs {
    /// Show this alarm's history instead of the list.
    #[arg(long)]
    history: Option<String>,
    #[command(flatten)]
    endpoint: EndpointArgs,
    #[arg(long, value_enum, default_value_t)]
    output: OutputFormat,
}

/// A sparkline of the values, one character per point of the window (gaps as spaces).
pub fn sparkline(points: &[(f64, f64)], start: f64, period: f64, width: usize) -> String {
    const BARS: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];
    let mut slots: Vec<Option<f64>> = vec![None; width];
    for (t, v) in points {
        let i = ((t - start) / period).floor();
        if i >= 0.0 && (i as usize) < width {
            slots[i as usize] = Some(*v);
        }
    }
    let values: Vec<f64> = slots.iter().flatten().copied().collect();
    let (lo, hi) = values
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| (lo.min(*v), hi.max(*v)));
    slots
        .iter()
        .map(|s| match s {
            None => ' ',
            Some(v) if hi - lo < 1e-12 => BARS[if *v == 0.0 { 0 } else { 3 }],
            Some(v) => BARS[(((v - lo) / (hi - lo)) * 7.0).round().clamp(0.0, 7.0) as usize],
        })
        .collect()
}

fn describe(m: &Metric) -> String {
    let dims: Vec<String> = m.dimensions.iter().map(|(k, v)| format!("{k}={v}")).collect();
    format!("{} {} {}", m.namespace, m.name, dims.join(","))
}

fn number(v: f64) -> String {
    if v.abs() >= 100.0 || v.fract() == 0.0 { format!("{v:.0}") } else { format!("{v:.2}") }
}

pub async fn metrics(args: MetricsArgs) -> anyhow::Result<ExitCode> {
    let client = args.endpoint.client();
    let dims: Vec<(String, Option<String>)> = args
        .dimensions
        .iter()
        .map(|d| match d.split_once('=') {
            Some((k, v)) => (k.to_string(), Some(v.to_string())),
            None => (d.clone(), None),
        })
        .collect();
    let mut list =
        client.list_metrics(args.namespace.as_deref(), args.name.as_deref(), &dims).await?;
    list.sort_by_key(describe);
    let total = list.len();
    list.truncate(args.limit);
    let now = client.region_now().await?;
    let period = args.period.max(1);
    let span = args.since.as_secs_f64().max(period as f64);
    let width = ((span / period as f64).ceil() as usize).clamp(1, 120);
    let start = now - (width as f64) * period as f64;
    let start = start - start.rem_euclid(60.0_f64.min(period as f64));
    let mut rows = Vec::new();
    for m in &list {
        let points = client.metric_statistics(m, &args.stat, start, now, period).await?;
        rows.push((m, points));
    }
    match args.output {
        OutputFormat::Json => {
            let json: Vec<serde_json::Value> = rows
                .iter()
                .map(|(m, points)| {
                    serde_json::json!({
                        "namespace": m.namespace,
                        "metricName": m.name,
                        "dimensions": m.dimensions.iter().map(|(k, v)| serde_json::json!({"Name": k, "Value": v})).collect::<Vec<_>>(),
                        "statistic": args.stat,
                        "period": period,
                        "points": points.iter().map(|(t, v)| serde_json::json!([t, v])).collect::<Vec<_>>(),
                    })
                })
                .collect();
            say!("{}", serde_json::Value::Array(json));
        }
        OutputFormat::Table => {
            if rows.is_empty() {
                say!(
                    "No metrics{}.",
                    args.namespace.map(|n| format!(" in {n}")).unwrap_or_default()
                );
                return Ok(ExitCode::SUCCESS);
            }
            let mut t = table([
                "Metric",
                &format!("{} per {period} s, last {} points", args.stat, width),
                "Last",
                "Min",
                "Max",
            ]);
            for (m, points) in &rows {
                let values: Vec<f64> = points.iter().map(|p| p.1).collect();
                let fmt = |v: Option<f64>| v.map(number).unwrap_or_else(|| "-".into());
                t.add_row([
                    describe(m),
                    sparkline(points, start, period as f64, width),
                    fmt(values.last().copied()),
                    fmt(values.iter().copied().reduce(f64::min)),
                    fmt(values.iter().copied().reduce(f64::max)),
                ]);
            }
            say!("{t}");
            if total > list.len() {
                say!(
                    "({} more; narrow with a namespace, --name or --dimension, or raise --limit)",
                    total - list.len()
                );
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn alarms(args: AlarmsArgs) -> anyhow::Result<ExitCode> {
    let client = args.endpoint.client();
    if let Some(name) = &args.history {
        let items = client.alarm_history(name).await?;
        match args.output {
            OutputFormat::Json => {
                let json: Vec<serde_json::Value> = items
                    .iter()
                    .map(|h| serde_json::json!({"timestamp": h.timestamp, "type": h.kind, "summary": h.summary}))
                    .collect();
                say!("{}", serde_json::Value::Array(json));
            }
            OutputFormat::Table => {
                let mut t = table(["Time", "Type", "Summary"]);
                for h in items.iter().rev() {
                    t.add_row([h.timestamp.clone(), h.kind.clone(), h.summary.clone()]);
                }
                say!("{t}");
            }
        }
        return Ok(ExitCode::SUCCESS);
    }
    let alarms = client.describe_alarms().await?;
    match args.output {
        OutputFormat::Json => {
            let json: Vec<serde_json::Value> = alarms
                .iter()
                .map(|a| {
                    serde_json::json!({
                        "name": a.name, "state": a.state, "reason": a.reason,
                        "updated": a.updated, "condition": a.condition, "actions": a.actions,
                    })
                })
                .collect();
            say!("{}", serde_json::Value::Array(json));
        }
        OutputFormat::Table => {
            if alarms.is_empty() {
                say!("No alarms.");
                return Ok(ExitCode::SUCCESS);
            }
            let mut t = table(["Alarm", "State", "Since", "Condition", "Reason"]);
            for a in &alarms {
                t.add_row([
                    a.name.clone(),
                    a.state.clone(),
                    a.updated.clone(),
                    a.condition.clone(),
                    a.reason.clone(),
                ]);
            }
            say!("{t}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    #[test]
    fn sparklines_scale_to_the_window() {
        let points = [(0.0, 10.0), (60.0, 50.0), (180.0, 90.0)];
        assert_eq!(super::sparkline(&points, 0.0, 60.0, 5), "▁▅ █ ");
        assert_eq!(super::sparkline(&[(0.0, 0.0), (60.0, 0.0)], 0.0, 60.0, 2), "▁▁");
        assert_eq!(super::sparkline(&[], 0.0, 60.0, 3), "   ");
    }
}

#[derive(clap::Args, Debug)]
pub struct MailArgs {
    /// Keep printing new mail as it comes (Ctrl-C to stop).
    #[arg(long, short = 'f')]
    follow: bool,
    #[command(flatten)]
    endpoint: EndpointArgs,
    #[arg(long, value_enum, default_value_t)]
    output: OutputFormat,
}

/// `cumulo mail`: the local mailbox of SNS's email and email-json subscriptions (and the
/// deliveries to SQS and Lambda that could not be made).
pub async fn mail(args: MailArgs) -> anyhow::Result<ExitCode> {
    let client = args.endpoint.client();
    let mut since = 0i64;
    loop {
        let text = client.get_text(&format!("/_cumulo/mail?since={since}")).await?;
        let mails: Vec<serde_json::Value> = serde_json::from_str(&text)?;
        for m in &mails {
            since = since.max(m["id"].as_i64().unwrap_or(since));
            match args.output {
                OutputFormat::Json => say!("{m}"),
                OutputFormat::Table => {
                    let at = jiff::Timestamp::from_millisecond(m["at"].as_i64().unwrap_or(0))
                        .map(clock::iso8601)
                        .unwrap_or_default();
                    say!(
                        "── {at}  to {}  ({})",
                        m["to"].as_str().unwrap_or(""),
                        m["protocol"].as_str().unwrap_or("")
                    );
                    say!("Subject: {}", m["subject"].as_str().unwrap_or(""));
                    say!("{}\n", m["body"].as_str().unwrap_or("").trim_end());
                }
            }
        }
        if !args.follow {
            if mails.is_empty() && args.output == OutputFormat::Table {
                say!("No mail.");
            }
            return Ok(ExitCode::SUCCESS);
        }
        // Real time: a client polling the region over HTTP (ARCHITECTURE.md, crates/clock).
        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    }
}
