//! Health checking on tokio's paused time, with scripted health-check results: every state
//! transition and reason code, at the times AWS's intervals and thresholds give.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use elb::health::Probe;
use elb::model::*;
use elb::{Elb, Prober};
use parking_lot::Mutex;

/// What each target's checks answer, by target port ('+' ok, 'x' connection failure,
/// 't' timeout, '5' a 502).
type Script = Arc<Mutex<HashMap<u16, char>>>;

fn scripted(script: Script) -> Prober {
    Arc::new(move |addr: SocketAddr, _host, _hc| {
        let answer = script.lock().get(&addr.port()).copied().unwrap_or('+');
        Box::pin(async move {
            match answer {
                '+' => Probe::Ok,
                't' => std::future::pending().await,
                '5' => Probe::Mismatch(502),
                _ => Probe::Failed,
            }
        })
    })
}

mod common;

use common::TG;

struct Harness {
    elb: Arc<Elb>,
    script: Script,
    tg: String,
    _shared: common::Harness,
}

fn harness(enabled: bool) -> Harness {
    let script: Script = Arc::new(Mutex::new(HashMap::new()));
    let shared = common::harness_with(clock::Clock::new(1.0), scripted(script.clone()));
    let mut tg = common::target_group(enabled, &[("deregistration_delay.timeout_seconds", "30")]);
    tg.health_check.healthy = 3;
    tg.health_check.unhealthy = 2;
    shared.elb.put_target_group(tg).unwrap();
    Harness { elb: shared.elb.clone(), script, tg: TG.into(), _shared: shared }
}

impl Harness {
    fn register(&self, ports: &[u16]) {
        let regs: Vec<Registration> = ports
            .iter()
            .map(|p| Registration { id: "127.0.0.1".into(), port: Some(*p), zone: None })
            .collect();
        self.elb.register_targets(&self.tg, &regs).unwrap();
    }

    async fn listen(&self) {
        self.elb.insert_load_balancer(common::load_balancer()).unwrap();
        self.elb.add_listener(common::listener()).await.unwrap();
    }

    fn set(&self, port: u16, answer: char) {
        self.script.lock().insert(port, answer);
    }

    /// `port: state reason` per target.
    fn states(&self) -> String {
        let mut health = self.elb.target_health(&self.tg).unwrap();
        health.sort_by_key(|h| h.port);
        health
            .iter()
            .map(|h| {
                format!(
                    "{}: {} {}",
                    h.port,
                    h.health.state.as_str(),
                    h.health.description.as_deref().unwrap_or("-")
                )
            })
            .collect::<Vec<_>>()
            .join(" | ")
    }
}

async fn at(seconds: u64, start: tokio::time::Instant) {
    tokio::time::sleep_until(start + Duration::from_secs(seconds) + Duration::from_millis(100))
        .await;
}

#[tokio::test(start_paused = true)]
async fn targets_of_a_group_no_listener_uses_are_unused_and_not_checked() {
    let h = harness(true);
    h.register(&[9001]);
    tokio::time::sleep(Duration::from_secs(60)).await;
    assert_eq!(
        h.states(),
        "9001: unused Target group is not configured to receive traffic from the load balancer"
    );
    // A listener forwards to it: registration, then checks.
    h.listen().await;
    assert_eq!(h.states(), "9001: initial Target registration is in progress");
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(h.states(), "9001: healthy -", "a new target is healthy after one passed check");
}

#[tokio::test(start_paused = true)]
async fn every_transition_at_aws_pace() {
    let h = harness(true);
    h.listen().await;
    let start = tokio::time::Instant::now();
    h.set(9002, 'x');
    h.register(&[9001, 9002]);
    // t=0: the first checks.
    at(0, start).await;
    assert_eq!(h.states(), "9001: healthy - | 9002: initial Initial health checks in progress");
    // t=10: a second failure makes the new target unhealthy (UnhealthyThreshold 2).
    at(10, start).await;
    assert_eq!(h.states(), "9001: healthy - | 9002: unhealthy Health checks failed");
    // 9001 answers 502: one failure is not enough, two are.
    h.set(9001, '5');
    at(20, start).await;
    assert_eq!(h.states(), "9001: healthy - | 9002: unhealthy Health checks failed");
    at(30, start).await;
    assert_eq!(
        h.states(),
        "9001: unhealthy Health checks failed with these codes: [502] | 9002: unhealthy Health checks failed"
    );
    // Every target is unhealthy: requests go to all of them (fail-open).
    let (routable, fail_open) = h.elb.routable(&h.tg);
    assert_eq!((routable.len(), fail_open), (2, true));
    // 9002 times out now; the reason follows.
    h.set(9002, 't');
    at(45, start).await;
    assert_eq!(
        h.states(),
        "9001: unhealthy Health checks failed with these codes: [502] | 9002: unhealthy Request timed out"
    );
    // 9001 recovers: healthy after 3 passed checks (t=50, 60, 70), not before.
    h.set(9001, '+');
    at(60, start).await;
    assert!(h.states().starts_with("9001: unhealthy"), "{}", h.states());
    at(70, start).await;
    assert!(h.states().starts_with("9001: healthy"), "{}", h.states());
    assert_eq!(
        h.elb.routable(&h.tg),
        (vec!["127.0.0.1:9001".to_string()], false),
        "only the healthy one takes requests"
    );
    // Deregistration: draining for 30 s, taking no new requests, then gone.
    h.elb
        .deregister_targets(
            &h.tg,
            &[Registration { id: "127.0.0.1".into(), port: Some(9001), zone: None }],
        )
        .unwrap();
    assert!(
        h.states().starts_with("9001: draining Target deregistration is in progress"),
        "{}",
        h.states()
    );
    assert!(
        h.elb.routable(&h.tg).0.is_empty() || h.elb.routable(&h.tg).1,
        "a draining target takes no new requests"
    );
    tokio::time::sleep(Duration::from_secs(29)).await;
    assert!(h.states().starts_with("9001: draining"), "{}", h.states());
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(h.states(), "9002: unhealthy Request timed out");
}

#[tokio::test(start_paused = true)]
async fn disabled_checks_make_targets_unavailable_and_routable() {
    let h = harness(false);
    h.listen().await;
    h.register(&[9001]);
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(h.states(), "9001: unavailable Health checks are disabled");
    assert_eq!(h.elb.routable(&h.tg), (vec!["127.0.0.1:9001".to_string()], false));
}
