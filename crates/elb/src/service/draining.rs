//! Draining and slow start: a deregistered target takes no new requests and keeps its open
//! ones for the deregistration delay, then they are cut; a target that becomes healthy among
//! others ramps up its share of requests over the slow-start duration.

use std::collections::HashSet;
use std::time::Duration;

use clock::Clock;
use tokio_util::task::AbortOnDropHandle;

use super::publish::publish_group;
use super::{Elb, ElbError, HealthChange, Tgt};
use crate::health::{Health, State};
use crate::model::*;

impl Elb {
    /// Deregisters targets: they take no new requests, drain for the deregistration delay,
    /// then go away.
    pub fn deregister_targets(
        &self,
        tg_arn: &str,
        targets: &[Registration],
    ) -> Result<(), ElbError> {
        let mut record = self.existing_group(tg_arn)?;
        let keys: HashSet<(String, u16)> =
            targets.iter().map(|t| (t.id.clone(), t.port.unwrap_or(record.port))).collect();
        let registered: HashSet<(String, u16)> =
            record.targets.iter().map(|r| (r.id.clone(), r.port.unwrap_or(record.port))).collect();
        for (id, port) in &keys {
            if !registered.contains(&(id.clone(), *port)) {
                return Err(ElbError::api(
                    "InvalidTarget",
                    format!("The following targets are not registered in target group: '{id}'"),
                ));
            }
        }
        record.targets.retain(|r| !keys.contains(&(r.id.clone(), r.port.unwrap_or(record.port))));
        self.store.put(TARGET_GROUPS, &record.arn, &record)?;
        let delay =
            Duration::from_secs(record.seconds("deregistration_delay.timeout_seconds", 300));
        let mut inner = self.inner.lock();
        let Some(group) = inner.groups.get_mut(tg_arn) else { return Ok(()) };
        for t in group.targets.iter_mut().filter(|t| keys.contains(&(t.id.clone(), t.port))) {
            let was_in_use = group.in_use && t.health.state != State::Unused;
            t.prober = None;
            t.ramp = None;
            if !was_in_use || delay.is_zero() {
                t.health = Health::not_registered();
                t.plane.cut.notify_waiters();
                continue;
            }
            t.health = Health::draining();
            let _ = self.changes.send(HealthChange {
                target_group: tg_arn.into(),
                id: t.id.clone(),
                port: t.port,
                state: State::Draining,
            });
            let me = self.me.clone();
            let clock = self.clock.clone();
            let (arn, id, port) = (tg_arn.to_string(), t.id.clone(), t.port);
            t.drain = Some(AbortOnDropHandle::new(tokio::spawn(async move {
                clock.sleep(delay).await;
                if let Some(elb) = me.upgrade() {
                    elb.finish_drain(&arn, &id, port);
                }
            })));
        }
        group.targets.retain(|t| {
            t.health.state != State::Unused
                || t.health.reason.as_deref() != Some("Target.NotRegistered")
        });
        publish_group(group);
        drop(inner);
        self.drained.notify_waiters();
        Ok(())
    }

    fn finish_drain(&self, tg_arn: &str, id: &str, port: u16) {
        let mut inner = self.inner.lock();
        if let Some(group) = inner.groups.get_mut(tg_arn) {
            if let Some(pos) = group
                .targets
                .iter()
                .position(|t| t.id == id && t.port == port && t.health.state == State::Draining)
            {
                let t = group.targets.remove(pos);
                // Requests still open are cut.
                t.plane.cut.notify_waiters();
            }
            publish_group(group);
        }
        drop(inner);
        let _ = self.changes.send(HealthChange {
            target_group: tg_arn.into(),
            id: id.into(),
            port,
            state: State::Unused,
        });
        self.drained.notify_waiters();
    }

    /// Waits until no target `id` is draining in any group.
    pub async fn wait_drained(&self, id: &str) {
        loop {
            let notified = self.drained.notified();
            let draining =
                self.inner.lock().groups.values().any(|g| {
                    g.targets.iter().any(|t| t.id == id && t.health.state == State::Draining)
                });
            if !draining {
                return;
            }
            notified.await;
        }
    }
}

/// Starts or stops a target's slow start after its health changed to `state`: a target
/// becoming healthy while others already take their full share ramps up over `duration` (an
/// AWS duration, on the clock); a target no longer healthy stops ramping and is back at full
/// weight.
pub(super) fn slow_start(
    clock: &Clock,
    t: &mut Tgt,
    state: State,
    duration: Duration,
    others_full: bool,
) {
    if state == State::Healthy && !duration.is_zero() && others_full {
        t.plane.weight.store(0, std::sync::atomic::Ordering::Relaxed);
        let plane = t.plane.clone();
        let clock = clock.clone();
        t.ramp = Some(AbortOnDropHandle::new(tokio::spawn(async move {
            // A linear ramp in 1/20 steps over the slow-start duration.
            for step in 1..=20u32 {
                clock.sleep(duration / 20).await;
                plane.weight.store(step * 50, std::sync::atomic::Ordering::Relaxed);
            }
        })));
    } else if state != State::Healthy {
        t.ramp = None;
        t.plane.weight.store(1000, std::sync::atomic::Ordering::Relaxed);
    }
}
