//! The monitoring loop's wiring: what every service measures goes onto CloudWatch's metric
//! store (the producers), and what alarms do reaches the services that act (the actions).
//!
//! Producers run on the region's clock every 10 s of AWS time and publish once per minute,
//! with AWS's names, units and dimension sets:
//! - AWS/EC2 per instance (CPUUtilization from its process tree over its type's vCPUs, the
//!   three status checks, CPU credits for burstable types every five minutes) and aggregated
//!   by AutoScalingGroupName, ImageId and InstanceType;
//! - AWS/ApplicationELB and AWS/ELB from the data plane's counters (a period's value is the
//!   difference of two readings; counts only when there was traffic, gauges always);
//! - AWS/AutoScaling for groups whose metrics collection is enabled;
//! - CWAgent (or the namespace its configuration names) `mem_used_percent` and
//!   `disk_used_percent` for instances whose CloudWatch agent configuration (written by cfn-init
//!   or UserData into the instance's own root) asks for them: memory from the process tree's
//!   resident size over the type's memory, disk from the instance's files over an 8 GiB root
//!   volume.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use autoscaling::AutoScaling;
use autoscaling::alarms::{AlarmSignal, PolicyAlarms, TrackingAlarm};
use cloudwatch::alarms::{MetricAlarm, PutAlarm};
use cloudwatch::{AlarmActions, Cell, CloudWatch, Fired, MetricId};
use ec2::{Ec2, InstanceState};
use elb::Elb;
use elb::metrics::Kind;
use parking_lot::Mutex;

/// A metric's dimensions, in publishing order.
type Dimensions = Vec<(String, String)>;

/// Reads every service's measurements into CloudWatch.
pub struct Producers {
    cloudwatch: Arc<CloudWatch>,
    ec2: Arc<Ec2>,
    elb: Arc<Elb>,
    autoscaling: Arc<AutoScaling>,
    state: Mutex<ProducerState>,
}

#[derive(Default)]
struct ProducerState {
    /// The minute being collected (epoch seconds of its start).
    minute: i64,
    /// CPU samples of the minute per instance: (sum, n).
    cpu: HashMap<String, (f64, f64)>,
    /// CPU credit balances of burstable instances.
    credits: HashMap<String, Credits>,
    /// The last reading of every cumulative load balancer metric: (value, count).
    last: HashMap<MetricId, (f64, u64)>,
}

#[derive(Clone, Copy, Default)]
struct Credits {
    balance: f64,
    /// Credits used since the last five-minute report.
    used: f64,
}

/// Credits earned per hour and the most an instance may bank, for burstable types (AWS's
/// table), and the launch credits T2 instances start with.
fn credit_rates(instance_type: &str) -> Option<(f64, f64, f64)> {
    let (family, size) = instance_type.split_once('.')?;
    let per_hour = match (family, size) {
        ("t2", "nano") => 3.0,
        ("t2", "micro") => 6.0,
        ("t2", "small") => 12.0,
        ("t2", "medium") => 24.0,
        ("t2", "large") => 36.0,
        ("t2", "xlarge") => 54.0,
        ("t2", "2xlarge") => 81.6,
        ("t3" | "t3a" | "t4g", "nano") => 6.0,
        ("t3" | "t3a" | "t4g", "micro") => 12.0,
        ("t3" | "t3a" | "t4g", "small") => 24.0,
        ("t3" | "t3a" | "t4g", "medium") => 24.0,
        ("t3" | "t3a" | "t4g", "large") => 36.0,
        ("t3" | "t3a" | "t4g", "xlarge") => 96.0,
        ("t3" | "t3a" | "t4g", "2xlarge") => 192.0,
        _ => return None,
    };
    let launch = if family == "t2" { 30.0 * ec2::vcpus(instance_type) } else { 0.0 };
    Some((per_hour, per_hour * 24.0, launch))
}

impl Producers {
    pub fn new(
        cloudwatch: Arc<CloudWatch>,
        ec2: Arc<Ec2>,
        elb: Arc<Elb>,
        autoscaling: Arc<AutoScaling>,
    ) -> Producers {
        Producers { cloudwatch, ec2, elb, autoscaling, state: Mutex::new(ProducerState::default()) }
    }

    /// Takes this tick's samples; at a minute's end, publishes the minute.
    pub fn tick(&self) {
        let now = self.cloudwatch.now();
        let minute = now - now.rem_euclid(60);
        let instances = match self.ec2.instances() {
            Ok(list) => list,
            Err(e) => {
                tracing::warn!("metrics: cannot read the instances: {e}");
                return;
            }
        };
        let mut state = self.state.lock();
        if state.minute == 0 {
            state.minute = minute;
        }
        if minute > state.minute {
            let closed = state.minute;
            if let Err(e) = self.publish(&mut state, closed, &instances) {
                tracing::warn!("metrics: {e}");
            }
            state.minute = minute;
            state.cpu.clear();
        }
        for i in instances.iter().filter(|i| i.state == InstanceState::Running) {
            if let Some(u) = self.ec2.usage(&i.id) {
                let e = state.cpu.entry(i.id.clone()).or_default();
                e.0 += u.cpu_percent;
                e.1 += 1.0;
            }
        }
    }

    fn publish(
        &self,
        state: &mut ProducerState,
        minute: i64,
        instances: &[ec2::InstanceRecord],
    ) -> Result<(), cloudwatch::CwError> {
        let cw = &self.cloudwatch;
        // Aggregates over instances: dimension set -> cell per metric.
        let mut aggregates: BTreeMap<(String, (&'static str, String)), Cell> = BTreeMap::new();
        let five = (minute + 60).rem_euclid(300) == 0;
        for i in instances.iter().filter(|i| i.state == InstanceState::Running) {
            let dims = [("InstanceId", i.id.clone())];
            let put =
                |name: &'static str, value: f64, unit: &str| -> Result<(), cloudwatch::CwError> {
                    cw.record(
                        &MetricId::new("AWS/EC2", name, dims.clone()),
                        minute,
                        &Cell::single(value),
                        unit,
                    )
                };
            let cpu = state.cpu.get(&i.id).map(|(s, n)| s / n.max(1.0));
            if let Some(cpu) = cpu {
                put("CPUUtilization", cpu, "Percent")?;
            }
            let (system, instance) =
                self.ec2.status_checks(&i.id).ok().flatten().unwrap_or((false, false));
            let flag = |b: bool| if b { 1.0 } else { 0.0 };
            put("StatusCheckFailed_System", flag(system), "Count")?;
            put("StatusCheckFailed_Instance", flag(instance), "Count")?;
            put("StatusCheckFailed", flag(system || instance), "Count")?;
            if let Some((per_hour, cap, launch)) = credit_rates(&i.instance_type) {
                let vcpus = ec2::vcpus(&i.instance_type);
                let c = state
                    .credits
                    .entry(i.id.clone())
                    .or_insert(Credits { balance: launch, used: 0.0 });
                // A credit is one vCPU at 100 % for a minute.
                let used = cpu.unwrap_or(0.0) / 100.0 * vcpus;
                c.balance = (c.balance + per_hour / 60.0 - used).clamp(0.0, cap + launch);
                c.used += used;
                if five {
                    let (balance, used) = (c.balance, c.used);
                    c.used = 0.0;
                    let at = minute + 60 - 300;
                    for (name, value) in [
                        ("CPUCreditUsage", used),
                        ("CPUCreditBalance", balance),
                        ("CPUSurplusCreditBalance", 0.0),
                        ("CPUSurplusCreditsCharged", 0.0),
                    ] {
                        cw.record(
                            &MetricId::new("AWS/EC2", name, dims.clone()),
                            at,
                            &Cell::single(value),
                            "Count",
                        )?;
                    }
                }
            }
            let mut groups: Vec<(&'static str, String)> =
                vec![("ImageId", i.image_id.clone()), ("InstanceType", i.instance_type.clone())];
            if let Some(g) = i.tags.get("aws:autoscaling:groupName") {
                groups.push(("AutoScalingGroupName", g.clone()));
            }
            let mut values = vec![
                ("StatusCheckFailed_System", flag(system)),
                ("StatusCheckFailed_Instance", flag(instance)),
                ("StatusCheckFailed", flag(system || instance)),
            ];
            if let Some(cpu) = cpu {
                values.push(("CPUUtilization", cpu));
            }
            for dim in groups {
                for (name, value) in &values {
                    aggregates
                        .entry((name.to_string(), dim.clone()))
                        .and_modify(|c| c.add_value(*value, 1.0))
                        .or_insert_with(|| Cell::single(*value));
                }
            }
        }
        for i in instances.iter().filter(|i| i.state == InstanceState::Running) {
            if let Some(agent) = agent_config(&i.dir).filter(|a| a.get("metrics").is_some()) {
                let usage = self.ec2.usage(&i.id);
                self.publish_agent(&agent, i, usage.map(|u| u.rss_bytes), minute)?;
            }
        }
        state.credits.retain(|id, _| {
            instances.iter().any(|i| &i.id == id && i.state == InstanceState::Running)
        });
        for ((name, (k, v)), cell) in aggregates {
            let unit = if name == "CPUUtilization" { "Percent" } else { "Count" };
            cw.record(&MetricId::new("AWS/EC2", name, [(k, v)]), minute, &cell, unit)?;
        }
        self.publish_load_balancers(state, minute)?;
        self.publish_groups(minute)?;
        Ok(())
    }

    /// The CloudWatch agent's memory and disk metrics, with its dimensions.
    fn publish_agent(
        &self,
        agent: &serde_json::Value,
        i: &ec2::InstanceRecord,
        rss: Option<u64>,
        minute: i64,
    ) -> Result<(), cloudwatch::CwError> {
        let metrics = &agent["metrics"];
        let namespace = metrics["namespace"].as_str().unwrap_or("CWAgent");
        let group = i.tags.get("aws:autoscaling:groupName").cloned();
        // append_dimensions replace the default `host` dimension.
        let mut dims: Vec<(String, String)> = Vec::new();
        match metrics["append_dimensions"].as_object() {
            Some(extra) => {
                for (k, v) in extra {
                    let value = match v.as_str().unwrap_or_default() {
                        "${aws:InstanceId}" => Some(i.id.clone()),
                        "${aws:InstanceType}" => Some(i.instance_type.clone()),
                        "${aws:ImageId}" => Some(i.image_id.clone()),
                        "${aws:AutoScalingGroupName}" => group.clone(),
                        other => Some(other.to_string()),
                    };
                    if let Some(value) = value {
                        dims.push((k.clone(), value));
                    }
                }
            }
            None => dims.push(("host".into(), format!("ip-{}", i.private_ip.replace('.', "-")))),
        }
        let collected = &metrics["metrics_collected"];
        let wants = |plugin: &str, name: &str| {
            collected[plugin]["measurement"].as_array().is_some_and(|m| {
                m.iter().any(|x| {
                    let n = x.as_str().or_else(|| x["name"].as_str()).unwrap_or_default();
                    n == name || n == format!("{plugin}_{name}")
                })
            })
        };
        let mut points: Vec<(&str, Dimensions, f64)> = Vec::new();
        if wants("mem", "used_percent") {
            let total = memory_bytes(&i.instance_type);
            let used = rss.unwrap_or(0) as f64 / total * 100.0;
            points.push(("mem_used_percent", dims.clone(), used.clamp(0.0, 100.0)));
        }
        if wants("disk", "used_percent") {
            let used = dir_bytes(&i.dir, 0) as f64 / (8.0 * 1024.0 * 1024.0 * 1024.0) * 100.0;
            let mut d = dims.clone();
            d.extend([
                ("path".to_string(), "/".to_string()),
                ("device".to_string(), "xvda1".to_string()),
                ("fstype".to_string(), "xfs".to_string()),
            ]);
            points.push(("disk_used_percent", d, used.clamp(0.0, 100.0)));
        }
        let aggregations: Vec<Vec<String>> = metrics["aggregation_dimensions"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|set| {
                set.as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|k| k.as_str().map(str::to_string))
                    .collect()
            })
            .collect();
        for (name, dims, value) in points {
            let cell = Cell::single(value);
            self.cloudwatch.record(
                &MetricId::new(namespace, name, dims.clone()),
                minute,
                &cell,
                "Percent",
            )?;
            for set in &aggregations {
                let picked: Vec<(String, String)> =
                    dims.iter().filter(|(k, _)| set.contains(k)).cloned().collect();
                if picked.len() == set.len() {
                    self.cloudwatch.record(
                        &MetricId::new(namespace, name, picked),
                        minute,
                        &cell,
                        "Percent",
                    )?;
                }
            }
        }
        Ok(())
    }

    fn publish_load_balancers(
        &self,
        state: &mut ProducerState,
        minute: i64,
    ) -> Result<(), cloudwatch::CwError> {
        let samples = match self.elb.metrics() {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!("metrics: cannot read the load balancers: {e}");
                return Ok(());
            }
        };
        let cw = &self.cloudwatch;
        // Per target group: requests of the minute (for RequestCountPerTarget) and healthy hosts.
        let mut group_requests: HashMap<Vec<(String, String)>, f64> = HashMap::new();
        let mut healthy: HashMap<Vec<(String, String)>, f64> = HashMap::new();
        for s in &samples {
            let id = MetricId::new(
                s.namespace,
                s.name,
                s.dimensions.iter().map(|(k, v)| (k.to_string(), v.clone())),
            );
            match s.kind {
                Kind::Gauge => {
                    if s.name == "HealthyHostCount" {
                        healthy.insert(id.dimensions.clone(), s.value);
                    }
                    cw.record(&id, minute, &Cell::single(s.value), s.unit)?;
                }
                Kind::Counter => {
                    if s.name == "RequestCountPerTarget" {
                        continue;
                    }
                    let (before, _) =
                        state.last.insert(id.clone(), (s.value, 0)).unwrap_or((s.value, 0));
                    let delta = (s.value - before).max(0.0);
                    if s.name == "RequestCount" && id.dimension("TargetGroup").is_some() {
                        group_requests.insert(id.dimensions.clone(), delta);
                    }
                    // Counts are reported when there was something to count; RequestCount
                    // always (AWS reports its zeros).
                    if delta > 0.0 || s.name == "RequestCount" {
                        cw.record(&id, minute, &Cell::single(delta), s.unit)?;
                    }
                }
                Kind::Timing { count } => {
                    let (before, n) =
                        state.last.insert(id.clone(), (s.value, count)).unwrap_or((s.value, count));
                    let responses = count.saturating_sub(n) as f64;
                    if responses > 0.0 {
                        let mean = (s.value - before).max(0.0) / responses;
                        let cell = Cell::statistic_set(responses, mean * responses, mean, mean);
                        cw.record(&id, minute, &cell, s.unit)?;
                    }
                }
            }
        }
        // Requests per target: the group's requests of the minute over its healthy targets.
        for (dims, requests) in group_requests {
            let hosts = healthy.get(&dims).copied().unwrap_or(0.0).max(1.0);
            let per_target = requests / hosts;
            let group: Vec<(String, String)> =
                dims.iter().filter(|(k, _)| k == "TargetGroup").cloned().collect();
            for d in [group, dims.clone()] {
                cw.record(
                    &MetricId::new("AWS/ApplicationELB", "RequestCountPerTarget", d),
                    minute,
                    &Cell::single(per_target),
                    "Count",
                )?;
            }
        }
        Ok(())
    }

    fn publish_groups(&self, minute: i64) -> Result<(), cloudwatch::CwError> {
        let Ok(groups) = self.autoscaling.groups() else { return Ok(()) };
        for g in groups.iter().filter(|g| !g.metrics.is_empty()) {
            let count = |l: autoscaling::model::Lifecycle| {
                g.instances.iter().filter(|m| m.lifecycle == l).count() as f64
            };
            use autoscaling::model::Lifecycle as L;
            let pending = count(L::Pending) + count(L::PendingWait);
            let terminating = count(L::Terminating) + count(L::TerminatingWait);
            let in_service = count(L::InService);
            let standby = count(L::Standby);
            let total = pending + terminating + in_service + standby;
            let values = [
                ("GroupMinSize", f64::from(g.min)),
                ("GroupMaxSize", f64::from(g.max)),
                ("GroupDesiredCapacity", f64::from(g.desired)),
                ("GroupInServiceInstances", in_service),
                ("GroupPendingInstances", pending),
                ("GroupStandbyInstances", standby),
                ("GroupTerminatingInstances", terminating),
                ("GroupTotalInstances", total),
                ("GroupInServiceCapacity", in_service),
                ("GroupPendingCapacity", pending),
                ("GroupStandbyCapacity", standby),
                ("GroupTerminatingCapacity", terminating),
                ("GroupTotalCapacity", total),
            ];
            for (name, value) in values {
                if g.metrics.iter().any(|m| m == name) || g.metrics.iter().any(|m| m == "*") {
                    let id = MetricId::new(
                        "AWS/AutoScaling",
                        name,
                        [("AutoScalingGroupName", g.name.clone())],
                    );
                    self.cloudwatch.record(&id, minute, &Cell::single(value), "None")?;
                }
            }
        }
        Ok(())
    }
}

/// The CloudWatch agent configuration an instance wrote into its own root, if any.
pub(crate) fn agent_config(dir: &std::path::Path) -> Option<serde_json::Value> {
    const PATHS: [&str; 3] = [
        "root/opt/aws/amazon-cloudwatch-agent/etc/amazon-cloudwatch-agent.json",
        "root/opt/aws/amazon-cloudwatch-agent/bin/config.json",
        "root/opt/aws/amazon-cloudwatch-agent/etc/config.json",
    ];
    PATHS.iter().find_map(|p| {
        let text = std::fs::read_to_string(dir.join(p)).ok()?;
        let json: serde_json::Value = serde_json::from_str(&text).ok()?;
        (json.get("metrics").is_some() || json.get("logs").is_some()).then_some(json)
    })
}

/// Memory of an instance type (GiB as AWS lists the common ones), in bytes.
fn memory_bytes(instance_type: &str) -> f64 {
    let gib = match instance_type.split_once('.').map(|(_, s)| s).unwrap_or("small") {
        "nano" => 0.5,
        "micro" => 1.0,
        "small" => 2.0,
        "medium" => 4.0,
        "large" => 8.0,
        "xlarge" => 16.0,
        s => s.trim_end_matches("xlarge").parse::<f64>().map_or(8.0, |n| n * 16.0),
    };
    gib * 1024.0 * 1024.0 * 1024.0
}

/// The bytes of the files under `dir` (bounded depth; what the instance wrote).
fn dir_bytes(dir: &std::path::Path, depth: usize) -> u64 {
    if depth > 16 {
        return 0;
    }
    let Ok(entries) = std::fs::read_dir(dir) else { return 0 };
    entries
        .flatten()
        .map(|e| match e.file_type() {
            Ok(t) if t.is_dir() => dir_bytes(&e.path(), depth + 1),
            Ok(t) if t.is_file() => e.metadata().map_or(0, |m| m.len()),
            _ => 0,
        })
        .sum()
}

/// Where alarm actions go: Auto Scaling policies, EC2 actions on the alarm's instance, SNS
/// topics (AWS's notification JSON, `cloudwatch::notify`).
pub struct Actions {
    pub ec2: Arc<Ec2>,
    pub autoscaling: Arc<AutoScaling>,
    pub sns: Arc<sns::Sns>,
}

#[async_trait::async_trait]
impl AlarmActions for Actions {
    async fn invoke(&self, arn: &str, fired: &Fired) -> Result<(), String> {
        if arn.contains(":autoscaling:") {
            let threshold = fired.alarm.metric().and_then(|m| m.threshold).unwrap_or(0.0);
            let signal = AlarmSignal {
                alarm_name: fired.alarm.name.clone(),
                state: fired.alarm.state.as_str().to_string(),
                threshold,
                comparison: fired.alarm.metric().map(|m| m.comparison.clone()).unwrap_or_default(),
                values: fired.values.clone(),
            };
            return self
                .autoscaling
                .alarm_fired(arn, &signal)
                .map(|_| ())
                .map_err(|e| e.to_string());
        }
        let ec2_action = if arn.contains(":automate:") {
            arn.rsplit(':').next().map(str::to_ascii_lowercase)
        } else if let Some(rest) = arn.split("AWS_EC2.InstanceId.").nth(1) {
            rest.split('/').next().map(str::to_ascii_lowercase)
        } else {
            None
        };
        if let Some(action) = ec2_action {
            let id = fired.instance_id().ok_or("the alarm watches no single instance")?;
            let result = match action.as_str() {
                "recover" => self.ec2.recover_instance(id).await.map(|_| ()),
                "stop" => self.ec2.begin_stop(id).map(|_| ()),
                "terminate" => self.ec2.begin_terminate(id).map(|_| ()),
                "reboot" => self.ec2.reboot(id),
                other => return Err(format!("unknown EC2 action {other}")),
            };
            return result.map_err(|e| e.to_string());
        }
        if arn.contains(":sns:") {
            let account = self.ec2.account();
            let (subject, message) =
                cloudwatch::notify::alarm_notification(fired, &account.account_id, &account.region);
            return sns::Notifier::publish(&*self.sns, arn, Some(&subject), &message).map(|_| ());
        }
        Err(format!("Cumulo cannot run the action {arn}"))
    }
}

/// Target tracking's alarms, made in CloudWatch for Auto Scaling.
pub struct TrackingAlarms {
    pub cloudwatch: Arc<CloudWatch>,
}

impl PolicyAlarms for TrackingAlarms {
    fn put(&self, a: &TrackingAlarm) -> Result<(), String> {
        let req = PutAlarm {
            name: a.name.clone(),
            description: Some(a.description.clone()),
            actions_enabled: Some(true),
            alarm_actions: vec![a.policy_arn.clone()],
            metric: Some(MetricAlarm {
                namespace: Some(a.namespace.clone()),
                metric_name: Some(a.metric_name.clone()),
                dimensions: a.dimensions.clone(),
                statistic: Some(a.statistic.clone()),
                period: Some(a.period),
                unit: a.unit.clone(),
                threshold: Some(a.threshold),
                comparison: a.comparison.clone(),
                evaluation_periods: a.evaluation_periods,
                datapoints_to_alarm: Some(a.datapoints_to_alarm),
                ..MetricAlarm::default()
            }),
            ..PutAlarm::default()
        };
        self.cloudwatch.put_alarm(req).map(|_| ()).map_err(|e| e.to_string())
    }

    fn delete(&self, names: &[String]) -> Result<(), String> {
        let existing: Vec<String> = names
            .iter()
            .filter(|n| self.cloudwatch.alarm(n).ok().flatten().is_some())
            .cloned()
            .collect();
        if existing.is_empty() {
            return Ok(());
        }
        self.cloudwatch.delete_alarms(&existing).map_err(|e| e.to_string())
    }
}

/// CloudWatch Logs' metric filters publish into CloudWatch (PutMetricData, one datum per
/// closed minute and series).
pub(crate) struct LogMetrics {
    pub cloudwatch: Arc<CloudWatch>,
}

impl logs::MetricSink for LogMetrics {
    fn put(
        &self,
        namespace: &str,
        name: &str,
        dimensions: &[(String, String)],
        timestamp_ms: i64,
        value: f64,
        unit: Option<&str>,
    ) -> Result<(), String> {
        let datum = cloudwatch::Datum {
            name: name.to_string(),
            dimensions: dimensions.to_vec(),
            timestamp: Some(timestamp_ms),
            value: Some(value),
            unit: unit.map(str::to_string),
            ..cloudwatch::Datum::default()
        };
        self.cloudwatch.put_metric_data(namespace, &[datum]).map_err(|e| e.to_string())
    }
}
