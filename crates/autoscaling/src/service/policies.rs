//! Scaling policies: PutScalingPolicy records them with AWS's defaults (target tracking names
//! the alarms AWS would create; CloudWatch is not here yet, so nothing invokes them), and
//! ExecutePolicy runs a simple or step policy: the new capacity as AWS computes it
//! (`policy::adjusted_capacity`), a simple policy's cooldown honoured when asked.

use super::*;
use crate::request::{ExecutePolicy, PutPolicy};

const ADJUSTMENT_TYPES: [&str; 3] =
    ["ChangeInCapacity", "ExactCapacity", "PercentChangeInCapacity"];
const PREDEFINED: [&str; 4] = [
    "ASGAverageCPUUtilization",
    "ASGAverageNetworkIn",
    "ASGAverageNetworkOut",
    "ALBRequestCountPerTarget",
];

impl AutoScaling {
    pub fn policies(&self, group: Option<&str>) -> Result<Vec<PolicyRecord>, AsgError> {
        let prefix = group.map(|g| format!("{g}/")).unwrap_or_default();
        Ok(self.store.list(POLICIES, &prefix)?.into_iter().map(|(_, p)| p).collect())
    }

    /// A policy by name (in `group`) or ARN.
    fn find_policy(
        &self,
        group: Option<&str>,
        name_or_arn: &str,
    ) -> Result<Option<PolicyRecord>, AsgError> {
        Ok(self
            .policies(group)?
            .into_iter()
            .find(|p| p.name == name_or_arn || p.arn == name_or_arn))
    }

    /// PutScalingPolicy (creates or replaces; a replaced policy keeps its ARN and alarms).
    pub fn put_policy(&self, req: PutPolicy) -> Result<PolicyRecord, AsgError> {
        self.group_or_err(&req.group)?;
        let policy_type = req.policy_type.clone().unwrap_or_else(|| "SimpleScaling".into());
        let v = |m: String| AsgError::validation(m);
        if let Some(t) = &req.adjustment_type
            && !ADJUSTMENT_TYPES.contains(&t.as_str())
        {
            return Err(v(format!(
                "Invalid adjustment type {t}. Valid values are ChangeInCapacity, ExactCapacity and PercentChangeInCapacity."
            )));
        }
        if req.min_adjustment_magnitude.is_some()
            && req.adjustment_type.as_deref() != Some("PercentChangeInCapacity")
        {
            return Err(v("MinAdjustmentMagnitude may only be specified if AdjustmentType is PercentChangeInCapacity".into()));
        }
        let mut tracking = None;
        match policy_type.as_str() {
            "SimpleScaling" => {
                if req.adjustment_type.is_none() {
                    return Err(v("AdjustmentType is required for SimpleScaling policy".into()));
                }
                if req.scaling_adjustment.is_none() {
                    return Err(v("ScalingAdjustment is required for SimpleScaling policy".into()));
                }
            }
            "StepScaling" => {
                if req.adjustment_type.is_none() {
                    return Err(v("AdjustmentType is required for StepScaling policy".into()));
                }
                crate::policy::check_steps(&req.steps).map_err(v)?;
            }
            "TargetTrackingScaling" => {
                let spec = req.target_tracking.clone().ok_or_else(|| {
                    v("TargetTrackingConfiguration is required for TargetTrackingScaling policy".into())
                })?;
                let target_value = spec.target_value.ok_or_else(|| {
                    v("TargetValue is required in TargetTrackingConfiguration".into())
                })?;
                match (&spec.predefined, &spec.customized) {
                    (Some(p), None) => {
                        if !PREDEFINED.contains(&p.metric_type.as_str()) {
                            return Err(v(format!(
                                "Invalid predefined metric type {}. Valid values are {}.",
                                p.metric_type,
                                PREDEFINED.join(", ")
                            )));
                        }
                        if p.metric_type == "ALBRequestCountPerTarget" && p.resource_label.is_none()
                        {
                            return Err(v("ResourceLabel is required for ALBRequestCountPerTarget predefined metric type".into()));
                        }
                    }
                    (None, Some(_)) => {}
                    _ => {
                        return Err(v("Exactly one of PredefinedMetricSpecification and CustomizedMetricSpecification must be specified".into()));
                    }
                }
                tracking = Some(TargetTracking {
                    predefined: spec.predefined,
                    customized: spec.customized,
                    target_value,
                    disable_scale_in: spec.disable_scale_in,
                });
            }
            "PredictiveScaling" => {}
            other => {
                return Err(v(format!(
                    "Invalid policy type {other}. Valid values are SimpleScaling, StepScaling, TargetTrackingScaling and PredictiveScaling."
                )));
            }
        }
        let existing = self.find_policy(Some(&req.group), &req.name)?;
        if existing.is_none() && self.policies(Some(&req.group))?.len() >= 50 {
            return Err(AsgError::Api {
                code: "LimitExceeded",
                message: format!(
                    "Maximum number of policies (50) reached for AutoScalingGroup {}",
                    req.group
                ),
            });
        }
        let arn = existing.as_ref().map(|p| p.arn.clone()).unwrap_or_else(|| {
            self.account.arn(
                "autoscaling",
                &format!(
                    "scalingPolicy:{}:autoScalingGroupName/{}:policyName/{}",
                    aws_ids::uuid(),
                    req.group,
                    req.name
                ),
            )
        });
        let alarms = match (&tracking, existing.as_ref().filter(|p| p.target_tracking.is_some())) {
            (None, _) => existing.as_ref().map(|p| p.alarms.clone()).unwrap_or_default(),
            (Some(t), kept) => {
                let alarm = |kind: &str| {
                    let name = format!("TargetTracking-{}-{kind}-{}", req.group, aws_ids::uuid());
                    AlarmRef { arn: self.account.arn("cloudwatch", &format!("alarm:{name}")), name }
                };
                let mut alarms: Vec<AlarmRef> = kept.map(|p| p.alarms.clone()).unwrap_or_default();
                if !alarms.iter().any(|a| a.name.contains("-AlarmHigh-")) {
                    alarms.insert(0, alarm("AlarmHigh"));
                }
                if t.disable_scale_in {
                    alarms.retain(|a| !a.name.contains("-AlarmLow-"));
                } else if !alarms.iter().any(|a| a.name.contains("-AlarmLow-")) {
                    alarms.push(alarm("AlarmLow"));
                }
                alarms
            }
        };
        let step = policy_type == "StepScaling";
        let record = PolicyRecord {
            group: req.group,
            name: req.name,
            arn,
            metric_aggregation_type: if step {
                Some(req.metric_aggregation_type.unwrap_or_else(|| "Average".into()))
            } else {
                None
            },
            policy_type,
            adjustment_type: req.adjustment_type,
            scaling_adjustment: req.scaling_adjustment,
            min_adjustment_magnitude: req.min_adjustment_magnitude,
            cooldown: req.cooldown,
            steps: req.steps,
            estimated_instance_warmup: req.estimated_instance_warmup,
            target_tracking: tracking,
            enabled: req.enabled.unwrap_or(true),
            alarms,
        };
        self.store.put(POLICIES, &format!("{}/{}", record.group, record.name), &record)?;
        Ok(record)
    }

    /// DeletePolicy (by name in its group, or by ARN).
    pub fn delete_policy(&self, group: Option<&str>, name_or_arn: &str) -> Result<(), AsgError> {
        if let Some(g) = group {
            self.group_or_err(g)?;
        }
        let p = self.find_policy(group, name_or_arn)?.ok_or_else(|| {
            AsgError::validation(format!(
                "Scaling policy not found - Policy {name_or_arn} not found"
            ))
        })?;
        self.store.delete(POLICIES, &format!("{}/{}", p.group, p.name))?;
        Ok(())
    }

    /// Whether a group is still in the cooldown of its last simple scaling: while the capacity
    /// that scaling asked for is still launching or terminating, and for the cooldown after
    /// its last new instance entered service.
    pub fn in_cooldown(&self, g: &GroupRecord) -> bool {
        let Some(s) = g.scaled else { return false };
        let busy = g.instances.iter().any(|m| {
            matches!(
                m.lifecycle,
                Lifecycle::Pending
                    | Lifecycle::PendingWait
                    | Lifecycle::Terminating
                    | Lifecycle::TerminatingWait
            )
        });
        if busy {
            return true;
        }
        let settled = g
            .instances
            .iter()
            .filter(|m| m.launched_at >= s.at)
            .filter_map(|m| m.in_service_at)
            .max()
            .unwrap_or(s.at)
            .max(s.at);
        self.now() < settled + s.cooldown as i64
    }

    /// ExecutePolicy: a simple or step policy changes the desired capacity as AWS computes it;
    /// with HonorCooldown a simple policy does not run during the group's cooldown.
    pub fn execute_policy(&self, req: ExecutePolicy) -> Result<(), AsgError> {
        if let Some(g) = &req.group {
            self.group_or_err(g)?;
        }
        let p = self.find_policy(req.group.as_deref(), &req.policy)?.ok_or_else(|| {
            AsgError::validation(format!(
                "Scaling policy not found - Policy {} not found",
                req.policy
            ))
        })?;
        let g = self.group_or_err(&p.group)?;
        let adjustment = match p.policy_type.as_str() {
            "SimpleScaling" => {
                if req.metric_value.is_some() || req.breach_threshold.is_some() {
                    return Err(AsgError::validation(
                        "MetricValue and BreachThreshold are only supported for StepScaling policies",
                    ));
                }
                if req.honor_cooldown && self.in_cooldown(&g) {
                    return Err(AsgError::Api {
                        code: "ScalingActivityInProgress",
                        message: format!(
                            "Scaling activity in progress: AutoScalingGroup {} is in its cooldown period",
                            g.name
                        ),
                    });
                }
                p.scaling_adjustment.unwrap_or(0)
            }
            "StepScaling" => {
                let (Some(metric), Some(threshold)) = (req.metric_value, req.breach_threshold)
                else {
                    return Err(AsgError::validation(
                        "MetricValue and BreachThreshold are required for StepScaling policies",
                    ));
                };
                crate::policy::step_for(&p.steps, metric, threshold)
                    .ok_or_else(|| {
                        AsgError::validation(format!(
                            "No step adjustment found for metric value {metric} and breach threshold {threshold}"
                        ))
                    })?
                    .adjustment
            }
            other => {
                return Err(AsgError::validation(format!(
                    "ExecutePolicy is not supported for a policy of type {other}"
                )));
            }
        };
        let kind = p.adjustment_type.as_deref().unwrap_or("ChangeInCapacity");
        let desired = crate::policy::adjusted_capacity(
            g.desired,
            kind,
            adjustment,
            p.min_adjustment_magnitude,
            g.min,
            g.max,
        )
        .ok_or_else(|| AsgError::validation(format!("Invalid adjustment type {kind}")))?;
        let now = self.now();
        let simple = p.policy_type == "SimpleScaling";
        let cooldown = p.cooldown.unwrap_or(g.cooldown);
        self.update(&g.name, |g| {
            g.desired = desired;
            if simple {
                g.scaled = Some(Scaled { at: now, cooldown });
            }
        })?;
        if desired != g.desired {
            tracing::info!(
                group = g.name,
                "At {} a user request executed policy {} changing the desired capacity from {} to {desired}.",
                clock::iso8601(self.clock.now()),
                p.name,
                g.desired
            );
        }
        self.wake(&g.name);
        Ok(())
    }
}
