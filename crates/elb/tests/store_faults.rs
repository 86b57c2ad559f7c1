//! When the store fails: a failed write is an error and changes nothing that anyone sees (no
//! snapshot published, no health change announced); a failed read is an error, never "none"
//! or "not found".

mod common;

use std::time::Duration;

use common::*;
use elb::ElbError;
use store::Faults;
use tokio::sync::broadcast::error::TryRecvError;

fn is_store_error(e: &ElbError) -> bool {
    matches!(e, ElbError::Store(_)) && e.code() == "InternalFailure"
}

#[tokio::test(start_paused = true)]
async fn a_target_group_that_cannot_be_stored_is_not_created() {
    let h = harness(clock::Clock::new(1.0));
    let mut changes = h.elb.subscribe();
    h.store.inject(Faults::Writes);
    let e = h.elb.put_target_group(target_group(true, &[])).unwrap_err();
    assert!(is_store_error(&e), "{e:?}");
    h.store.inject(Faults::None);
    assert_eq!(h.elb.target_group(TG).unwrap(), None, "nothing stored");
    assert_eq!(h.elb.routable(TG), (Vec::new(), false), "nothing published");
    assert_eq!(h.elb.target_health(TG).unwrap_err().code(), "TargetGroupNotFound");
    assert!(matches!(changes.try_recv(), Err(TryRecvError::Empty)));
}

#[tokio::test(start_paused = true)]
async fn registrations_that_cannot_be_stored_change_nothing() {
    let h = harness(clock::Clock::new(1.0));
    h.elb.put_target_group(target_group(true, &[])).unwrap();
    h.elb.insert_load_balancer(load_balancer()).unwrap();
    h.elb.add_listener(listener()).await.unwrap();
    h.elb.register_targets(TG, &[registration(9001)]).unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let routable = (vec!["127.0.0.1:9001".to_string()], false);
    assert_eq!(h.elb.routable(TG), routable, "healthy after its first check");
    let mut changes = h.elb.subscribe();

    h.store.inject(Faults::Writes);
    let e = h.elb.register_targets(TG, &[registration(9002)]).unwrap_err();
    assert!(is_store_error(&e), "{e:?}");
    let e = h.elb.deregister_targets(TG, &[registration(9001)]).unwrap_err();
    assert!(is_store_error(&e), "{e:?}");
    let sticky = target_group(true, &[("stickiness.enabled", "true")]);
    let e = h.elb.put_target_group(sticky).unwrap_err();
    assert!(is_store_error(&e), "{e:?}");
    h.store.inject(Faults::None);

    // Long past the deregistration delay and many health checks: nothing happened.
    tokio::time::sleep(Duration::from_secs(600)).await;
    assert_eq!(h.elb.routable(TG), routable);
    let health = h.elb.target_health(TG).unwrap();
    assert_eq!(health.len(), 1, "{health:?}");
    assert_eq!((health[0].port, health[0].health.state), (9001, elb::State::Healthy));
    let stored = h.elb.target_group(TG).unwrap().unwrap();
    assert_eq!(stored.targets, [registration(9001)]);
    assert!(stored.attributes.is_empty(), "the attributes were not changed");
    assert!(matches!(changes.try_recv(), Err(TryRecvError::Empty)), "no change announced");
}

#[tokio::test(start_paused = true)]
async fn a_failed_read_is_an_error_not_a_missing_record() {
    let h = harness(clock::Clock::new(1.0));
    h.elb.put_target_group(target_group(true, &[])).unwrap();
    h.elb.insert_load_balancer(load_balancer()).unwrap();
    h.store.inject(Faults::All);
    assert!(h.elb.target_group(TG).is_err_and(|e| is_store_error(&e)));
    assert!(h.elb.target_groups().is_err_and(|e| is_store_error(&e)));
    assert!(h.elb.load_balancer(LB).is_err_and(|e| is_store_error(&e)));
    assert!(h.elb.load_balancers().is_err_and(|e| is_store_error(&e)));
    assert!(h.elb.listener(&listener().arn).is_err_and(|e| is_store_error(&e)));
    assert!(h.elb.listeners().is_err_and(|e| is_store_error(&e)));
    assert!(h.elb.rules().is_err_and(|e| is_store_error(&e)));
    assert!(h.elb.load_balancers_of(TG).is_err_and(|e| is_store_error(&e)));
    assert!(h.elb.endpoints().is_err_and(|e| is_store_error(&e)));
    assert!(h.elb.metrics().is_err_and(|e| is_store_error(&e)));
    assert!(h.elb.target_health(TG).is_err_and(|e| is_store_error(&e)), "not TargetGroupNotFound");
    let e = h.elb.register_targets(TG, &[registration(9001)]).unwrap_err();
    assert!(is_store_error(&e), "{e:?}");
    let e = h.elb.add_listener(listener()).await.unwrap_err();
    assert!(is_store_error(&e), "not LoadBalancerNotFound: {e:?}");
}
