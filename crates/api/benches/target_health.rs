//! DescribeTargetHealth and RegisterTargets on one `ip` target group of N targets (default
//! 20,000), through the API handler: each should grow linearly with N.
//!
//!     cargo bench -p api --bench target_health [-- N]

use std::sync::Arc;
use std::time::Instant;

use api::query::QueryInput;
use elb::model::*;

fn q(pairs: Vec<(String, String)>) -> QueryInput {
    QueryInput::from_pairs(pairs)
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let n: usize = std::env::args().skip(1).find_map(|a| a.parse().ok()).unwrap_or(20_000);
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(store::Store::in_memory().unwrap());
    let account = aws_ids::Account::default();
    let clock = clock::Clock::new(1.0);
    let ec2 = ec2::Ec2::new(
        store.clone(),
        clock.clone(),
        ec2::Ec2Config::standalone(account.clone(), dir.path().to_path_buf()),
    )
    .unwrap();
    let ca = Arc::new(elb::Ca::load_or_create(None).unwrap());
    let elb = elb::Elb::new(store, clock, ec2, account, ca);
    let arn =
        "arn:aws:elasticloadbalancing:us-east-1:000000000000:targetgroup/big/0123456789abcdef";
    elb.put_target_group(TargetGroupRecord {
        arn: arn.into(),
        name: "big".into(),
        full_name: "targetgroup/big/0123456789abcdef".into(),
        protocol: "HTTP".into(),
        port: 80,
        target_type: "ip".into(),
        protocol_version: "HTTP1".into(),
        vpc_id: None,
        health_check: HealthCheck::default(),
        attributes: Default::default(),
        targets: Vec::new(),
        tags: Vec::new(),
    })
    .unwrap();
    let ip = |i: usize| format!("10.{}.{}.{}", i >> 16 & 255, i >> 8 & 255, i & 255);
    let mut targets = vec![
        ("Action".to_string(), "RegisterTargets".to_string()),
        ("TargetGroupArn".to_string(), arn.to_string()),
    ];
    for i in 0..n {
        targets.push((format!("Targets.member.{}.Id", i + 1), ip(i)));
        targets.push((format!("Targets.member.{}.Port", i + 1), "8080".into()));
    }
    let started = Instant::now();
    api::elbv2::handle(&elb, "RegisterTargets", &q(targets.clone()), "r").await.unwrap();
    println!("RegisterTargets of {n} targets: {:?}", started.elapsed());

    let all = vec![
        ("Action".to_string(), "DescribeTargetHealth".to_string()),
        ("TargetGroupArn".to_string(), arn.to_string()),
    ];
    let started = Instant::now();
    let body = api::elbv2::handle(&elb, "DescribeTargetHealth", &q(all), "r").await.unwrap();
    println!(
        "DescribeTargetHealth, every target ({n}, {} bytes): {:?}",
        body.len(),
        started.elapsed()
    );
    let mut asked = targets;
    asked[0].1 = "DescribeTargetHealth".into();
    let started = Instant::now();
    let body = api::elbv2::handle(&elb, "DescribeTargetHealth", &q(asked), "r").await.unwrap();
    println!(
        "DescribeTargetHealth, each of the {n} targets named: {} bytes, {:?}",
        body.len(),
        started.elapsed()
    );
}
