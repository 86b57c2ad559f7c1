//! The EC2 Auto Scaling Query API (version 2011-01-01): groups and their instances, capacity,
//! health, standby, attach/detach, protection, suspended processes, lifecycle actions,
//! activities and scheduled actions — what `aws autoscaling` users run.

use autoscaling::AutoScaling;
use autoscaling::model::{GroupRecord, Member};

use crate::error::ApiError;
use crate::query::QueryInput;
use crate::xml::XmlOut;

pub const XMLNS: &str = "http://autoscaling.amazonaws.com/doc/2011-01-01/";
pub const VERSION: &str = "2011-01-01";

const ACTIONS: &[&str] = &[
    "DescribeAutoScalingGroups",
    "DescribeAutoScalingInstances",
    "SetDesiredCapacity",
    "UpdateAutoScalingGroup",
    "SetInstanceHealth",
    "TerminateInstanceInAutoScalingGroup",
    "EnterStandby",
    "ExitStandby",
    "AttachInstances",
    "DetachInstances",
    "SetInstanceProtection",
    "SuspendProcesses",
    "ResumeProcesses",
    "CompleteLifecycleAction",
    "RecordLifecycleActionHeartbeat",
    "DescribeLifecycleHooks",
    "DescribeScalingActivities",
    "DescribeScheduledActions",
    "StartInstanceRefresh",
    "DescribeInstanceRefreshes",
    "CancelInstanceRefresh",
    "RollbackInstanceRefresh",
];

/// EC2 Auto Scaling in the endpoint's registry.
pub struct Api(pub std::sync::Arc<AutoScaling>);

crate::registry::query_service!("autoscaling", |api, action, q, request_id| handle(
    &api.0, action, q, request_id
)
.await);

pub fn handles(action: &str) -> bool {
    ACTIONS.contains(&action)
}

impl From<autoscaling::AsgError> for ApiError {
    fn from(e: autoscaling::AsgError) -> ApiError {
        ApiError::service(e.code(), e.to_string())
    }
}

fn launch_xml(x: &mut XmlOut, asg: &AutoScaling, g: &GroupRecord) {
    match &g.launch {
        autoscaling::model::Launch::Template { id, version } => {
            x.open("LaunchTemplate", None);
            x.text("LaunchTemplateId", id);
            x.text("Version", version.as_deref().unwrap_or("$Default"));
            x.close();
        }
        autoscaling::model::Launch::Configuration { name } => {
            x.text("LaunchConfigurationName", name);
        }
    }
    let _ = asg;
}

fn member_xml(x: &mut XmlOut, g: &GroupRecord, m: &Member, with_group: bool) {
    x.text("InstanceId", &m.id);
    if with_group {
        x.text("AutoScalingGroupName", &g.name);
    }
    x.text("AvailabilityZone", &m.zone)
        .text("LifecycleState", m.lifecycle.as_str())
        .text("HealthStatus", if m.healthy { "Healthy" } else { "Unhealthy" })
        .bool("ProtectedFromScaleIn", m.protected)
        .text("InstanceType", "t3.micro");
    if let Some((lt, version)) =
        m.launched_from.split_once(':').filter(|(a, _)| a.starts_with("lt-"))
    {
        x.open("LaunchTemplate", None)
            .text("LaunchTemplateId", lt)
            .text("Version", version)
            .close();
    } else if let Some(lc) = m.launched_from.strip_prefix("lc:") {
        x.text("LaunchConfigurationName", lc);
    }
}

fn group_xml(x: &mut XmlOut, asg: &AutoScaling, g: &GroupRecord) {
    x.text("AutoScalingGroupName", &g.name).text("AutoScalingGroupARN", &g.arn);
    launch_xml(x, asg, g);
    x.text("MinSize", &g.min.to_string())
        .text("MaxSize", &g.max.to_string())
        .text("DesiredCapacity", &g.desired.to_string())
        .text("DefaultCooldown", &g.cooldown.to_string());
    x.strings("AvailabilityZones", &g.zones);
    x.strings("LoadBalancerNames", &g.load_balancers);
    x.strings("TargetGroupARNs", &g.target_groups);
    x.text("HealthCheckType", &g.health_check_type)
        .text("HealthCheckGracePeriod", &g.grace.to_string());
    x.members("Instances", &g.instances, |x, m| member_xml(x, g, m, false));
    x.text("CreatedTime", &g.created);
    x.members("SuspendedProcesses", &g.suspended, |x, p| {
        x.text("ProcessName", p).text("SuspensionReason", "User suspended at a local time");
    });
    x.text("VPCZoneIdentifier", &g.subnets.join(","));
    x.members("Tags", &g.tags, |x, t| {
        x.text("ResourceId", &g.name)
            .text("ResourceType", "auto-scaling-group")
            .text("Key", &t.key)
            .text("Value", &t.value)
            .bool("PropagateAtLaunch", t.propagate);
    });
    let policies = if g.termination_policies.is_empty() {
        vec!["Default".to_string()]
    } else {
        g.termination_policies.clone()
    };
    x.strings("TerminationPolicies", &policies);
    x.bool("NewInstancesProtectedFromScaleIn", g.protect_new);
}

fn group_name(q: &QueryInput) -> Result<&str, ApiError> {
    q.required("AutoScalingGroupName").map_err(ApiError::validation)
}

fn number(q: &QueryInput, key: &str) -> Result<Option<u32>, ApiError> {
    match q.get(key) {
        None => Ok(None),
        Some(v) => v
            .parse()
            .map(Some)
            .map_err(|_| ApiError::validation(format!("Invalid value for {key}: {v}"))),
    }
}

/// `Preferences.*` of StartInstanceRefresh, with AWS's defaults.
fn refresh_preferences(q: &QueryInput) -> Result<autoscaling::model::RefreshPreferences, ApiError> {
    let mut p = autoscaling::model::RefreshPreferences::default();
    if let Some(v) = number(q, "Preferences.MinHealthyPercentage")? {
        p.min_healthy = v;
    }
    p.max_healthy = number(q, "Preferences.MaxHealthyPercentage")?;
    p.warmup = number(q, "Preferences.InstanceWarmup")?.map(u64::from);
    p.checkpoints = q
        .list("Preferences.CheckpointPercentages")
        .iter()
        .map(|c| {
            c.parse()
                .map_err(|_| ApiError::validation(format!("Invalid checkpoint percentage: {c}")))
        })
        .collect::<Result<_, _>>()?;
    if let Some(v) = number(q, "Preferences.CheckpointDelay")? {
        p.checkpoint_delay = u64::from(v);
    }
    p.skip_matching = q.bool("Preferences.SkipMatching");
    p.auto_rollback = q.bool("Preferences.AutoRollback");
    Ok(p)
}

pub async fn handle(
    asg: &AutoScaling,
    action: &str,
    q: &QueryInput,
    request_id: &str,
) -> Result<String, ApiError> {
    let mut x = XmlOut::new();
    x.open(&format!("{action}Response"), Some(XMLNS));
    x.open(&format!("{action}Result"), None);
    match action {
        "DescribeAutoScalingGroups" => {
            let names = q.list("AutoScalingGroupNames");
            let groups: Vec<GroupRecord> = asg
                .groups()?
                .into_iter()
                .filter(|g| names.is_empty() || names.contains(&g.name))
                .collect();
            x.members("AutoScalingGroups", &groups, |x, g| group_xml(x, asg, g));
        }
        "DescribeAutoScalingInstances" => {
            let ids = q.list("InstanceIds");
            let mut rows = Vec::new();
            for g in asg.groups()? {
                for m in &g.instances {
                    if ids.is_empty() || ids.contains(&m.id) {
                        rows.push((g.clone(), m.clone()));
                    }
                }
            }
            x.members("AutoScalingInstances", &rows, |x, (g, m)| member_xml(x, g, m, true));
        }
        "SetDesiredCapacity" => {
            let desired = number(q, "DesiredCapacity")?
                .ok_or_else(|| ApiError::validation("DesiredCapacity is required"))?;
            asg.set_desired(group_name(q)?, desired)?;
        }
        "UpdateAutoScalingGroup" => {
            let name = group_name(q)?;
            let mut g = asg.group(name)?.ok_or_else(|| {
                ApiError::validation(format!(
                    "AutoScalingGroup name not found - AutoScalingGroup {name} not found"
                ))
            })?;
            if let Some(v) = number(q, "MinSize")? {
                g.min = v;
            }
            if let Some(v) = number(q, "MaxSize")? {
                g.max = v;
            }
            if let Some(v) = number(q, "DesiredCapacity")? {
                g.desired = v;
            }
            if let Some(v) = number(q, "HealthCheckGracePeriod")? {
                g.grace = u64::from(v);
            }
            if let Some(v) = q.get("HealthCheckType") {
                g.health_check_type = v.to_string();
            }
            let policies = q.list("TerminationPolicies");
            if !policies.is_empty() {
                g.termination_policies = policies;
            }
            if let Some(v) = q.get("VPCZoneIdentifier") {
                g.subnets =
                    v.split(',').map(|s| s.trim().to_string()).filter(|s| !s.is_empty()).collect();
                g.zones.clear();
            }
            if let Some(lt) = q
                .get("LaunchTemplate.LaunchTemplateId")
                .or_else(|| q.get("LaunchTemplate.LaunchTemplateName"))
            {
                g.launch = autoscaling::model::Launch::Template {
                    id: lt.to_string(),
                    version: q.get("LaunchTemplate.Version").map(str::to_string),
                };
            }
            asg.update_group(g)?;
        }
        "SetInstanceHealth" => {
            let id = q.required("InstanceId").map_err(ApiError::validation)?;
            let healthy = match q.required("HealthStatus").map_err(ApiError::validation)? {
                "Healthy" => true,
                "Unhealthy" => false,
                other => {
                    return Err(ApiError::validation(format!("Invalid health status: {other}")));
                }
            };
            let respect = q.get("ShouldRespectGracePeriod").is_none_or(|v| v == "true");
            asg.set_instance_health(id, healthy, respect)?;
        }
        "TerminateInstanceInAutoScalingGroup" => {
            let id = q.required("InstanceId").map_err(ApiError::validation)?;
            let decrement =
                q.required("ShouldDecrementDesiredCapacity").map_err(ApiError::validation)?
                    == "true";
            let a = asg.terminate_instance(id, decrement)?;
            x.open("Activity", None)
                .text("ActivityId", &a.id)
                .text("AutoScalingGroupName", &a.group)
                .text("Description", &a.description)
                .text("Cause", &a.cause)
                .text("StartTime", &a.start)
                .text("StatusCode", &a.status)
                .text("Progress", &a.progress.to_string())
                .close();
        }
        "EnterStandby" | "ExitStandby" => {
            let decrement = q.get("ShouldDecrementDesiredCapacity") == Some("true");
            for id in q.list("InstanceIds") {
                asg.standby(&id, action == "EnterStandby", decrement)?;
            }
            x.open("Activities", None).close();
        }
        "AttachInstances" => asg.attach(group_name(q)?, &q.list("InstanceIds"))?,
        "DetachInstances" => {
            let decrement =
                q.required("ShouldDecrementDesiredCapacity").map_err(ApiError::validation)?
                    == "true";
            asg.detach(group_name(q)?, &q.list("InstanceIds"), decrement)?;
            x.open("Activities", None).close();
        }
        "SetInstanceProtection" => {
            let protect =
                q.required("ProtectedFromScaleIn").map_err(ApiError::validation)? == "true";
            asg.set_protection(group_name(q)?, &q.list("InstanceIds"), protect)?;
        }
        "SuspendProcesses" | "ResumeProcesses" => {
            asg.suspend(group_name(q)?, &q.list("ScalingProcesses"), action == "SuspendProcesses")?;
        }
        "CompleteLifecycleAction" => {
            let hook = q.required("LifecycleHookName").map_err(ApiError::validation)?;
            let id = q.required("InstanceId").map_err(ApiError::validation)?;
            let result = q.required("LifecycleActionResult").map_err(ApiError::validation)?;
            asg.complete_lifecycle_action(group_name(q)?, hook, id, result)?;
        }
        "RecordLifecycleActionHeartbeat" => {
            let hook = q.required("LifecycleHookName").map_err(ApiError::validation)?;
            let id = q.required("InstanceId").map_err(ApiError::validation)?;
            asg.record_heartbeat(group_name(q)?, hook, id)?;
        }
        "DescribeLifecycleHooks" => {
            let hooks = asg.hooks_of(group_name(q)?)?;
            x.members("LifecycleHooks", &hooks, |x, h| {
                x.text("LifecycleHookName", &h.name)
                    .text("AutoScalingGroupName", &h.group)
                    .text("LifecycleTransition", &h.transition)
                    .text("HeartbeatTimeout", &h.heartbeat_timeout.to_string())
                    .text("GlobalTimeout", &(h.heartbeat_timeout * 100).min(172_800).to_string())
                    .text("DefaultResult", &h.default_result);
            });
        }
        "DescribeScalingActivities" => {
            let name = q.get("AutoScalingGroupName");
            let mut activities = Vec::new();
            for g in asg.groups()?.into_iter().filter(|g| name.is_none_or(|n| n == g.name)) {
                activities.extend(asg.activities(&g.name)?);
            }
            x.members("Activities", &activities, |x, a| {
                x.text("ActivityId", &a.id)
                    .text("AutoScalingGroupName", &a.group)
                    .text("Description", &a.description)
                    .text("Cause", &a.cause)
                    .text("StartTime", &a.start)
                    .opt("EndTime", a.end.as_deref())
                    .text("StatusCode", &a.status)
                    .opt("StatusMessage", a.status_message.as_deref())
                    .text("Progress", &a.progress.to_string());
            });
        }
        "DescribeScheduledActions" => {
            let name = q.get("AutoScalingGroupName");
            let mut actions = Vec::new();
            for g in asg.groups()?.into_iter().filter(|g| name.is_none_or(|n| n == g.name)) {
                actions.extend(asg.schedules_of(&g.name)?);
            }
            x.members("ScheduledUpdateGroupActions", &actions, |x, s| {
                x.text("AutoScalingGroupName", &s.group).text("ScheduledActionName", &s.name);
                x.opt("Recurrence", s.recurrence.as_deref())
                    .opt("StartTime", s.start.as_deref())
                    .opt("EndTime", s.end.as_deref())
                    .opt("TimeZone", s.time_zone.as_deref());
                x.opt("MinSize", s.min.map(|v| v.to_string()).as_deref())
                    .opt("MaxSize", s.max.map(|v| v.to_string()).as_deref())
                    .opt("DesiredCapacity", s.desired.map(|v| v.to_string()).as_deref());
            });
        }
        "StartInstanceRefresh" => {
            if let Some(strategy) = q.get("Strategy")
                && strategy != "Rolling"
            {
                return Err(ApiError::validation(format!(
                    "Value '{strategy}' at 'strategy' failed to satisfy constraint: Member must satisfy enum value set: [Rolling]"
                )));
            }
            let prefs = refresh_preferences(q)?;
            let desired = q
                .get("DesiredConfiguration.LaunchTemplate.LaunchTemplateId")
                .or_else(|| q.get("DesiredConfiguration.LaunchTemplate.LaunchTemplateName"))
                .map(|id| autoscaling::model::Launch::Template {
                    id: id.to_string(),
                    version: q
                        .get("DesiredConfiguration.LaunchTemplate.Version")
                        .map(str::to_string),
                });
            let id = asg.start_refresh(group_name(q)?, desired, prefs)?;
            x.text("InstanceRefreshId", &id);
        }
        "DescribeInstanceRefreshes" => {
            let ids = q.list("InstanceRefreshIds");
            let refreshes: Vec<_> = asg
                .refreshes(group_name(q)?)?
                .into_iter()
                .filter(|r| ids.is_empty() || ids.contains(&r.id))
                .collect();
            x.members("InstanceRefreshes", &refreshes, |x, r| {
                x.text("InstanceRefreshId", &r.id)
                    .text("AutoScalingGroupName", &r.group)
                    .text("Status", &r.status)
                    .opt("StatusReason", r.status_reason.as_deref())
                    .text("StartTime", &r.start)
                    .opt("EndTime", r.end.as_deref())
                    .text("PercentageComplete", &r.percentage.to_string())
                    .text("InstancesToUpdate", &r.instances_to_update.to_string());
                let p = &r.preferences;
                x.open("Preferences", None)
                    .text("MinHealthyPercentage", &p.min_healthy.to_string())
                    .opt("MaxHealthyPercentage", p.max_healthy.map(|m| m.to_string()).as_deref())
                    .opt("InstanceWarmup", p.warmup.map(|w| w.to_string()).as_deref());
                let checkpoints: Vec<String> = p.checkpoints.iter().map(u32::to_string).collect();
                if !checkpoints.is_empty() {
                    x.strings("CheckpointPercentages", &checkpoints);
                    x.text("CheckpointDelay", &p.checkpoint_delay.to_string());
                }
                x.bool("SkipMatching", p.skip_matching)
                    .bool("AutoRollback", p.auto_rollback)
                    .text("ScaleInProtectedInstances", "Wait")
                    .text("StandbyInstances", "Wait")
                    .close();
                if let autoscaling::model::Launch::Template { id, version } = &r.desired {
                    x.open("DesiredConfiguration", None)
                        .open("LaunchTemplate", None)
                        .text("LaunchTemplateId", id)
                        .opt("Version", version.as_deref())
                        .close()
                        .close();
                }
            });
        }
        "CancelInstanceRefresh" => {
            let id = asg.cancel_refresh(group_name(q)?)?;
            x.text("InstanceRefreshId", &id);
        }
        "RollbackInstanceRefresh" => {
            let id = asg.rollback_refresh(group_name(q)?)?;
            x.text("InstanceRefreshId", &id);
        }
        other => return Err(ApiError::invalid_action(other)),
    }
    x.close();
    x.open("ResponseMetadata", None).text("RequestId", request_id).close();
    Ok(x.finish())
}
