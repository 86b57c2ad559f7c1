//! What the integration tests share: an `Elb` on a store and clock of the test's choosing,
//! and the records of one load balancer, listener and target group.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::sync::Arc;

use elb::Elb;
use elb::health::Probe;
use elb::model::*;
use store::Store;

pub const TG: &str =
    "arn:aws:elasticloadbalancing:us-east-1:000000000000:targetgroup/web/0123456789abcdef";
pub const LB: &str =
    "arn:aws:elasticloadbalancing:us-east-1:000000000000:loadbalancer/app/web/0123456789abcdef";

pub struct Harness {
    pub elb: Arc<Elb>,
    pub store: Arc<Store>,
    _dir: tempfile::TempDir,
}

/// An `Elb` on an in-memory store whose health checks always pass.
pub fn harness(clock: clock::Clock) -> Harness {
    harness_with(clock, Arc::new(|_, _, _| Box::pin(async { Probe::Ok })))
}

/// An `Elb` on an in-memory store whose health checks `prober` answers.
pub fn harness_with(clock: clock::Clock, prober: elb::Prober) -> Harness {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(Store::in_memory().unwrap());
    let account = aws_ids::Account::default();
    let config = ec2::Ec2Config::standalone(account.clone(), dir.path().to_path_buf());
    let ec2 = ec2::Ec2::new(store.clone(), clock.clone(), config).unwrap();
    let ca = Arc::new(elb::Ca::load_or_create(None).unwrap());
    let elb = Elb::with_prober(store.clone(), clock, ec2, account, ca, prober);
    Harness { elb, store, _dir: dir }
}

/// An `ip` target group on port 80 with these attributes.
pub fn target_group(health_checks: bool, attributes: &[(&str, &str)]) -> TargetGroupRecord {
    TargetGroupRecord {
        arn: TG.into(),
        name: "web".into(),
        full_name: "targetgroup/web/0123456789abcdef".into(),
        protocol: "HTTP".into(),
        port: 80,
        target_type: "ip".into(),
        protocol_version: "HTTP1".into(),
        vpc_id: None,
        health_check: HealthCheck {
            enabled: health_checks,
            interval: 10,
            timeout: 5,
            ..HealthCheck::default()
        },
        attributes: attributes.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
        targets: Vec::new(),
        tags: Vec::new(),
    }
}

pub fn load_balancer() -> LoadBalancerRecord {
    LoadBalancerRecord {
        arn: LB.into(),
        name: "web".into(),
        full_name: "app/web/0123456789abcdef".into(),
        kind: Kind::Application,
        dns_name: "web-1.us-east-1.elb.localhost".into(),
        scheme: "internet-facing".into(),
        subnets: Vec::new(),
        zones: Vec::new(),
        security_groups: Vec::new(),
        attributes: BTreeMap::new(),
        ip: std::net::Ipv4Addr::LOCALHOST,
        created: String::new(),
        ip_address_type: "ipv4".into(),
        tags: Vec::new(),
        classic: None,
    }
}

/// A listener on any free port forwarding to the target group.
pub fn listener() -> ListenerRecord {
    ListenerRecord {
        arn: format!("{LB}/listener"),
        lb_arn: LB.into(),
        port: 0,
        protocol: "HTTP".into(),
        certificates: Vec::new(),
        default_actions: vec![serde_json::json!({"Type": "forward", "TargetGroupArn": TG})],
        bound_port: 0,
        ssl_policy: None,
        tags: Vec::new(),
    }
}

pub fn registration(port: u16) -> Registration {
    Registration { id: "127.0.0.1".into(), port: Some(port), zone: None }
}
