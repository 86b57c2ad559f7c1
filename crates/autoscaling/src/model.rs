//! What Auto Scaling keeps: groups with their instances (lifecycle state and health), lifecycle
//! hooks, scheduled actions and the activity history.

use serde::{Deserialize, Serialize};

pub const GROUPS: &str = "asg_groups";
pub const HOOKS: &str = "asg_hooks";
pub const SCHEDULES: &str = "asg_scheduled_actions";
pub const ACTIVITIES: &str = "asg_activities";
/// Why an instance was found unhealthy (the cause of its replacement), by instance id.
pub const CAUSES: &str = "asg_causes";
pub const POLICIES: &str = "asg_policies";

/// Where a group's instances come from.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Launch {
    /// A launch template (id or name) and version (`$Latest`, `$Default` or a number).
    Template {
        id: String,
        version: Option<String>,
    },
    Configuration {
        name: String,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Lifecycle {
    Pending,
    #[serde(rename = "Pending:Wait")]
    PendingWait,
    InService,
    Terminating,
    #[serde(rename = "Terminating:Wait")]
    TerminatingWait,
    Standby,
    Detached,
}

impl Lifecycle {
    pub fn as_str(self) -> &'static str {
        match self {
            Lifecycle::Pending => "Pending",
            Lifecycle::PendingWait => "Pending:Wait",
            Lifecycle::InService => "InService",
            Lifecycle::Terminating => "Terminating",
            Lifecycle::TerminatingWait => "Terminating:Wait",
            Lifecycle::Standby => "Standby",
            Lifecycle::Detached => "Detached",
        }
    }

    /// Counts toward the group's capacity (launching or in service).
    pub fn counts(self) -> bool {
        matches!(self, Lifecycle::Pending | Lifecycle::PendingWait | Lifecycle::InService)
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Member {
    pub id: String,
    pub zone: String,
    pub subnet: Option<String>,
    pub lifecycle: Lifecycle,
    pub healthy: bool,
    /// What it was launched from: `lt-...:N` or `lc:NAME` (outdated when the group's differs).
    pub launched_from: String,
    pub protected: bool,
    /// AWS time (seconds since the epoch) of the launch and of entering service.
    pub launched_at: i64,
    pub in_service_at: Option<i64>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tag {
    pub key: String,
    pub value: String,
    pub propagate: bool,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GroupRecord {
    pub name: String,
    pub arn: String,
    pub min: u32,
    pub max: u32,
    pub desired: u32,
    pub launch: Launch,
    pub subnets: Vec<String>,
    pub zones: Vec<String>,
    pub target_groups: Vec<String>,
    /// Classic load balancer names.
    pub load_balancers: Vec<String>,
    /// `EC2` or `ELB`.
    pub health_check_type: String,
    pub grace: u64,
    pub cooldown: u64,
    pub termination_policies: Vec<String>,
    pub suspended: Vec<String>,
    pub tags: Vec<Tag>,
    pub protect_new: bool,
    pub instances: Vec<Member>,
    pub created: String,
    /// Recorded until SNS exists.
    #[serde(default)]
    pub notifications: Vec<Notification>,
    /// `Delete in progress` while a forced deletion runs.
    #[serde(default)]
    pub status: Option<String>,
    /// Recorded (no warmed instances are kept).
    #[serde(default)]
    pub warm_pool: Option<WarmPool>,
    /// Metrics collection (EnableMetricsCollection), recorded.
    #[serde(default)]
    pub metrics: Vec<String>,
    /// The last simple-scaling policy run: when (AWS seconds) and the cooldown it started.
    #[serde(default)]
    pub scaled: Option<Scaled>,
    /// DefaultInstanceWarmup (seconds); unset falls back to a policy's EstimatedInstanceWarmup,
    /// then DefaultCooldown. When set, every new instance warms, not only scale-out ones.
    #[serde(default)]
    pub default_instance_warmup: Option<u64>,
    /// When (AWS seconds) a dynamic scaling policy last raised the desired capacity: the
    /// instances launched since are its warming instances.
    #[serde(default)]
    pub scaled_out_at: Option<i64>,
    /// Why the desired capacity last changed, while the launches or terminations it asks for
    /// are made: their activities' causes start with it.
    #[serde(default)]
    pub scaling_cause: Option<ScalingCause>,
}

/// The cause of a desired-capacity change (`At ... a monitor alarm ... changing the desired
/// capacity from 2 to 3.`), for the desired capacity it set.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScalingCause {
    pub desired: u32,
    pub cause: String,
}

/// A notification configuration: an SNS topic and the event types it is told of.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Notification {
    pub topic: String,
    pub types: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WarmPool {
    pub max_prepared: Option<i32>,
    pub min_size: u32,
    /// `Stopped` (default), `Running` or `Hibernated`.
    pub state: String,
    pub reuse_on_scale_in: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Scaled {
    pub at: i64,
    pub cooldown: u64,
}

impl GroupRecord {
    pub fn suspended(&self, process: &str) -> bool {
        self.suspended.iter().any(|p| p == process)
    }

    /// Instances that count toward capacity.
    pub fn active(&self) -> impl Iterator<Item = &Member> {
        self.instances.iter().filter(|m| m.lifecycle.counts())
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HookRecord {
    pub group: String,
    pub name: String,
    /// `autoscaling:EC2_INSTANCE_LAUNCHING` or `autoscaling:EC2_INSTANCE_TERMINATING`.
    pub transition: String,
    pub heartbeat_timeout: u64,
    /// `CONTINUE` or `ABANDON`.
    pub default_result: String,
    #[serde(default)]
    pub notification_target: Option<String>,
    #[serde(default)]
    pub role: Option<String>,
    #[serde(default)]
    pub metadata: Option<String>,
}

impl HookRecord {
    pub fn launching(&self) -> bool {
        self.transition == "autoscaling:EC2_INSTANCE_LAUNCHING"
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScheduleRecord {
    pub group: String,
    pub name: String,
    pub recurrence: Option<String>,
    pub start: Option<String>,
    pub end: Option<String>,
    pub time_zone: Option<String>,
    pub min: Option<u32>,
    pub max: Option<u32>,
    pub desired: Option<u32>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Activity {
    pub id: String,
    pub group: String,
    pub description: String,
    pub cause: String,
    pub start: String,
    pub end: Option<String>,
    /// `InProgress`, `Successful`, `Failed`, `Cancelled`.
    pub status: String,
    pub status_message: Option<String>,
    pub progress: u8,
}

pub const REFRESHES: &str = "asg_instance_refreshes";

/// An instance refresh (StartInstanceRefresh) and how far it got.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RefreshRecord {
    pub id: String,
    pub group: String,
    /// `Pending`, `InProgress`, `Successful`, `Failed`, `Cancelling`, `Cancelled`,
    /// `RollbackInProgress`, `RollbackSuccessful`, `RollbackFailed`.
    pub status: String,
    pub status_reason: Option<String>,
    pub start: String,
    pub end: Option<String>,
    pub percentage: u32,
    pub instances_to_update: u32,
    pub preferences: RefreshPreferences,
    /// The launch source to move to (the group's own when the request named none).
    pub desired: Launch,
    /// The group's launch source before the refresh, for a rollback.
    pub previous: Launch,
}

impl RefreshRecord {
    /// Still running (not in a final state).
    pub fn active(&self) -> bool {
        matches!(
            self.status.as_str(),
            "Pending" | "InProgress" | "Cancelling" | "RollbackInProgress"
        )
    }
}

/// Preferences of an instance refresh, with AWS's defaults.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RefreshPreferences {
    pub min_healthy: u32,
    pub max_healthy: Option<u32>,
    /// Seconds; None falls back to the group's health check grace period.
    pub warmup: Option<u64>,
    pub checkpoints: Vec<u32>,
    pub checkpoint_delay: u64,
    pub skip_matching: bool,
    pub auto_rollback: bool,
}

impl Default for RefreshPreferences {
    fn default() -> RefreshPreferences {
        RefreshPreferences {
            min_healthy: 90,
            max_healthy: None,
            warmup: None,
            checkpoints: Vec::new(),
            checkpoint_delay: 3600,
            skip_matching: false,
            auto_rollback: false,
        }
    }
}

/// A scaling policy (PutScalingPolicy, AWS::AutoScaling::ScalingPolicy), with AWS's defaults
/// filled in as DescribePolicies shows them.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PolicyRecord {
    pub group: String,
    pub name: String,
    pub arn: String,
    /// `SimpleScaling`, `StepScaling`, `TargetTrackingScaling` (or `PredictiveScaling`).
    pub policy_type: String,
    pub adjustment_type: Option<String>,
    pub scaling_adjustment: Option<i32>,
    pub min_adjustment_magnitude: Option<i32>,
    pub cooldown: Option<u64>,
    pub metric_aggregation_type: Option<String>,
    pub steps: Vec<Step>,
    pub estimated_instance_warmup: Option<u64>,
    pub target_tracking: Option<TargetTracking>,
    pub enabled: bool,
    /// The alarms that invoke it: for target tracking the ones Auto Scaling owns
    /// (`TargetTracking-<group>-AlarmHigh-<uuid>`, `...-AlarmLow-...`), made through
    /// `alarms::PolicyAlarms` when the region gives one.
    pub alarms: Vec<AlarmRef>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Step {
    pub lower: Option<f64>,
    pub upper: Option<f64>,
    pub adjustment: i32,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TargetTracking {
    pub predefined: Option<PredefinedMetric>,
    pub customized: Option<CustomizedMetric>,
    pub target_value: f64,
    pub disable_scale_in: bool,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PredefinedMetric {
    pub metric_type: String,
    pub resource_label: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CustomizedMetric {
    pub metric_name: String,
    pub namespace: String,
    pub dimensions: Vec<(String, String)>,
    pub statistic: String,
    pub unit: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AlarmRef {
    pub name: String,
    pub arn: String,
}
