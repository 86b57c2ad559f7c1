//! ExecutePolicy against the fake fleet on paused time: the capacity each adjustment type asks
//! for (clamped to the group's bounds), the step a metric value chooses, and a simple policy's
//! cooldown (its own, else the group's DefaultCooldown), honoured only with HonorCooldown.

use std::time::Duration;

use autoscaling::model::Step;
use autoscaling::request::{ExecutePolicy, PutPolicy};

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
