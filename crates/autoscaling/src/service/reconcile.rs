//! The reconciler: one pass looks at a group's health, replaces unhealthy instances, launches
//! or terminates toward the desired capacity and rebalances zones.

use ec2::{InstanceState, LaunchRequest, LaunchSpec};
use indexmap::IndexMap;

use super::*;
use crate::policy;

impl AutoScaling {
    // ---- the reconciler ----

    /// One pass. A store failure ends the pass where it happened: what was not recorded was
    /// not done, and the next pass starts again from the records.
    pub(super) async fn reconcile(&self, name: &str) -> Result<(), AsgError> {
        let Some(g) = self.group(name)? else { return Ok(()) };
        let now = self.now();
        // Health: EC2 state always; target health with HealthCheckType ELB after the grace period.
        if !g.suspended("HealthCheck") {
            for m in g.instances.iter().filter(|m| m.lifecycle.counts() && m.healthy) {
                let view = self.ec2.instance(&m.id)?;
                let state = view.as_ref().map(|i| i.state);
                let ec2_ok = matches!(state, Some(InstanceState::Pending | InstanceState::Running));
                let cause = if !ec2_ok {
                    Some("an EC2 health check indicating it has been terminated or stopped")
                } else if view.as_ref().is_some_and(|v| v.impaired) {
                    Some("an EC2 instance status checks failure")
                } else if g.health_check_type == "ELB"
                    && m.lifecycle == Lifecycle::InService
                    && now - m.in_service_at.unwrap_or(now) >= g.grace as i64
                    && self.elb.instance_health(&m.id) == Some(elb::State::Unhealthy)
                {
                    Some("an ELB system health check failure")
                } else {
                    None
                };
                if let Some(cause) = cause {
                    tracing::info!(group = name, instance = %m.id, "unhealthy: {cause}");
                    let text = format!(
                        "At {} an instance was taken out of service in response to {cause}.",
                        cause_time(&self.clock)
                    );
                    self.store.put(CAUSES, &m.id, &text)?;
                    self.update_member(name, &m.id, |m| m.healthy = false)?;
                }
            }
        }
        let Some(g) = self.group(name)? else { return Ok(()) };
        // Replace unhealthy instances: terminate now, the launch follows below.
        if !g.suspended("ReplaceUnhealthy") && !g.suspended("Terminate") {
            for m in g.instances.iter().filter(|m| m.lifecycle.counts() && !m.healthy) {
                let cause: String = self.store.get(CAUSES, &m.id)?.unwrap_or_else(|| {
                    format!(
                        "At {} an instance was taken out of service in response to a health check.",
                        cause_time(&self.clock)
                    )
                });
                let activity =
                    self.activity(name, format!("Terminating EC2 instance: {}", m.id), cause)?;
                self.begin_termination(name, m, activity)?;
            }
        }
        let Some(g) = self.group(name)? else { return Ok(()) };
        let active: Vec<&Member> = g.active().collect();
        let desired = g.desired as usize;
        // What changed the desired capacity comes first in the causes of the launches and
        // terminations it asks for (two spaces apart, as AWS writes them); it is forgotten once
        // the group is at that capacity, or when something else changed it.
        let because = match &g.scaling_cause {
            Some(c) if c.desired == g.desired && active.len() != desired => {
                format!("{}  ", c.cause)
            }
            Some(seen) => {
                self.update(name, |g| {
                    if g.scaling_cause.as_ref() == Some(seen) {
                        g.scaling_cause = None;
                    }
                })?;
                String::new()
            }
            None => String::new(),
        };
        let avoid = self.avoided(name, now);
        if active.len() < desired && !g.suspended("Launch") {
            let mut placed: Vec<Member> = active.iter().map(|m| (*m).clone()).collect();
            for _ in active.len()..desired {
                let cause = format!(
                    "{because}At {} an instance was started in response to a difference between desired and actual capacity, increasing the capacity from {} to {}.",
                    cause_time(&self.clock),
                    placed.len(),
                    placed.len() + 1
                );
                match self.launch_one(&g, &placed, &avoid, cause).await? {
                    Some(m) => placed.push(m),
                    None => break,
                }
            }
        } else if active.len() > desired && !g.suspended("Terminate") {
            // Scale in once launches have settled: new instances in service and past their
            // first health checks, so a rebalance never leaves fewer healthy targets than it
            // found.
            let behind_load_balancer = !self.target_groups_of(&g)?.is_empty();
            if active.iter().any(|m| {
                matches!(m.lifecycle, Lifecycle::Pending | Lifecycle::PendingWait)
                    || (behind_load_balancer
                        && m.lifecycle == Lifecycle::InService
                        && self.elb.instance_health(&m.id) == Some(elb::State::Initial))
            }) {
                return Ok(());
            }
            let launch_key = self.launch_key(&g.launch).unwrap_or_default();
            let mut remaining: Vec<&Member> = active.clone();
            for _ in desired..active.len() {
                let Some(victim) =
                    policy::scale_in_victim(&remaining, &g.termination_policies, &launch_key, now)
                else {
                    break;
                };
                let victim = victim.clone();
                remaining.retain(|m| m.id != victim.id);
                let cause = format!(
                    "{because}At {} an instance was taken out of service in response to a difference between desired and actual capacity, shrinking the capacity from {} to {}.",
                    cause_time(&self.clock),
                    remaining.len() + 1,
                    remaining.len()
                );
                let activity =
                    self.activity(name, format!("Terminating EC2 instance: {}", victim.id), cause)?;
                self.begin_termination(name, &victim, activity)?;
            }
        } else if active.len() == desired && !g.suspended("AZRebalance") && !g.suspended("Launch") {
            // Zone balance: launch in the short zone first; the scale-in that follows takes
            // from the zone with the most.
            let settled = g.instances.iter().all(|m| {
                matches!(
                    m.lifecycle,
                    Lifecycle::InService | Lifecycle::Standby | Lifecycle::Detached
                )
            });
            if settled && let Some((low, _)) = policy::imbalance(&g.zones, &active, &avoid) {
                let cause = format!(
                    "At {} an instance was launched to rebalance the group's zones.",
                    cause_time(&self.clock)
                );
                let placed: Vec<Member> = active.iter().map(|m| (*m).clone()).collect();
                let others: Vec<String> = g.zones.iter().filter(|z| *z != low).cloned().collect();
                self.launch_one(&g, &placed, &others, cause).await?;
            }
        }
        Ok(())
    }

    pub(super) fn avoided(&self, name: &str, now: i64) -> Vec<String> {
        let mut groups = self.groups.lock();
        let Some(rt) = groups.get_mut(name) else { return Vec::new() };
        rt.avoid.retain(|_, until| *until > now);
        rt.avoid.keys().cloned().collect()
    }

    pub(super) fn avoid_zone(&self, name: &str, zone: &str) {
        let until = self.now() + ZONE_BACKOFF.as_secs() as i64;
        if let Some(rt) = self.groups.lock().get_mut(name) {
            rt.avoid.insert(zone.to_string(), until);
        }
    }

    /// The target groups a group's instances register with (Classic load balancers' included).
    pub(super) fn target_groups_of(&self, g: &GroupRecord) -> Result<Vec<String>, AsgError> {
        let mut out = g.target_groups.clone();
        for lb in &g.load_balancers {
            out.extend(self.elb.classic_target_groups(lb)?);
        }
        Ok(out)
    }

    /// Launches one instance into the best zone; tries the other zones when a launch fails.
    pub(super) async fn launch_one(
        &self,
        g: &GroupRecord,
        placed: &[Member],
        avoid: &[String],
        cause: String,
    ) -> Result<Option<Member>, AsgError> {
        let Ok(launch_key) = self.launch_key(&g.launch) else { return Ok(None) };
        let mut avoid = avoid.to_vec();
        loop {
            let refs: Vec<&Member> = placed.iter().collect();
            let preferred = self.groups.lock().get_mut(&g.name).and_then(|rt| {
                let i = rt.prefer.iter().position(|z| !avoid.contains(z))?;
                Some(rt.prefer.remove(i))
            });
            let zone = match preferred {
                Some(z) => z,
                None => match policy::launch_zone(&g.zones, &refs, &avoid) {
                    Some(z) => z.clone(),
                    None => return Ok(None),
                },
            };
            let mut subnets: Vec<&String> = Vec::new();
            for s in &g.subnets {
                if self.ec2.subnet_zone(s)?.is_none_or(|z| z == zone) {
                    subnets.push(s);
                }
            }
            let subnet =
                (!subnets.is_empty()).then(|| subnets[fastrand::usize(..subnets.len())].clone());
            let activity =
                self.activity(&g.name, "Launching a new EC2 instance".into(), cause.clone())?;
            let mut ports: Vec<u16> = Vec::new();
            for tg in self.target_groups_of(g)? {
                if let Some((port, health_port)) = self.elb.ports(&tg)? {
                    ports.push(port);
                    if let Some(p) = health_port {
                        ports.push(p);
                    }
                }
            }
            ports.dedup();
            let mut tags: IndexMap<String, String> = g
                .tags
                .iter()
                .filter(|t| t.propagate)
                .map(|t| (t.key.clone(), t.value.clone()))
                .collect();
            tags.insert("aws:autoscaling:groupName".into(), g.name.clone());
            let (spec, override_key) = match &g.launch {
                Launch::Template { id, version } => {
                    let lt = self.ec2.launch_template(id)?;
                    (
                        LaunchSpec::Template { id_or_name: id.clone(), version: version.clone() },
                        lt.and_then(|l| l.logical_id),
                    )
                }
                Launch::Configuration { name } => {
                    let lc = self.ec2.launch_configuration(name)?;
                    (
                        LaunchSpec::Configuration { name: name.clone() },
                        lc.and_then(|l| l.logical_id),
                    )
                }
            };
            let request = LaunchRequest {
                spec,
                subnet_id: subnet.clone(),
                zone: if subnet.is_none() { Some(zone.clone()) } else { None },
                ports,
                tags,
                override_key,
                group: Some(g.name.clone()),
            };
            match self.ec2.launch(request).await {
                Ok(record) => {
                    let mut a = activity;
                    a.description = format!("Launching a new EC2 instance: {}", record.id);
                    let member = Member {
                        id: record.id.clone(),
                        zone: record.zone.clone(),
                        subnet: Some(record.subnet_id.clone()),
                        lifecycle: Lifecycle::Pending,
                        healthy: true,
                        launched_from: launch_key,
                        protected: g.protect_new,
                        launched_at: self.now(),
                        in_service_at: None,
                    };
                    // An instance the group could not record would run unmanaged: it goes.
                    let recorded = self
                        .update(&g.name, |g| g.instances.push(member.clone()))
                        .and_then(|_| self.save_activity(&a));
                    if let Err(e) = recorded {
                        let _ = self.ec2.terminate(&record.id).await;
                        return Err(e);
                    }
                    self.spawn_enter_service_with(&g.name, &record.id, Some(a));
                    return Ok(Some(member));
                }
                Err(crate::fleet::FleetError::Store(e)) => {
                    // Not the zone's fault: the pass stops and the next one tries again.
                    let message = format!("{e} Launching EC2 instance failed.");
                    self.finish(activity, false, Some(message))?;
                    return Err(AsgError::Store(e));
                }
                Err(message) => {
                    tracing::warn!(group = %g.name, zone, "launch failed: {message}");
                    self.finish(
                        activity,
                        false,
                        Some(format!("{message} Launching EC2 instance failed.")),
                    )?;
                    self.avoid_zone(&g.name, &zone);
                    avoid.push(zone);
                }
            }
        }
    }
}
