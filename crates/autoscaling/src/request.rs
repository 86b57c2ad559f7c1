//! One typed request per Auto Scaling operation, shared by the API (`aws autoscaling ...`) and
//! the CloudFormation providers: both build the same request and call the same `AutoScaling`
//! method, which fills in AWS's defaults and checks it, so a group, hook or policy made either
//! way is the same record.

use crate::model::{CustomizedMetric, Launch, Notification, PredefinedMetric, Step, Tag};

/// CreateAutoScalingGroup / `AWS::AutoScaling::AutoScalingGroup`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct CreateGroup {
    pub name: String,
    /// LaunchTemplate, MixedInstancesPolicy's launch template or LaunchConfigurationName.
    pub launch: Option<Launch>,
    pub min: u32,
    pub max: u32,
    /// Defaults to MinSize.
    pub desired: Option<u32>,
    /// VPCZoneIdentifier.
    pub subnets: Vec<String>,
    pub zones: Vec<String>,
    pub target_groups: Vec<String>,
    pub load_balancers: Vec<String>,
    /// Defaults to `EC2`.
    pub health_check_type: Option<String>,
    /// Defaults to 0.
    pub grace: Option<u64>,
    /// DefaultCooldown (CloudFormation's `Cooldown`); defaults to 300.
    pub cooldown: Option<u64>,
    pub termination_policies: Vec<String>,
    pub protect_new: bool,
    pub tags: Vec<Tag>,
    /// LifecycleHookSpecificationList.
    pub hooks: Vec<HookSpec>,
    pub notifications: Vec<Notification>,
}

/// UpdateAutoScalingGroup (and a CloudFormation update): what is `None` stays as it is. A
/// desired capacity left out is kept, moved into the new bounds.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct UpdateGroup {
    pub name: String,
    pub launch: Option<Launch>,
    pub min: Option<u32>,
    pub max: Option<u32>,
    pub desired: Option<u32>,
    pub subnets: Option<Vec<String>>,
    pub zones: Option<Vec<String>>,
    pub health_check_type: Option<String>,
    pub grace: Option<u64>,
    pub cooldown: Option<u64>,
    pub termination_policies: Option<Vec<String>>,
    pub protect_new: Option<bool>,
    /// Not in UpdateAutoScalingGroup (Attach/DetachLoadBalancerTargetGroups), but a template
    /// update changes them.
    pub target_groups: Option<Vec<String>>,
    pub load_balancers: Option<Vec<String>>,
    pub tags: Option<Vec<Tag>>,
    pub notifications: Option<Vec<Notification>>,
}

impl From<CreateGroup> for UpdateGroup {
    /// A CloudFormation update names every property again: all of them are set.
    fn from(c: CreateGroup) -> UpdateGroup {
        UpdateGroup {
            name: c.name,
            launch: c.launch,
            min: Some(c.min),
            max: Some(c.max),
            desired: c.desired,
            subnets: Some(c.subnets),
            zones: Some(c.zones),
            health_check_type: Some(c.health_check_type.unwrap_or_else(|| "EC2".into())),
            grace: Some(c.grace.unwrap_or(0)),
            cooldown: Some(c.cooldown.unwrap_or(300)),
            termination_policies: Some(c.termination_policies),
            protect_new: Some(c.protect_new),
            target_groups: Some(c.target_groups),
            load_balancers: Some(c.load_balancers),
            tags: Some(c.tags),
            notifications: Some(c.notifications),
        }
    }
}

/// PutLifecycleHook / `AWS::AutoScaling::LifecycleHook` / a LifecycleHookSpecification.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HookSpec {
    pub name: String,
    pub transition: String,
    /// Defaults to 3600.
    pub heartbeat_timeout: Option<u64>,
    /// Defaults to `ABANDON`.
    pub default_result: Option<String>,
    pub notification_target: Option<String>,
    pub role: Option<String>,
    pub metadata: Option<String>,
}

/// PutScalingPolicy / `AWS::AutoScaling::ScalingPolicy`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PutPolicy {
    pub group: String,
    pub name: String,
    /// Defaults to `SimpleScaling`.
    pub policy_type: Option<String>,
    pub adjustment_type: Option<String>,
    pub scaling_adjustment: Option<i32>,
    pub min_adjustment_magnitude: Option<i32>,
    pub cooldown: Option<u64>,
    pub metric_aggregation_type: Option<String>,
    pub steps: Vec<Step>,
    pub estimated_instance_warmup: Option<u64>,
    pub target_tracking: Option<TargetTrackingSpec>,
    /// Defaults to true.
    pub enabled: Option<bool>,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct TargetTrackingSpec {
    pub predefined: Option<PredefinedMetric>,
    pub customized: Option<CustomizedMetric>,
    pub target_value: Option<f64>,
    pub disable_scale_in: bool,
}

/// ExecutePolicy. For a step policy, the metric value and threshold choose the step.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ExecutePolicy {
    pub group: Option<String>,
    pub policy: String,
    pub honor_cooldown: bool,
    pub metric_value: Option<f64>,
    pub breach_threshold: Option<f64>,
}
