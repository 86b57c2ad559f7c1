//! What EC2 does when its store fails: the call fails with the store's error, nothing is
//! announced, and no process starts for an instance the store does not know.

use std::sync::Arc;

use store::{Faults, Store};

use super::*;

fn ec2(dir: &std::path::Path) -> (Arc<Ec2>, Arc<Store>) {
    let store = Arc::new(Store::in_memory().unwrap());
    let config = Ec2Config {
        exe: "/nonexistent/cumulo".into(),
        ..Ec2Config::standalone(Account::default(), dir.to_path_buf())
    };
    (Ec2::new(store.clone(), Clock::real(), config).unwrap(), store)
}

/// An instance that was stopped (its record only: no process).
fn stopped(ec2: &Ec2, id: &str) -> InstanceRecord {
    let record: InstanceRecord = serde_json::from_value(serde_json::json!({
        "id": id, "state": "stopped", "subnetId": "subnet-default00000000", "vpcId": DEFAULT_VPC,
        "zone": "us-east-1a", "privateIp": "172.31.0.4", "imageId": "ami-12345678",
        "instanceType": "t3.micro", "launch": {"kind": "properties"}, "ports": [],
        "launchTime": "2026-12-01T00:00:00.000Z", "dir": "/nonexistent",
    }))
    .unwrap();
    ec2.save(&record).unwrap();
    record
}

#[tokio::test]
async fn a_launch_the_store_refuses_fails_and_starts_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (ec2, store) = ec2(dir.path());
    let mut changes = ec2.subscribe();
    store.inject(Faults::Writes);
    let request = LaunchRequest {
        spec: LaunchSpec::Properties(serde_json::json!({"ImageId": "ami-12345678"})),
        subnet_id: None,
        zone: None,
        ports: Vec::new(),
        tags: Default::default(),
        override_key: None,
        group: None,
    };
    let e = ec2.launch(request).await.unwrap_err();
    assert!(matches!(e, Ec2Error::Store(_)), "{e}");
    store.inject(Faults::None);
    assert!(ec2.instances().unwrap().is_empty());
    assert!(ec2.running.lock().is_empty(), "no machine runs");
    assert!(changes.try_recv().is_err(), "nothing was announced");
}

#[tokio::test]
async fn a_termination_the_store_refuses_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (ec2, store) = ec2(dir.path());
    stopped(&ec2, "i-0123456789abcdef0");
    let mut changes = ec2.subscribe();
    store.inject(Faults::Writes);
    let e = ec2.terminate("i-0123456789abcdef0").await.unwrap_err();
    assert!(matches!(e, Ec2Error::Store(_)), "{e}");
    store.inject(Faults::None);
    assert_eq!(ec2.instance("i-0123456789abcdef0").unwrap().unwrap().state, InstanceState::Stopped);
    assert!(changes.try_recv().is_err(), "nothing was announced");
    ec2.terminate("i-0123456789abcdef0").await.unwrap();
    assert_eq!(
        ec2.instance("i-0123456789abcdef0").unwrap().unwrap().state,
        InstanceState::Terminated
    );
    assert_eq!(changes.try_recv().unwrap().state, InstanceState::Terminated);
}
