//! Auto Scaling resource types as CloudFormation creates them: groups (with rolling updates
//! under `UpdatePolicy`), lifecycle hooks, scheduled actions and scaling policies (the same
//! `PutPolicy` as PutScalingPolicy, so a template's policy is run by its alarms).

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use cfn_stacks::generic::model;
use cfn_stacks::model::ResourceRecord;
use cfn_stacks::props::{flag, number, strings, text};
use cfn_stacks::{Provided, ProviderError, ResourceProvider, ResourceRequest};
use serde_json::{Value as Json, json};

use crate::model::*;
use crate::request::{CreateGroup, HookSpec, PutPolicy, TargetTrackingSpec, UpdateGroup};
use crate::service::{AsgError, AutoScaling, Replace, SignalGate};
use cfn_stacks::signals::{SignalOutcome, Signals};

pub const TYPES: &[&str] = &[
    "AWS::AutoScaling::AutoScalingGroup",
    "AWS::AutoScaling::LifecycleHook",
    "AWS::AutoScaling::ScheduledAction",
    "AWS::AutoScaling::ScalingPolicy",
];

pub struct AsgProvider {
    pub asg: Arc<AutoScaling>,
}

fn err(e: AsgError) -> ProviderError {
    ProviderError::service("AutoScaling", e.code(), e)
}

/// The launch source of a group's properties (MixedInstancesPolicy: its launch template).
fn launch_of(props: &Json) -> Option<Launch> {
    let spec = props.get("LaunchTemplate").or_else(|| {
        props.pointer("/MixedInstancesPolicy/LaunchTemplate/LaunchTemplateSpecification")
    });
    if let Some(spec) = spec {
        let id = text(spec, "LaunchTemplateId").or_else(|| text(spec, "LaunchTemplateName"))?;
        return Some(Launch::Template { id, version: text(spec, "Version") });
    }
    text(props, "LaunchConfigurationName").map(|name| Launch::Configuration { name })
}

/// The replacement plan of an `AutoScalingRollingUpdate` policy, with AWS's defaults; with
/// WaitOnResourceSignals each batch waits up to PauseTime (default PT5M) for its new
/// instances' signals and needs MinSuccessfulInstancesPercent of them.
fn rolling_plan(policy: &Json, req: &ResourceRequest<'_>, clock: &clock::Clock) -> Replace {
    let wait_signals = flag(policy, "WaitOnResourceSignals");
    let pause = text(policy, "PauseTime")
        .and_then(|p| cfn_stacks::signals::parse_duration(&p))
        .unwrap_or(if wait_signals { Duration::from_secs(300) } else { Duration::ZERO });
    let percent = number(policy, "MinSuccessfulInstancesPercent").unwrap_or(100).min(100);
    let signals = wait_signals.then(|| {
        let (stack, logical) = (req.stack_id.to_string(), req.logical_id.to_string());
        let reset_signals = req.signals.clone();
        let (reset_stack, reset_logical) = (stack.clone(), logical.clone());
        let signals = req.signals.clone();
        let clock = clock.clone();
        SignalGate {
            reset: Box::new(move || reset_signals.reset(&reset_stack, &reset_logical)),
            wait: Box::new(move |n| {
                let (signals, clock, stack, logical) =
                    (signals.clone(), clock.clone(), stack.clone(), logical.clone());
                Box::pin(async move {
                    batch_signals(&signals, &clock, &stack, &logical, n, pause, percent).await
                })
            }),
        }
    });
    Replace {
        max_batch: number(policy, "MaxBatchSize").unwrap_or(1) as u32,
        min_in_service: number(policy, "MinInstancesInService").unwrap_or(0) as u32,
        surge: true,
        // With signals, PauseTime is how long a batch waits for them, not a pause after it.
        pause: if wait_signals { Duration::ZERO } else { pause },
        signals,
        ..Replace::default()
    }
}

/// `PT5M`, `PT1H`, `PT90S`: a duration as CloudFormation writes it.
fn iso_duration(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        s if s > 0 && s % 3600 == 0 => format!("PT{}H", s / 3600),
        s if s > 0 && s % 60 == 0 => format!("PT{}M", s / 60),
        s => format!("PT{s}S"),
    }
}

/// Waits for a batch's `n` signals; enough of them is MinSuccessfulInstancesPercent of `n`
/// (rounded up), in AWS's words when not.
pub async fn batch_signals(
    signals: &Signals,
    clock: &clock::Clock,
    stack: &str,
    logical: &str,
    n: usize,
    timeout: Duration,
    percent: u64,
) -> Result<(), String> {
    tracing::info!(
        "New instance(s) added to autoscaling group - Waiting on {n} resource signal(s) with a timeout of {}.",
        iso_duration(timeout)
    );
    let needed = (n as u64 * percent).div_ceil(100) as usize;
    match signals.wait(clock, stack, logical, n, timeout).await {
        SignalOutcome::Success => Ok(()),
        SignalOutcome::Failure { unique_id, reason } => Err(format!(
            "Received FAILURE signal with UniqueId {unique_id}{}",
            if reason.is_empty() { String::new() } else { format!(": {reason}") }
        )),
        SignalOutcome::Timeout { received } if received >= needed => Ok(()),
        SignalOutcome::Timeout { received } => Err(format!(
            "Failed to receive {} resource signal(s) for the current batch. Each resource signal timeout is counted as a FAILURE. Received {received} SUCCESS signal(s) out of {n}. Unable to satisfy {percent}% MinSuccessfulInstancesPercent requirement",
            n - received
        )),
    }
}

/// The CreateAutoScalingGroup request a group's properties make (the same one the API's
/// parameters make); CloudFormation adds its stack tags, propagated to the instances (which
/// find their stack through them: `cfn-signal --stack $CUMULO_STACK_NAME`).
pub fn group_request(props: &Json, name: &str, stack: Option<(&str, &str, &str)>) -> CreateGroup {
    let mut tags: Vec<Tag> = props
        .get("Tags")
        .and_then(Json::as_array)
        .into_iter()
        .flatten()
        .filter_map(|t| {
            Some(Tag {
                key: text(t, "Key")?,
                value: text(t, "Value").unwrap_or_default(),
                propagate: flag(t, "PropagateAtLaunch"),
            })
        })
        .collect();
    if let Some((logical_id, stack_id, stack_name)) = stack {
        for (key, value) in [
            ("aws:cloudformation:logical-id", logical_id),
            ("aws:cloudformation:stack-id", stack_id),
            ("aws:cloudformation:stack-name", stack_name),
        ] {
            tags.push(Tag { key: key.into(), value: value.into(), propagate: true });
        }
    }
    let list = |key: &str| props.get(key).and_then(Json::as_array).cloned().unwrap_or_default();
    let hooks = list("LifecycleHookSpecificationList")
        .iter()
        .map(|h| HookSpec {
            name: text(h, "LifecycleHookName").unwrap_or_default(),
            transition: text(h, "LifecycleTransition").unwrap_or_default(),
            heartbeat_timeout: number(h, "HeartbeatTimeout"),
            default_result: text(h, "DefaultResult"),
            notification_target: text(h, "NotificationTargetARN"),
            role: text(h, "RoleARN"),
            metadata: text(h, "NotificationMetadata"),
        })
        .collect();
    let mut notifications: Vec<Json> = list("NotificationConfigurations");
    notifications.extend(props.get("NotificationConfiguration").cloned());
    let notifications = notifications
        .iter()
        .filter_map(|n| {
            Some(Notification {
                topic: text(n, "TopicARN")?,
                types: strings(n, "NotificationTypes"),
            })
        })
        .collect();
    CreateGroup {
        name: name.to_string(),
        launch: launch_of(props),
        min: number(props, "MinSize").unwrap_or(0) as u32,
        max: number(props, "MaxSize").unwrap_or(0) as u32,
        desired: number(props, "DesiredCapacity").map(|d| d as u32),
        subnets: strings(props, "VPCZoneIdentifier"),
        zones: strings(props, "AvailabilityZones"),
        target_groups: strings(props, "TargetGroupARNs"),
        load_balancers: strings(props, "LoadBalancerNames"),
        health_check_type: text(props, "HealthCheckType"),
        grace: number(props, "HealthCheckGracePeriod"),
        cooldown: number(props, "Cooldown"),
        termination_policies: strings(props, "TerminationPolicies"),
        protect_new: flag(props, "NewInstancesProtectedFromScaleIn"),
        tags,
        hooks,
        notifications,
    }
}

impl AsgProvider {
    fn request(&self, req: &ResourceRequest<'_>, name: &str) -> CreateGroup {
        group_request(req.properties, name, Some((req.logical_id, req.stack_id, req.stack_name)))
    }

    async fn create_group(&self, req: &ResourceRequest<'_>) -> Result<Provided, ProviderError> {
        let mut provided = model(req, None);
        provided.modelled = false;
        let request = self.request(req, &provided.physical_id);
        let record = self.asg.create_group(request).map_err(err)?;
        // Without a CreationPolicy, CloudFormation waits until the desired instances are in
        // service; with one, the engine waits for the signals.
        if req.creation_policy.and_then(|p| p.get("ResourceSignal")).is_none() {
            self.asg.wait_in_service(&record.name, Duration::from_secs(3600)).await.map_err(err)?;
        }
        provided.attributes.insert("AutoScalingGroupName".into(), json!(record.name));
        Ok(provided)
    }

    async fn update_group(
        &self,
        req: &ResourceRequest<'_>,
        current: &ResourceRecord,
    ) -> Result<Provided, ProviderError> {
        let mut provided = model(req, Some(current));
        provided.modelled = false;
        let name = provided.physical_id.clone();
        let existing = self
            .asg
            .group(&name)
            .map_err(err)?
            .ok_or_else(|| ProviderError::new(format!("Auto Scaling group {name} is gone")))?;
        let mut update = UpdateGroup::from(self.request(req, &name));
        let old = &current.properties;
        let ignore_sizes = req
            .update_policy
            .and_then(|p| {
                p.pointer("/AutoScalingScheduledAction/IgnoreUnmodifiedGroupSizeProperties")
            })
            .is_some_and(|v| v.as_bool() == Some(true) || v.as_str() == Some("true"));
        let unchanged = |k: &str| old.get(k) == req.properties.get(k);
        if ignore_sizes {
            if unchanged("MinSize") {
                update.min = None;
            }
            if unchanged("MaxSize") {
                update.max = None;
            }
            if unchanged("DesiredCapacity") {
                update.desired = None;
            }
        }
        let before = self.asg.launch_key(&existing.launch).unwrap_or_default();
        let record = self.asg.update_group(update).map_err(err)?;
        let after = self.asg.launch_key(&record.launch).map_err(err)?;
        let rolling = req.update_policy.and_then(|p| p.get("AutoScalingRollingUpdate"));
        let zones_changed = existing.subnets != record.subnets;
        if let Some(policy) = rolling
            && (before != after || zones_changed)
        {
            let plan = rolling_plan(policy, req, self.asg.clock());
            let suspend = strings(policy, "SuspendProcesses");
            tracing::info!(
                group = name,
                "Rolling update initiated. Terminating obsolete instance(s) in batches of {}, while keeping at least {} instance(s) in service.{}",
                plan.max_batch,
                plan.min_in_service,
                if plan.signals.is_some() {
                    " Waiting on resource signals when new instances are added to the autoscaling group."
                } else {
                    ""
                }
            );
            if !suspend.is_empty() {
                self.asg.suspend(&name, &suspend, true).map_err(err)?;
            }
            let result = self.asg.replace_instances(&name, &plan).await;
            if !suspend.is_empty() {
                // Processes suspended before the update stay suspended.
                let resume: Vec<String> =
                    suspend.into_iter().filter(|p| !existing.suspended.contains(p)).collect();
                self.asg.suspend(&name, &resume, false).map_err(err)?;
            }
            result.map_err(err)?;
        }
        provided.attributes.insert("AutoScalingGroupName".into(), json!(name));
        Ok(provided)
    }

    fn hook(
        &self,
        req: &ResourceRequest<'_>,
        current: Option<&ResourceRecord>,
    ) -> Result<Provided, ProviderError> {
        let props = req.properties;
        let mut provided = model(req, current);
        provided.modelled = false;
        let group = text(props, "AutoScalingGroupName").unwrap_or_default();
        let hook = HookSpec {
            name: provided.physical_id.clone(),
            transition: text(props, "LifecycleTransition").unwrap_or_default(),
            heartbeat_timeout: number(props, "HeartbeatTimeout"),
            default_result: text(props, "DefaultResult"),
            notification_target: text(props, "NotificationTargetARN"),
            role: text(props, "RoleARN"),
            metadata: text(props, "NotificationMetadata"),
        };
        self.asg.put_hook(&group, hook).map_err(err)?;
        Ok(provided)
    }

    fn schedule(
        &self,
        req: &ResourceRequest<'_>,
        current: Option<&ResourceRecord>,
    ) -> Result<Provided, ProviderError> {
        let props = req.properties;
        let mut provided = model(req, current);
        provided.modelled = false;
        let s = ScheduleRecord {
            group: text(props, "AutoScalingGroupName").unwrap_or_default(),
            name: provided.physical_id.clone(),
            recurrence: text(props, "Recurrence"),
            start: text(props, "StartTime"),
            end: text(props, "EndTime"),
            time_zone: text(props, "TimeZone"),
            min: number(props, "MinSize").map(|n| n as u32),
            max: number(props, "MaxSize").map(|n| n as u32),
            desired: number(props, "DesiredCapacity").map(|n| n as u32),
        };
        self.asg.put_schedule(s).map_err(err)?;
        Ok(provided)
    }
}

/// A template's scaling policy as the typed request (the policy's name is its logical id's
/// physical name; `PolicyName` is not a property of the type).
pub fn policy_request(name: &str, p: &Json) -> PutPolicy {
    let float = |v: &Json, k: &str| text(v, k).and_then(|t| t.trim().parse::<f64>().ok());
    let signed = |v: &Json, k: &str| text(v, k).and_then(|t| t.trim().parse::<i32>().ok());
    let steps = p
        .get("StepAdjustments")
        .and_then(Json::as_array)
        .into_iter()
        .flatten()
        .map(|s| Step {
            lower: float(s, "MetricIntervalLowerBound"),
            upper: float(s, "MetricIntervalUpperBound"),
            adjustment: signed(s, "ScalingAdjustment").unwrap_or(0),
        })
        .collect();
    let target_tracking = p.get("TargetTrackingConfiguration").map(|t| TargetTrackingSpec {
        predefined: t.get("PredefinedMetricSpecification").map(|m| PredefinedMetric {
            metric_type: text(m, "PredefinedMetricType").unwrap_or_default(),
            resource_label: text(m, "ResourceLabel"),
        }),
        customized: t.get("CustomizedMetricSpecification").map(|m| CustomizedMetric {
            metric_name: text(m, "MetricName").unwrap_or_default(),
            namespace: text(m, "Namespace").unwrap_or_default(),
            dimensions: m
                .get("Dimensions")
                .and_then(Json::as_array)
                .into_iter()
                .flatten()
                .filter_map(|d| Some((text(d, "Name")?, text(d, "Value")?)))
                .collect(),
            statistic: text(m, "Statistic").unwrap_or_else(|| "Average".into()),
            unit: text(m, "Unit"),
        }),
        target_value: float(t, "TargetValue"),
        disable_scale_in: flag(t, "DisableScaleIn"),
    });
    PutPolicy {
        group: text(p, "AutoScalingGroupName").unwrap_or_default(),
        name: name.to_string(),
        policy_type: text(p, "PolicyType"),
        adjustment_type: text(p, "AdjustmentType"),
        scaling_adjustment: signed(p, "ScalingAdjustment"),
        min_adjustment_magnitude: signed(p, "MinAdjustmentMagnitude"),
        cooldown: number(p, "Cooldown"),
        metric_aggregation_type: text(p, "MetricAggregationType"),
        steps,
        estimated_instance_warmup: number(p, "EstimatedInstanceWarmup"),
        target_tracking,
        enabled: None,
    }
}

impl AsgProvider {
    /// `AWS::AutoScaling::ScalingPolicy`: Ref is the policy's ARN.
    fn policy(
        &self,
        req: &ResourceRequest<'_>,
        current: Option<&ResourceRecord>,
    ) -> Result<Provided, ProviderError> {
        let mut provided = model(req, current);
        // The name is kept across updates (the physical id is the ARN, which ends with it).
        let name = current
            .and_then(|c| c.attributes.get("PolicyName"))
            .and_then(Json::as_str)
            .map(str::to_string)
            .unwrap_or_else(|| aws_ids::physical_name(req.stack_name, req.logical_id, 255));
        let record = self.asg.put_policy(policy_request(&name, req.properties)).map_err(err)?;
        provided.physical_id = record.arn.clone();
        provided.attributes.insert("Arn".into(), json!(record.arn));
        provided.attributes.insert("PolicyName".into(), json!(record.name));
        provided.modelled = false;
        Ok(provided)
    }
}

#[async_trait]
impl ResourceProvider for AsgProvider {
    async fn create(&self, req: &ResourceRequest<'_>) -> Result<Provided, ProviderError> {
        match req.type_name {
            "AWS::AutoScaling::AutoScalingGroup" => self.create_group(req).await,
            "AWS::AutoScaling::LifecycleHook" => self.hook(req, None),
            "AWS::AutoScaling::ScheduledAction" => self.schedule(req, None),
            "AWS::AutoScaling::ScalingPolicy" => self.policy(req, None),
            other => Err(ProviderError::new(format!("{other} is not an Auto Scaling type"))),
        }
    }

    async fn update(
        &self,
        req: &ResourceRequest<'_>,
        current: &ResourceRecord,
    ) -> Result<Provided, ProviderError> {
        match req.type_name {
            "AWS::AutoScaling::AutoScalingGroup" => self.update_group(req, current).await,
            "AWS::AutoScaling::LifecycleHook" => self.hook(req, Some(current)),
            "AWS::AutoScaling::ScheduledAction" => self.schedule(req, Some(current)),
            "AWS::AutoScaling::ScalingPolicy" => self.policy(req, Some(current)),
            other => Err(ProviderError::new(format!("{other} is not an Auto Scaling type"))),
        }
    }

    /// `AutoScalingReplacingUpdate: {WillReplace: true}` makes a new group (and deletes the old
    /// one after) when a change would otherwise start a rolling update: the launch template or
    /// configuration, or the subnets.
    fn replaces_on_update(
        &self,
        type_name: &str,
        update_policy: Option<&Json>,
        old: &Json,
        new: &Json,
    ) -> bool {
        let will_replace = update_policy
            .and_then(|p| p.pointer("/AutoScalingReplacingUpdate/WillReplace"))
            .is_some_and(|v| v.as_bool() == Some(true) || v.as_str() == Some("true"));
        will_replace
            && type_name == "AWS::AutoScaling::AutoScalingGroup"
            && (launch_of(old) != launch_of(new)
                || old.get("VPCZoneIdentifier") != new.get("VPCZoneIdentifier"))
    }

    async fn delete(
        &self,
        _req: &ResourceRequest<'_>,
        current: &ResourceRecord,
    ) -> Result<(), ProviderError> {
        let Some(id) = current.physical_id.as_deref() else { return Ok(()) };
        let group = text(&current.properties, "AutoScalingGroupName").unwrap_or_default();
        let result = match current.type_name.as_str() {
            "AWS::AutoScaling::AutoScalingGroup" => {
                if self.asg.group(id).map_err(err)?.is_none() {
                    return Ok(());
                }
                self.asg.delete_group(id).await
            }
            "AWS::AutoScaling::LifecycleHook" => self.asg.delete_hook(&group, id),
            "AWS::AutoScaling::ScheduledAction" => self.asg.delete_schedule(&group, id),
            "AWS::AutoScaling::ScalingPolicy" => match self.asg.delete_policy(None, id) {
                // Gone already (with its group, say).
                Err(AsgError::Api { message, .. }) if message.contains("not found") => Ok(()),
                other => other,
            },
            _ => Ok(()),
        };
        result.map_err(err)
    }
}
