//! The EC2 Auto Scaling Query API (version 2011-01-01): groups (create, update, delete) and
//! their instances, capacity, health, standby, attach/detach, protection, suspended processes,
//! launch configurations, scaling policies, scheduled actions, lifecycle hooks and actions,
//! notification configurations, tags, warm pools, metrics collection, instance refreshes,
//! activities and the Describe*Types lists — what `aws autoscaling` users run. Parameters
//! become the typed requests of `autoscaling::request` (the ones CloudFormation's provider
//! builds too); Describe calls page with NextToken/MaxRecords as Auto Scaling does.

use autoscaling::AutoScaling;
use autoscaling::model::{GroupRecord, Launch, Member, Notification, Step, Tag};
use autoscaling::request::{
    CreateGroup, ExecutePolicy, HookSpec, PutPolicy, TargetTrackingSpec, UpdateGroup,
};
use base64::Engine as _;
use serde_json::{Value as Json, json};

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
    "CreateAutoScalingGroup",
    "DeleteAutoScalingGroup",
    "CreateLaunchConfiguration",
    "DescribeLaunchConfigurations",
    "DeleteLaunchConfiguration",
    "PutScalingPolicy",
    "DescribePolicies",
    "DeletePolicy",
    "ExecutePolicy",
    "PutScheduledUpdateGroupAction",
    "BatchPutScheduledUpdateGroupAction",
    "DeleteScheduledAction",
    "BatchDeleteScheduledAction",
    "PutLifecycleHook",
    "DeleteLifecycleHook",
    "PutNotificationConfiguration",
    "DescribeNotificationConfigurations",
    "DeleteNotificationConfiguration",
    "CreateOrUpdateTags",
    "DeleteTags",
    "DescribeTags",
    "PutWarmPool",
    "DescribeWarmPool",
    "DeleteWarmPool",
    "DescribeAccountLimits",
    "DescribeAdjustmentTypes",
    "DescribeTerminationPolicyTypes",
    "DescribeLifecycleHookTypes",
    "DescribeAutoScalingNotificationTypes",
    "DescribeScalingProcessTypes",
    "DescribeMetricCollectionTypes",
    "EnableMetricsCollection",
    "DisableMetricsCollection",
];

/// Actions whose answer has no `...Result` element (botocore: no output shape).
const NO_RESULT: &[&str] = &[
    "AttachInstances",
    "CreateAutoScalingGroup",
    "CreateLaunchConfiguration",
    "CreateOrUpdateTags",
    "DeleteAutoScalingGroup",
    "DeleteLaunchConfiguration",
    "DeleteNotificationConfiguration",
    "DeletePolicy",
    "DeleteScheduledAction",
    "DeleteTags",
    "DisableMetricsCollection",
    "EnableMetricsCollection",
    "ExecutePolicy",
    "PutNotificationConfiguration",
    "PutScheduledUpdateGroupAction",
    "ResumeProcesses",
    "SetDesiredCapacity",
    "SetInstanceHealth",
    "SuspendProcesses",
    "UpdateAutoScalingGroup",
];

const PROCESSES: [&str; 9] = [
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

/// EC2 Auto Scaling in the endpoint's registry.
pub struct Api(pub std::sync::Arc<AutoScaling>);

crate::registry::query_service!("autoscaling", |api, action, q, request_id| handle(
    &api.0, action, q, request_id
)
.await);

/// Every action it answers (COVERAGE.md).
pub fn actions() -> &'static [&'static str] {
    ACTIONS
}

pub fn handles(action: &str) -> bool {
    ACTIONS.contains(&action)
}

impl From<autoscaling::AsgError> for ApiError {
    fn from(e: autoscaling::AsgError) -> ApiError {
        ApiError::service(e.code(), e.to_string())
    }
}

fn launch_xml(x: &mut XmlOut, asg: &AutoScaling, g: &GroupRecord) -> Result<(), ApiError> {
    match &g.launch {
        Launch::Template { id, version } => {
            let (id, name) = asg.launch_template_names(id)?.unwrap_or((id.clone(), id.clone()));
            x.open("LaunchTemplate", None);
            x.text("LaunchTemplateId", &id);
            x.text("LaunchTemplateName", &name);
            x.text("Version", version.as_deref().unwrap_or("$Default"));
            x.close();
        }
        Launch::Configuration { name } => {
            x.text("LaunchConfigurationName", name);
        }
    }
    Ok(())
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

fn group_xml(x: &mut XmlOut, asg: &AutoScaling, g: &GroupRecord) -> Result<(), ApiError> {
    x.text("AutoScalingGroupName", &g.name).text("AutoScalingGroupARN", &g.arn);
    launch_xml(x, asg, g)?;
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
    x.members("EnabledMetrics", &g.metrics, |x, m| {
        x.text("Metric", m).text("Granularity", "1Minute");
    });
    x.opt("Status", g.status.as_deref());
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
    if let Some(w) = &g.warm_pool {
        warm_pool_xml(x, w);
    }
    Ok(())
}

fn warm_pool_xml(x: &mut XmlOut, w: &autoscaling::model::WarmPool) {
    x.open("WarmPoolConfiguration", None)
        .opt("MaxGroupPreparedCapacity", w.max_prepared.map(|m| m.to_string()).as_deref())
        .text("MinSize", &w.min_size.to_string())
        .text("PoolState", &w.state)
        .open("InstanceReusePolicy", None)
        .bool("ReuseOnScaleIn", w.reuse_on_scale_in)
        .close()
        .close();
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

fn signed(q: &QueryInput, key: &str) -> Result<Option<i32>, ApiError> {
    match q.get(key) {
        None => Ok(None),
        Some(v) => v
            .parse()
            .map(Some)
            .map_err(|_| ApiError::validation(format!("Invalid value for {key}: {v}"))),
    }
}

fn float(q: &QueryInput, key: &str) -> Result<Option<f64>, ApiError> {
    match q.get(key) {
        None => Ok(None),
        Some(v) => v
            .parse::<f64>()
            .ok()
            .filter(|f| f.is_finite())
            .map(Some)
            .ok_or_else(|| ApiError::validation(format!("Invalid value for {key}: {v}"))),
    }
}

fn boolean(q: &QueryInput, key: &str) -> Option<bool> {
    q.get(key).map(|v| v.eq_ignore_ascii_case("true"))
}

/// A double as AWS writes it (`50.0`).
fn double(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 { format!("{v:.1}") } else { v.to_string() }
}

/// A page of `items` from NextToken, at most MaxRecords (1 to 100; `default` when absent),
/// and the token of the next page.
fn page<T>(
    items: Vec<T>,
    q: &QueryInput,
    default: usize,
) -> Result<(Vec<T>, Option<String>), ApiError> {
    let max = match number(q, "MaxRecords")? {
        None => default,
        Some(n @ 1..=100) => n as usize,
        Some(n) => {
            return Err(ApiError::validation(format!(
                "1 validation error detected: Value '{n}' at 'maxRecords' failed to satisfy constraint: Member must have value less than or equal to 100"
            )));
        }
    };
    let start = match q.get("NextToken") {
        None | Some("") => 0,
        Some(token) => base64::engine::general_purpose::STANDARD
            .decode(token)
            .ok()
            .and_then(|b| String::from_utf8(b).ok())
            .and_then(|s| s.strip_prefix("page:").and_then(|n| n.parse::<usize>().ok()))
            .filter(|n| *n <= items.len())
            .ok_or_else(|| ApiError::validation("The token provided is not valid."))?,
    };
    let end = (start + max).min(items.len());
    let next = (end < items.len())
        .then(|| base64::engine::general_purpose::STANDARD.encode(format!("page:{end}")));
    let page = items.into_iter().skip(start).take(end - start).collect();
    Ok((page, next))
}

/// `Filters.member.N.Name` with `Filters.member.N.Values.member.M`.
fn filters(q: &QueryInput) -> Vec<(String, Vec<String>)> {
    q.structs("Filters")
        .into_iter()
        .map(|f| {
            let mut values: Vec<(u32, String)> = f
                .iter()
                .filter_map(|(k, v)| {
                    k.strip_prefix("Values.member.")?.parse().ok().map(|n| (n, v.clone()))
                })
                .collect();
            values.sort_by_key(|(n, _)| *n);
            (
                f.get("Name").cloned().unwrap_or_default(),
                values.into_iter().map(|(_, v)| v).collect(),
            )
        })
        .collect()
}

/// `LaunchTemplate.*` (or another prefix): a launch template by id or name and version.
fn launch_template(q: &QueryInput, prefix: &str) -> Option<Launch> {
    let id = q
        .get(&format!("{prefix}.LaunchTemplateId"))
        .or_else(|| q.get(&format!("{prefix}.LaunchTemplateName")))?;
    Some(Launch::Template {
        id: id.to_string(),
        version: q.get(&format!("{prefix}.Version")).map(str::to_string),
    })
}

fn launch_of(q: &QueryInput) -> Option<Launch> {
    launch_template(q, "LaunchTemplate")
        .or_else(|| {
            launch_template(q, "MixedInstancesPolicy.LaunchTemplate.LaunchTemplateSpecification")
        })
        .or_else(|| {
            q.get("LaunchConfigurationName").map(|n| Launch::Configuration { name: n.into() })
        })
}

/// VPCZoneIdentifier: comma-separated subnet ids.
fn subnets(v: &str) -> Vec<String> {
    v.split(',').map(|s| s.trim().to_string()).filter(|s| !s.is_empty()).collect()
}

fn tags(q: &QueryInput) -> Vec<(String, Tag)> {
    q.structs("Tags")
        .into_iter()
        .map(|t| {
            (
                t.get("ResourceId").cloned().unwrap_or_default(),
                Tag {
                    key: t.get("Key").cloned().unwrap_or_default(),
                    value: t.get("Value").cloned().unwrap_or_default(),
                    propagate: t.get("PropagateAtLaunch").is_some_and(|v| v == "true"),
                },
            )
        })
        .collect()
}

fn hook_spec(f: &indexmap::IndexMap<String, String>) -> Result<HookSpec, ApiError> {
    let num = |k: &str| -> Result<Option<u64>, ApiError> {
        f.get(k)
            .map(|v| {
                v.parse().map_err(|_| ApiError::validation(format!("Invalid value for {k}: {v}")))
            })
            .transpose()
    };
    Ok(HookSpec {
        name: f
            .get("LifecycleHookName")
            .cloned()
            .ok_or_else(|| ApiError::validation("LifecycleHookName is required"))?,
        transition: f.get("LifecycleTransition").cloned().unwrap_or_default(),
        heartbeat_timeout: num("HeartbeatTimeout")?,
        default_result: f.get("DefaultResult").cloned(),
        notification_target: f.get("NotificationTargetARN").cloned(),
        role: f.get("RoleARN").cloned(),
        metadata: f.get("NotificationMetadata").cloned(),
    })
}

/// CreateAutoScalingGroup's parameters as the typed request.
fn create_request(q: &QueryInput) -> Result<CreateGroup, ApiError> {
    let mut hooks = Vec::new();
    for h in q.structs("LifecycleHookSpecificationList") {
        hooks.push(hook_spec(&h)?);
    }
    Ok(CreateGroup {
        name: group_name(q)?.to_string(),
        launch: launch_of(q),
        min: number(q, "MinSize")?
            .ok_or_else(|| ApiError::validation(q.required("MinSize").err().unwrap_or_default()))?,
        max: number(q, "MaxSize")?
            .ok_or_else(|| ApiError::validation(q.required("MaxSize").err().unwrap_or_default()))?,
        desired: number(q, "DesiredCapacity")?,
        subnets: q.get("VPCZoneIdentifier").map(subnets).unwrap_or_default(),
        zones: q.list("AvailabilityZones"),
        target_groups: q.list("TargetGroupARNs"),
        load_balancers: q.list("LoadBalancerNames"),
        health_check_type: q.get("HealthCheckType").map(str::to_string),
        grace: number(q, "HealthCheckGracePeriod")?.map(u64::from),
        cooldown: number(q, "DefaultCooldown")?.map(u64::from),
        termination_policies: q.list("TerminationPolicies"),
        protect_new: q.bool("NewInstancesProtectedFromScaleIn"),
        tags: tags(q).into_iter().map(|(_, t)| t).collect(),
        hooks,
        notifications: Vec::new(),
    })
}

/// UpdateAutoScalingGroup's parameters as the typed request.
fn update_request(q: &QueryInput) -> Result<UpdateGroup, ApiError> {
    let policies = q.list("TerminationPolicies");
    let zones = q.list("AvailabilityZones");
    Ok(UpdateGroup {
        name: group_name(q)?.to_string(),
        launch: launch_of(q),
        min: number(q, "MinSize")?,
        max: number(q, "MaxSize")?,
        desired: number(q, "DesiredCapacity")?,
        subnets: q.get("VPCZoneIdentifier").map(subnets),
        zones: (!zones.is_empty()).then_some(zones),
        health_check_type: q.get("HealthCheckType").map(str::to_string),
        grace: number(q, "HealthCheckGracePeriod")?.map(u64::from),
        cooldown: number(q, "DefaultCooldown")?.map(u64::from),
        termination_policies: (!policies.is_empty()).then_some(policies),
        protect_new: boolean(q, "NewInstancesProtectedFromScaleIn"),
        ..UpdateGroup::default()
    })
}

/// PutScalingPolicy's parameters as the typed request.
fn policy_request(q: &QueryInput) -> Result<PutPolicy, ApiError> {
    let mut steps = Vec::new();
    for s in q.structs("StepAdjustments") {
        let bound = |k: &str| -> Result<Option<f64>, ApiError> {
            s.get(k)
                .map(|v| {
                    v.parse::<f64>()
                        .map_err(|_| ApiError::validation(format!("Invalid value for {k}: {v}")))
                })
                .transpose()
        };
        let adjustment =
            s.get("ScalingAdjustment").and_then(|v| v.parse().ok()).ok_or_else(|| {
                ApiError::validation("ScalingAdjustment is required in a step adjustment")
            })?;
        steps.push(Step {
            lower: bound("MetricIntervalLowerBound")?,
            upper: bound("MetricIntervalUpperBound")?,
            adjustment,
        });
    }
    let tt = "TargetTrackingConfiguration";
    let target_tracking = if q.get(&format!("{tt}.TargetValue")).is_some()
        || q.get(&format!("{tt}.PredefinedMetricSpecification.PredefinedMetricType")).is_some()
        || q.get(&format!("{tt}.CustomizedMetricSpecification.MetricName")).is_some()
    {
        let pre = format!("{tt}.PredefinedMetricSpecification");
        let cus = format!("{tt}.CustomizedMetricSpecification");
        Some(TargetTrackingSpec {
            predefined: q.get(&format!("{pre}.PredefinedMetricType")).map(|t| {
                autoscaling::model::PredefinedMetric {
                    metric_type: t.to_string(),
                    resource_label: q.get(&format!("{pre}.ResourceLabel")).map(str::to_string),
                }
            }),
            customized: q.get(&format!("{cus}.MetricName")).map(|name| {
                autoscaling::model::CustomizedMetric {
                    metric_name: name.to_string(),
                    namespace: q.get(&format!("{cus}.Namespace")).unwrap_or_default().to_string(),
                    dimensions: q
                        .structs(&format!("{cus}.Dimensions"))
                        .into_iter()
                        .map(|d| {
                            (
                                d.get("Name").cloned().unwrap_or_default(),
                                d.get("Value").cloned().unwrap_or_default(),
                            )
                        })
                        .collect(),
                    statistic: q.get(&format!("{cus}.Statistic")).unwrap_or("Average").to_string(),
                    unit: q.get(&format!("{cus}.Unit")).map(str::to_string),
                }
            }),
            target_value: float(q, &format!("{tt}.TargetValue"))?,
            disable_scale_in: q.bool(&format!("{tt}.DisableScaleIn")),
        })
    } else {
        None
    };
    Ok(PutPolicy {
        group: group_name(q)?.to_string(),
        name: q.required("PolicyName").map_err(ApiError::validation)?.to_string(),
        policy_type: q.get("PolicyType").map(str::to_string),
        adjustment_type: q.get("AdjustmentType").map(str::to_string),
        scaling_adjustment: signed(q, "ScalingAdjustment")?,
        min_adjustment_magnitude: signed(q, "MinAdjustmentMagnitude")?
            .or(signed(q, "MinAdjustmentStep")?),
        cooldown: number(q, "Cooldown")?.map(u64::from),
        metric_aggregation_type: q.get("MetricAggregationType").map(str::to_string),
        steps,
        estimated_instance_warmup: number(q, "EstimatedInstanceWarmup")?.map(u64::from),
        target_tracking,
        enabled: boolean(q, "Enabled"),
    })
}

/// CreateLaunchConfiguration's parameters in CloudFormation's shape (the record both keep).
fn launch_configuration_data(q: &QueryInput) -> Json {
    let mut data = serde_json::Map::new();
    for key in [
        "ImageId",
        "KeyName",
        "UserData",
        "InstanceId",
        "InstanceType",
        "KernelId",
        "RamdiskId",
        "SpotPrice",
        "IamInstanceProfile",
        "PlacementTenancy",
        "ClassicLinkVPCId",
    ] {
        if let Some(v) = q.get(key) {
            data.insert(key.into(), json!(v));
        }
    }
    let groups = q.list("SecurityGroups");
    if !groups.is_empty() {
        data.insert("SecurityGroups".into(), json!(groups));
    }
    for (key, param) in [
        ("InstanceMonitoring", "InstanceMonitoring.Enabled"),
        ("EbsOptimized", "EbsOptimized"),
        ("AssociatePublicIpAddress", "AssociatePublicIpAddress"),
    ] {
        if let Some(v) = boolean(q, param) {
            data.insert(key.into(), json!(v));
        }
    }
    let mappings: Vec<Json> = q
        .structs("BlockDeviceMappings")
        .into_iter()
        .map(|m| {
            let mut out = serde_json::Map::new();
            let mut ebs = serde_json::Map::new();
            for (k, v) in m {
                let value = match v.as_str() {
                    "true" => json!(true),
                    "false" => json!(false),
                    _ => v.parse::<u64>().map_or(json!(v), |n| json!(n)),
                };
                match k.strip_prefix("Ebs.") {
                    Some(field) => ebs.insert(field.to_string(), value),
                    None => out.insert(k, value),
                };
            }
            if !ebs.is_empty() {
                out.insert("Ebs".into(), Json::Object(ebs));
            }
            Json::Object(out)
        })
        .collect();
    if !mappings.is_empty() {
        data.insert("BlockDeviceMappings".into(), json!(mappings));
    }
    let mut metadata = serde_json::Map::new();
    for field in ["HttpTokens", "HttpPutResponseHopLimit", "HttpEndpoint"] {
        if let Some(v) = q.get(&format!("MetadataOptions.{field}")) {
            metadata.insert(field.into(), v.parse::<u64>().map_or(json!(v), |n| json!(n)));
        }
    }
    if !metadata.is_empty() {
        data.insert("MetadataOptions".into(), Json::Object(metadata));
    }
    Json::Object(data)
}

fn schedule_record(
    group: &str,
    f: &indexmap::IndexMap<String, String>,
) -> Result<autoscaling::model::ScheduleRecord, ApiError> {
    let num = |k: &str| -> Result<Option<u32>, ApiError> {
        f.get(k)
            .map(|v| {
                v.parse().map_err(|_| ApiError::validation(format!("Invalid value for {k}: {v}")))
            })
            .transpose()
    };
    Ok(autoscaling::model::ScheduleRecord {
        group: group.to_string(),
        name: f
            .get("ScheduledActionName")
            .cloned()
            .ok_or_else(|| ApiError::validation("ScheduledActionName is required"))?,
        recurrence: f.get("Recurrence").cloned(),
        start: f.get("StartTime").or_else(|| f.get("Time")).cloned(),
        end: f.get("EndTime").cloned(),
        time_zone: f.get("TimeZone").cloned(),
        min: num("MinSize")?,
        max: num("MaxSize")?,
        desired: num("DesiredCapacity")?,
    })
}

fn tag_xml(x: &mut XmlOut, group: &str, t: &Tag) {
    x.text("ResourceId", group)
        .text("ResourceType", "auto-scaling-group")
        .text("Key", &t.key)
        .text("Value", &t.value)
        .bool("PropagateAtLaunch", t.propagate);
}

fn policy_xml(x: &mut XmlOut, p: &autoscaling::model::PolicyRecord) {
    x.text("AutoScalingGroupName", &p.group)
        .text("PolicyName", &p.name)
        .text("PolicyARN", &p.arn)
        .text("PolicyType", &p.policy_type)
        .opt("AdjustmentType", p.adjustment_type.as_deref())
        .opt("MinAdjustmentMagnitude", p.min_adjustment_magnitude.map(|m| m.to_string()).as_deref())
        .opt("ScalingAdjustment", p.scaling_adjustment.map(|m| m.to_string()).as_deref())
        .opt("Cooldown", p.cooldown.map(|m| m.to_string()).as_deref());
    if p.policy_type == "StepScaling" {
        x.members("StepAdjustments", &p.steps, |x, s| {
            x.opt("MetricIntervalLowerBound", s.lower.map(double).as_deref())
                .opt("MetricIntervalUpperBound", s.upper.map(double).as_deref())
                .text("ScalingAdjustment", &s.adjustment.to_string());
        });
    }
    x.opt("MetricAggregationType", p.metric_aggregation_type.as_deref()).opt(
        "EstimatedInstanceWarmup",
        p.estimated_instance_warmup.map(|m| m.to_string()).as_deref(),
    );
    x.members("Alarms", &p.alarms, |x, a| {
        x.text("AlarmName", &a.name).text("AlarmARN", &a.arn);
    });
    if let Some(t) = &p.target_tracking {
        x.open("TargetTrackingConfiguration", None);
        if let Some(m) = &t.predefined {
            x.open("PredefinedMetricSpecification", None)
                .text("PredefinedMetricType", &m.metric_type)
                .opt("ResourceLabel", m.resource_label.as_deref())
                .close();
        }
        if let Some(m) = &t.customized {
            x.open("CustomizedMetricSpecification", None)
                .text("MetricName", &m.metric_name)
                .text("Namespace", &m.namespace);
            x.members("Dimensions", &m.dimensions, |x, (n, v)| {
                x.text("Name", n).text("Value", v);
            });
            x.text("Statistic", &m.statistic).opt("Unit", m.unit.as_deref()).close();
        }
        x.text("TargetValue", &double(t.target_value))
            .bool("DisableScaleIn", t.disable_scale_in)
            .close();
    }
    x.bool("Enabled", p.enabled);
}

fn next_token(x: &mut XmlOut, next: Option<String>) {
    x.opt("NextToken", next.as_deref());
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
    let with_result = !NO_RESULT.contains(&action);
    if with_result {
        x.open(&format!("{action}Result"), None);
    }
    match action {
        "DescribeAutoScalingGroups" => {
            let names = q.list("AutoScalingGroupNames");
            let filters = filters(q);
            let tag_matches = |g: &GroupRecord, name: &str, values: &[String]| {
                g.tags.iter().any(|t| match name {
                    "tag-key" => values.contains(&t.key),
                    "tag-value" => values.contains(&t.value),
                    _ => {
                        name.strip_prefix("tag:").is_some_and(|k| k == t.key)
                            && values.contains(&t.value)
                    }
                })
            };
            for (name, _) in &filters {
                if !matches!(name.as_str(), "tag-key" | "tag-value") && !name.starts_with("tag:") {
                    return Err(ApiError::validation(format!(
                        "Filter type {name} is not supported"
                    )));
                }
            }
            let groups: Vec<GroupRecord> = asg
                .groups()?
                .into_iter()
                .filter(|g| names.is_empty() || names.contains(&g.name))
                .filter(|g| filters.iter().all(|(n, v)| tag_matches(g, n, v)))
                .collect();
            let (groups, next) = page(groups, q, 50)?;
            let mut result = Ok(());
            x.members("AutoScalingGroups", &groups, |x, g| {
                if result.is_ok() {
                    result = group_xml(x, asg, g);
                }
            });
            result?;
            next_token(&mut x, next);
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
            let (rows, next) = page(rows, q, 50)?;
            x.members("AutoScalingInstances", &rows, |x, (g, m)| member_xml(x, g, m, true));
            next_token(&mut x, next);
        }
        "CreateAutoScalingGroup" => {
            asg.create_group(create_request(q)?)?;
        }
        "DeleteAutoScalingGroup" => {
            asg.delete_group_request(group_name(q)?, q.bool("ForceDelete")).await?;
        }
        "CreateLaunchConfiguration" => {
            let name = q.required("LaunchConfigurationName").map_err(ApiError::validation)?;
            asg.create_launch_configuration(name, launch_configuration_data(q))?;
        }
        "DeleteLaunchConfiguration" => {
            let name = q.required("LaunchConfigurationName").map_err(ApiError::validation)?;
            asg.delete_launch_configuration(name)?;
        }
        "DescribeLaunchConfigurations" => {
            let names = q.list("LaunchConfigurationNames");
            let list: Vec<_> = asg
                .launch_configurations()?
                .into_iter()
                .filter(|c| names.is_empty() || names.contains(&c.name))
                .collect();
            let (list, next) = page(list, q, 50)?;
            x.members("LaunchConfigurations", &list, |x, c| {
                let d = &c.data;
                let text = |k: &str| d.get(k).and_then(Json::as_str).map(str::to_string);
                x.text("LaunchConfigurationName", &c.name)
                    .text("LaunchConfigurationARN", &c.arn)
                    .opt("ImageId", text("ImageId").as_deref())
                    .opt("KeyName", text("KeyName").as_deref());
                let groups: Vec<String> = d
                    .get("SecurityGroups")
                    .and_then(Json::as_array)
                    .into_iter()
                    .flatten()
                    .filter_map(|g| g.as_str().map(str::to_string))
                    .collect();
                x.strings("SecurityGroups", &groups);
                x.text("UserData", &text("UserData").unwrap_or_default())
                    .opt("InstanceType", text("InstanceType").as_deref())
                    .text("KernelId", &text("KernelId").unwrap_or_default())
                    .text("RamdiskId", &text("RamdiskId").unwrap_or_default());
                let mappings: Vec<Json> = d
                    .get("BlockDeviceMappings")
                    .and_then(Json::as_array)
                    .cloned()
                    .unwrap_or_default();
                x.members("BlockDeviceMappings", &mappings, |x, m| {
                    let s = |v: &Json| match v {
                        Json::String(s) => s.clone(),
                        other => other.to_string(),
                    };
                    if let Some(n) = m.get("DeviceName") {
                        x.text("DeviceName", &s(n));
                    }
                    if let Some(Json::Object(ebs)) = m.get("Ebs") {
                        x.open("Ebs", None);
                        for (k, v) in ebs {
                            x.text(k, &s(v));
                        }
                        x.close();
                    }
                });
                let monitoring =
                    d.get("InstanceMonitoring").is_none_or(|v| v.as_bool() != Some(false));
                x.open("InstanceMonitoring", None).bool("Enabled", monitoring).close();
                x.opt("SpotPrice", text("SpotPrice").as_deref())
                    .opt("IamInstanceProfile", text("IamInstanceProfile").as_deref())
                    .text("CreatedTime", &c.created)
                    .bool(
                        "EbsOptimized",
                        d.get("EbsOptimized").and_then(Json::as_bool) == Some(true),
                    );
                if let Some(v) = d.get("AssociatePublicIpAddress").and_then(Json::as_bool) {
                    x.bool("AssociatePublicIpAddress", v);
                }
                x.opt("PlacementTenancy", text("PlacementTenancy").as_deref());
            });
            next_token(&mut x, next);
        }
        "PutScalingPolicy" => {
            let p = asg.put_policy(policy_request(q)?)?;
            x.text("PolicyARN", &p.arn);
            x.members("Alarms", &p.alarms, |x, a| {
                x.text("AlarmName", &a.name).text("AlarmARN", &a.arn);
            });
        }
        "DescribePolicies" => {
            let names = q.list("PolicyNames");
            let types = q.list("PolicyTypes");
            let group = q.get("AutoScalingGroupName");
            if let Some(g) = group
                && asg.group(g)?.is_none()
            {
                return Err(ApiError::validation(format!(
                    "AutoScalingGroup name not found - AutoScalingGroup {g} not found"
                )));
            }
            let list: Vec<_> = asg
                .policies(group)?
                .into_iter()
                .filter(|p| names.is_empty() || names.contains(&p.name) || names.contains(&p.arn))
                .filter(|p| types.is_empty() || types.contains(&p.policy_type))
                .collect();
            let (list, next) = page(list, q, 50)?;
            x.members("ScalingPolicies", &list, policy_xml);
            next_token(&mut x, next);
        }
        "DeletePolicy" => {
            let name = q.required("PolicyName").map_err(ApiError::validation)?;
            asg.delete_policy(q.get("AutoScalingGroupName"), name)?;
        }
        "ExecutePolicy" => {
            asg.execute_policy(ExecutePolicy {
                group: q.get("AutoScalingGroupName").map(str::to_string),
                policy: q.required("PolicyName").map_err(ApiError::validation)?.to_string(),
                honor_cooldown: q.bool("HonorCooldown"),
                metric_value: float(q, "MetricValue")?,
                breach_threshold: float(q, "BreachThreshold")?,
            })?;
        }
        "PutScheduledUpdateGroupAction" => {
            let group = group_name(q)?;
            let fields: indexmap::IndexMap<String, String> = [
                "ScheduledActionName",
                "Time",
                "StartTime",
                "EndTime",
                "Recurrence",
                "MinSize",
                "MaxSize",
                "DesiredCapacity",
                "TimeZone",
            ]
            .into_iter()
            .filter_map(|k| q.get(k).map(|v| (k.to_string(), v.to_string())))
            .collect();
            asg.put_schedule(schedule_record(group, &fields)?)?;
        }
        "BatchPutScheduledUpdateGroupAction" => {
            let group = group_name(q)?;
            asg.group(group)?.ok_or_else(|| {
                ApiError::validation(format!(
                    "AutoScalingGroup name not found - AutoScalingGroup {group} not found"
                ))
            })?;
            let mut failed = Vec::new();
            for f in q.structs("ScheduledUpdateGroupActions") {
                let name = f.get("ScheduledActionName").cloned().unwrap_or_default();
                let result = schedule_record(group, &f)
                    .and_then(|s| asg.put_schedule(s).map_err(ApiError::from));
                if let Err(e) = result {
                    failed.push((name, e));
                }
            }
            x.members("FailedScheduledUpdateGroupActions", &failed, |x, (name, e)| {
                x.text("ScheduledActionName", name)
                    .text("ErrorCode", &e.code)
                    .text("ErrorMessage", &e.message);
            });
        }
        "DeleteScheduledAction" => {
            let group = group_name(q)?;
            let name = q.required("ScheduledActionName").map_err(ApiError::validation)?;
            if !asg.schedules_of(group)?.iter().any(|s| s.name == name) {
                return Err(ApiError::validation("Scheduled action name not found"));
            }
            asg.delete_schedule(group, name)?;
        }
        "BatchDeleteScheduledAction" => {
            let group = group_name(q)?;
            let existing = asg.schedules_of(group)?;
            let mut failed = Vec::new();
            for name in q.list("ScheduledActionNames") {
                if existing.iter().any(|s| s.name == name) {
                    asg.delete_schedule(group, &name)?;
                } else {
                    failed.push(name);
                }
            }
            x.members("FailedScheduledActions", &failed, |x, name| {
                x.text("ScheduledActionName", name)
                    .text("ErrorCode", "ValidationError")
                    .text("ErrorMessage", "Scheduled action name not found");
            });
        }
        "PutLifecycleHook" => {
            let group = group_name(q)?.to_string();
            let fields: indexmap::IndexMap<String, String> = [
                "LifecycleHookName",
                "LifecycleTransition",
                "HeartbeatTimeout",
                "DefaultResult",
                "NotificationTargetARN",
                "RoleARN",
                "NotificationMetadata",
            ]
            .into_iter()
            .filter_map(|k| q.get(k).map(|v| (k.to_string(), v.to_string())))
            .collect();
            asg.put_hook(&group, hook_spec(&fields)?)?;
        }
        "DeleteLifecycleHook" => {
            let group = group_name(q)?;
            let name = q.required("LifecycleHookName").map_err(ApiError::validation)?;
            if !asg.hooks_of(group)?.iter().any(|h| h.name == name) {
                return Err(ApiError::validation(format!(
                    "No Lifecycle Hook found for name {name} and AutoScalingGroup {group}"
                )));
            }
            asg.delete_hook(group, name)?;
        }
        "PutNotificationConfiguration" => {
            let topic = q.required("TopicARN").map_err(ApiError::validation)?;
            asg.put_notification(group_name(q)?, topic, &q.list("NotificationTypes"))?;
        }
        "DeleteNotificationConfiguration" => {
            let topic = q.required("TopicARN").map_err(ApiError::validation)?;
            asg.delete_notification(group_name(q)?, topic)?;
        }
        "DescribeNotificationConfigurations" => {
            let names = q.list("AutoScalingGroupNames");
            let mut rows: Vec<(String, String, String)> = Vec::new();
            for g in
                asg.groups()?.into_iter().filter(|g| names.is_empty() || names.contains(&g.name))
            {
                for Notification { topic, types } in &g.notifications {
                    for t in types {
                        rows.push((g.name.clone(), topic.clone(), t.clone()));
                    }
                }
            }
            let (rows, next) = page(rows, q, 50)?;
            x.members("NotificationConfigurations", &rows, |x, (g, topic, t)| {
                x.text("AutoScalingGroupName", g)
                    .text("TopicARN", topic)
                    .text("NotificationType", t);
            });
            next_token(&mut x, next);
        }
        "CreateOrUpdateTags" => {
            let tags = tags(q);
            for (group, _) in &tags {
                if group.is_empty() {
                    return Err(ApiError::validation("ResourceId is required for a tag"));
                }
            }
            asg.put_tags(&tags)?;
        }
        "DeleteTags" => {
            let tags: Vec<(String, String, Option<String>)> = q
                .structs("Tags")
                .into_iter()
                .map(|t| {
                    (
                        t.get("ResourceId").cloned().unwrap_or_default(),
                        t.get("Key").cloned().unwrap_or_default(),
                        t.get("Value").cloned(),
                    )
                })
                .collect();
            asg.delete_tags(&tags)?;
        }
        "DescribeTags" => {
            let filters = filters(q);
            for (name, _) in &filters {
                if !matches!(
                    name.as_str(),
                    "auto-scaling-group" | "key" | "value" | "propagate-at-launch"
                ) {
                    return Err(ApiError::validation(format!(
                        "Filter type {name} is not supported"
                    )));
                }
            }
            let mut rows: Vec<(String, Tag)> = Vec::new();
            for g in asg.groups()? {
                for t in &g.tags {
                    let keep = filters.iter().all(|(name, values)| match name.as_str() {
                        "auto-scaling-group" => values.contains(&g.name),
                        "key" => values.contains(&t.key),
                        "value" => values.contains(&t.value),
                        _ => {
                            values.iter().any(|v| v.eq_ignore_ascii_case(&t.propagate.to_string()))
                        }
                    });
                    if keep {
                        rows.push((g.name.clone(), t.clone()));
                    }
                }
            }
            let (rows, next) = page(rows, q, 50)?;
            x.members("Tags", &rows, |x, (g, t)| tag_xml(x, g, t));
            next_token(&mut x, next);
        }
        "PutWarmPool" => {
            let pool = autoscaling::model::WarmPool {
                max_prepared: signed(q, "MaxGroupPreparedCapacity")?,
                min_size: number(q, "MinSize")?.unwrap_or(0),
                state: q.get("PoolState").unwrap_or("Stopped").to_string(),
                reuse_on_scale_in: q.bool("InstanceReusePolicy.ReuseOnScaleIn"),
            };
            asg.put_warm_pool(group_name(q)?, pool)?;
        }
        "DescribeWarmPool" => {
            let name = group_name(q)?;
            let g = asg.group(name)?.ok_or_else(|| {
                ApiError::validation(format!(
                    "AutoScalingGroup name not found - AutoScalingGroup {name} not found"
                ))
            })?;
            if let Some(w) = &g.warm_pool {
                warm_pool_xml(&mut x, w);
            }
            x.open("Instances", None).close();
        }
        "DeleteWarmPool" => asg.delete_warm_pool(group_name(q)?)?,
        "EnableMetricsCollection" | "DisableMetricsCollection" => {
            let enable = action == "EnableMetricsCollection";
            if enable && q.required("Granularity").map_err(ApiError::validation)? != "1Minute" {
                return Err(ApiError::validation("Valid granularity: 1Minute"));
            }
            asg.collect_metrics(group_name(q)?, &q.list("Metrics"), enable)?;
        }
        "DescribeAccountLimits" => {
            x.text("MaxNumberOfAutoScalingGroups", "500")
                .text("MaxNumberOfLaunchConfigurations", "200")
                .text("NumberOfAutoScalingGroups", &asg.groups()?.len().to_string())
                .text(
                    "NumberOfLaunchConfigurations",
                    &asg.launch_configurations()?.len().to_string(),
                );
        }
        "DescribeAdjustmentTypes" => {
            x.members(
                "AdjustmentTypes",
                ["ChangeInCapacity", "ExactCapacity", "PercentChangeInCapacity"],
                |x, t| {
                    x.text("AdjustmentType", t);
                },
            );
        }
        "DescribeTerminationPolicyTypes" => {
            let types: Vec<String> = [
                "AllocationStrategy",
                "ClosestToNextInstanceHour",
                "Default",
                "NewestInstance",
                "OldestInstance",
                "OldestLaunchConfiguration",
                "OldestLaunchTemplate",
            ]
            .map(String::from)
            .to_vec();
            x.strings("TerminationPolicyTypes", &types);
        }
        "DescribeLifecycleHookTypes" => {
            let types: Vec<String> =
                ["autoscaling:EC2_INSTANCE_LAUNCHING", "autoscaling:EC2_INSTANCE_TERMINATING"]
                    .map(String::from)
                    .to_vec();
            x.strings("LifecycleHookTypes", &types);
        }
        "DescribeAutoScalingNotificationTypes" => {
            let types: Vec<String> =
                autoscaling::service::NOTIFICATION_TYPES.map(String::from).to_vec();
            x.strings("AutoScalingNotificationTypes", &types);
        }
        "DescribeScalingProcessTypes" => {
            x.members("Processes", PROCESSES, |x, p| {
                x.text("ProcessName", p);
            });
        }
        "DescribeMetricCollectionTypes" => {
            x.members("Metrics", autoscaling::service::METRICS, |x, m| {
                x.text("Metric", m);
            });
            x.members("Granularities", ["1Minute"], |x, g| {
                x.text("Granularity", g);
            });
        }
        "SetDesiredCapacity" => {
            let desired = number(q, "DesiredCapacity")?
                .ok_or_else(|| ApiError::validation("DesiredCapacity is required"))?;
            asg.set_desired(group_name(q)?, desired)?;
        }
        "UpdateAutoScalingGroup" => {
            asg.update_group(update_request(q)?)?;
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
            let names = q.list("LifecycleHookNames");
            let hooks: Vec<_> = asg
                .hooks_of(group_name(q)?)?
                .into_iter()
                .filter(|h| names.is_empty() || names.contains(&h.name))
                .collect();
            x.members("LifecycleHooks", &hooks, |x, h| {
                x.text("LifecycleHookName", &h.name)
                    .text("AutoScalingGroupName", &h.group)
                    .text("LifecycleTransition", &h.transition)
                    .opt("NotificationTargetARN", h.notification_target.as_deref())
                    .opt("RoleARN", h.role.as_deref())
                    .opt("NotificationMetadata", h.metadata.as_deref())
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
            let ids = q.list("ActivityIds");
            activities.retain(|a| ids.is_empty() || ids.contains(&a.id));
            let (activities, next) = page(activities, q, 100)?;
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
            next_token(&mut x, next);
        }
        "DescribeScheduledActions" => {
            let name = q.get("AutoScalingGroupName");
            let mut actions = Vec::new();
            for g in asg.groups()?.into_iter().filter(|g| name.is_none_or(|n| n == g.name)) {
                actions.extend(asg.schedules_of(&g.name)?);
            }
            let names = q.list("ScheduledActionNames");
            actions.retain(|s| names.is_empty() || names.contains(&s.name));
            let (actions, next) = page(actions, q, 50)?;
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
            next_token(&mut x, next);
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
    if with_result {
        x.close();
    }
    x.open("ResponseMetadata", None).text("RequestId", request_id).close();
    Ok(x.finish())
}
