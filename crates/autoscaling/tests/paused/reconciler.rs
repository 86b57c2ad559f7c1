//! The reconciler against the fake fleet, on paused time: what a group does when an instance
//! dies, when a zone cannot take launches, and during a rolling update.

use std::time::Duration;

use autoscaling::model::Lifecycle;
use autoscaling::request::CreateGroup;
use expect_test::expect;
use store::Faults;

use super::*;

/// A group of `desired` over us-east-1a and us-east-1b behind the fake target group, with
/// ELB health checks.
fn web(desired: u32, max: u32) -> CreateGroup {
    CreateGroup {
        min: 1,
        max,
        desired: Some(desired),
        subnets: vec!["subnet-a".into(), "subnet-b".into()],
        zones: Vec::new(),
        target_groups: vec![fake::TARGET_GROUP.into()],
        health_check_type: Some("ELB".into()),
        ..group("web")
    }
}

fn in_service(asg: &AutoScaling) -> Vec<(String, String)> {
    let g = asg.group("web").unwrap().unwrap();
    g.instances
        .iter()
        .filter(|m| m.lifecycle == Lifecycle::InService)
        .map(|m| (m.id.clone(), m.zone.clone()))
        .collect()
}

/// Lets AWS time pass (the reconciler and the fleet run meanwhile).
async fn pass(aws: Duration) {
    tokio::time::sleep(aws).await;
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn a_killed_instance_is_replaced_in_its_zone() {
    let (asg, fleet, _store) = service_with_fleet();
    asg.create_group(web(2, 4)).unwrap();
    pass(Duration::from_secs(90)).await;
    expect![[r#"
        10:00:30 i-00000000000000001 launched in us-east-1a
        10:00:30 i-00000000000000002 launched in us-east-1b
        10:00:30 target i-00000000000000001 initial
        10:00:30 target i-00000000000000002 initial
        10:01:30 target i-00000000000000001 healthy
        10:01:30 target i-00000000000000002 healthy
    "#]]
    .assert_eq(&fleet.take_timeline());
    fleet.kill("i-00000000000000001");
    pass(Duration::from_secs(120)).await;
    expect![[r#"
        10:02:00 i-00000000000000001 stopped
        10:02:00 target i-00000000000000001 unhealthy
        10:02:00 i-00000000000000003 launched in us-east-1a
        10:02:00 target i-00000000000000001 draining
        10:02:00 target i-00000000000000003 initial
        10:02:30 target i-00000000000000001 removed
        10:02:30 i-00000000000000001 terminated
        10:03:00 target i-00000000000000003 healthy
    "#]]
    .assert_eq(&fleet.take_timeline());
    assert_eq!(
        in_service(&asg),
        [
            ("i-00000000000000002".to_string(), "us-east-1b".to_string()),
            ("i-00000000000000003".to_string(), "us-east-1a".to_string())
        ]
    );
    let activities = asg.activities("web").unwrap();
    let termination = activities
        .iter()
        .find(|a| a.description == "Terminating EC2 instance: i-00000000000000001")
        .unwrap();
    expect!["At 2026-11-22T10:02:00Z an instance was taken out of service in response to an EC2 health check indicating it has been terminated or stopped."]
        .assert_eq(&termination.cause);
    assert_eq!(termination.status, "Successful");
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn a_zone_that_cannot_launch_is_avoided_then_rebalanced_once_it_returns() {
    let (asg, fleet, _store) = service_with_fleet();
    fleet.fail_zone("us-east-1b");
    asg.create_group(web(4, 6)).unwrap();
    pass(Duration::from_secs(90)).await;
    assert_eq!(fleet.running_per_zone(), [("us-east-1a".to_string(), 4)].into());
    let failed =
        asg.activities("web").unwrap().into_iter().filter(|a| a.status == "Failed").count();
    assert!(failed >= 1, "the failed launch is an activity");
    fleet.restore_zone("us-east-1b");
    fleet.take_timeline();
    fleet.watch_healthy();
    // The zone is avoided for a minute after its failure, then rebalancing launches there
    // first and terminates from the fuller zone.
    pass(Duration::from_secs(600)).await;
    assert_eq!(
        fleet.running_per_zone(),
        [("us-east-1a".to_string(), 2), ("us-east-1b".to_string(), 2)].into()
    );
    assert_eq!(in_service(&asg).len(), 4);
    let timeline = fleet.take_timeline();
    assert_eq!(
        fleet.fewest_healthy(),
        Some(4),
        "rebalancing launches before it terminates:\n{timeline}"
    );
    let causes: Vec<String> = asg
        .activities("web")
        .unwrap()
        .into_iter()
        .filter(|a| a.cause.contains("rebalance") && a.status == "Successful")
        .map(|a| a.description)
        .collect();
    assert_eq!(causes.len(), 2, "two launches to rebalance: {causes:?}");
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn a_rolling_update_replaces_every_instance_keeping_min_in_service_healthy() {
    let (asg, fleet, _store) = service_with_fleet();
    asg.create_group(web(2, 3)).unwrap();
    pass(Duration::from_secs(90)).await;
    assert_eq!(fleet.healthy_targets().len(), 2);
    let old: Vec<String> = in_service(&asg).into_iter().map(|(id, _)| id).collect();
    fleet.set_template_versions(2, 2);
    fleet.take_timeline();
    fleet.watch_healthy();
    asg.rolling_update("web", 1, 2, Duration::ZERO).await.unwrap();
    pass(Duration::from_secs(60)).await;
    assert_eq!(fleet.fewest_healthy(), Some(2), "never fewer than MinInstancesInService healthy");
    let g = asg.group("web").unwrap().unwrap();
    assert_eq!(g.desired, 2, "the surge ended with the update");
    assert!(g.instances.iter().all(|m| m.launched_from == format!("{}:2", fake::TEMPLATE)));
    assert!(g.instances.iter().all(|m| !old.contains(&m.id)));
    assert_eq!(
        fleet.running_per_zone(),
        [("us-east-1a".to_string(), 1), ("us-east-1b".to_string(), 1)].into()
    );
    // One at a time: launch, healthy, then the old one drains and goes.
    expect![[r#"
        10:02:00 i-00000000000000003 launched in us-east-1a
        10:02:00 target i-00000000000000003 initial
        10:03:00 target i-00000000000000003 healthy
        10:03:00 target i-00000000000000001 draining
        10:03:00 i-00000000000000004 launched in us-east-1b
        10:03:00 target i-00000000000000004 initial
        10:03:30 target i-00000000000000001 removed
        10:03:30 i-00000000000000001 terminated
        10:04:00 target i-00000000000000004 healthy
        10:04:00 target i-00000000000000002 draining
        10:04:30 target i-00000000000000002 removed
        10:04:30 i-00000000000000002 terminated
    "#]]
    .assert_eq(&fleet.take_timeline());
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn a_store_that_fails_stops_the_pass_and_nothing_runs_unrecorded() {
    let (asg, fleet, store) = service_with_fleet();
    asg.create_group(web(2, 4)).unwrap();
    pass(Duration::from_secs(90)).await;
    fleet.take_timeline();
    store.inject(Faults::Writes);
    let e = asg.set_desired("web", 3).unwrap_err();
    assert_eq!(e.code(), "InternalFailure");
    assert_eq!(asg.group("web").unwrap().unwrap().desired, 2, "nothing changed");
    store.inject(Faults::All);
    assert_eq!(asg.group("web").unwrap_err().code(), "InternalFailure", "not a missing group");
    fleet.kill("i-00000000000000001");
    pass(Duration::from_secs(120)).await;
    // The reconciler cannot record a termination or a launch: it launches nothing.
    assert!(!fleet.take_timeline().contains("launched"));
    store.inject(Faults::None);
    pass(Duration::from_secs(120)).await;
    assert_eq!(in_service(&asg).len(), 2, "the group recovers once the store does");
    assert!(fleet.take_timeline().contains("i-00000000000000003 launched in us-east-1a"));
}

/// Records what a group's notifications publish (subject and the message's event, instance
/// and status).
#[derive(Default)]
struct Topic(std::sync::Mutex<Vec<String>>);

impl autoscaling::alarms::Notifications for Topic {
    fn notify(&self, topic: &str, subject: &str, message: &str) -> Result<(), String> {
        let m: serde_json::Value = serde_json::from_str(message).map_err(|e| e.to_string())?;
        self.0.lock().unwrap().push(format!(
            "{topic} | {subject} | {} {} {}",
            m["Event"].as_str().unwrap_or_default(),
            m["EC2InstanceId"].as_str().map_or("-", |_| "i-…"),
            m["Details"]["Availability Zone"].as_str().unwrap_or("-"),
        ));
        Ok(())
    }
}

#[tokio::test(start_paused = true)]
async fn launches_and_terminations_notify_the_topics_that_asked() {
    let (asg, fleet, _store) = service_with_fleet();
    let topic = Arc::new(Topic::default());
    asg.set_notifications(topic.clone());
    asg.create_group(CreateGroup { desired: Some(2), ..group("web") }).unwrap();
    asg.put_notification(
        "web",
        "arn:aws:sns:us-east-1:000000000000:ops",
        &["autoscaling:EC2_INSTANCE_LAUNCH".into(), "autoscaling:EC2_INSTANCE_TERMINATE".into()],
    )
    .unwrap();
    pass(Duration::from_secs(90)).await;
    // A killed instance is terminated and replaced: both are told.
    fleet.kill("i-00000000000000001");
    pass(Duration::from_secs(120)).await;
    let mut lines = topic.0.lock().unwrap().clone();
    lines.sort();
    expect![[r#"
        arn:aws:sns:us-east-1:000000000000:ops | Auto Scaling: launch for group "web" | autoscaling:EC2_INSTANCE_LAUNCH i-… us-east-1a
        arn:aws:sns:us-east-1:000000000000:ops | Auto Scaling: launch for group "web" | autoscaling:EC2_INSTANCE_LAUNCH i-… us-east-1a
        arn:aws:sns:us-east-1:000000000000:ops | Auto Scaling: launch for group "web" | autoscaling:EC2_INSTANCE_LAUNCH i-… us-east-1b
        arn:aws:sns:us-east-1:000000000000:ops | Auto Scaling: termination for group "web" | autoscaling:EC2_INSTANCE_TERMINATE i-… us-east-1a
        arn:aws:sns:us-east-1:000000000000:ops | Auto Scaling: test notification for group "web" | autoscaling:TEST_NOTIFICATION - -"#]].assert_eq(&lines.join("\n"));
}
