//! The Auto Scaling service: groups kept at their desired capacity by a reconciler per group,
//! instance lifecycles (launch, lifecycle hooks, registration with target groups, draining,
//! termination), health replacement, zone balance, scheduled actions and rolling updates.
//! Every timer goes through the clock.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use aws_ids::Account;
use clock::Clock;
use ec2::{Ec2, InstanceState, LaunchRequest, LaunchSpec};
use elb::Elb;
use elb::model::Registration;
use indexmap::IndexMap;
use parking_lot::Mutex;
use store::Store;
use tokio::sync::{Notify, mpsc};
use tokio::task::JoinHandle;

use crate::model::*;
use crate::policy;

mod refresh;
pub use refresh::refresh_batches;

#[derive(Debug, thiserror::Error)]
pub enum AsgError {
    #[error("{message}")]
    Api { code: &'static str, message: String },
    #[error(transparent)]
    Store(#[from] store::StoreError),
}

impl AsgError {
    pub fn validation(message: impl Into<String>) -> AsgError {
        AsgError::Api { code: "ValidationError", message: message.into() }
    }

    pub fn code(&self) -> &'static str {
        match self {
            AsgError::Api { code, .. } => code,
            AsgError::Store(_) => "InternalFailure",
        }
    }
}

/// How often a group looks at itself without being woken (AWS time).
const TICK: Duration = Duration::from_secs(10);
/// How long a zone where launches failed is avoided before it is tried again (AWS time).
const ZONE_BACKOFF: Duration = Duration::from_secs(60);

/// What ends a lifecycle hook's wait.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HookSignal {
    Complete(String),
    Heartbeat,
}

struct Task(JoinHandle<()>);

impl Drop for Task {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Waits for the resource signals of a batch's new instances (a rolling update with
/// WaitOnResourceSignals): `reset` forgets earlier signals before a batch launches, `wait(n)`
/// waits for the batch's `n` signals and says why not when they did not come.
pub struct SignalGate {
    pub reset: Box<dyn Fn() + Send + Sync>,
    #[allow(clippy::type_complexity)]
    pub wait: Box<
        dyn Fn(usize) -> std::pin::Pin<Box<dyn Future<Output = Result<(), String>> + Send>>
            + Send
            + Sync,
    >,
}

/// How a group's instances are replaced: a CloudFormation rolling update or an instance
/// refresh.
pub struct Replace {
    pub max_batch: u32,
    pub min_in_service: u32,
    /// When terminating first would leave fewer than `min_in_service`, launch first (up to
    /// MaxSize).
    pub surge: bool,
    /// Surge above MaxSize (an instance refresh with MaxHealthyPercentage above 100 does).
    pub exceed_max: bool,
    /// Waited after each batch (PauseTime).
    pub pause: Duration,
    /// Waited after each batch's new instances are healthy (InstanceWarmup).
    pub warmup: Duration,
    /// Instances replaced even though launched from the current source (a refresh that does
    /// not skip matching instances).
    pub also: std::collections::HashSet<String>,
    pub signals: Option<SignalGate>,
    /// Ends the loop at the next batch boundary (CancelInstanceRefresh).
    pub stop: tokio_util::sync::CancellationToken,
    /// Told (replaced, total) before each batch.
    #[allow(clippy::type_complexity)]
    pub progress: Option<Box<dyn Fn(u32, u32) + Send + Sync>>,
    /// Percentages at which to wait `checkpoint_delay`.
    pub checkpoints: Vec<u32>,
    pub checkpoint_delay: Duration,
    /// Ends "an instance was taken out of service in response to ...".
    pub reason: &'static str,
}

impl Default for Replace {
    fn default() -> Replace {
        Replace {
            max_batch: 1,
            min_in_service: 0,
            surge: false,
            exceed_max: false,
            pause: Duration::ZERO,
            warmup: Duration::ZERO,
            also: Default::default(),
            signals: None,
            stop: Default::default(),
            progress: None,
            checkpoints: Vec::new(),
            checkpoint_delay: Duration::ZERO,
            reason: "a rolling update",
        }
    }
}

struct Rt {
    wake: Arc<Notify>,
    /// One reconcile pass (or rolling-update step) at a time.
    busy: Arc<tokio::sync::Mutex<()>>,
    _task: Task,
    /// Zones where a launch failed, and until when (AWS seconds) they are avoided.
    avoid: HashMap<String, i64>,
    /// Zones the next launches should go to (a rolling update replacing instances there).
    prefer: Vec<String>,
}

pub struct AutoScaling {
    store: Arc<Store>,
    clock: Clock,
    ec2: Arc<Ec2>,
    elb: Arc<Elb>,
    account: Account,
    groups: Mutex<HashMap<String, Rt>>,
    /// Serializes read-modify-write of group records.
    records: Mutex<()>,
    hooks: Mutex<HashMap<(String, String), mpsc::UnboundedSender<HookSignal>>>,
    schedules: Mutex<HashMap<(String, String), Task>>,
    /// The running instance refresh of each group, and how to stop it.
    refresh_tasks: Mutex<HashMap<String, (tokio_util::sync::CancellationToken, JoinHandle<()>)>>,
    watcher: Mutex<Option<Task>>,
    stopped: AtomicBool,
    me: Weak<AutoScaling>,
}

impl AutoScaling {
    pub fn new(
        store: Arc<Store>,
        clock: Clock,
        ec2: Arc<Ec2>,
        elb: Arc<Elb>,
        account: Account,
    ) -> Arc<AutoScaling> {
        let this = Arc::new_cyclic(|me| AutoScaling {
            store,
            clock,
            ec2,
            elb,
            account,
            groups: Mutex::new(HashMap::new()),
            records: Mutex::new(()),
            hooks: Mutex::new(HashMap::new()),
            schedules: Mutex::new(HashMap::new()),
            refresh_tasks: Mutex::new(HashMap::new()),
            watcher: Mutex::new(None),
            stopped: AtomicBool::new(false),
            me: me.clone(),
        });
        this.watch();
        this
    }

    pub fn account(&self) -> &Account {
        &self.account
    }

    pub fn clock(&self) -> &Clock {
        &self.clock
    }

    fn now(&self) -> i64 {
        self.clock.now().as_second()
    }

    /// Instance and target-health changes wake the groups at once.
    fn watch(&self) {
        let me = self.me.clone();
        let mut instances = self.ec2.subscribe();
        let mut health = self.elb.subscribe();
        let task = tokio::spawn(async move {
            loop {
                tokio::select! {
                    r = instances.recv() => if let Err(tokio::sync::broadcast::error::RecvError::Closed) = r { return },
                    r = health.recv() => if let Err(tokio::sync::broadcast::error::RecvError::Closed) = r { return },
                }
                let Some(this) = me.upgrade() else { return };
                for rt in this.groups.lock().values() {
                    rt.wake.notify_one();
                }
            }
        });
        *self.watcher.lock() = Some(Task(task));
    }

    // ---- records ----

    pub fn groups(&self) -> Vec<GroupRecord> {
        self.store.list(GROUPS, "").unwrap_or_default().into_iter().map(|(_, g)| g).collect()
    }

    pub fn group(&self, name: &str) -> Option<GroupRecord> {
        self.store.get(GROUPS, name).ok().flatten()
    }

    fn group_or_err(&self, name: &str) -> Result<GroupRecord, AsgError> {
        self.group(name).ok_or_else(|| {
            AsgError::validation(format!(
                "AutoScalingGroup name not found - AutoScalingGroup {name} not found"
            ))
        })
    }

    /// Changes a group record atomically; returns the result.
    fn update<R>(&self, name: &str, f: impl FnOnce(&mut GroupRecord) -> R) -> Option<R> {
        let _guard = self.records.lock();
        let mut g: GroupRecord = self.store.get(GROUPS, name).ok().flatten()?;
        let r = f(&mut g);
        if let Err(e) = self.store.put(GROUPS, name, &g) {
            tracing::error!("cannot save group {name}: {e}");
        }
        Some(r)
    }

    fn update_member(&self, group: &str, id: &str, f: impl FnOnce(&mut Member)) {
        self.update(group, |g| {
            if let Some(m) = g.instances.iter_mut().find(|m| m.id == id) {
                f(m);
            }
        });
    }

    pub fn hooks_of(&self, group: &str) -> Vec<HookRecord> {
        self.store
            .list(HOOKS, &format!("{group}/"))
            .unwrap_or_default()
            .into_iter()
            .map(|(_, h)| h)
            .collect()
    }

    pub fn activities(&self, group: &str) -> Vec<Activity> {
        let mut list: Vec<Activity> = self
            .store
            .list(ACTIVITIES, &format!("{group}/"))
            .unwrap_or_default()
            .into_iter()
            .map(|(_, a)| a)
            .collect();
        list.reverse();
        list
    }

    fn activity(&self, group: &str, description: String, cause: String) -> Activity {
        let start = clock::iso8601(self.clock.now());
        let a = Activity {
            id: aws_ids::uuid(),
            group: group.to_string(),
            description,
            cause,
            start: start.clone(),
            end: None,
            status: "InProgress".into(),
            status_message: None,
            progress: 0,
        };
        self.save_activity(&a);
        a
    }

    fn save_activity(&self, a: &Activity) {
        let key = format!("{}/{}/{}", a.group, a.start, a.id);
        let _ = self.store.put(ACTIVITIES, &key, a);
    }

    fn finish(&self, mut a: Activity, ok: bool, message: Option<String>) {
        a.end = Some(clock::iso8601(self.clock.now()));
        a.status = if ok { "Successful".into() } else { "Failed".into() };
        a.status_message = message;
        a.progress = 100;
        self.save_activity(&a);
    }

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

    /// Creates a group and starts keeping it.
    pub fn create_group(&self, mut record: GroupRecord) -> Result<GroupRecord, AsgError> {
        if self.group(&record.name).is_some() {
            return Err(AsgError::Api {
                code: "AlreadyExists",
                message: format!(
                    "AutoScalingGroup by this name already exists - A group with the name {} already exists",
                    record.name
                ),
            });
        }
        AutoScaling::check_sizes(record.min, record.max, record.desired)?;
        if record.zones.is_empty() {
            record.zones = self.zones_of(&record.subnets);
        }
        if record.zones.is_empty() {
            return Err(AsgError::validation(
                "At least one Availability Zone or VPC Subnet is required.",
            ));
        }
        self.launch_key(&record.launch)?;
        record.instances.clear();
        self.store.put(GROUPS, &record.name, &record)?;
        self.start_group(&record.name);
        Ok(record)
    }

    fn zones_of(&self, subnets: &[String]) -> Vec<String> {
        let mut zones = Vec::new();
        for s in subnets {
            let zone = self
                .ec2
                .subnet(s)
                .map(|r| r.zone)
                .unwrap_or_else(|| format!("{}a", self.account.region));
            if !zones.contains(&zone) {
                zones.push(zone);
            }
        }
        zones
    }

    /// What an instance launched now from `launch` is launched from (`lt-...:N`, `lc:NAME`).
    pub fn launch_key(&self, launch: &Launch) -> Result<String, AsgError> {
        match launch {
            Launch::Template { id, version } => {
                let lt = self.ec2.launch_template(id).ok_or_else(|| {
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
                self.ec2.launch_configuration(name).ok_or_else(|| AsgError::validation(format!("Launch configuration name not found - Launch configuration {name} not found")))?;
                Ok(format!("lc:{name}"))
            }
        }
    }

    /// Changes a group's settings (sizes, launch source, zones, target groups, ...).
    pub fn update_group(&self, record: GroupRecord) -> Result<(), AsgError> {
        AutoScaling::check_sizes(record.min, record.max, record.desired)?;
        self.launch_key(&record.launch)?;
        let old = self.group_or_err(&record.name)?;
        let zones = if record.zones.is_empty() {
            self.zones_of(&record.subnets)
        } else {
            record.zones.clone()
        };
        self.update(&record.name, |g| {
            let instances = std::mem::take(&mut g.instances);
            *g = GroupRecord { instances, zones, ..record.clone() };
        });
        // Target groups added or removed: register or deregister the instances in service.
        let in_service: Vec<String> = old
            .instances
            .iter()
            .filter(|m| m.lifecycle == Lifecycle::InService)
            .map(|m| m.id.clone())
            .collect();
        for tg in record.target_groups.iter().filter(|t| !old.target_groups.contains(t)) {
            let regs: Vec<Registration> = in_service
                .iter()
                .map(|id| Registration { id: id.clone(), port: None, zone: None })
                .collect();
            if !regs.is_empty() {
                let _ = self.elb.register_targets(tg, &regs);
            }
        }
        for tg in old.target_groups.iter().filter(|t| !record.target_groups.contains(t)) {
            let regs: Vec<Registration> = in_service
                .iter()
                .map(|id| Registration { id: id.clone(), port: None, zone: None })
                .collect();
            let _ = self.elb.deregister_targets(tg, &regs);
        }
        self.wake(&record.name);
        Ok(())
    }

    fn start_group(&self, name: &str) {
        if self.stopped.load(Ordering::SeqCst) {
            return;
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
                    if this.group(&group).is_none() {
                        return;
                    }
                    let _pass = b.lock().await;
                    this.reconcile(&group).await;
                }
                tokio::select! {
                    _ = w.notified() => {}
                    _ = clock.sleep(TICK) => {}
                }
            }
        });
        self.groups.lock().insert(
            name.to_string(),
            Rt { wake, busy, _task: Task(task), avoid: HashMap::new(), prefer: Vec::new() },
        );
        for s in self.schedules_of(name) {
            self.start_schedule(s);
        }
    }

    pub fn wake(&self, name: &str) {
        if let Some(rt) = self.groups.lock().get(name) {
            rt.wake.notify_one();
        }
    }

    fn busy(&self, name: &str) -> Option<Arc<tokio::sync::Mutex<()>>> {
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
        self.update(name, |g| g.desired = desired);
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
        });
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
        });
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
        self.update_member(&group, id, |m| m.healthy = healthy);
        self.wake(&group);
        Ok(())
    }

    /// The group and record of an instance.
    pub fn member_of(&self, id: &str) -> Result<(String, Member), AsgError> {
        self.groups()
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
            self.update(&group, |g| g.desired -= 1);
        }
        let cause = format!(
            "At {} instance {id} was taken out of service in response to a user request{}.",
            clock::iso8601(self.clock.now()),
            if decrement { ", shrinking the capacity" } else { "" }
        );
        let activity = self.activity(&group, format!("Terminating EC2 instance: {id}"), cause);
        self.begin_termination(&group, &member, activity.clone());
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
                self.update(&group, |g| g.desired -= 1);
            }
            for tg in self.target_groups_of(&g) {
                let _ = self.elb.deregister_targets(
                    &tg,
                    &[Registration { id: id.to_string(), port: None, zone: None }],
                );
            }
            self.update_member(&group, id, |m| m.lifecycle = Lifecycle::Standby);
        } else {
            if member.lifecycle != Lifecycle::Standby {
                return Err(AsgError::validation(format!("The instance {id} is not in Standby.")));
            }
            if g.desired < g.max {
                self.update(&group, |g| g.desired += 1);
            }
            self.update_member(&group, id, |m| m.lifecycle = Lifecycle::Pending);
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
                .instance(id)
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
            });
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
            for tg in self.target_groups_of(&g) {
                let _ = self.elb.deregister_targets(
                    &tg,
                    &[Registration { id: id.clone(), port: None, zone: None }],
                );
            }
            self.update(group, |g| {
                g.instances.retain(|m| &m.id != id);
                if decrement && g.desired > g.min {
                    g.desired -= 1;
                }
            });
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
            self.update_member(group, id, |m| m.protected = protected);
        }
        Ok(())
    }

    /// Deletes a group: its instances are terminated (drained first), then the record goes.
    pub async fn delete_group(&self, name: &str) -> Result<(), AsgError> {
        let g = self.group_or_err(name)?;
        self.hand_over(&g).await;
        self.update(name, |g| {
            g.min = 0;
            g.max = 0;
            g.desired = 0;
        });
        self.wake(name);
        let deadline = self.clock.deadline(Duration::from_secs(3600));
        loop {
            match self.group(name) {
                Some(g) if g.instances.iter().any(|m| m.lifecycle != Lifecycle::Detached) => {}
                _ => break,
            }
            if tokio::time::Instant::now() > deadline {
                break;
            }
            self.wake(name);
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        self.groups.lock().remove(name);
        self.schedules.lock().retain(|(g, _), _| g != name);
        self.store.delete(GROUPS, name)?;
        for h in self.hooks_of(name) {
            let _ = self.store.delete(HOOKS, &format!("{name}/{}", h.name));
        }
        Ok(())
    }

    /// Before a group behind target groups goes, lets targets that other groups (a
    /// replacement group) registered there finish their first health checks, so that the
    /// traffic this group drains has somewhere healthy to go. Bounded (five minutes, AWS
    /// time); a no-op when nothing else is registered or nothing is still `initial`.
    async fn hand_over(&self, g: &GroupRecord) {
        let mine: std::collections::HashSet<&str> =
            g.instances.iter().map(|m| m.id.as_str()).collect();
        let groups = self.target_groups_of(g);
        if groups.is_empty() {
            return;
        }
        let deadline = self.clock.deadline(Duration::from_secs(300));
        loop {
            let waiting =
                groups.iter().any(|tg| {
                    self.elb.target_health(tg).unwrap_or_default().iter().any(|t| {
                        !mine.contains(t.id.as_str()) && t.health.state == elb::State::Initial
                    })
                });
            if !waiting || tokio::time::Instant::now() > deadline {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits until the group has its desired capacity in service (what CloudFormation waits
    /// for when no CreationPolicy asks for signals). Fails when launches keep failing.
    pub async fn wait_in_service(&self, name: &str, timeout: Duration) -> Result<(), AsgError> {
        let deadline = self.clock.deadline(timeout);
        loop {
            let g = self.group_or_err(name)?;
            let in_service =
                g.instances.iter().filter(|m| m.lifecycle == Lifecycle::InService).count();
            if in_service >= g.desired as usize {
                return Ok(());
            }
            if tokio::time::Instant::now() > deadline {
                let last = self
                    .activities(name)
                    .into_iter()
                    .find(|a| a.status == "Failed")
                    .and_then(|a| a.status_message);
                return Err(AsgError::validation(format!(
                    "{in_service} of {} instances are in service after {}s{}",
                    g.desired,
                    timeout.as_secs(),
                    last.map(|m| format!(": {m}")).unwrap_or_default()
                )));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    // ---- the reconciler ----

    async fn reconcile(&self, name: &str) {
        let Some(g) = self.group(name) else { return };
        let now = self.now();
        // Health: EC2 state always; target health with HealthCheckType ELB after the grace period.
        if !g.suspended("HealthCheck") {
            for m in g.instances.iter().filter(|m| m.lifecycle.counts() && m.healthy) {
                let state = self.ec2.instance(&m.id).map(|i| i.state);
                let ec2_ok = matches!(state, Some(InstanceState::Pending | InstanceState::Running));
                let cause = if !ec2_ok {
                    Some("an EC2 health check indicating it has been terminated or stopped")
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
                    self.update_member(name, &m.id, |m| m.healthy = false);
                    let text = format!(
                        "At {} an instance was taken out of service in response to {cause}.",
                        clock::iso8601(self.clock.now())
                    );
                    let _ = self.store.put(CAUSES, &m.id, &text);
                }
            }
        }
        let Some(g) = self.group(name) else { return };
        // Replace unhealthy instances: terminate now, the launch follows below.
        if !g.suspended("ReplaceUnhealthy") && !g.suspended("Terminate") {
            for m in g.instances.iter().filter(|m| m.lifecycle.counts() && !m.healthy) {
                let cause: String = self
                    .store
                                        .get(CAUSES, &m.id)
                    .ok()
                    .flatten()
                    .unwrap_or_else(|| format!("At {} an instance was taken out of service in response to a health check.", clock::iso8601(self.clock.now())));
                let activity =
                    self.activity(name, format!("Terminating EC2 instance: {}", m.id), cause);
                self.begin_termination(name, m, activity);
            }
        }
        let Some(g) = self.group(name) else { return };
        let active: Vec<&Member> = g.active().collect();
        let desired = g.desired as usize;
        let avoid = self.avoided(name, now);
        if active.len() < desired && !g.suspended("Launch") {
            let mut placed: Vec<Member> = active.iter().map(|m| (*m).clone()).collect();
            for _ in active.len()..desired {
                let cause = format!(
                    "At {} an instance was started in response to a difference between desired and actual capacity, increasing the capacity from {} to {}.",
                    clock::iso8601(self.clock.now()),
                    placed.len(),
                    placed.len() + 1
                );
                match self.launch_one(&g, &placed, &avoid, cause).await {
                    Some(m) => placed.push(m),
                    None => break,
                }
            }
        } else if active.len() > desired && !g.suspended("Terminate") {
            // Scale in once launches have settled.
            if active
                .iter()
                .any(|m| matches!(m.lifecycle, Lifecycle::Pending | Lifecycle::PendingWait))
            {
                return;
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
                    "At {} an instance was taken out of service in response to a difference between desired and actual capacity, shrinking the capacity from {} to {}.",
                    clock::iso8601(self.clock.now()),
                    remaining.len() + 1,
                    remaining.len()
                );
                let activity =
                    self.activity(name, format!("Terminating EC2 instance: {}", victim.id), cause);
                self.begin_termination(name, &victim, activity);
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
                    clock::iso8601(self.clock.now())
                );
                let placed: Vec<Member> = active.iter().map(|m| (*m).clone()).collect();
                let others: Vec<String> = g.zones.iter().filter(|z| *z != low).cloned().collect();
                self.launch_one(&g, &placed, &others, cause).await;
            }
        }
    }

    fn avoided(&self, name: &str, now: i64) -> Vec<String> {
        let mut groups = self.groups.lock();
        let Some(rt) = groups.get_mut(name) else { return Vec::new() };
        rt.avoid.retain(|_, until| *until > now);
        rt.avoid.keys().cloned().collect()
    }

    fn avoid_zone(&self, name: &str, zone: &str) {
        let until = self.now() + ZONE_BACKOFF.as_secs() as i64;
        if let Some(rt) = self.groups.lock().get_mut(name) {
            rt.avoid.insert(zone.to_string(), until);
        }
    }

    /// The target groups a group's instances register with (Classic load balancers' included).
    fn target_groups_of(&self, g: &GroupRecord) -> Vec<String> {
        let mut out = g.target_groups.clone();
        for lb in &g.load_balancers {
            out.extend(
                self.elb
                    .target_groups()
                    .into_iter()
                    .filter(|t| t.arn.starts_with(&format!("classic/{lb}/")))
                    .map(|t| t.arn),
            );
        }
        out
    }

    /// Launches one instance into the best zone; tries the other zones when a launch fails.
    async fn launch_one(
        &self,
        g: &GroupRecord,
        placed: &[Member],
        avoid: &[String],
        cause: String,
    ) -> Option<Member> {
        let launch_key = self.launch_key(&g.launch).ok()?;
        let mut avoid = avoid.to_vec();
        loop {
            let refs: Vec<&Member> = placed.iter().collect();
            let preferred = self.groups.lock().get_mut(&g.name).and_then(|rt| {
                let i = rt.prefer.iter().position(|z| !avoid.contains(z))?;
                Some(rt.prefer.remove(i))
            });
            let zone = match preferred {
                Some(z) => z,
                None => policy::launch_zone(&g.zones, &refs, &avoid)?.clone(),
            };
            let subnets: Vec<&String> = g
                .subnets
                .iter()
                .filter(|s| self.ec2.subnet(s).is_none_or(|r| r.zone == zone))
                .collect();
            let subnet =
                (!subnets.is_empty()).then(|| subnets[fastrand::usize(..subnets.len())].clone());
            let activity =
                self.activity(&g.name, "Launching a new EC2 instance".into(), cause.clone());
            let mut ports: Vec<u16> = Vec::new();
            for tg in self.target_groups_of(g) {
                if let Some(t) = self.elb.target_group(&tg) {
                    ports.push(t.port);
                    if let Some(p) = t.health_check.port {
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
                    let lt = self.ec2.launch_template(id);
                    (
                        LaunchSpec::Template { id_or_name: id.clone(), version: version.clone() },
                        lt.and_then(|l| l.logical_id),
                    )
                }
                Launch::Configuration { name } => {
                    let lc = self.ec2.launch_configuration(name);
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
                    self.update(&g.name, |g| g.instances.push(member.clone()));
                    self.save_activity(&a);
                    self.spawn_enter_service_with(&g.name, &record.id, Some(a));
                    return Some(member);
                }
                Err(e) => {
                    let message = e.to_string();
                    tracing::warn!(group = %g.name, zone, "launch failed: {message}");
                    self.finish(
                        activity,
                        false,
                        Some(format!("{message} Launching EC2 instance failed.")),
                    );
                    self.avoid_zone(&g.name, &zone);
                    avoid.push(zone);
                }
            }
        }
    }

    fn spawn_enter_service(&self, group: &str, id: &str) {
        self.spawn_enter_service_with(group, id, None);
    }

    /// Pending → (launch hooks) → registered with the target groups → InService.
    fn spawn_enter_service_with(&self, group: &str, id: &str, activity: Option<Activity>) {
        let me = self.me.clone();
        let (group, id) = (group.to_string(), id.to_string());
        tokio::spawn(async move {
            let Some(this) = me.upgrade() else { return };
            let hooks: Vec<HookRecord> =
                this.hooks_of(&group).into_iter().filter(HookRecord::launching).collect();
            for hook in hooks {
                this.update_member(&group, &id, |m| m.lifecycle = Lifecycle::PendingWait);
                let result = this.wait_hook(&hook, &id).await;
                if result != "CONTINUE" {
                    // ABANDON: the instance is terminated and replaced.
                    tracing::info!(
                        group,
                        instance = id,
                        hook = hook.name,
                        "launch abandoned by lifecycle hook"
                    );
                    this.update_member(&group, &id, |m| m.lifecycle = Lifecycle::Terminating);
                    let _ = this.ec2.terminate(&id).await;
                    this.update(&group, |g| g.instances.retain(|m| m.id != id));
                    if let Some(a) = activity {
                        this.finish(a, false, Some(format!("Instance failed to complete user's Lifecycle Action: Lifecycle Action with token for instance {id} was abandoned.")));
                    }
                    this.wake(&group);
                    return;
                }
                this.update_member(&group, &id, |m| m.lifecycle = Lifecycle::Pending);
            }
            let Some(g) = this.group(&group) else { return };
            if !g.suspended("AddToLoadBalancer") {
                for tg in this.target_groups_of(&g) {
                    if let Err(e) = this.elb.register_targets(
                        &tg,
                        &[Registration { id: id.clone(), port: None, zone: None }],
                    ) {
                        tracing::warn!(group, instance = id, "cannot register with {tg}: {e}");
                    }
                }
            }
            let now = this.now();
            this.update_member(&group, &id, |m| {
                if matches!(m.lifecycle, Lifecycle::Pending | Lifecycle::PendingWait) {
                    m.lifecycle = Lifecycle::InService;
                    m.in_service_at = Some(now);
                }
            });
            if let Some(a) = activity {
                this.finish(a, true, None);
            }
            this.wake(&group);
        });
    }

    /// InService → Terminating (deregistered, drained) → (terminate hooks) → terminated.
    fn begin_termination(&self, group: &str, member: &Member, activity: Activity) {
        self.update_member(group, &member.id, |m| m.lifecycle = Lifecycle::Terminating);
        let me = self.me.clone();
        let (group, id) = (group.to_string(), member.id.clone());
        tokio::spawn(async move {
            let Some(this) = me.upgrade() else { return };
            if let Some(g) = this.group(&group) {
                let groups = this.target_groups_of(&g);
                for tg in &groups {
                    if this.elb.target_health(tg).is_ok_and(|h| h.iter().any(|t| t.id == id)) {
                        let _ = this.elb.deregister_targets(
                            tg,
                            &[Registration { id: id.clone(), port: None, zone: None }],
                        );
                    }
                }
                this.elb.wait_drained(&id).await;
            }
            let hooks: Vec<HookRecord> =
                this.hooks_of(&group).into_iter().filter(|h| !h.launching()).collect();
            for hook in hooks {
                this.update_member(&group, &id, |m| m.lifecycle = Lifecycle::TerminatingWait);
                this.wait_hook(&hook, &id).await;
            }
            let result = this.ec2.terminate(&id).await;
            this.update(&group, |g| g.instances.retain(|m| m.id != id));
            this.finish(activity, result.is_ok(), result.err().map(|e| e.to_string()));
            this.wake(&group);
        });
    }

    // ---- lifecycle hooks ----

    pub fn put_hook(&self, hook: HookRecord) -> Result<(), AsgError> {
        self.group_or_err(&hook.group)?;
        if !(30..=7200).contains(&hook.heartbeat_timeout) {
            return Err(AsgError::validation(
                "HeartbeatTimeout must be between 30 and 7200 seconds",
            ));
        }
        if !matches!(
            hook.transition.as_str(),
            "autoscaling:EC2_INSTANCE_LAUNCHING" | "autoscaling:EC2_INSTANCE_TERMINATING"
        ) {
            return Err(AsgError::validation(format!(
                "Invalid Lifecycle Transition: {}",
                hook.transition
            )));
        }
        self.store.put(HOOKS, &format!("{}/{}", hook.group, hook.name), &hook)?;
        Ok(())
    }

    pub fn delete_hook(&self, group: &str, name: &str) -> Result<(), AsgError> {
        self.store.delete(HOOKS, &format!("{group}/{name}"))?;
        Ok(())
    }

    /// Waits for CompleteLifecycleAction (or the heartbeat timeout: the default result).
    async fn wait_hook(&self, hook: &HookRecord, id: &str) -> String {
        let (tx, mut rx) = mpsc::unbounded_channel();
        let key = (id.to_string(), hook.name.clone());
        self.hooks.lock().insert(key.clone(), tx);
        let timeout = Duration::from_secs(hook.heartbeat_timeout);
        // The overall cap: 100 heartbeat timeouts or 48 hours.
        let cap =
            self.clock.deadline(timeout.saturating_mul(100).min(Duration::from_secs(48 * 3600)));
        let result = loop {
            tokio::select! {
                signal = rx.recv() => match signal {
                    Some(HookSignal::Complete(r)) => break r,
                    Some(HookSignal::Heartbeat) => {
                        if tokio::time::Instant::now() > cap { break hook.default_result.clone() }
                        continue;
                    }
                    None => break hook.default_result.clone(),
                },
                _ = self.clock.sleep(timeout) => break hook.default_result.clone(),
            }
        };
        self.hooks.lock().remove(&key);
        result
    }

    /// CompleteLifecycleAction.
    pub fn complete_lifecycle_action(
        &self,
        group: &str,
        hook: &str,
        id: &str,
        result: &str,
    ) -> Result<(), AsgError> {
        if !matches!(result, "CONTINUE" | "ABANDON") {
            return Err(AsgError::validation("LifecycleActionResult must be CONTINUE or ABANDON"));
        }
        self.group_or_err(group)?;
        let hooks = self.hooks.lock();
        let tx = hooks.get(&(id.to_string(), hook.to_string())).ok_or_else(|| {
            AsgError::validation(format!("No active Lifecycle Action found with instance ID {id}"))
        })?;
        let _ = tx.send(HookSignal::Complete(result.to_string()));
        Ok(())
    }

    /// RecordLifecycleActionHeartbeat: the timeout starts again.
    pub fn record_heartbeat(&self, group: &str, hook: &str, id: &str) -> Result<(), AsgError> {
        self.group_or_err(group)?;
        let hooks = self.hooks.lock();
        let tx = hooks.get(&(id.to_string(), hook.to_string())).ok_or_else(|| {
            AsgError::validation(format!("No active Lifecycle Action found with instance ID {id}"))
        })?;
        let _ = tx.send(HookSignal::Heartbeat);
        Ok(())
    }

    // ---- scheduled actions ----

    pub fn schedules_of(&self, group: &str) -> Vec<ScheduleRecord> {
        self.store
            .list(SCHEDULES, &format!("{group}/"))
            .unwrap_or_default()
            .into_iter()
            .map(|(_, s)| s)
            .collect()
    }

    pub fn put_schedule(&self, s: ScheduleRecord) -> Result<(), AsgError> {
        self.group_or_err(&s.group)?;
        if let Some(r) = &s.recurrence {
            crate::schedule::parse(r).map_err(AsgError::validation)?;
        }
        if let Some(tz) = &s.time_zone {
            jiff::tz::TimeZone::get(tz)
                .map_err(|_| AsgError::validation(format!("Invalid time zone: {tz}")))?;
        }
        if s.recurrence.is_none() && s.start.is_none() {
            return Err(AsgError::validation("Either StartTime or Recurrence must be specified"));
        }
        self.store.put(SCHEDULES, &format!("{}/{}", s.group, s.name), &s)?;
        self.start_schedule(s);
        Ok(())
    }

    pub fn delete_schedule(&self, group: &str, name: &str) -> Result<(), AsgError> {
        self.schedules.lock().remove(&(group.to_string(), name.to_string()));
        self.store.delete(SCHEDULES, &format!("{group}/{name}"))?;
        Ok(())
    }

    fn start_schedule(&self, s: ScheduleRecord) {
        let me = self.me.clone();
        let clock = self.clock.clone();
        let key = (s.group.clone(), s.name.clone());
        let task = tokio::spawn(async move {
            let mut after = clock.now();
            loop {
                let Some(next) = crate::schedule::next_fire(&s, after) else {
                    // Past its EndTime (or a one-off that ran): the action is removed.
                    if let Some(this) = me.upgrade() {
                        let _ = this.store.delete(SCHEDULES, &format!("{}/{}", s.group, s.name));
                    }
                    return;
                };
                let wait = next.duration_since(clock.now());
                let wait = Duration::try_from(wait).unwrap_or(Duration::ZERO);
                clock.sleep(wait).await;
                let Some(this) = me.upgrade() else { return };
                let Some(g) = this.group(&s.group) else { return };
                if !g.suspended("ScheduledActions") {
                    let cause = format!(
                        "At {} a scheduled action update of AutoScalingGroup constraints to min: {}, max: {}, desired: {} changing the desired capacity from {} to {}.",
                        clock::iso8601(clock.now()),
                        s.min.unwrap_or(g.min),
                        s.max.unwrap_or(g.max),
                        s.desired.map_or("-".into(), |d| d.to_string()),
                        g.desired,
                        s.desired.unwrap_or(g.desired)
                    );
                    let result = this.set_sizes(&s.group, s.min, s.max, s.desired);
                    let a = this.activity(
                        &s.group,
                        format!("Executing scheduled action {}", s.name),
                        cause,
                    );
                    this.finish(a, result.is_ok(), result.err().map(|e| e.to_string()));
                }
                after = next;
            }
        });
        self.schedules.lock().insert(key, Task(task));
    }

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
            let healthy_new = self.healthy_new(&g, &obsolete);
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
                // Obsolete instances still launching: let them settle.
                self.wake(name);
                tokio::time::sleep(Duration::from_millis(50)).await;
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
                self.update(name, |g| g.desired += victims.len() as u32);
                self.wake(name);
                let stopped = self
                    .settle_batch(name, plan, &obsolete, victims.len(), healthy_new, deadline)
                    .await?;
                if stopped {
                    // The surge ends with the loop.
                    self.update(name, |g| {
                        g.desired = g.desired.saturating_sub(victims.len() as u32)
                    });
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
                    });
                }
                let ids: Vec<&str> = victims.iter().map(|m| m.id.as_str()).collect();
                tracing::info!(group = name, "Terminating instance(s) {ids:?}.");
                for v in &victims {
                    let cause = format!(
                        "At {} an instance was taken out of service in response to {}.",
                        clock::iso8601(self.clock.now()),
                        plan.reason
                    );
                    let a =
                        self.activity(name, format!("Terminating EC2 instance: {}", v.id), cause);
                    self.begin_termination(name, v, a);
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
    async fn settle_batch(
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
    fn obsolete_victims(
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
    fn healthy_new(&self, g: &GroupRecord, obsolete: &(dyn Fn(&Member) -> bool + Sync)) -> usize {
        let groups = self.target_groups_of(g);
        g.instances
            .iter()
            .filter(|m| !obsolete(m) && m.lifecycle == Lifecycle::InService)
            .filter(|m| {
                groups.is_empty() || self.elb.instance_health(&m.id) == Some(elb::State::Healthy)
            })
            .count()
    }

    /// Waits until `count` new instances are in service and healthy.
    async fn wait_healthy_new(
        &self,
        name: &str,
        obsolete: &(dyn Fn(&Member) -> bool + Sync),
        count: usize,
        deadline: tokio::time::Instant,
        stop: &tokio_util::sync::CancellationToken,
    ) -> Result<(), AsgError> {
        loop {
            if stop.is_cancelled() {
                return Ok(());
            }
            let g = self.group_or_err(name)?;
            let ready = self.healthy_new(&g, obsolete);
            if ready >= count {
                return Ok(());
            }
            if tokio::time::Instant::now() > deadline {
                return Err(AsgError::validation(format!(
                    "Replacing the instances of {name} timed out: {ready} of {count} new instances are healthy"
                )));
            }
            self.wake(name);
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    // ---- lifecycle of the service ----

    /// Starts keeping every stored group (after a restart).
    pub fn recover(&self) {
        for g in self.groups() {
            self.start_group(&g.name);
            // An instance refresh interrupted by the restart goes on (a cancel in progress
            // completes).
            if let Some(r) = self.refreshes(&g.name).into_iter().find(RefreshRecord::active) {
                if r.status == "Cancelling" {
                    let mut r = r;
                    r.status = "Cancelled".into();
                    r.end = Some(clock::iso8601(self.clock.now()));
                    self.save_refresh(&r);
                } else {
                    let rollback = r.status == "RollbackInProgress";
                    self.spawn_refresh(r, rollback);
                }
            }
        }
    }

    pub fn shutdown(&self) {
        self.stopped.store(true, Ordering::SeqCst);
        self.groups.lock().clear();
        self.schedules.lock().clear();
        for (_, (token, task)) in self.refresh_tasks.lock().drain() {
            token.cancel();
            task.abort();
        }
        *self.watcher.lock() = None;
    }
}
