//! Alarms on paused time: metrics published minute by minute, the evaluator's transitions,
//! reasons and history, the actions each transition runs (and the Auto Scaling ones it runs
//! again every minute), SetAlarmState, composite and metric-math alarms.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use cloudwatch::alarms::{CompositeAlarm, MetricAlarm, PutAlarm};
use cloudwatch::query::{DataQuery, MetricStat};
use cloudwatch::{AlarmActions, CloudWatch, Datum, Fired, MetricId};
use expect_test::expect;

/// Records every action it is asked to run; SNS ones fail as they do without SNS.
#[derive(Default)]
struct Recorder(Mutex<Vec<String>>);

#[async_trait::async_trait]
impl AlarmActions for Recorder {
    async fn invoke(&self, arn: &str, fired: &Fired) -> Result<(), String> {
        self.0.lock().unwrap().push(format!(
            "{} {} -> {} {:?}",
            fired.alarm.name,
            fired.old_state.as_str(),
            arn,
            fired.values
        ));
        if arn.contains(":sns:") { Err("no SNS here".into()) } else { Ok(()) }
    }
}

const START: i64 = 1_800_000_000; // 2027-01-15T08:00:00Z, a minute boundary.

fn region() -> (Arc<CloudWatch>, Arc<Recorder>) {
    let store = Arc::new(store::Store::in_memory().unwrap());
    let start = jiff::Timestamp::from_second(START).unwrap();
    let clock = clock::Clock::starting_at(1.0, start);
    let cw = Arc::new(CloudWatch::new(store, clock, aws_ids::Account::default()).unwrap());
    let rec = Arc::new(Recorder::default());
    cw.set_actions(rec.clone());
    (cw, rec)
}

fn cpu(cw: &CloudWatch, value: f64) {
    let now = cw.now();
    cw.put_metric_data(
        "App",
        &[Datum {
            name: "CPU".into(),
            dimensions: vec![("Host".into(), "a".into())],
            timestamp: Some((now - 30) * 1000),
            value: Some(value),
            ..Datum::default()
        }],
    )
    .unwrap();
}

fn high_cpu(name: &str, treat_missing: &str) -> PutAlarm {
    PutAlarm {
        name: name.into(),
        alarm_actions: vec![
            "arn:aws:autoscaling:us-east-1:000000000000:scalingPolicy:x:autoScalingGroupName/web:policyName/up".into(),
            "arn:aws:sns:us-east-1:000000000000:ops".into(),
        ],
        ok_actions: vec!["arn:aws:sns:us-east-1:000000000000:ops".into()],
        metric: Some(MetricAlarm {
            namespace: Some("App".into()),
            metric_name: Some("CPU".into()),
            dimensions: vec![("Host".into(), "a".into())],
            statistic: Some("Average".into()),
            period: Some(60),
            threshold: Some(60.0),
            comparison: "GreaterThanThreshold".into(),
            evaluation_periods: 3,
            datapoints_to_alarm: Some(2),
            treat_missing_data: Some(treat_missing.into()),
            ..MetricAlarm::default()
        }),
        ..PutAlarm::default()
    }
}

/// One minute passes: a point (or none) is published in it, then the evaluator runs.
async fn minute(cw: &CloudWatch, value: Option<f64>) {
    tokio::time::advance(Duration::from_secs(30)).await;
    if let Some(v) = value {
        cpu(cw, v);
    }
    tokio::time::advance(Duration::from_secs(30)).await;
    cw.evaluate_due().unwrap();
    // Let the actions' tasks run.
    for _ in 0..10 {
        tokio::task::yield_now().await;
    }
}

fn states(cw: &CloudWatch, name: &str) -> String {
    let a = cw.alarm(name).unwrap().unwrap();
    format!("{} | {}", a.state.as_str(), a.state_reason)
}

#[tokio::test(start_paused = true)]
async fn two_of_three_breaching_minutes_alarm_and_the_policy_hears_every_minute() {
    let (cw, rec) = region();
    cw.put_alarm(high_cpu("cpu-high", "missing")).unwrap();
    let mut timeline = vec![format!("created: {}", states(&cw, "cpu-high"))];
    for v in [
        Some(20.0),
        Some(80.0),
        Some(30.0),
        Some(90.0),
        Some(95.0),
        Some(10.0),
        Some(10.0),
        Some(10.0),
    ] {
        minute(&cw, v).await;
        timeline.push(format!("{v:?}: {}", states(&cw, "cpu-high")));
    }
    expect![[r#"
        created: INSUFFICIENT_DATA | Unchecked: Initial alarm creation
        Some(20.0): OK | Threshold Crossed: 1 out of the last 3 datapoints [20.0 (15/01/27 08:00:00)] was not greater than the threshold (60.0) (minimum 2 datapoints for INSUFFICIENT_DATA -> OK transition).
        Some(80.0): OK | Threshold Crossed: 1 out of the last 3 datapoints [20.0 (15/01/27 08:00:00)] was not greater than the threshold (60.0) (minimum 2 datapoints for INSUFFICIENT_DATA -> OK transition).
        Some(30.0): OK | Threshold Crossed: 1 out of the last 3 datapoints [20.0 (15/01/27 08:00:00)] was not greater than the threshold (60.0) (minimum 2 datapoints for INSUFFICIENT_DATA -> OK transition).
        Some(90.0): ALARM | Threshold Crossed: 2 out of the last 3 datapoints [90.0 (15/01/27 08:03:00), 80.0 (15/01/27 08:01:00)] were greater than the threshold (60.0) (minimum 2 datapoints for OK -> ALARM transition).
        Some(95.0): ALARM | Threshold Crossed: 2 out of the last 3 datapoints [90.0 (15/01/27 08:03:00), 80.0 (15/01/27 08:01:00)] were greater than the threshold (60.0) (minimum 2 datapoints for OK -> ALARM transition).
        Some(10.0): ALARM | Threshold Crossed: 2 out of the last 3 datapoints [90.0 (15/01/27 08:03:00), 80.0 (15/01/27 08:01:00)] were greater than the threshold (60.0) (minimum 2 datapoints for OK -> ALARM transition).
        Some(10.0): OK | Threshold Crossed: 2 out of the last 3 datapoints [10.0 (15/01/27 08:06:00), 10.0 (15/01/27 08:05:00)] were not greater than the threshold (60.0) (minimum 2 datapoints for ALARM -> OK transition).
        Some(10.0): OK | Threshold Crossed: 2 out of the last 3 datapoints [10.0 (15/01/27 08:06:00), 10.0 (15/01/27 08:05:00)] were not greater than the threshold (60.0) (minimum 2 datapoints for ALARM -> OK transition).
    "#]]
    .assert_eq(&(timeline.join("\n") + "\n"));
    expect![[r#"
        cpu-high INSUFFICIENT_DATA -> arn:aws:sns:us-east-1:000000000000:ops [20.0]
        cpu-high OK -> arn:aws:autoscaling:us-east-1:000000000000:scalingPolicy:x:autoScalingGroupName/web:policyName/up [80.0, 30.0, 90.0]
        cpu-high OK -> arn:aws:sns:us-east-1:000000000000:ops [80.0, 30.0, 90.0]
        cpu-high ALARM -> arn:aws:autoscaling:us-east-1:000000000000:scalingPolicy:x:autoScalingGroupName/web:policyName/up [30.0, 90.0, 95.0]
        cpu-high ALARM -> arn:aws:autoscaling:us-east-1:000000000000:scalingPolicy:x:autoScalingGroupName/web:policyName/up [90.0, 95.0, 10.0]
        cpu-high ALARM -> arn:aws:sns:us-east-1:000000000000:ops [95.0, 10.0, 10.0]
    "#]]
    .assert_eq(&(rec.0.lock().unwrap().join("\n") + "\n"));
    let history: Vec<String> = cw
        .alarm_history(Some("cpu-high"), None, None, None)
        .unwrap()
        .into_iter()
        .rev()
        .map(|h| format!("{} {}", h.item_type, h.summary))
        .collect();
    expect![[r#"
        ConfigurationUpdate Alarm "cpu-high" created
        StateUpdate Alarm updated from INSUFFICIENT_DATA to OK
        Action Failed to execute action arn:aws:sns:us-east-1:000000000000:ops. Received error: "no SNS here"
        StateUpdate Alarm updated from OK to ALARM
        Action Successfully executed action arn:aws:autoscaling:us-east-1:000000000000:scalingPolicy:x:autoScalingGroupName/web:policyName/up
        Action Failed to execute action arn:aws:sns:us-east-1:000000000000:ops. Received error: "no SNS here"
        Action Successfully executed action arn:aws:autoscaling:us-east-1:000000000000:scalingPolicy:x:autoScalingGroupName/web:policyName/up
        Action Successfully executed action arn:aws:autoscaling:us-east-1:000000000000:scalingPolicy:x:autoScalingGroupName/web:policyName/up
        StateUpdate Alarm updated from ALARM to OK
        Action Failed to execute action arn:aws:sns:us-east-1:000000000000:ops. Received error: "no SNS here"
    "#]]
    .assert_eq(&(history.join("\n") + "\n"));
}

#[tokio::test(start_paused = true)]
async fn a_metric_that_stops_is_read_as_its_missing_data_setting_says() {
    let mut out = Vec::new();
    for treat in ["missing", "ignore", "breaching", "notBreaching"] {
        let (cw, _) = region();
        cw.put_alarm(high_cpu("a", treat)).unwrap();
        minute(&cw, Some(10.0)).await;
        let mut line = vec![cw.alarm("a").unwrap().unwrap().state.as_str().to_string()];
        for _ in 0..6 {
            minute(&cw, None).await;
            line.push(cw.alarm("a").unwrap().unwrap().state.as_str().to_string());
        }
        out.push(format!("{treat}: {}", line.join(" ")));
    }
    expect![[r#"
        missing: OK OK OK OK OK INSUFFICIENT_DATA INSUFFICIENT_DATA
        ignore: OK OK OK OK OK OK OK
        breaching: ALARM ALARM ALARM ALARM ALARM ALARM ALARM
        notBreaching: OK OK OK OK OK OK OK"#]]
    .assert_eq(&out.join("\n"));
}

#[tokio::test(start_paused = true)]
async fn set_alarm_state_runs_the_actions_and_holds_until_the_next_evaluation() {
    let (cw, rec) = region();
    cw.put_alarm(high_cpu("cpu-high", "missing")).unwrap();
    minute(&cw, Some(10.0)).await;
    rec.0.lock().unwrap().clear();
    cw.set_alarm_state("cpu-high", cloudwatch::evaluate::StateValue::Alarm, "testing", None)
        .unwrap();
    for _ in 0..10 {
        tokio::task::yield_now().await;
    }
    assert_eq!(states(&cw, "cpu-high"), "ALARM | testing");
    assert_eq!(rec.0.lock().unwrap().len(), 2, "{:?}", rec.0.lock().unwrap());
    minute(&cw, Some(10.0)).await;
    assert!(states(&cw, "cpu-high").starts_with("OK |"));
    assert!(cw.set_alarm_state("nope", cloudwatch::evaluate::StateValue::Ok, "x", None).is_err());
}

#[tokio::test(start_paused = true)]
async fn composite_and_metric_math_alarms() {
    let (cw, _) = region();
    let mut high = high_cpu("cpu-high", "missing");
    high.alarm_actions.clear();
    high.ok_actions.clear();
    cw.put_alarm(high).unwrap();
    // CPU over twice its own 1-minute average less 50: a math alarm on one metric.
    let math = PutAlarm {
        name: "cpu-doubled".into(),
        metric: Some(MetricAlarm {
            metrics: vec![
                DataQuery {
                    id: "m1".into(),
                    metric: Some(MetricStat {
                        metric: MetricId::new("App", "CPU", [("Host", "a")]),
                        period: 60,
                        stat: "Average".into(),
                        unit: None,
                    }),
                    expression: None,
                    label: None,
                    return_data: false,
                    period: None,
                },
                DataQuery {
                    id: "e1".into(),
                    metric: None,
                    expression: Some("m1 * 2 - 50".into()),
                    label: Some("doubled".into()),
                    return_data: true,
                    period: None,
                },
            ],
            threshold: Some(100.0),
            comparison: "GreaterThanOrEqualToThreshold".into(),
            evaluation_periods: 1,
            ..MetricAlarm::default()
        }),
        ..PutAlarm::default()
    };
    cw.put_alarm(math).unwrap();
    let composite = PutAlarm {
        name: "both".into(),
        composite: Some(CompositeAlarm {
            rule: r#"ALARM("cpu-high") AND ALARM(cpu-doubled)"#.into(),
            actions_suppressor: None,
            actions_suppressor_wait_period: None,
            actions_suppressor_extension_period: None,
        }),
        ..PutAlarm::default()
    };
    cw.put_alarm(composite).unwrap();
    let mut out = Vec::new();
    for v in [50.0, 70.0, 80.0, 20.0] {
        minute(&cw, Some(v)).await;
        // Composites follow their children at the next pass.
        cw.evaluate_due().unwrap();
        out.push(format!(
            "{v}: cpu-high={} cpu-doubled={} both={}",
            cw.alarm("cpu-high").unwrap().unwrap().state.as_str(),
            cw.alarm("cpu-doubled").unwrap().unwrap().state.as_str(),
            cw.alarm("both").unwrap().unwrap().state.as_str()
        ));
    }
    expect![[r#"
        50: cpu-high=OK cpu-doubled=OK both=OK
        70: cpu-high=OK cpu-doubled=OK both=OK
        80: cpu-high=ALARM cpu-doubled=ALARM both=ALARM
        20: cpu-high=ALARM cpu-doubled=OK both=OK"#]]
    .assert_eq(&out.join("\n"));
    // A child of a composite cannot go first.
    let e = cw.delete_alarms(&["cpu-high".into()]).unwrap_err();
    expect!["Alarm cpu-high cannot be deleted: the composite alarm both refers to it."]
        .assert_eq(&e.to_string());
}

#[test]
fn definitions_are_checked_as_put_metric_alarm_checks_them() {
    let store = Arc::new(store::Store::in_memory().unwrap());
    let cw = CloudWatch::new(store, clock::Clock::new(1.0), aws_ids::Account::default()).unwrap();
    let check = |f: &dyn Fn(&mut MetricAlarm), actions: Vec<String>| -> String {
        let mut req = high_cpu("x", "missing");
        req.alarm_actions = actions;
        req.ok_actions.clear();
        if let Some(m) = &mut req.metric {
            f(m);
        }
        match cw.put_alarm(req) {
            Ok(_) => "ok".into(),
            Err(e) => format!("{}: {e}", e.code()),
        }
    };
    let lines = [
        check(&|_| {}, vec![]),
        check(&|m| m.period = Some(45), vec![]),
        check(&|m| m.evaluation_periods = 1_441, vec![]),
        check(&|m| m.datapoints_to_alarm = Some(4), vec![]),
        check(&|m| m.comparison = "Bigger".into(), vec![]),
        check(&|m| m.comparison = "LessThanLowerOrGreaterThanUpperThreshold".into(), vec![]),
        check(&|m| m.treat_missing_data = Some("sometimes".into()), vec![]),
        check(&|m| m.extended_statistic = Some("p99".into()), vec![]),
        check(&|m| m.threshold = None, vec![]),
        check(&|_| {}, vec!["arn:aws:automate:us-east-1:ec2:recover".into()]),
    ];
    expect![[r#"
        ok
        InvalidParameterValue: The parameter Period must be a multiple of 60 or one of 1, 5, 10, 20, 30.
        InvalidParameterValue: Metrics cannot be checked across more than a day (EvaluationPeriods * Period must be <= 86400).
        InvalidParameterValue: DatapointsToAlarm must be between 1 and the value of EvaluationPeriods.
        InvalidParameterValue: The parameter ComparisonOperator must be a value in the set [ GreaterThanOrEqualToThreshold, GreaterThanThreshold, LessThanThreshold, LessThanOrEqualToThreshold, LessThanLowerOrGreaterThanUpperThreshold, LessThanLowerThreshold, GreaterThanUpperThreshold ] (got Bigger).
        InvalidParameterValue: Anomaly detection bands (ThresholdMetricId, ANOMALY_DETECTION_BAND) are not supported by Cumulo; use a static Threshold.
        InvalidParameterValue: The parameter TreatMissingData must be one of breaching, notBreaching, ignore, missing (got sometimes).
        InvalidParameterCombination: Exactly one of Statistic and ExtendedStatistic must be specified.
        MissingParameter: The parameter Threshold is required.
        InvalidParameterValue: Invalid use of EC2 action arn:aws:automate:us-east-1:ec2:recover: the alarm must watch a metric of one instance (an InstanceId dimension)."#]]
    .assert_eq(&lines.join("\n"));
}

#[tokio::test(start_paused = true)]
async fn percentile_alarms_with_too_few_samples_wait_when_asked_to_ignore_them() {
    let mut out = Vec::new();
    for setting in ["evaluate", "ignore"] {
        let (cw, _) = region();
        let mut req = high_cpu("p99", "missing");
        req.alarm_actions.clear();
        req.ok_actions.clear();
        if let Some(m) = &mut req.metric {
            m.statistic = None;
            m.extended_statistic = Some("p99".into());
            m.evaluation_periods = 1;
            m.datapoints_to_alarm = None;
            m.evaluate_low_sample_count_percentile = Some(setting.into());
        }
        cw.put_alarm(req).unwrap();
        let mut line = Vec::new();
        // p99 needs 10 / (1 - 0.99) = 1,000 samples a period: 5, then 1,500.
        for count in [5.0, 1_500.0] {
            tokio::time::advance(Duration::from_secs(30)).await;
            let now = cw.now();
            cw.put_metric_data(
                "App",
                &[Datum {
                    name: "CPU".into(),
                    dimensions: vec![("Host".into(), "a".into())],
                    timestamp: Some((now - 30) * 1000),
                    values: vec![90.0],
                    counts: vec![count],
                    ..Datum::default()
                }],
            )
            .unwrap();
            tokio::time::advance(Duration::from_secs(30)).await;
            cw.evaluate_due().unwrap();
            line.push(format!(
                "{count} samples: {}",
                cw.alarm("p99").unwrap().unwrap().state.as_str()
            ));
        }
        out.push(format!("{setting}: {}", line.join(", ")));
    }
    expect![[r#"
        evaluate: 5 samples: ALARM, 1500 samples: ALARM
        ignore: 5 samples: INSUFFICIENT_DATA, 1500 samples: ALARM"#]]
    .assert_eq(&out.join("\n"));
}
