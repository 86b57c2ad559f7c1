//! Scaling policies against the fake fleet on paused time. ExecutePolicy: the capacity each
//! adjustment type asks for (clamped to the group's bounds), the step a metric value chooses,
//! and a simple policy's cooldown (its own, else the group's DefaultCooldown), honoured only
//! with HonorCooldown. Alarms (`alarm_fired`, a fake CloudWatch in `fake::Alarms`): the High and
//! Low alarms a target tracking policy owns, the capacity each policy type asks for when its
//! alarm fires, cooldowns and warm-up, and the causes the activities carry.

use std::time::Duration;

use autoscaling::alarms::AlarmSignal;
use autoscaling::model::{PolicyRecord, PredefinedMetric, Step};
use autoscaling::request::{ExecutePolicy, PutPolicy, TargetTrackingSpec};
use expect_test::expect;

use super::*;

fn simple(name: &str, kind: &str, adjustment: i32, magnitude: Option<i32>) -> PutPolicy {
    PutPolicy {
        group: "web".into(),
        name: name.into(),
        adjustment_type: Some(kind.into()),
        scaling_adjustment: Some(adjustment),
        min_adjustment_magnitude: magnitude,
        ..PutPolicy::default()
    }
}

fn execute(name: &str, honor_cooldown: bool) -> ExecutePolicy {
    ExecutePolicy {
        group: Some("web".into()),
        policy: name.into(),
        honor_cooldown,
        ..ExecutePolicy::default()
    }
}

#[tokio::test(start_paused = true)]
async fn each_adjustment_type_changes_capacity_as_aws_computes_it() {
    let (asg, _fleet, _store) = service_with_fleet();
    asg.create_group(CreateGroup { min: 1, max: 12, desired: Some(4), ..group("web") }).unwrap();
    // Launches off: only the desired capacity matters (no cooldown from launches).
    asg.suspend("web", &["Launch".into()], true).unwrap();
    // (policy, adjustment type, adjustment, MinAdjustmentMagnitude, desired before → after)
    let cases = [
        ("plus-two", "ChangeInCapacity", 2, None, 4, 6),
        ("minus-ten", "ChangeInCapacity", -10, None, 6, 1),
        ("exactly-eight", "ExactCapacity", 8, None, 1, 8),
        ("plus-quarter", "PercentChangeInCapacity", 25, None, 8, 10),
        ("minus-third", "PercentChangeInCapacity", -33, None, 10, 7),
        ("plus-tenth-at-least-two", "PercentChangeInCapacity", 10, Some(2), 7, 9),
        ("double", "PercentChangeInCapacity", 100, None, 9, 12),
    ];
    for (name, kind, adjustment, magnitude, before, after) in cases {
        asg.set_desired("web", before).unwrap();
        asg.put_policy(simple(name, kind, adjustment, magnitude)).unwrap();
        asg.execute_policy(execute(name, false)).unwrap();
        assert_eq!(asg.group("web").unwrap().unwrap().desired, after, "{name}");
    }
}

#[tokio::test(start_paused = true)]
async fn a_step_policy_scales_by_the_step_the_metric_falls_in() {
    let (asg, _fleet, _store) = service_with_fleet();
    asg.create_group(CreateGroup { min: 1, max: 40, desired: Some(10), ..group("web") }).unwrap();
    asg.suspend("web", &["Launch".into()], true).unwrap();
    let step = |lower, upper, adjustment| Step { lower, upper, adjustment };
    asg.put_policy(PutPolicy {
        group: "web".into(),
        name: "cpu-steps".into(),
        policy_type: Some("StepScaling".into()),
        adjustment_type: Some("PercentChangeInCapacity".into()),
        steps: vec![
            step(Some(0.0), Some(10.0), 0),
            step(Some(10.0), Some(20.0), 10),
            step(Some(20.0), None, 30),
        ],
        ..PutPolicy::default()
    })
    .unwrap();
    let run = |metric: f64| {
        asg.execute_policy(ExecutePolicy {
            metric_value: Some(metric),
            breach_threshold: Some(50.0),
            ..execute("cpu-steps", false)
        })
    };
    // The guide's example: 60 against 50 at capacity 10 is the +10 % step: 11.
    run(60.0).unwrap();
    assert_eq!(asg.group("web").unwrap().unwrap().desired, 11);
    // Step policies have no cooldown: 75 is +30 % of 11 = 3.3 -> 3.
    run(75.0).unwrap();
    assert_eq!(asg.group("web").unwrap().unwrap().desired, 14);
    let e = asg.execute_policy(execute("cpu-steps", false)).unwrap_err();
    assert!(e.to_string().contains("MetricValue and BreachThreshold are required"), "{e}");
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn a_simple_policy_honours_its_cooldown_only_when_asked() {
    let (asg, _fleet, _store) = service_with_fleet();
    asg.create_group(CreateGroup { min: 1, max: 10, desired: Some(1), ..group("web") }).unwrap();
    tokio::time::sleep(Duration::from_secs(30)).await;
    asg.put_policy(PutPolicy {
        cooldown: Some(120),
        ..simple("add-one", "ChangeInCapacity", 1, None)
    })
    .unwrap();
    asg.execute_policy(execute("add-one", true)).unwrap();
    assert_eq!(asg.group("web").unwrap().unwrap().desired, 2);
    // Inside the cooldown, HonorCooldown refuses; without it the policy runs anyway.
    tokio::time::sleep(Duration::from_secs(60)).await;
    let e = asg.execute_policy(execute("add-one", true)).unwrap_err();
    assert_eq!(e.code(), "ScalingActivityInProgress", "{e}");
    assert_eq!(asg.group("web").unwrap().unwrap().desired, 2, "refused: unchanged");
    asg.execute_policy(execute("add-one", false)).unwrap();
    assert_eq!(asg.group("web").unwrap().unwrap().desired, 3);
    // That run started another 120 s cooldown: at +100 s still refused, at +130 s it runs.
    tokio::time::sleep(Duration::from_secs(100)).await;
    assert!(asg.execute_policy(execute("add-one", true)).is_err());
    tokio::time::sleep(Duration::from_secs(30)).await;
    asg.execute_policy(execute("add-one", true)).unwrap();
    assert_eq!(asg.group("web").unwrap().unwrap().desired, 4);
    // Without its own Cooldown a simple policy uses the group's DefaultCooldown (300 s).
    asg.put_policy(simple("add-one-default", "ChangeInCapacity", 1, None)).unwrap();
    tokio::time::sleep(Duration::from_secs(200)).await;
    asg.execute_policy(execute("add-one-default", true)).unwrap();
    tokio::time::sleep(Duration::from_secs(250)).await;
    assert!(asg.execute_policy(execute("add-one-default", true)).is_err(), "250 s < 300 s");
    tokio::time::sleep(Duration::from_secs(60)).await;
    asg.execute_policy(execute("add-one-default", true)).unwrap();
    assert_eq!(asg.group("web").unwrap().unwrap().desired, 6);
}

#[tokio::test(start_paused = true)]
async fn policies_are_checked_and_recorded_with_aws_defaults() {
    let (asg, _fleet, _store) = service_with_fleet();
    asg.create_group(group("web")).unwrap();
    let p = asg.put_policy(simple("p", "ChangeInCapacity", 1, None)).unwrap();
    assert_eq!((p.policy_type.as_str(), p.enabled), ("SimpleScaling", true));
    assert!(p.arn.ends_with(":autoScalingGroupName/web:policyName/p"), "{}", p.arn);
    let again = asg.put_policy(simple("p", "ChangeInCapacity", 3, None)).unwrap();
    assert_eq!(again.arn, p.arn, "a replaced policy keeps its ARN");
    for (bad, error) in [
        (simple("q", "Doubling", 1, None), "Invalid adjustment type"),
        (simple("q", "ChangeInCapacity", 1, Some(2)), "MinAdjustmentMagnitude"),
        (
            PutPolicy { scaling_adjustment: None, ..simple("q", "ExactCapacity", 1, None) },
            "ScalingAdjustment is required",
        ),
        (PutPolicy { group: "nope".into(), ..simple("q", "ExactCapacity", 1, None) }, "not found"),
    ] {
        let e = asg.put_policy(bad).unwrap_err().to_string();
        assert!(e.contains(error), "{e}");
    }
    asg.delete_policy(Some("web"), &p.arn).unwrap();
    assert!(asg.policies(Some("web")).unwrap().is_empty(), "deleted by ARN");
}

// ---- alarms ----

fn tracking(name: &str, metric: &str, target: f64, disable_scale_in: bool) -> PutPolicy {
    PutPolicy {
        group: "web".into(),
        name: name.into(),
        policy_type: Some("TargetTrackingScaling".into()),
        target_tracking: Some(TargetTrackingSpec {
            predefined: Some(PredefinedMetric { metric_type: metric.into(), resource_label: None }),
            customized: None,
            target_value: Some(target),
            disable_scale_in,
        }),
        ..PutPolicy::default()
    }
}

/// The name of a target tracking policy's `AlarmHigh` or `AlarmLow` alarm.
fn alarm_of(p: &PolicyRecord, kind: &str) -> String {
    p.alarms.iter().find(|a| a.name.contains(kind)).map(|a| a.name.clone()).unwrap_or_default()
}

fn signal(alarm: &str, state: &str, threshold: f64, values: &[f64]) -> AlarmSignal {
    let comparison =
        if alarm.contains("AlarmLow") { "LessThanThreshold" } else { "GreaterThanThreshold" };
    AlarmSignal {
        alarm_name: alarm.into(),
        state: state.into(),
        threshold,
        comparison: comparison.into(),
        values: values.to_vec(),
    }
}

fn desired(asg: &AutoScaling) -> u32 {
    asg.group("web").unwrap().unwrap().desired
}

/// The activities an alarm caused, oldest first: start, description, cause (uuids redacted).
fn alarm_activities(asg: &AutoScaling) -> String {
    let mut list: Vec<_> = asg
        .activities("web")
        .unwrap()
        .into_iter()
        .filter(|a| a.cause.contains("monitor alarm"))
        .collect();
    list.sort_by(|a, b| (&a.start, &a.description).cmp(&(&b.start, &b.description)));
    let text: String =
        list.iter().map(|a| format!("{} {}\n  {}\n", a.start, a.description, a.cause)).collect();
    fake::redact(&text)
}

#[tokio::test(start_paused = true)]
async fn a_target_tracking_policy_owns_its_high_and_low_alarms() {
    let (asg, _fleet, store) = service_with_fleet();
    let alarms = Arc::new(fake::Alarms::default());
    asg.set_policy_alarms(alarms.clone());
    asg.create_group(group("web")).unwrap();
    let p = asg.put_policy(tracking("cpu50", "ASGAverageCPUUtilization", 50.0, false)).unwrap();
    let mut named: Vec<String> = p.alarms.iter().map(|a| a.name.clone()).collect();
    named.sort();
    assert_eq!(alarms.names(), named, "the alarms made are the ones the policy names");
    expect![[r#"
        TargetTracking-web-AlarmHigh-<uuid>
          DO NOT EDIT OR DELETE. For TargetTrackingScaling policy arn:aws:autoscaling:us-east-1:000000000000:scalingPolicy:<uuid>:autoScalingGroupName/web:policyName/cpu50.
          action arn:aws:autoscaling:us-east-1:000000000000:scalingPolicy:<uuid>:autoScalingGroupName/web:policyName/cpu50
          AWS/EC2 CPUUtilization Average [AutoScalingGroupName=web] unit None
          GreaterThanThreshold 50 period 60 3 of 3
        TargetTracking-web-AlarmLow-<uuid>
          DO NOT EDIT OR DELETE. For TargetTrackingScaling policy arn:aws:autoscaling:us-east-1:000000000000:scalingPolicy:<uuid>:autoScalingGroupName/web:policyName/cpu50.
          action arn:aws:autoscaling:us-east-1:000000000000:scalingPolicy:<uuid>:autoScalingGroupName/web:policyName/cpu50
          AWS/EC2 CPUUtilization Average [AutoScalingGroupName=web] unit None
          LessThanThreshold 45 period 60 15 of 15
    "#]]
    .assert_eq(&alarms.shapes());
    // Replaced with DisableScaleIn: the High alarm is put again under its name, the Low goes.
    alarms.take_log();
    let again = asg.put_policy(tracking("cpu50", "ASGAverageCPUUtilization", 70.0, true)).unwrap();
    assert_eq!(again.alarms.len(), 1);
    assert_eq!(again.alarms[0].name, alarm_of(&p, "AlarmHigh"));
    assert_eq!(
        alarms.take_log(),
        format!(
            "put {}\ndelete {}\n",
            fake::redact(&again.alarms[0].name),
            fake::redact(&alarm_of(&p, "AlarmLow"))
        )
    );
    // Requests per target follow the target group of the ResourceLabel.
    let mut alb = tracking("requests", "ALBRequestCountPerTarget", 1000.0, false);
    if let Some(t) = &mut alb.target_tracking {
        t.predefined = Some(PredefinedMetric {
            metric_type: "ALBRequestCountPerTarget".into(),
            resource_label: Some(
                "app/web/50dc6c495c0c9188/targetgroup/web-tg/943f017f100becff".into(),
            ),
        });
    }
    asg.put_policy(alb).unwrap();
    expect![[r#"
        TargetTracking-web-AlarmHigh-<uuid>
          DO NOT EDIT OR DELETE. For TargetTrackingScaling policy arn:aws:autoscaling:us-east-1:000000000000:scalingPolicy:<uuid>:autoScalingGroupName/web:policyName/cpu50.
          action arn:aws:autoscaling:us-east-1:000000000000:scalingPolicy:<uuid>:autoScalingGroupName/web:policyName/cpu50
          AWS/EC2 CPUUtilization Average [AutoScalingGroupName=web] unit None
          GreaterThanThreshold 70 period 60 3 of 3
        TargetTracking-web-AlarmHigh-<uuid>
          DO NOT EDIT OR DELETE. For TargetTrackingScaling policy arn:aws:autoscaling:us-east-1:000000000000:scalingPolicy:<uuid>:autoScalingGroupName/web:policyName/requests.
          action arn:aws:autoscaling:us-east-1:000000000000:scalingPolicy:<uuid>:autoScalingGroupName/web:policyName/requests
          AWS/ApplicationELB RequestCountPerTarget Sum [TargetGroup=targetgroup/web-tg/943f017f100becff] unit None
          GreaterThanThreshold 1000 period 60 3 of 3
        TargetTracking-web-AlarmLow-<uuid>
          DO NOT EDIT OR DELETE. For TargetTrackingScaling policy arn:aws:autoscaling:us-east-1:000000000000:scalingPolicy:<uuid>:autoScalingGroupName/web:policyName/requests.
          action arn:aws:autoscaling:us-east-1:000000000000:scalingPolicy:<uuid>:autoScalingGroupName/web:policyName/requests
          AWS/ApplicationELB RequestCountPerTarget Sum [TargetGroup=targetgroup/web-tg/943f017f100becff] unit None
          LessThanThreshold 900 period 60 15 of 15
    "#]]
    .assert_eq(&alarms.shapes());
    // An alarm CloudWatch refuses fails the call, and no policy is made.
    alarms.take_log();
    alarms.refuse.store(true, std::sync::atomic::Ordering::SeqCst);
    let e = asg.put_policy(tracking("net", "ASGAverageNetworkIn", 5e6, false)).unwrap_err();
    assert_eq!(e.code(), "ValidationError", "{e}");
    assert!(e.to_string().contains("CloudWatch refused the alarm"), "{e}");
    assert!(asg.policies(Some("web")).unwrap().iter().all(|p| p.name != "net"));
    alarms.refuse.store(false, std::sync::atomic::Ordering::SeqCst);
    // A policy the store does not take leaves no alarms behind.
    store.inject(store::Faults::Writes);
    let e = asg.put_policy(tracking("net", "ASGAverageNetworkIn", 5e6, false)).unwrap_err();
    store.inject(store::Faults::None);
    assert_eq!(e.code(), "InternalFailure", "{e}");
    expect![[r#"
        put TargetTracking-web-AlarmHigh-<uuid>
        put TargetTracking-web-AlarmLow-<uuid>
        delete TargetTracking-web-AlarmHigh-<uuid> TargetTracking-web-AlarmLow-<uuid>
    "#]]
    .assert_eq(&alarms.take_log());
    assert_eq!(alarms.names().len(), 3, "the cpu50 High and the requests High and Low");
    // Deleting a policy deletes its alarms; deleting the group deletes the others'.
    asg.delete_policy(Some("web"), "cpu50").unwrap();
    asg.delete_group("web").await.unwrap();
    expect![[r#"
        delete TargetTracking-web-AlarmHigh-<uuid>
        delete TargetTracking-web-AlarmHigh-<uuid> TargetTracking-web-AlarmLow-<uuid>
    "#]]
    .assert_eq(&alarms.take_log());
    assert!(alarms.names().is_empty());
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn target_tracking_scales_out_and_in_toward_its_target() {
    let (asg, _fleet, _store) = service_with_fleet();
    // OldestInstance: which instances a scale-in takes is known.
    let termination_policies = vec!["OldestInstance".to_string()];
    asg.create_group(CreateGroup {
        min: 1,
        max: 10,
        desired: Some(2),
        termination_policies,
        ..group("web")
    })
    .unwrap();
    tokio::time::sleep(Duration::from_secs(30)).await; // 10:01:00
    let p = asg
        .put_policy(PutPolicy {
            estimated_instance_warmup: Some(120),
            ..tracking("cpu50", "ASGAverageCPUUtilization", 50.0, false)
        })
        .unwrap();
    let (high, low) = (alarm_of(&p, "AlarmHigh"), alarm_of(&p, "AlarmLow"));
    // High at 90 with 2 in service: ceil(2 × 90 / 50) = 4.
    let cause =
        asg.alarm_fired(&p.arn, &signal(&high, "ALARM", 50.0, &[80.0, 85.0, 90.0])).unwrap();
    expect!["At 2026-11-22T10:01:00Z a monitor alarm TargetTracking-web-AlarmHigh-<uuid> in state ALARM triggered policy cpu50 changing the desired capacity from 2 to 4."].assert_eq(&fake::redact(&cause.unwrap_or_default()));
    assert_eq!(desired(&asg), 4);
    // A minute later, still in ALARM while the new two warm: they count, nothing stacks.
    tokio::time::sleep(Duration::from_secs(60)).await; // 10:02:00
    assert_eq!(asg.alarm_fired(&p.arn, &signal(&high, "ALARM", 50.0, &[90.0])).unwrap(), None);
    // The Low alarm cannot scale in while they warm (120 s from entering service).
    assert_eq!(asg.alarm_fired(&p.arn, &signal(&low, "ALARM", 45.0, &[20.0])).unwrap(), None);
    assert_eq!(desired(&asg), 4);
    tokio::time::sleep(Duration::from_secs(90)).await; // 10:03:30
    // Low at 20 with 4: ceil(4 × 20 / 50) = ceil(1.6) = 2.
    let cause = asg.alarm_fired(&p.arn, &signal(&low, "ALARM", 45.0, &[30.0, 20.0])).unwrap();
    assert!(cause.is_some());
    assert_eq!(desired(&asg), 2);
    tokio::time::sleep(Duration::from_secs(60)).await; // 10:04:30
    expect![[r#"
        2026-11-22T10:01:00.000Z Launching a new EC2 instance: i-00000000000000003
          At 2026-11-22T10:01:00Z a monitor alarm TargetTracking-web-AlarmHigh-<uuid> in state ALARM triggered policy cpu50 changing the desired capacity from 2 to 4.  At 2026-11-22T10:01:00Z an instance was started in response to a difference between desired and actual capacity, increasing the capacity from 2 to 3.
        2026-11-22T10:01:00.000Z Launching a new EC2 instance: i-00000000000000004
          At 2026-11-22T10:01:00Z a monitor alarm TargetTracking-web-AlarmHigh-<uuid> in state ALARM triggered policy cpu50 changing the desired capacity from 2 to 4.  At 2026-11-22T10:01:00Z an instance was started in response to a difference between desired and actual capacity, increasing the capacity from 3 to 4.
        2026-11-22T10:03:30.000Z Terminating EC2 instance: i-00000000000000001
          At 2026-11-22T10:03:30Z a monitor alarm TargetTracking-web-AlarmLow-<uuid> in state ALARM triggered policy cpu50 changing the desired capacity from 4 to 2.  At 2026-11-22T10:03:30Z an instance was taken out of service in response to a difference between desired and actual capacity, shrinking the capacity from 4 to 3.
        2026-11-22T10:03:30.000Z Terminating EC2 instance: i-00000000000000002
          At 2026-11-22T10:03:30Z a monitor alarm TargetTracking-web-AlarmLow-<uuid> in state ALARM triggered policy cpu50 changing the desired capacity from 4 to 2.  At 2026-11-22T10:03:30Z an instance was taken out of service in response to a difference between desired and actual capacity, shrinking the capacity from 3 to 2.
    "#]]
    .assert_eq(&alarm_activities(&asg));
    // High never scales in, Low never out; a breach far above the target stops at MaxSize.
    assert_eq!(asg.alarm_fired(&p.arn, &signal(&high, "ALARM", 50.0, &[10.0])).unwrap(), None);
    assert_eq!(asg.alarm_fired(&p.arn, &signal(&low, "ALARM", 45.0, &[99.0])).unwrap(), None);
    asg.alarm_fired(&p.arn, &signal(&high, "ALARM", 50.0, &[400.0])).unwrap();
    assert_eq!(desired(&asg), 10, "ceil(2 × 400 / 50) = 16, clamped to MaxSize");
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn target_tracking_scales_in_only_when_every_policy_agrees() {
    let (asg, _fleet, _store) = service_with_fleet();
    asg.create_group(CreateGroup { min: 1, max: 10, desired: Some(6), ..group("web") }).unwrap();
    tokio::time::sleep(Duration::from_secs(30)).await;
    let cpu = asg.put_policy(tracking("cpu50", "ASGAverageCPUUtilization", 50.0, false)).unwrap();
    let net = asg.put_policy(tracking("net", "ASGAverageNetworkOut", 1000.0, false)).unwrap();
    let only_out =
        asg.put_policy(tracking("out-only", "ASGAverageNetworkIn", 1000.0, true)).unwrap();
    assert_eq!(only_out.alarms.len(), 1, "no Low alarm with DisableScaleIn");
    let low = |p: &PolicyRecord, value: f64, state: &str| {
        let threshold = p.target_tracking.as_ref().map_or(0.0, |t| t.target_value * 0.9);
        asg.alarm_fired(&p.arn, &signal(&alarm_of(p, "AlarmLow"), state, threshold, &[value]))
            .unwrap()
    };
    // CPU wants 6 × 10 / 50 → 2, but the network policy's Low alarm has not spoken yet.
    assert_eq!(low(&cpu, 10.0, "ALARM"), None);
    // Its Low alarm is OK: still no.
    assert_eq!(low(&net, 950.0, "OK"), None);
    assert_eq!(low(&cpu, 10.0, "ALARM"), None);
    assert_eq!(desired(&asg), 6);
    // Both in ALARM: the least scale-in of the two, max(ceil(1.2), ceil(6 × 500 / 1000)) = 3.
    assert!(low(&net, 500.0, "ALARM").is_some());
    assert_eq!(desired(&asg), 3);
    // What does nothing: a state other than ALARM, a disabled policy, AlarmNotification
    // suspended (the High alarm would scale 3 → 6 each time).
    let high = signal(&alarm_of(&cpu, "AlarmHigh"), "ALARM", 50.0, &[100.0]);
    let insufficient =
        AlarmSignal { state: "INSUFFICIENT_DATA".into(), values: Vec::new(), ..high.clone() };
    assert_eq!(asg.alarm_fired(&cpu.arn, &insufficient).unwrap(), None);
    asg.put_policy(PutPolicy {
        enabled: Some(false),
        ..tracking("cpu50", "ASGAverageCPUUtilization", 50.0, false)
    })
    .unwrap();
    assert_eq!(asg.alarm_fired(&cpu.arn, &high).unwrap(), None, "disabled");
    asg.put_policy(tracking("cpu50", "ASGAverageCPUUtilization", 50.0, false)).unwrap();
    asg.suspend("web", &["AlarmNotification".into()], true).unwrap();
    assert_eq!(asg.alarm_fired(&cpu.arn, &high).unwrap(), None, "suspended");
    asg.suspend("web", &["AlarmNotification".into()], false).unwrap();
    assert!(asg.alarm_fired(&cpu.arn, &high).unwrap().is_some());
    assert_eq!(desired(&asg), 6);
    let e = asg.alarm_fired("arn:aws:autoscaling:nope", &high).unwrap_err();
    assert!(e.to_string().contains("not found"), "{e}");
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn a_simple_policy_ignores_its_alarm_until_the_cooldown_ends() {
    let (asg, _fleet, _store) = service_with_fleet();
    asg.create_group(CreateGroup { min: 1, max: 10, desired: Some(2), ..group("web") }).unwrap();
    tokio::time::sleep(Duration::from_secs(30)).await; // 10:01:00
    let p = asg
        .put_policy(PutPolicy {
            cooldown: Some(120),
            ..simple("add-one", "ChangeInCapacity", 1, None)
        })
        .unwrap();
    let breach = signal("cpu-high", "ALARM", 70.0, &[85.0]);
    let cause = asg.alarm_fired(&p.arn, &breach).unwrap();
    expect!["At 2026-11-22T10:01:00Z a monitor alarm cpu-high in state ALARM triggered policy add-one changing the desired capacity from 2 to 3."].assert_eq(&cause.unwrap_or_default());
    assert_eq!(desired(&asg), 3);
    // Re-invoked each minute while in ALARM: ignored for 120 s after the instance is in service.
    tokio::time::sleep(Duration::from_secs(60)).await; // 10:02:00
    assert_eq!(asg.alarm_fired(&p.arn, &breach).unwrap(), None);
    tokio::time::sleep(Duration::from_secs(50)).await; // 10:02:50
    assert_eq!(asg.alarm_fired(&p.arn, &breach).unwrap(), None);
    tokio::time::sleep(Duration::from_secs(20)).await; // 10:03:10
    assert!(asg.alarm_fired(&p.arn, &breach).unwrap().is_some());
    assert_eq!(desired(&asg), 4);
    tokio::time::sleep(Duration::from_secs(10)).await;
    expect![[r#"
        2026-11-22T10:01:00.000Z Launching a new EC2 instance: i-00000000000000003
          At 2026-11-22T10:01:00Z a monitor alarm cpu-high in state ALARM triggered policy add-one changing the desired capacity from 2 to 3.  At 2026-11-22T10:01:00Z an instance was started in response to a difference between desired and actual capacity, increasing the capacity from 2 to 3.
        2026-11-22T10:03:10.000Z Launching a new EC2 instance: i-00000000000000004
          At 2026-11-22T10:03:10Z a monitor alarm cpu-high in state ALARM triggered policy add-one changing the desired capacity from 3 to 4.  At 2026-11-22T10:03:10Z an instance was started in response to a difference between desired and actual capacity, increasing the capacity from 3 to 4.
    "#]]
    .assert_eq(&alarm_activities(&asg));
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn a_step_policy_picks_its_step_and_does_not_stack_while_instances_warm() {
    let (asg, _fleet, _store) = service_with_fleet();
    asg.create_group(CreateGroup { min: 1, max: 40, desired: Some(10), ..group("web") }).unwrap();
    tokio::time::sleep(Duration::from_secs(30)).await; // 10:01:00
    let step = |lower, upper, adjustment| Step { lower, upper, adjustment };
    // The guide's example: threshold 50; [0,10) -> 0, [10,20) -> +10 %, [20,inf) -> +30 %.
    let out = asg
        .put_policy(PutPolicy {
            group: "web".into(),
            name: "cpu-steps".into(),
            policy_type: Some("StepScaling".into()),
            adjustment_type: Some("PercentChangeInCapacity".into()),
            estimated_instance_warmup: Some(180),
            steps: vec![
                step(Some(0.0), Some(10.0), 0),
                step(Some(10.0), Some(20.0), 10),
                step(Some(20.0), None, 30),
            ],
            ..PutPolicy::default()
        })
        .unwrap();
    let scale_in = asg
        .put_policy(PutPolicy {
            group: "web".into(),
            name: "cpu-low".into(),
            policy_type: Some("StepScaling".into()),
            adjustment_type: Some("ChangeInCapacity".into()),
            metric_aggregation_type: Some("Maximum".into()),
            steps: vec![step(None, Some(-10.0), -2), step(Some(-10.0), Some(0.0), -1)],
            ..PutPolicy::default()
        })
        .unwrap();
    let high = |values: &[f64]| {
        asg.alarm_fired(&out.arn, &signal("cpu-high", "ALARM", 50.0, values)).unwrap()
    };
    let low = |values: &[f64]| {
        let s = AlarmSignal {
            comparison: "LessThanThreshold".into(),
            ..signal("cpu-low", "ALARM", 30.0, values)
        };
        asg.alarm_fired(&scale_in.arn, &s).unwrap()
    };
    // The average of the datapoints (55, 60, 65) is 60: the +10 % step, 10 -> 11.
    assert!(high(&[55.0, 60.0, 65.0]).is_some());
    assert_eq!(desired(&asg), 11);
    tokio::time::sleep(Duration::from_secs(60)).await;
    // Again in the same step while the new instance warms: it counts, nothing is added.
    assert_eq!(high(&[62.0]), None);
    assert_eq!(desired(&asg), 11);
    // A higher step adds the difference: 30 % of the 10 settled = 3, so 13 (two more).
    assert!(high(&[75.0]).is_some());
    assert_eq!(desired(&asg), 13);
    // Scale-in waits while scale-out instances warm; the [0,10) step changes nothing.
    assert_eq!(low(&[18.0, 25.0]), None);
    assert_eq!(high(&[52.0]), None);
    tokio::time::sleep(Duration::from_secs(180)).await; // 10:05:00
    // Warmed for the scale-out policy (180 s), but the scale-in policy has no warm-up of its
    // own: DefaultCooldown (300 s) it is, and it still waits.
    assert_eq!(low(&[18.0, 25.0]), None);
    tokio::time::sleep(Duration::from_secs(130)).await; // 10:07:10
    // Warmed: the Maximum of (18, 25) is 25, 5 below 30: the -1 step.
    assert!(low(&[18.0, 25.0]).is_some());
    assert_eq!(desired(&asg), 12);
    // No cooldown for step policies: the next alarm is evaluated at once; 15 is the -2 step.
    assert!(low(&[15.0]).is_some());
    assert_eq!(desired(&asg), 10);
    assert_eq!(low(&[]), None, "no datapoints, no step");
}
