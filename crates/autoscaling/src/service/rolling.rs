//! The replacement loop shared by CloudFormation rolling updates and instance refreshes.

use std::time::Duration;

use clock::Signal;

use super::*;
use crate::policy;

impl AutoScaling {
    // ---- rolling updates ----

    /// Replaces every instance not launched from the group's current launch source, in
    /// batches of `max_batch`, never leaving fewer than `min_in_service` instances in service:
    /// when terminating first would, new instances are added first (up to MaxSize) and the
    /// old ones then leave without replacement. A batch's new instances must pass their
    /// target groups' health checks before its old ones go, so traffic always has somewhere
    /// healthy to go.
    pub async fn rolling_update(
        &self,
        name: &str,
        max_batch: u32,
        min_in_service: u32,
        pause: Duration,
    ) -> Result<(), AsgError> {
        let plan = Replace { max_batch, min_in_service, surge: true, pause, ..Replace::default() };
        self.replace_instances(name, &plan).await.map(|_| ())
    }

    /// The replacement loop shared by rolling updates and instance refreshes. Returns false
    /// when `plan.stop` ended it early.
    pub async fn replace_instances(&self, name: &str, plan: &Replace) -> Result<bool, AsgError> {
        let current = self.launch_key(&self.group_or_err(name)?.launch)?;
        let obsolete = |m: &Member| m.launched_from != current || plan.also.contains(&m.id);
        let max_batch = plan.max_batch.max(1) as usize;
        let keep = plan.min_in_service as usize;
        let deadline = self.clock.deadline(Duration::from_secs(3600));
        let total = self.group_or_err(name)?.active().filter(|m| obsolete(m)).count();
        let mut checkpoints = plan.checkpoints.clone();
        checkpoints.sort_unstable();
        checkpoints.dedup();
        let mut checkpoints = checkpoints.into_iter().peekable();
        let mut changes = self.subscribe();
        loop {
            if plan.stop.is_cancelled() {
                return Ok(false);
            }
            let g = self.group_or_err(name)?;
            let remaining = g.active().filter(|m| obsolete(m)).count();
            let done = total.saturating_sub(remaining);
            if let Some(progress) = &plan.progress {
                progress(done as u32, total as u32);
            }
            if remaining == 0 {
                break;
            }
            // A checkpoint reached: wait there before going on.
            let percent = (done * 100).checked_div(total).unwrap_or(100) as u32;
            if checkpoints.peek().is_some_and(|c| *c <= percent) {
                while checkpoints.peek().is_some_and(|c| *c <= percent) {
                    checkpoints.next();
                }
                tracing::info!(group = name, "instance refresh: checkpoint at {percent}%");
                tokio::select! {
                    _ = self.clock.sleep(plan.checkpoint_delay) => {}
                    _ = plan.stop.cancelled() => return Ok(false),
                }
                continue;
            }
            let healthy_new = self.healthy_new(&g, &obsolete)?;
            let in_service =
                g.instances.iter().filter(|m| m.lifecycle == Lifecycle::InService).count();
            let batch = max_batch.min(remaining);
            let room =
                if plan.exceed_max { usize::MAX } else { g.max.saturating_sub(g.desired) as usize };
            let surge = plan.surge && in_service.saturating_sub(batch) < keep && room > 0;
            let batch = if surge { batch.min(room) } else { batch };
            // The old instances of the fullest zones go first; their replacements go to the
            // same zones.
            let victims = self.obsolete_victims(&g, &obsolete, batch);
            if victims.is_empty() {
                // Obsolete instances still launching: look again when the group changes.
                self.wake(name);
                let _ = self.clock.timeout(TICK, changes.changed()).await;
                continue;
            }
            if let Some(rt) = self.groups.lock().get_mut(name) {
                rt.prefer = victims.iter().map(|v| v.zone.clone()).collect();
            }
            if let Some(gate) = &plan.signals {
                (gate.reset)();
            }
            if surge {
                tracing::info!(
                    group = name,
                    "Temporarily setting autoscaling group DesiredCapacity to {}.",
                    g.desired as usize + victims.len()
                );
                self.update(name, |g| g.desired += victims.len() as u32)?;
                self.wake(name);
                let stopped = self
                    .settle_batch(name, plan, &obsolete, victims.len(), healthy_new, deadline)
                    .await?;
                if stopped {
                    // The surge ends with the loop.
                    self.update(name, |g| {
                        g.desired = g.desired.saturating_sub(victims.len() as u32)
                    })?;
                    self.wake(name);
                    return Ok(false);
                }
            }
            let Some(busy) = self.busy(name) else { break };
            {
                let _pass = busy.lock().await;
                if surge {
                    self.update(name, |g| {
                        g.desired = g.desired.saturating_sub(victims.len() as u32)
                    })?;
                }
                let ids: Vec<&str> = victims.iter().map(|m| m.id.as_str()).collect();
                tracing::info!(group = name, "Terminating instance(s) {ids:?}.");
                for v in &victims {
                    let cause = format!(
                        "At {} an instance was taken out of service in response to {}.",
                        cause_time(&self.clock),
                        plan.reason
                    );
                    let a =
                        self.activity(name, format!("Terminating EC2 instance: {}", v.id), cause)?;
                    self.begin_termination(name, v, a)?;
                }
            }
            self.wake(name);
            if !surge {
                let stopped = self
                    .settle_batch(name, plan, &obsolete, victims.len(), healthy_new, deadline)
                    .await?;
                if stopped {
                    return Ok(false);
                }
            }
            let settle = plan.pause + plan.warmup;
            if !settle.is_zero() {
                tokio::select! {
                    _ = self.clock.sleep(settle) => {}
                    _ = plan.stop.cancelled() => return Ok(false),
                }
            }
        }
        Ok(true)
    }

    /// After a batch of `batch` new instances launched: their resource signals (when the plan
    /// waits for them), then all of them in service and healthy beside the `healthy_before`
    /// new ones. True when the plan was stopped meanwhile.
    pub(super) async fn settle_batch(
        &self,
        name: &str,
        plan: &Replace,
        obsolete: &(dyn Fn(&Member) -> bool + Sync),
        batch: usize,
        healthy_before: usize,
        deadline: tokio::time::Instant,
    ) -> Result<bool, AsgError> {
        if let Some(gate) = &plan.signals {
            (gate.wait)(batch).await.map_err(AsgError::validation)?;
        }
        self.wait_healthy_new(name, obsolete, healthy_before + batch, deadline, &plan.stop).await?;
        Ok(plan.stop.is_cancelled())
    }

    /// Up to `n` in-service obsolete instances, from the fullest zones.
    pub(super) fn obsolete_victims(
        &self,
        g: &GroupRecord,
        obsolete: &(dyn Fn(&Member) -> bool + Sync),
        n: usize,
    ) -> Vec<Member> {
        let view: Vec<Member> = g
            .active()
            .cloned()
            .map(|mut m| {
                m.protected = !obsolete(&m) || m.lifecycle != Lifecycle::InService;
                m
            })
            .collect();
        let mut remaining: Vec<&Member> = view.iter().collect();
        let mut victims = Vec::new();
        for _ in 0..n {
            // Every candidate is obsolete; "OldestInstance" orders them within the fullest zone.
            let Some(v) = policy::scale_in_victim(
                &remaining,
                &["OldestInstance".to_string()],
                "",
                self.now(),
            ) else {
                break;
            };
            let v = v.clone();
            remaining.retain(|m| m.id != v.id);
            victims.push(v);
        }
        victims
    }

    /// New (not obsolete) instances in service and healthy in every target group of the group.
    pub(super) fn healthy_new(
        &self,
        g: &GroupRecord,
        obsolete: &(dyn Fn(&Member) -> bool + Sync),
    ) -> Result<usize, AsgError> {
        let groups = self.target_groups_of(g)?;
        Ok(g.instances
            .iter()
            .filter(|m| !obsolete(m) && m.lifecycle == Lifecycle::InService)
            .filter(|m| {
                groups.is_empty() || self.elb.instance_health(&m.id) == Some(elb::State::Healthy)
            })
            .count())
    }

    /// Waits until `count` new instances are in service and healthy (woken by the group's and
    /// the target groups' changes), until `deadline` or until `stop`.
    pub(super) async fn wait_healthy_new(
        &self,
        name: &str,
        obsolete: &(dyn Fn(&Member) -> bool + Sync),
        count: usize,
        deadline: tokio::time::Instant,
        stop: &tokio_util::sync::CancellationToken,
    ) -> Result<(), AsgError> {
        let mut changes = (self.subscribe(), self.elb.subscribe());
        let mut ready = 0;
        let limit =
            self.clock.aws_duration(deadline.saturating_duration_since(self.clock.instant()));
        let wait = self.clock.wait_until(limit, &mut changes, || {
            let g = match self.group_or_err(name) {
                Ok(g) => g,
                Err(e) => return Some(Err(e)),
            };
            ready = match self.healthy_new(&g, obsolete) {
                Ok(n) => n,
                Err(e) => return Some(Err(e)),
            };
            (ready >= count).then_some(Ok(()))
        });
        tokio::select! {
            outcome = wait => match outcome {
                Ok(result) => result,
                Err(clock::Elapsed) => Err(AsgError::validation(format!(
                    "Replacing the instances of {name} timed out: {ready} of {count} new instances are healthy"
                ))),
            },
            _ = stop.cancelled() => Ok(()),
        }
    }
}
