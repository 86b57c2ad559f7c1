//! What an alarm's SNS action publishes: AWS's subject (`ALARM: "name" in US East (N.
//! Virginia)`) and its JSON message, key for key as spec §3.5 shows it.

use serde_json::{Value, json};

use crate::alarms::{AlarmKind, Fired, aws_date};

/// The long name AWS gives a region in notifications.
pub fn region_long_name(region: &str) -> String {
    let name = match region {
        "us-east-1" => "US East (N. Virginia)",
        "us-east-2" => "US East (Ohio)",
        "us-west-1" => "US West (N. California)",
        "us-west-2" => "US West (Oregon)",
        "ca-central-1" => "Canada (Central)",
        "eu-west-1" => "EU (Ireland)",
        "eu-west-2" => "EU (London)",
        "eu-west-3" => "EU (Paris)",
        "eu-central-1" => "EU (Frankfurt)",
        "eu-north-1" => "EU (Stockholm)",
        "eu-south-1" => "EU (Milan)",
        "ap-northeast-1" => "Asia Pacific (Tokyo)",
        "ap-northeast-2" => "Asia Pacific (Seoul)",
        "ap-northeast-3" => "Asia Pacific (Osaka)",
        "ap-southeast-1" => "Asia Pacific (Singapore)",
        "ap-southeast-2" => "Asia Pacific (Sydney)",
        "ap-south-1" => "Asia Pacific (Mumbai)",
        "sa-east-1" => "South America (Sao Paulo)",
        other => return other.to_string(),
    };
    name.to_string()
}

/// The subject and message of an alarm's notification.
pub fn alarm_notification(fired: &Fired, account_id: &str, region: &str) -> (String, String) {
    let a = &fired.alarm;
    let long = region_long_name(region);
    let subject = format!("{}: \"{}\" in {long}", a.state.as_str(), a.name);
    // AWS caps subjects at 100 characters.
    let subject: String = subject.chars().take(100).collect();
    let trigger = match &a.kind {
        AlarmKind::Metric(m) if m.metrics.is_empty() => {
            let (statistic_type, statistic) = match (&m.statistic, &m.extended_statistic) {
                (Some(s), _) => ("Statistic", json!(s.to_uppercase())),
                (None, Some(e)) => ("ExtendedStatistic", json!(e)),
                _ => ("Statistic", Value::Null),
            };
            json!({
                "MetricName": m.metric_name,
                "Namespace": m.namespace,
                "StatisticType": statistic_type,
                "Statistic": statistic,
                "Unit": m.unit,
                "Dimensions": m.dimensions.iter().map(|(k, v)| json!({"value": v, "name": k})).collect::<Vec<_>>(),
                "Period": m.period,
                "EvaluationPeriods": m.evaluation_periods,
                "DatapointsToAlarm": m.datapoints_to_alarm.unwrap_or(m.evaluation_periods),
                "ComparisonOperator": m.comparison,
                "Threshold": m.threshold,
                "TreatMissingData": m.treat_missing_data.as_deref().unwrap_or("missing"),
                "EvaluateLowSampleCountPercentile": m.evaluate_low_sample_count_percentile.as_deref().unwrap_or(""),
            })
        }
        AlarmKind::Metric(m) => json!({
            "Period": m.period,
            "EvaluationPeriods": m.evaluation_periods,
            "DatapointsToAlarm": m.datapoints_to_alarm.unwrap_or(m.evaluation_periods),
            "ComparisonOperator": m.comparison,
            "Threshold": m.threshold,
            "TreatMissingData": m.treat_missing_data.as_deref().unwrap_or("missing"),
            "EvaluateLowSampleCountPercentile": m.evaluate_low_sample_count_percentile.as_deref().unwrap_or(""),
            "Metrics": m.metrics.iter().map(|q| json!({
                "Id": q.id,
                "Expression": q.expression,
                "Label": q.label,
                "ReturnData": q.return_data,
            })).collect::<Vec<_>>(),
        }),
        AlarmKind::Composite(c) => json!({"AlarmRule": c.rule}),
    };
    let mut message = json!({
        "AlarmName": a.name,
        "AlarmDescription": a.description,
        "AWSAccountId": account_id,
        "AlarmConfigurationUpdatedTimestamp": aws_date(a.configuration_updated),
        "NewStateValue": a.state.as_str(),
        "NewStateReason": a.state_reason,
        "StateChangeTime": aws_date(a.state_updated),
        "Region": long,
        "AlarmArn": a.arn,
        "OldStateValue": fired.old_state.as_str(),
        "OKActions": a.ok_actions,
        "AlarmActions": a.alarm_actions,
        "InsufficientDataActions": a.insufficient_data_actions,
    });
    if let Some(obj) = message.as_object_mut() {
        if a.is_composite() {
            obj.insert("AlarmRule".into(), trigger["AlarmRule"].clone());
        } else {
            obj.insert("Trigger".into(), trigger);
        }
    }
    (subject, message.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alarms::{AlarmRecord, MetricAlarm};
    use crate::evaluate::StateValue;
    use expect_test::expect;

    #[test]
    fn an_alarm_notification_is_awss_json() {
        let alarm = AlarmRecord {
            name: "cpu-high".into(),
            arn: "arn:aws:cloudwatch:us-east-1:123456789012:alarm:cpu-high".into(),
            description: None,
            actions_enabled: true,
            ok_actions: vec![],
            alarm_actions: vec!["arn:aws:sns:us-east-1:123456789012:ops".into()],
            insufficient_data_actions: vec![],
            kind: AlarmKind::Metric(Box::new(MetricAlarm {
                namespace: Some("AWS/EC2".into()),
                metric_name: Some("CPUUtilization".into()),
                dimensions: vec![("AutoScalingGroupName".into(), "my-asg".into())],
                statistic: Some("Average".into()),
                period: Some(60),
                threshold: Some(70.0),
                comparison: "GreaterThanThreshold".into(),
                evaluation_periods: 3,
                ..MetricAlarm::default()
            })),
            state: StateValue::Alarm,
            state_reason: "Threshold Crossed: ...".into(),
            state_reason_data: None,
            state_updated: 1_666_123_510_941,
            state_transitioned: 1_666_123_510_941,
            configuration_updated: 1_666_122_085_573,
            tags: vec![],
        };
        let fired = Fired { alarm, old_state: StateValue::Ok, at: 0, values: vec![] };
        let (subject, message) = alarm_notification(&fired, "123456789012", "us-east-1");
        expect![[r#"ALARM: "cpu-high" in US East (N. Virginia)"#]].assert_eq(&subject);
        expect![[r#"{"AlarmName":"cpu-high","AlarmDescription":null,"AWSAccountId":"123456789012","AlarmConfigurationUpdatedTimestamp":"2022-10-18T19:41:25.573+0000","NewStateValue":"ALARM","NewStateReason":"Threshold Crossed: ...","StateChangeTime":"2022-10-18T20:05:10.941+0000","Region":"US East (N. Virginia)","AlarmArn":"arn:aws:cloudwatch:us-east-1:123456789012:alarm:cpu-high","OldStateValue":"OK","OKActions":[],"AlarmActions":["arn:aws:sns:us-east-1:123456789012:ops"],"InsufficientDataActions":[],"Trigger":{"MetricName":"CPUUtilization","Namespace":"AWS/EC2","StatisticType":"Statistic","Statistic":"AVERAGE","Unit":null,"Dimensions":[{"value":"my-asg","name":"AutoScalingGroupName"}],"Period":60,"EvaluationPeriods":3,"DatapointsToAlarm":3,"ComparisonOperator":"GreaterThanThreshold","Threshold":70.0,"TreatMissingData":"missing","EvaluateLowSampleCountPercentile":""}}"#]].assert_eq(&message);
    }
}
