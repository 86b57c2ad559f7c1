//! The monitoring loop at fleet scale: 1,000 instances reporting every minute for a simulated
//! day (time advanced on tokio's paused clock, so a day takes seconds), with one recovery
//! alarm per instance and one CPU alarm per group, on an on-disk store.
//!
//!     cargo bench -p cloudwatch --bench monitoring [-- INSTANCES HOURS]
//!
//! Prints CPU time for ingestion and for alarm evaluation per simulated hour (and what that is
//! as a share of one core in real time), the metric store's bytes per instance-day, and
//! GetMetricData latency over a 24-hour window (from memory, and after a restart from disk).

use std::sync::Arc;
use std::time::{Duration, Instant};

use cloudwatch::alarms::{MetricAlarm, PutAlarm};
use cloudwatch::query::{DataQuery, MetricStat};
use cloudwatch::{Cell, CloudWatch, MetricId};

/// CPU time of this process so far (user + system), from /proc.
fn cpu_time() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks: u64 = fields.get(11).and_then(|u| u.parse().ok()).unwrap_or(0)
        + fields.get(12).and_then(|s| s.parse().ok()).unwrap_or(0);
    Duration::from_millis(ticks * 10)
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with('-')).collect();
    let instances: usize = args.first().and_then(|a| a.parse().ok()).unwrap_or(1_000);
    let hours: i64 = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(24);
    let dir = tempfile::tempdir().expect("a temporary directory");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .start_paused(true)
        .build()
        .expect("a runtime");
    runtime.block_on(run(instances, hours, dir.path()));
}

async fn run(instances: usize, hours: i64, dir: &std::path::Path) {
    let start = jiff::Timestamp::from_second(1_800_000_000).expect("a time");
    let store = Arc::new(store::Store::open(dir).expect("a store"));
    let clock = clock::Clock::starting_at(1.0, start);
    let cw = CloudWatch::new(store.clone(), clock.clone(), aws_ids::Account::default())
        .expect("CloudWatch");
    let groups = (instances / 100).max(1);
    let ids: Vec<String> = (0..instances).map(|i| format!("i-{i:017x}")).collect();
    for id in &ids {
        cw.put_alarm(PutAlarm {
            name: format!("recover-{id}"),
            metric: Some(MetricAlarm {
                namespace: Some("AWS/EC2".into()),
                metric_name: Some("StatusCheckFailed_System".into()),
                dimensions: vec![("InstanceId".into(), id.clone())],
                statistic: Some("Maximum".into()),
                period: Some(60),
                threshold: Some(0.0),
                comparison: "GreaterThanThreshold".into(),
                evaluation_periods: 5,
                ..MetricAlarm::default()
            }),
            ..PutAlarm::default()
        })
        .expect("an alarm");
    }
    for g in 0..groups {
        cw.put_alarm(PutAlarm {
            name: format!("cpu-high-{g}"),
            metric: Some(MetricAlarm {
                namespace: Some("AWS/EC2".into()),
                metric_name: Some("CPUUtilization".into()),
                dimensions: vec![("AutoScalingGroupName".into(), format!("group-{g}"))],
                statistic: Some("Average".into()),
                period: Some(60),
                threshold: Some(60.0),
                comparison: "GreaterThanThreshold".into(),
                evaluation_periods: 3,
                ..MetricAlarm::default()
            }),
            ..PutAlarm::default()
        })
        .expect("an alarm");
    }
    let (mut ingest, mut evaluate, mut flush) = (Duration::ZERO, Duration::ZERO, Duration::ZERO);
    let wall = Instant::now();
    for minute in 0..hours * 60 {
        tokio::time::advance(Duration::from_secs(60)).await;
        let t = cw.now() - 60;
        let t = t - t.rem_euclid(60);
        let before = cpu_time();
        // What the region's producers publish per instance and per group each minute.
        let mut group_cpu: Vec<Option<Cell>> = vec![None; groups];
        for (i, id) in ids.iter().enumerate() {
            let cpu = ((i as i64 * 7 + minute) % 100) as f64;
            let dims = [("InstanceId", id.as_str())];
            for (name, value, unit) in [
                ("CPUUtilization", cpu, "Percent"),
                ("StatusCheckFailed", 0.0, "Count"),
                ("StatusCheckFailed_Instance", 0.0, "Count"),
                ("StatusCheckFailed_System", 0.0, "Count"),
            ] {
                cw.record(&MetricId::new("AWS/EC2", name, dims), t, &Cell::single(value), unit)
                    .expect("recorded");
            }
            let g = &mut group_cpu[i % groups];
            match g {
                Some(c) => c.add_value(cpu, 1.0),
                None => *g = Some(Cell::single(cpu)),
            }
        }
        for (g, cell) in group_cpu.iter().enumerate() {
            if let Some(cell) = cell {
                let id = MetricId::new(
                    "AWS/EC2",
                    "CPUUtilization",
                    [("AutoScalingGroupName", format!("group-{g}"))],
                );
                cw.record(&id, t, cell, "Percent").expect("recorded");
            }
        }
        let mid = cpu_time();
        ingest += mid - before;
        cw.evaluate_due().expect("evaluated");
        let after = cpu_time();
        evaluate += after - mid;
        if minute % 5 == 4 {
            cw.flush().expect("flushed");
            flush += cpu_time() - after;
        }
    }
    cw.flush().expect("flushed");
    let wall = wall.elapsed();
    let per_hour = |d: Duration| d.as_secs_f64() / hours as f64;
    let share = |d: Duration| per_hour(d) / 3_600.0 * 100.0;
    let (chunks, bytes) = store.chunk_usage().expect("usage");
    let file = std::fs::metadata(dir.join("cumulo.db")).map(|m| m.len()).unwrap_or(0)
        + std::fs::metadata(dir.join("cumulo.db-wal")).map(|m| m.len()).unwrap_or(0);
    println!(
        "{instances} instances, {groups} groups, {} alarms, {hours} simulated hours in {wall:.1?}",
        instances + groups
    );
    println!("| measure | value |\n|---|---|");
    println!(
        "| ingestion CPU per simulated hour | {:.2} s ({:.3} % of a core) |",
        per_hour(ingest),
        share(ingest)
    );
    println!(
        "| alarm evaluation CPU per simulated hour | {:.2} s ({:.3} % of a core) |",
        per_hour(evaluate),
        share(evaluate)
    );
    println!(
        "| store writes (flush every 5 min) CPU per simulated hour | {:.2} s ({:.3} % of a core) |",
        per_hour(flush),
        share(flush)
    );
    let total = ingest + evaluate + flush;
    println!(
        "| control plane total per simulated hour | {:.2} s ({:.3} % of a core) |",
        per_hour(total),
        share(total)
    );
    let days = hours as f64 / 24.0;
    println!(
        "| metric chunks per instance-day | {:.0} bytes ({chunks} chunks, {:.1} MB in all; database file {:.1} MB) |",
        bytes as f64 / instances as f64 / days,
        bytes as f64 / 1e6,
        file as f64 / 1e6
    );
    // GetMetricData over the last 24 hours: one instance's CPU and a group's, with math.
    let query = |id: &str| {
        vec![
            DataQuery {
                id: "m1".into(),
                metric: Some(MetricStat {
                    metric: MetricId::new("AWS/EC2", "CPUUtilization", [("InstanceId", id)]),
                    period: 60,
                    stat: "Average".into(),
                    unit: None,
                }),
                expression: None,
                label: None,
                return_data: true,
                period: None,
            },
            DataQuery {
                id: "m2".into(),
                metric: Some(MetricStat {
                    metric: MetricId::new(
                        "AWS/EC2",
                        "CPUUtilization",
                        [("AutoScalingGroupName", "group-0")],
                    ),
                    period: 60,
                    stat: "Maximum".into(),
                    unit: None,
                }),
                expression: None,
                label: None,
                return_data: true,
                period: None,
            },
            DataQuery {
                id: "e1".into(),
                metric: None,
                expression: Some("m2 - m1".into()),
                label: None,
                return_data: true,
                period: None,
            },
        ]
    };
    let latency = |cw: &CloudWatch| {
        let end = cw.now();
        let mut times: Vec<Duration> = (0..21)
            .map(|k| {
                let q = query(&ids[k * 37 % ids.len()]);
                let t = Instant::now();
                let r = cw.get_metric_data(&q, end - 86_400, end, true).expect("data");
                assert!(r.iter().all(|s| !s.points.is_empty()));
                t.elapsed()
            })
            .collect();
        times.sort();
        (times[times.len() / 2], times[times.len() - 1], query(&ids[0]).len())
    };
    let (median, max, n) = latency(&cw);
    println!(
        "| GetMetricData, 24 h at 60 s ({n} queries, 1,440 points each), from memory | median {median:.2?}, max {max:.2?} |"
    );
    drop(cw);
    let again = CloudWatch::new(store, clock, aws_ids::Account::default()).expect("CloudWatch");
    let (median, max, _) = latency(&again);
    println!(
        "| the same after a restart (points read back from the store) | median {median:.2?}, max {max:.2?} |"
    );
}
