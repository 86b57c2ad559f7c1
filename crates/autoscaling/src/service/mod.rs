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
use parking_lot::Mutex;
use store::Store;
use tokio::sync::{Notify, broadcast, mpsc};
use tokio::task::JoinHandle;

use crate::fleet::{Balancer, Compute};
use crate::model::*;

mod groups;
mod hooks;
mod lifecycle;
mod policies;
mod reconcile;
mod refresh;
mod rolling;
mod scheduled;
mod settings;
pub use refresh::refresh_batches;
pub use settings::{METRICS, NOTIFICATION_TYPES};

#[derive(Debug, thiserror::Error)]
pub enum AsgError {
    #[error("{message}")]
    Api { code: &'static str, message: String },
    #[error(transparent)]
    Store(#[from] store::StoreError),
}

impl From<crate::fleet::FleetError> for AsgError {
    fn from(e: crate::fleet::FleetError) -> AsgError {
        match e {
            crate::fleet::FleetError::Refused { code, message } => AsgError::Api { code, message },
            crate::fleet::FleetError::Store(e) => AsgError::Store(e),
        }
    }
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

/// The time in an activity's cause, as AWS writes it there (`2022-05-14T20:11:53Z`, no
/// fraction, unlike the API's timestamps).
fn cause_time(clock: &Clock) -> String {
    clock.now().strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
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

/// A background task that ends when its handle is dropped.
type Task = tokio_util::task::AbortOnDropHandle<()>;

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
    ec2: Arc<dyn Compute>,
    elb: Arc<dyn Balancer>,
    account: Account,
    groups: Mutex<HashMap<String, Rt>>,
    /// The name of each group whose record changed, announced after the change is stored.
    changes: broadcast::Sender<String>,
    /// Serializes read-modify-write of group records.
    records: Mutex<()>,
    hooks: Mutex<HashMap<(String, String), mpsc::UnboundedSender<HookSignal>>>,
    schedules: Mutex<HashMap<(String, String), Task>>,
    /// The running instance refresh of each group, and how to stop it.
    refresh_tasks: Mutex<HashMap<String, (tokio_util::sync::CancellationToken, JoinHandle<()>)>>,
    watcher: Mutex<Option<Task>>,
    /// Where target tracking alarms are made (CloudWatch, given by the region); unset, they
    /// are only named.
    policy_alarms: parking_lot::RwLock<Option<Arc<dyn crate::alarms::PolicyAlarms>>>,
    notifications: parking_lot::RwLock<Option<Arc<dyn crate::alarms::Notifications>>>,
    /// The last signal of each alarm that invoked a policy, by alarm name (a target tracking
    /// scale-in asks whether every policy's Low alarm agrees).
    signals: Mutex<HashMap<String, crate::alarms::AlarmSignal>>,
    stopped: AtomicBool,
    me: Weak<AutoScaling>,
}

impl AutoScaling {
    pub fn new(
        store: Arc<Store>,
        clock: Clock,
        ec2: Arc<dyn Compute>,
        elb: Arc<dyn Balancer>,
        account: Account,
    ) -> Arc<AutoScaling> {
        let this = Arc::new_cyclic(|me| AutoScaling {
            store,
            clock,
            ec2,
            elb,
            account,
            groups: Mutex::new(HashMap::new()),
            changes: broadcast::channel(256).0,
            records: Mutex::new(()),
            hooks: Mutex::new(HashMap::new()),
            schedules: Mutex::new(HashMap::new()),
            refresh_tasks: Mutex::new(HashMap::new()),
            watcher: Mutex::new(None),
            policy_alarms: parking_lot::RwLock::new(None),
            notifications: parking_lot::RwLock::new(None),
            signals: Mutex::new(HashMap::new()),
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
        *self.watcher.lock() = Some(Task::new(task));
    }

    // ---- records ----

    /// Group record changes (the group's name), each announced after it is stored.
    pub fn subscribe(&self) -> broadcast::Receiver<String> {
        self.changes.subscribe()
    }

    pub fn groups(&self) -> Result<Vec<GroupRecord>, AsgError> {
        Ok(self.store.list(GROUPS, "")?.into_iter().map(|(_, g)| g).collect())
    }

    pub fn group(&self, name: &str) -> Result<Option<GroupRecord>, AsgError> {
        Ok(self.store.get(GROUPS, name)?)
    }

    fn group_or_err(&self, name: &str) -> Result<GroupRecord, AsgError> {
        self.group(name)?.ok_or_else(|| {
            AsgError::validation(format!(
                "AutoScalingGroup name not found - AutoScalingGroup {name} not found"
            ))
        })
    }

    /// Changes a group record atomically and announces it once stored; `None` when the group
    /// does not exist. A failed write changes nothing and announces nothing.
    fn update<R>(
        &self,
        name: &str,
        f: impl FnOnce(&mut GroupRecord) -> R,
    ) -> Result<Option<R>, AsgError> {
        let _guard = self.records.lock();
        let Some(mut g) = self.store.get::<GroupRecord>(GROUPS, name)? else { return Ok(None) };
        let r = f(&mut g);
        self.store.put(GROUPS, name, &g)?;
        let _ = self.changes.send(name.to_string());
        Ok(Some(r))
    }

    fn update_member(
        &self,
        group: &str,
        id: &str,
        f: impl FnOnce(&mut Member),
    ) -> Result<(), AsgError> {
        self.update(group, |g| {
            if let Some(m) = g.instances.iter_mut().find(|m| m.id == id) {
                f(m);
            }
        })?;
        Ok(())
    }

    pub fn hooks_of(&self, group: &str) -> Result<Vec<HookRecord>, AsgError> {
        Ok(self.store.list(HOOKS, &format!("{group}/"))?.into_iter().map(|(_, h)| h).collect())
    }

    pub fn activities(&self, group: &str) -> Result<Vec<Activity>, AsgError> {
        let mut list: Vec<Activity> = self
            .store
            .list(ACTIVITIES, &format!("{group}/"))?
            .into_iter()
            .map(|(_, a)| a)
            .collect();
        list.reverse();
        Ok(list)
    }

    /// Records the start of an activity (before what it describes is done).
    fn activity(
        &self,
        group: &str,
        description: String,
        cause: String,
    ) -> Result<Activity, AsgError> {
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
        self.save_activity(&a)?;
        Ok(a)
    }

    fn save_activity(&self, a: &Activity) -> Result<(), AsgError> {
        let key = format!("{}/{}/{}", a.group, a.start, a.id);
        self.store.put(ACTIVITIES, &key, a)?;
        Ok(())
    }

    fn finish(&self, mut a: Activity, ok: bool, message: Option<String>) -> Result<(), AsgError> {
        a.end = Some(clock::iso8601(self.clock.now()));
        a.status = if ok { "Successful".into() } else { "Failed".into() };
        a.status_message = message;
        a.progress = 100;
        self.save_activity(&a)?;
        self.notify_activity(&a);
        Ok(())
    }

    /// Where the groups' notifications go (the region sets it once SNS is up).
    pub fn set_notifications(&self, notifications: Arc<dyn crate::alarms::Notifications>) {
        *self.notifications.write() = Some(notifications);
    }

    /// Tells the group's notification topics of a launch or termination that ended, in the
    /// JSON AWS sends (`autoscaling:EC2_INSTANCE_LAUNCH`, `_TERMINATE`, their `_ERROR`s).
    fn notify_activity(&self, a: &Activity) {
        let Some(sink) = self.notifications.read().clone() else { return };
        let ok = a.status == "Successful";
        let (event, what) = if a.description.starts_with("Launching a new EC2 instance") {
            (
                if ok {
                    "autoscaling:EC2_INSTANCE_LAUNCH"
                } else {
                    "autoscaling:EC2_INSTANCE_LAUNCH_ERROR"
                },
                if ok { "launch" } else { "failed launch" },
            )
        } else if a.description.starts_with("Terminating EC2 instance") {
            (
                if ok {
                    "autoscaling:EC2_INSTANCE_TERMINATE"
                } else {
                    "autoscaling:EC2_INSTANCE_TERMINATE_ERROR"
                },
                if ok { "termination" } else { "failed termination" },
            )
        } else {
            return;
        };
        let Ok(Some(g)) = self.group(&a.group) else { return };
        let topics: Vec<&str> = g
            .notifications
            .iter()
            .filter(|n| n.types.iter().any(|t| t == event))
            .map(|n| n.topic.as_str())
            .collect();
        if topics.is_empty() {
            return;
        }
        let instance = a.description.rsplit(' ').next().unwrap_or_default().to_string();
        let view = self.ec2.instance(&instance).ok().flatten();
        let details = serde_json::json!({
            "Subnet ID": view.as_ref().map(|v| v.subnet_id.clone()),
            "Availability Zone": view.as_ref().map(|v| v.zone.clone()),
        });
        let message = serde_json::json!({
            "Origin": if event.contains("LAUNCH") { "EC2" } else { "AutoScalingGroup" },
            "Destination": if event.contains("LAUNCH") { "AutoScalingGroup" } else { "EC2" },
            "Progress": a.progress,
            "AccountId": self.account.account_id,
            "Description": a.description,
            "RequestId": a.id,
            "EndTime": a.end,
            "AutoScalingGroupARN": g.arn,
            "ActivityId": a.id,
            "StartTime": a.start,
            "Service": "AWS Auto Scaling",
            "Time": a.end,
            "EC2InstanceId": instance,
            "StatusCode": if ok { "InProgress" } else { "Failed" },
            "StatusMessage": a.status_message.clone().unwrap_or_default(),
            "Details": details,
            "AutoScalingGroupName": g.name,
            "Cause": a.cause,
            "Event": event,
        })
        .to_string();
        let subject = format!("Auto Scaling: {what} for group \"{}\"", g.name);
        for topic in topics {
            if let Err(e) = sink.notify(topic, &subject, &message) {
                tracing::warn!(group = g.name, "notification to {topic} not delivered: {e}");
            }
        }
    }

    /// The test notification AWS sends when a notification configuration is put.
    pub(super) fn notify_test(&self, g: &GroupRecord, topic: &str) {
        let Some(sink) = self.notifications.read().clone() else { return };
        let message = serde_json::json!({
            "AccountId": self.account.account_id,
            "RequestId": aws_ids::uuid(),
            "AutoScalingGroupARN": g.arn,
            "AutoScalingGroupName": g.name,
            "Service": "AWS Auto Scaling",
            "Event": "autoscaling:TEST_NOTIFICATION",
            "Time": clock::iso8601(self.clock.now()),
        })
        .to_string();
        let subject = format!("Auto Scaling: test notification for group \"{}\"", g.name);
        if let Err(e) = sink.notify(topic, &subject, &message) {
            tracing::warn!(group = g.name, "test notification to {topic} not delivered: {e}");
        }
    }

    // ---- lifecycle of the service ----

    /// Starts keeping every stored group (after a restart).
    pub fn recover(&self) -> Result<(), AsgError> {
        for g in self.groups()? {
            self.start_group(&g.name)?;
            // An instance refresh interrupted by the restart goes on (a cancel in progress
            // completes).
            if let Some(r) = self.refreshes(&g.name)?.into_iter().find(RefreshRecord::active) {
                if r.status == "Cancelling" {
                    let mut r = r;
                    r.status = "Cancelled".into();
                    r.end = Some(clock::iso8601(self.clock.now()));
                    self.save_refresh(&r)?;
                } else {
                    let rollback = r.status == "RollbackInProgress";
                    self.spawn_refresh(r, rollback);
                }
            }
        }
        Ok(())
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
