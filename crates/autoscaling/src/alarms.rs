//! The seam to CloudWatch's alarms. Auto Scaling does not know CloudWatch: a target tracking
//! policy's High and Low alarms are made and deleted through `PolicyAlarms`, which the region
//! implements over its alarms; an alarm that goes off comes back as an `AlarmSignal` to
//! `AutoScaling::alarm_fired`. `tracking_alarms` is what AWS creates for a policy, as a pure
//! function.

use crate::model::{PolicyRecord, TargetTracking};

/// Where a target tracking policy's alarms are kept (CloudWatch, in the region).
pub trait PolicyAlarms: Send + Sync {
    /// Creates the alarm, or replaces the one of that name.
    fn put(&self, alarm: &TrackingAlarm) -> Result<(), String>;
    /// Deletes the alarms named (a name not there is no error).
    fn delete(&self, names: &[String]) -> Result<(), String>;
}

/// A metric alarm as Auto Scaling creates it for a target tracking policy: its only action is
/// the policy (`policy_arn`).
#[derive(Clone, Debug, PartialEq)]
pub struct TrackingAlarm {
    pub name: String,
    pub description: String,
    pub policy_arn: String,
    pub namespace: String,
    pub metric_name: String,
    pub dimensions: Vec<(String, String)>,
    pub statistic: String,
    pub unit: Option<String>,
    /// `GreaterThanThreshold` (High) or `LessThanThreshold` (Low).
    pub comparison: String,
    pub threshold: f64,
    /// Seconds (60).
    pub period: i64,
    pub evaluation_periods: u32,
    pub datapoints_to_alarm: u32,
}

/// An alarm's evaluation, as CloudWatch delivers it to the policy in its actions.
#[derive(Clone, Debug, PartialEq)]
pub struct AlarmSignal {
    pub alarm_name: String,
    /// `ALARM`, `OK` or `INSUFFICIENT_DATA`.
    pub state: String,
    pub threshold: f64,
    pub comparison: String,
    /// The datapoints evaluated, newest last.
    pub values: Vec<f64>,
}

/// The metric a target tracking configuration follows.
#[derive(Clone, Debug, PartialEq)]
pub struct TrackedMetric {
    pub namespace: String,
    pub metric_name: String,
    pub dimensions: Vec<(String, String)>,
    pub statistic: String,
    pub unit: Option<String>,
}

/// What a target tracking configuration follows: a customized metric as given; a predefined
/// one as AWS defines it. `None` for an ALBRequestCountPerTarget without a ResourceLabel of
/// the form `app/<lb>/<lb-id>/targetgroup/<tg>/<tg-id>`.
pub fn tracking_metric(group: &str, t: &TargetTracking) -> Option<TrackedMetric> {
    if let Some(c) = &t.customized {
        return Some(TrackedMetric {
            namespace: c.namespace.clone(),
            metric_name: c.metric_name.clone(),
            dimensions: c.dimensions.clone(),
            statistic: c.statistic.clone(),
            unit: c.unit.clone(),
        });
    }
    let p = t.predefined.as_ref()?;
    let metric = |namespace: &str, metric_name: &str, dimension: (&str, &str), statistic: &str| {
        Some(TrackedMetric {
            namespace: namespace.into(),
            metric_name: metric_name.into(),
            dimensions: vec![(dimension.0.into(), dimension.1.into())],
            statistic: statistic.into(),
            unit: None,
        })
    };
    let by_group = ("AutoScalingGroupName", group);
    match p.metric_type.as_str() {
        "ASGAverageCPUUtilization" => metric("AWS/EC2", "CPUUtilization", by_group, "Average"),
        "ASGAverageNetworkIn" => metric("AWS/EC2", "NetworkIn", by_group, "Average"),
        "ASGAverageNetworkOut" => metric("AWS/EC2", "NetworkOut", by_group, "Average"),
        "ALBRequestCountPerTarget" => {
            // The dimension is the label's target group part: targetgroup/<tg>/<tg-id>.
            let label = p.resource_label.as_deref()?;
            let (lb, target_group) = label.split_at(label.find("/targetgroup/")? + 1);
            let well_formed = lb.starts_with("app/")
                && lb.split('/').filter(|s| !s.is_empty()).count() == 3
                && target_group.split('/').filter(|s| !s.is_empty()).count() == 3;
            if !well_formed {
                return None;
            }
            let dimension = ("TargetGroup", target_group);
            metric("AWS/ApplicationELB", "RequestCountPerTarget", dimension, "Sum")
        }
        _ => None,
    }
}

/// Whether an alarm name is a target tracking policy's High alarm (else its Low one).
pub fn is_high(name: &str) -> bool {
    name.contains("-AlarmHigh-")
}

/// The alarms AWS creates for a target tracking policy, for the alarm names it recorded: High
/// (metric > target, 60 s, 3 of 3) and, unless scale-in is disabled, Low (metric < 90 % of the
/// target, 60 s, 15 of 15). Empty for other policies.
pub fn tracking_alarms(policy: &PolicyRecord) -> Vec<TrackingAlarm> {
    let Some(t) = &policy.target_tracking else { return Vec::new() };
    let Some(m) = tracking_metric(&policy.group, t) else { return Vec::new() };
    policy
        .alarms
        .iter()
        .filter(|a| is_high(&a.name) || (!t.disable_scale_in && a.name.contains("-AlarmLow-")))
        .map(|a| {
            let high = is_high(&a.name);
            TrackingAlarm {
                name: a.name.clone(),
                description: format!(
                    "DO NOT EDIT OR DELETE. For TargetTrackingScaling policy {}.",
                    policy.arn
                ),
                policy_arn: policy.arn.clone(),
                namespace: m.namespace.clone(),
                metric_name: m.metric_name.clone(),
                dimensions: m.dimensions.clone(),
                statistic: m.statistic.clone(),
                unit: m.unit.clone(),
                comparison: if high { "GreaterThanThreshold" } else { "LessThanThreshold" }.into(),
                // 9/10 rather than 0.9×: exact whenever the product is (70 → 63, not 63.000…1).
                threshold: if high { t.target_value } else { t.target_value * 9.0 / 10.0 },
                period: 60,
                evaluation_periods: if high { 3 } else { 15 },
                datapoints_to_alarm: if high { 3 } else { 15 },
            }
        })
        .collect()
}

/// Where a group's notifications go (SNS): the region implements it. Unset, notification
/// configurations are only recorded.
pub trait Notifications: Send + Sync {
    /// Publishes `message` with `subject` to the topic; `Err` says why it was not delivered.
    fn notify(&self, topic_arn: &str, subject: &str, message: &str) -> Result<(), String>;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{CustomizedMetric, PredefinedMetric};

    fn tracking(metric_type: &str, label: Option<&str>) -> TargetTracking {
        TargetTracking {
            predefined: Some(PredefinedMetric {
                metric_type: metric_type.into(),
                resource_label: label.map(Into::into),
            }),
            customized: None,
            target_value: 50.0,
            disable_scale_in: false,
        }
    }

    #[test]
    fn each_predefined_metric_is_the_one_aws_tracks() {
        let label = "app/web/50dc6c495c0c9188/targetgroup/web-tg/943f017f100becff";
        let cases = [
            (
                tracking("ASGAverageCPUUtilization", None),
                "AWS/EC2 CPUUtilization Average [AutoScalingGroupName=web]",
            ),
            (
                tracking("ASGAverageNetworkIn", None),
                "AWS/EC2 NetworkIn Average [AutoScalingGroupName=web]",
            ),
            (
                tracking("ASGAverageNetworkOut", None),
                "AWS/EC2 NetworkOut Average [AutoScalingGroupName=web]",
            ),
            (
                tracking("ALBRequestCountPerTarget", Some(label)),
                "AWS/ApplicationELB RequestCountPerTarget Sum [TargetGroup=targetgroup/web-tg/943f017f100becff]",
            ),
            (tracking("ALBRequestCountPerTarget", Some("app/web/50dc6c495c0c9188")), "none"),
            (
                tracking("ALBRequestCountPerTarget", Some("targetgroup/web-tg/943f017f100becff")),
                "none",
            ),
            (tracking("ALBRequestCountPerTarget", None), "none"),
            (
                TargetTracking {
                    predefined: None,
                    customized: Some(CustomizedMetric {
                        metric_name: "QueueDepth".into(),
                        namespace: "MyApp".into(),
                        dimensions: vec![("Queue".into(), "jobs".into())],
                        statistic: "Maximum".into(),
                        unit: Some("Count".into()),
                    }),
                    ..tracking("ASGAverageCPUUtilization", None)
                },
                "MyApp QueueDepth Maximum [Queue=jobs] Count",
            ),
        ];
        for (t, want) in cases {
            let got = match tracking_metric("web", &t) {
                None => "none".to_string(),
                Some(m) => {
                    let dims: Vec<String> =
                        m.dimensions.iter().map(|(k, v)| format!("{k}={v}")).collect();
                    let unit = m.unit.map(|u| format!(" {u}")).unwrap_or_default();
                    format!(
                        "{} {} {} [{}]{unit}",
                        m.namespace,
                        m.metric_name,
                        m.statistic,
                        dims.join(",")
                    )
                }
            };
            assert_eq!(got, want);
        }
    }
}
