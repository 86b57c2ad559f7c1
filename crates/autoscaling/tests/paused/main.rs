//! Auto Scaling on tokio's paused time, against a fake fleet (`fake`): scheduled actions fire
//! on their cron recurrence, lifecycle hooks validate, and the reconciler (`reconciler`)
//! replaces failed instances, balances zones and rolls updates as AWS does.

use std::sync::Arc;
use std::time::Duration;

use autoscaling::AutoScaling;
use autoscaling::model::{Launch, ScheduleRecord};
use autoscaling::request::{CreateGroup, HookSpec};
use clock::Clock;
use store::Store;

mod fake;
mod policies;
mod reconciler;

/// A service over a fake fleet; AWS time starts at 10:00:30 UTC.
fn service_with_fleet() -> (Arc<AutoScaling>, Arc<fake::Fleet>, Arc<Store>) {
    let store = Arc::new(Store::in_memory().unwrap());
    let clock = Clock::starting_at(1.0, "2026-11-22T10:00:30Z".parse().unwrap());
    let fleet = fake::Fleet::new(clock.clone());
    let account = aws_ids::Account::default();
    let asg = AutoScaling::new(store.clone(), clock, fleet.clone(), fleet.clone(), account);
    (asg, fleet, store)
}

fn group(name: &str) -> CreateGroup {
    CreateGroup {
        name: name.into(),
        min: 0,
        max: 10,
        launch: Some(Launch::Template { id: fake::TEMPLATE.into(), version: None }),
        zones: vec!["us-east-1a".into(), "us-east-1b".into()],
        ..CreateGroup::default()
    }
}

#[tokio::test(start_paused = true)]
async fn a_cron_recurrence_fires_on_schedule_twice() {
    let (asg, _fleet, _store) = service_with_fleet();
    // Launches are suspended: only the sizes matter here.
    asg.create_group(group("web")).unwrap();
    asg.suspend("web", &["Launch".into()], true).unwrap();
    asg.put_schedule(ScheduleRecord {
        group: "web".into(),
        name: "every-five-minutes".into(),
        recurrence: Some("*/5 * * * *".into()),
        start: None,
        end: Some("2026-11-22T10:12:00Z".into()),
        time_zone: None,
        min: Some(1),
        max: None,
        desired: Some(3),
    })
    .unwrap();
    let fired = |asg: &AutoScaling| {
        asg.activities("web")
            .unwrap()
            .iter()
            .filter(|a| a.description.contains("every-five-minutes"))
            .count()
    };
    tokio::time::sleep(Duration::from_secs(4 * 60)).await; // 10:04:30
    assert_eq!(fired(&asg), 0, "not before 10:05");
    assert_eq!(asg.group("web").unwrap().unwrap().desired, 0);
    tokio::time::sleep(Duration::from_secs(60)).await; // 10:05:30
    assert_eq!(fired(&asg), 1);
    let g = asg.group("web").unwrap().unwrap();
    assert_eq!((g.min, g.desired), (1, 3));
    asg.set_sizes("web", Some(0), None, Some(0)).unwrap();
    tokio::time::sleep(Duration::from_secs(5 * 60)).await; // 10:10:30
    assert_eq!(fired(&asg), 2, "and again at 10:10");
    assert_eq!(asg.group("web").unwrap().unwrap().desired, 3);
    tokio::time::sleep(Duration::from_secs(10 * 60)).await;
    assert_eq!(fired(&asg), 2, "not after its EndTime");
    assert!(asg.schedules_of("web").unwrap().is_empty(), "an ended action is removed");
}

#[tokio::test(start_paused = true)]
async fn lifecycle_hooks_validate_and_unknown_actions_are_refused() {
    let (asg, _fleet, _store) = service_with_fleet();
    asg.create_group(group("web")).unwrap();
    let hook = |timeout: u64, transition: &str| HookSpec {
        name: "drain".into(),
        transition: transition.into(),
        heartbeat_timeout: Some(timeout),
        default_result: Some("CONTINUE".into()),
        ..HookSpec::default()
    };
    assert!(
        asg.put_hook("web", hook(10, "autoscaling:EC2_INSTANCE_LAUNCHING"))
            .unwrap_err()
            .to_string()
            .contains("between 30 and 7200")
    );
    assert!(asg.put_hook("web", hook(60, "autoscaling:EC2_INSTANCE_REBOOTING")).is_err());
    asg.put_hook("web", hook(60, "autoscaling:EC2_INSTANCE_TERMINATING")).unwrap();
    let e = asg.complete_lifecycle_action("web", "drain", "i-0123", "CONTINUE").unwrap_err();
    assert!(e.to_string().contains("No active Lifecycle Action"), "{e}");
    assert!(asg.complete_lifecycle_action("web", "drain", "i-0123", "MAYBE").is_err());
}

#[tokio::test(start_paused = true)]
async fn sizes_are_validated_as_aws_does() {
    let (asg, _fleet, _store) = service_with_fleet();
    let mut g = group("web");
    g.desired = Some(11);
    let e = asg.create_group(g).unwrap_err();
    assert_eq!(
        e.to_string(),
        "Desired capacity:11 must be between the specified min size:0 and max size:10"
    );
    asg.create_group(group("web")).unwrap();
    asg.suspend("web", &["Launch".into()], true).unwrap();
    assert_eq!(
        asg.set_desired("web", 12).unwrap_err().to_string(),
        "New SetDesiredCapacity value 12 is above max value 10 for the AutoScalingGroup."
    );
    let mut g = group("other");
    g.launch = Some(Launch::Template { id: "lt-missing".into(), version: None });
    assert!(asg.create_group(g).unwrap_err().to_string().contains("does not exist"));
}
