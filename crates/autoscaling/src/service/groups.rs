//! Groups: creation, settings, sizes, suspended processes, instance health, standby, attach
//! and detach, protection, deletion.

use std::sync::Arc;
use std::time::Duration;

use ec2::InstanceState;
use tokio::sync::Notify;

use super::*;
use crate::request::{CreateGroup, UpdateGroup};

impl AutoScaling {
    // ---- groups ----

    /// Validates sizes as AWS does.
    pub fn check_sizes(min: u32, max: u32, desired: u32) -> Result<(), AsgError> {
        if min > max {
            return Err(AsgError::validation(format!(
                "Max bound, {max}, must be greater than or equal to min bound, {min}"
            )));
        }
        if desired < min || desired > max {
            return Err(AsgError::validation(format!(
                "Desired capacity:{desired} must be between the specified min size:{min} and max size:{max}"
            )));
        }
        Ok(())
    }

    /// Creates a group and starts keeping it (CreateAutoScalingGroup, and CloudFormation's
    /// create): AWS's defaults filled in, its checks made, then its lifecycle hooks put.
    pub fn create_group(&self, req: CreateGroup) -> Result<GroupRecord, AsgError> {
        if self.group(&req.name)?.is_some() {
            return Err(AsgError::Api {
                code: "AlreadyExists",
                message: format!(
                    "AutoScalingGroup by this name already exists - A group with the name {} already exists",
                    req.name
                ),
            });
        }
        let launch = req.launch.clone().ok_or_else(|| {
            AsgError::validation("Valid requests must contain either LaunchTemplate, LaunchConfigurationName, InstanceId or MixedInstancesPolicy parameter.")
        })?;
        let desired = req.desired.unwrap_or(req.min);
        AutoScaling::check_sizes(req.min, req.max, desired)?;
        self.launch_key(&launch)?;
        let zones = self.zones_for(&req.subnets, &req.zones)?;
        self.check_load_balancing(&req.target_groups, &req.load_balancers)?;
        for h in &req.hooks {
            AutoScaling::hook_record(&req.name, h.clone())?;
        }
        let name = req.name.clone();
        let record = GroupRecord {
            arn: self.account.arn(
                "autoscaling",
                &format!("autoScalingGroup:{}:autoScalingGroupName/{name}", aws_ids::uuid()),
            ),
            name,
            min: req.min,
            max: req.max,
            desired,
            launch,
            subnets: req.subnets,
            zones,
            target_groups: req.target_groups,
            load_balancers: req.load_balancers,
            health_check_type: req.health_check_type.unwrap_or_else(|| "EC2".into()),
            grace: req.grace.unwrap_or(0),
            cooldown: req.cooldown.unwrap_or(300),
            termination_policies: req.termination_policies,
            suspended: Vec::new(),
            tags: req.tags,
            protect_new: req.protect_new,
            instances: Vec::new(),
            created: clock::iso8601(self.clock.now()),
            notifications: req.notifications,
            status: None,
            warm_pool: None,
            metrics: Vec::new(),
            scaled: None,
            default_instance_warmup: None,
            scaled_out_at: None,
            scaling_cause: None,
        };
        // The group and its hooks are stored together: a launch never misses a hook.
        let hooks: Vec<HookRecord> = req
            .hooks
            .into_iter()
            .map(|h| AutoScaling::hook_record(&record.name, h))
            .collect::<Result<_, _>>()?;
        self.store.batch(|b| {
            b.put(GROUPS, &record.name, &record)?;
            for h in &hooks {
                b.put(HOOKS, &format!("{}/{}", h.group, h.name), h)?;
            }
            Ok(())
        })?;
        let _ = self.changes.send(record.name.clone());
        self.start_group(&record.name)?;
        Ok(record)
    }

    /// The zones of a group: those of its subnets (each must exist), else the ones named.
    fn zones_for(&self, subnets: &[String], zones: &[String]) -> Result<Vec<String>, AsgError> {
        let mut out = Vec::new();
        for s in subnets {
            let zone = self.ec2.subnet_zone(s)?.ok_or_else(|| {
                AsgError::validation(format!("The subnet ID '{s}' does not exist"))
            })?;
            if !out.contains(&zone) {
                out.push(zone);
            }
        }
        if subnets.is_empty() {
            out = zones.to_vec();
        }
        if out.is_empty() {
            return Err(AsgError::validation(
                "At least one Availability Zone or VPC Subnet is required.",
            ));
        }
        Ok(out)
    }

    /// Target groups and Classic load balancers must exist, as AWS checks them.
    fn check_load_balancing(
        &self,
        target_groups: &[String],
        load_balancers: &[String],
    ) -> Result<(), AsgError> {
        for tg in target_groups {
            if self.elb.ports(tg)?.is_none() {
                return Err(AsgError::validation(format!(
                    "Provided Target Groups may not be valid. Please ensure they exist and try again. The target group {tg} does not exist."
                )));
            }
        }
        for lb in load_balancers {
            if self.elb.classic_target_groups(lb)?.is_empty() {
                return Err(AsgError::validation(format!(
                    "Provided Load Balancers may not be valid. Please ensure they exist and try again. The load balancer {lb} does not exist."
                )));
            }
        }
        Ok(())
    }

    /// The id and name of a launch template named by either (`None` when it is gone).
    pub fn launch_template_names(
        &self,
        id_or_name: &str,
    ) -> Result<Option<(String, String)>, AsgError> {
        Ok(self.ec2.launch_template(id_or_name)?.map(|t| (t.id, t.name)))
    }

    /// What an instance launched now from `launch` is launched from (`lt-...:N`, `lc:NAME`).
    pub fn launch_key(&self, launch: &Launch) -> Result<String, AsgError> {
        match launch {
            Launch::Template { id, version } => {
                let lt = self.ec2.launch_template(id)?.ok_or_else(|| {
                    AsgError::validation(format!(
                        "The specified launch template, with template ID {id}, does not exist."
                    ))
                })?;
                let v = lt.resolve_version(version.as_deref()).ok_or_else(|| {
                    AsgError::validation(format!("The specified launch template, with template ID {}, does not have version {}.", lt.id, version.clone().unwrap_or_default()))
                })?;
                Ok(format!("{}:{v}", lt.id))
            }
            Launch::Configuration { name } => {
                self.ec2.launch_configuration(name)?.ok_or_else(|| AsgError::validation(format!("Launch configuration name not found - Launch configuration {name} not found")))?;
                Ok(format!("lc:{name}"))
            }
        }
    }

    /// Changes a group's settings (UpdateAutoScalingGroup, and CloudFormation's update): what
    /// the request leaves out stays; a desired capacity left out moves into the new bounds.
    pub fn update_group(&self, req: UpdateGroup) -> Result<GroupRecord, AsgError> {
        let old = self.group_or_err(&req.name)?;
        let mut record = old.clone();
        if let Some(v) = req.min {
            record.min = v;
        }
        if let Some(v) = req.max {
            record.max = v;
        }
        record.desired = match req.desired {
            Some(d) => d,
            None => old.desired.clamp(record.min, record.max.max(record.min)),
        };
        AutoScaling::check_sizes(record.min, record.max, record.desired)?;
        if let Some(l) = req.launch {
            record.launch = l;
        }
        self.launch_key(&record.launch)?;
        if req.subnets.is_some() || req.zones.is_some() {
            let subnets = req.subnets.unwrap_or_default();
            let zones = req.zones.unwrap_or_else(|| old.zones.clone());
            record.zones = self.zones_for(&subnets, &zones)?;
            record.subnets = subnets;
        }
        if let Some(v) = req.target_groups {
            record.target_groups = v;
        }
        if let Some(v) = req.load_balancers {
            record.load_balancers = v;
        }
        self.check_load_balancing(&record.target_groups, &record.load_balancers)?;
        if let Some(v) = req.health_check_type {
            record.health_check_type = v;
        }
        if let Some(v) = req.grace {
            record.grace = v;
        }
        if let Some(v) = req.cooldown {
            record.cooldown = v;
        }
        if let Some(v) = req.termination_policies {
            record.termination_policies = v;
        }
        if let Some(v) = req.protect_new {
            record.protect_new = v;
        }
        if let Some(v) = req.tags {
            record.tags = v;
        }
        if let Some(v) = req.notifications {
            record.notifications = v;
        }
        let stored = self.update(&record.name, |g| {
            let instances = std::mem::take(&mut g.instances);
            *g = GroupRecord { instances, ..record.clone() };
            g.clone()
        })?;
        let record = stored.unwrap_or(record);
        // Target groups added or removed: register or deregister the instances in service.
        let in_service: Vec<String> = old
            .instances
            .iter()
            .filter(|m| m.lifecycle == Lifecycle::InService)
            .map(|m| m.id.clone())
            .collect();
        if !in_service.is_empty() {
            for tg in record.target_groups.iter().filter(|t| !old.target_groups.contains(t)) {
                self.elb.register(tg, &in_service)?;
            }
            for tg in old.target_groups.iter().filter(|t| !record.target_groups.contains(t)) {
                self.elb.deregister(tg, &in_service)?;
            }
        }
        self.wake(&record.name);
        Ok(record)
    }

    pub(super) fn start_group(&self, name: &str) -> Result<(), AsgError> {
        if self.stopped.load(Ordering::SeqCst) {
            return Ok(());
        }
        let wake = Arc::new(Notify::new());
        let busy = Arc::new(tokio::sync::Mutex::new(()));
        let me = self.me.clone();
        let (group, w, b) = (name.to_string(), wake.clone(), busy.clone());
        let clock = self.clock.clone();
        let task = tokio::spawn(async move {
            loop {
                {
                    let Some(this) = me.upgrade() else { return };
                    // A group that is gone ends its reconciler; a store that cannot be read
                    // only skips this pass.
                    if let Ok(None) = this.group(&group) {
                        return;
                    }
                    let _pass = b.lock().await;
                    if let Err(e) = this.reconcile(&group).await {
                        tracing::error!(group, "reconcile pass stopped: {e}");
                    }
                }
                tokio::select! {
                    _ = w.notified() => {}
                    _ = clock.sleep(TICK) => {}
                }
            }
        });
        self.groups.lock().insert(
            name.to_string(),
            Rt { wake, busy, _task: Task::new(task), avoid: HashMap::new(), prefer: Vec::new() },
        );
        for s in self.schedules_of(name)? {
            self.start_schedule(s);
        }
        Ok(())
    }

    pub fn wake(&self, name: &str) {
        if let Some(rt) = self.groups.lock().get(name) {
            rt.wake.notify_one();
        }
    }

    pub(super) fn busy(&self, name: &str) -> Option<Arc<tokio::sync::Mutex<()>>> {
        self.groups.lock().get(name).map(|rt| rt.busy.clone())
    }

    /// Sets the desired capacity (what SetDesiredCapacity, scheduled actions and policies do).
    pub fn set_desired(&self, name: &str, desired: u32) -> Result<(), AsgError> {
        let g = self.group_or_err(name)?;
        if desired > g.max {
            return Err(AsgError::validation(format!(
                "New SetDesiredCapacity value {desired} is above max value {} for the AutoScalingGroup.",
                g.max
            )));
        }
        if desired < g.min {
            return Err(AsgError::validation(format!(
                "New SetDesiredCapacity value {desired} is below min value {} for the AutoScalingGroup.",
                g.min
            )));
        }
        self.update(name, |g| g.desired = desired)?;
        self.wake(name);
        Ok(())
    }

    /// Sets min, max and desired together (scheduled actions, template updates), clamping
    /// desired into the new bounds.
    pub fn set_sizes(
        &self,
        name: &str,
        min: Option<u32>,
        max: Option<u32>,
        desired: Option<u32>,
    ) -> Result<(), AsgError> {
        let g = self.group_or_err(name)?;
        let (min, max) = (min.unwrap_or(g.min), max.unwrap_or(g.max));
        let desired = desired.unwrap_or(g.desired).clamp(min, max.max(min));
        AutoScaling::check_sizes(min, max, desired)?;
        self.update(name, |g| {
            g.min = min;
            g.max = max;
            g.desired = desired;
        })?;
        self.wake(name);
        Ok(())
    }

    pub fn suspend(&self, name: &str, processes: &[String], suspend: bool) -> Result<(), AsgError> {
        const ALL: [&str; 9] = [
            "Launch",
            "Terminate",
            "AddToLoadBalancer",
            "AlarmNotification",
            "AZRebalance",
            "HealthCheck",
            "InstanceRefresh",
            "ReplaceUnhealthy",
            "ScheduledActions",
        ];
        for p in processes {
            if !ALL.contains(&p.as_str()) {
                return Err(AsgError::validation(format!(
                    "Process names must be one of: {}",
                    ALL.join(", ")
                )));
            }
        }
        let list: Vec<String> = if processes.is_empty() {
            ALL.iter().map(|s| s.to_string()).collect()
        } else {
            processes.to_vec()
        };
        self.group_or_err(name)?;
        self.update(name, |g| {
            if suspend {
                for p in list {
                    if !g.suspended.contains(&p) {
                        g.suspended.push(p);
                    }
                }
            } else {
                g.suspended.retain(|p| !list.contains(p));
            }
        })?;
        self.wake(name);
        Ok(())
    }

    /// SetInstanceHealth: `Unhealthy` instances are replaced.
    pub fn set_instance_health(
        &self,
        id: &str,
        healthy: bool,
        respect_grace: bool,
    ) -> Result<(), AsgError> {
        let (group, member) = self.member_of(id)?;
        if !healthy && respect_grace {
            let g = self.group_or_err(&group)?;
            let since = member.in_service_at.unwrap_or(member.launched_at);
            if self.now() - since < g.grace as i64 {
                return Ok(());
            }
        }
        self.update_member(&group, id, |m| m.healthy = healthy)?;
        self.wake(&group);
        Ok(())
    }

    /// The group and record of an instance.
    pub fn member_of(&self, id: &str) -> Result<(String, Member), AsgError> {
        self.groups()?
            .into_iter()
            .find_map(|g| {
                g.instances.iter().find(|m| m.id == id).map(|m| (g.name.clone(), m.clone()))
            })
            .ok_or_else(|| {
                AsgError::validation(format!(
                    "Instance Id not found - No managed instance found for instance ID: {id}"
                ))
            })
    }

    /// TerminateInstanceInAutoScalingGroup: with `decrement`, desired capacity drops by one;
    /// otherwise a replacement is launched.
    pub fn terminate_instance(&self, id: &str, decrement: bool) -> Result<Activity, AsgError> {
        let (group, member) = self.member_of(id)?;
        let g = self.group_or_err(&group)?;
        if decrement {
            if g.desired <= g.min {
                return Err(AsgError::validation(format!(
                    "Currently, desiredSize equals minSize ({}). Terminating instance without replacement will violate group's min size constraint. Either set shouldDecrementDesiredCapacity flag to false or lower group's min size.",
                    g.min
                )));
            }
            self.update(&group, |g| g.desired -= 1)?;
        }
        let cause = format!(
            "At {} instance {id} was taken out of service in response to a user request{}.",
            cause_time(&self.clock),
            if decrement { ", shrinking the capacity" } else { "" }
        );
        let activity = self.activity(&group, format!("Terminating EC2 instance: {id}"), cause)?;
        self.begin_termination(&group, &member, activity.clone())?;
        Ok(activity)
    }

    /// EnterStandby / ExitStandby.
    pub fn standby(&self, id: &str, enter: bool, decrement: bool) -> Result<(), AsgError> {
        let (group, member) = self.member_of(id)?;
        let g = self.group_or_err(&group)?;
        if enter {
            if member.lifecycle != Lifecycle::InService {
                return Err(AsgError::validation(format!(
                    "The instance {id} is not in InService."
                )));
            }
            if decrement && g.desired > g.min {
                self.update(&group, |g| g.desired -= 1)?;
            }
            for tg in self.target_groups_of(&g)? {
                self.elb.deregister(&tg, &[id.to_string()])?;
            }
            self.update_member(&group, id, |m| m.lifecycle = Lifecycle::Standby)?;
        } else {
            if member.lifecycle != Lifecycle::Standby {
                return Err(AsgError::validation(format!("The instance {id} is not in Standby.")));
            }
            if g.desired < g.max {
                self.update(&group, |g| g.desired += 1)?;
            }
            self.update_member(&group, id, |m| m.lifecycle = Lifecycle::Pending)?;
            self.spawn_enter_service(&group, id);
        }
        self.wake(&group);
        Ok(())
    }

    /// AttachInstances: running instances join the group (desired grows).
    pub fn attach(&self, group: &str, ids: &[String]) -> Result<(), AsgError> {
        let g = self.group_or_err(group)?;
        if g.desired as usize + ids.len() > g.max as usize {
            return Err(AsgError::validation(format!(
                "Desired capacity:{} must be between the specified min size:{} and max size:{}",
                g.desired as usize + ids.len(),
                g.min,
                g.max
            )));
        }
        for id in ids {
            let i = self
                .ec2
                .instance(id)?
                .ok_or_else(|| AsgError::validation(format!("Instance ID {id} is not valid.")))?;
            if i.state != InstanceState::Running {
                return Err(AsgError::validation(format!(
                    "Instance {id} is not in the running state."
                )));
            }
            if self.member_of(id).is_ok() {
                return Err(AsgError::validation(format!(
                    "The instance {id} is already part of an Auto Scaling group."
                )));
            }
            let now = self.now();
            let member = Member {
                id: id.clone(),
                zone: i.zone.clone(),
                subnet: Some(i.subnet_id.clone()),
                lifecycle: Lifecycle::Pending,
                healthy: true,
                launched_from: "attached".into(),
                protected: g.protect_new,
                launched_at: now,
                in_service_at: None,
            };
            self.update(group, |g| {
                g.instances.push(member);
                g.desired += 1;
            })?;
            self.spawn_enter_service(group, id);
        }
        Ok(())
    }

    /// DetachInstances: they leave the group and keep running.
    pub fn detach(&self, group: &str, ids: &[String], decrement: bool) -> Result<(), AsgError> {
        let g = self.group_or_err(group)?;
        for id in ids {
            if !g.instances.iter().any(|m| &m.id == id) {
                return Err(AsgError::validation(format!(
                    "The instance {id} is not part of Auto Scaling group {group}."
                )));
            }
        }
        for id in ids {
            for tg in self.target_groups_of(&g)? {
                self.elb.deregister(&tg, std::slice::from_ref(id))?;
            }
            self.update(group, |g| {
                g.instances.retain(|m| &m.id != id);
                if decrement && g.desired > g.min {
                    g.desired -= 1;
                }
            })?;
        }
        self.wake(group);
        Ok(())
    }

    pub fn set_protection(
        &self,
        group: &str,
        ids: &[String],
        protected: bool,
    ) -> Result<(), AsgError> {
        self.group_or_err(group)?;
        for id in ids {
            self.update_member(group, id, |m| m.protected = protected)?;
        }
        Ok(())
    }

    /// Deletes a group: its instances are terminated (drained first), then the record goes.
    pub async fn delete_group(&self, name: &str) -> Result<(), AsgError> {
        let g = self.group_or_err(name)?;
        self.hand_over(&g).await;
        let mut changes = self.subscribe();
        self.update(name, |g| {
            g.min = 0;
            g.max = 0;
            g.desired = 0;
        })?;
        self.wake(name);
        // Bounded: an instance that never finishes terminating does not keep the group.
        let gone = self
            .clock
            .wait_until(Duration::from_secs(3600), &mut changes, || match self.group(name) {
                Ok(Some(g)) if g.instances.iter().any(|m| m.lifecycle != Lifecycle::Detached) => {
                    None
                }
                Ok(_) => Some(Ok(())),
                Err(e) => Some(Err(e)),
            })
            .await;
        if let Ok(result) = gone {
            result?;
        }
        // Its hooks, policies and scheduled actions go with it, as AWS deletes them.
        let hooks = self.hooks_of(name)?;
        let policies = self.policies(Some(name))?;
        let schedules = self.schedules_of(name)?;
        self.store.batch(|b| {
            b.delete(GROUPS, name)?;
            for h in &hooks {
                b.delete(HOOKS, &format!("{name}/{}", h.name))?;
            }
            for p in &policies {
                b.delete(POLICIES, &format!("{name}/{}", p.name))?;
            }
            for s in &schedules {
                b.delete(SCHEDULES, &format!("{name}/{}", s.name))?;
            }
            Ok(())
        })?;
        self.forget_group_alarms(&policies);
        let _ = self.changes.send(name.to_string());
        self.groups.lock().remove(name);
        self.schedules.lock().retain(|(g, _), _| g != name);
        Ok(())
    }

    /// Before a group behind target groups goes, lets targets that other groups (a
    /// replacement group) registered there finish their first health checks, so that the
    /// traffic this group drains has somewhere healthy to go. Bounded (five minutes, AWS
    /// time); a no-op when nothing else is registered or nothing is still `initial`.
    pub(super) async fn hand_over(&self, g: &GroupRecord) {
        let mine: std::collections::HashSet<&str> =
            g.instances.iter().map(|m| m.id.as_str()).collect();
        // Best effort: a store that cannot say ends the wait.
        let Ok(groups) = self.target_groups_of(g) else { return };
        if groups.is_empty() {
            return;
        }
        let mut health = self.elb.subscribe();
        let settled = || {
            let waiting = groups.iter().any(|tg| {
                self.elb.targets(tg).is_ok_and(|targets| {
                    targets.iter().any(|(id, state)| {
                        !mine.contains(id.as_str()) && *state == elb::State::Initial
                    })
                })
            });
            (!waiting).then_some(())
        };
        let _ = self.clock.wait_until(Duration::from_secs(300), &mut health, settled).await;
    }

    /// Waits until the group has its desired capacity in service (what CloudFormation waits
    /// for when no CreationPolicy asks for signals). Fails when launches keep failing.
    pub async fn wait_in_service(&self, name: &str, timeout: Duration) -> Result<(), AsgError> {
        let mut changes = self.subscribe();
        let mut in_service = 0;
        let mut desired = 0;
        let outcome = self
            .clock
            .wait_until(timeout, &mut changes, || {
                let g = match self.group_or_err(name) {
                    Ok(g) => g,
                    Err(e) => return Some(Err(e)),
                };
                in_service =
                    g.instances.iter().filter(|m| m.lifecycle == Lifecycle::InService).count();
                desired = g.desired;
                (in_service >= g.desired as usize).then_some(Ok(()))
            })
            .await;
        match outcome {
            Ok(result) => result,
            Err(clock::Elapsed) => {
                let last = self
                    .activities(name)?
                    .into_iter()
                    .find(|a| a.status == "Failed")
                    .and_then(|a| a.status_message);
                Err(AsgError::validation(format!(
                    "{in_service} of {desired} instances are in service after {}s{}",
                    timeout.as_secs(),
                    last.map(|m| format!(": {m}")).unwrap_or_default()
                )))
            }
        }
    }
}
