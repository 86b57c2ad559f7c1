//! Scaling policies: PutScalingPolicy records them with AWS's defaults (a target tracking
//! policy's High and Low alarms made through `alarms::PolicyAlarms` when the region gives one,
//! else only named), ExecutePolicy runs a simple or step policy, and `alarm_fired` runs a
//! policy when one of its alarms is in ALARM: a simple policy after its cooldown, a step policy
//! by the step its metric falls in with warming instances counted, a target tracking policy
//! toward `ceil(current × metric / target)`, scaling in only when every target tracking policy
//! of the group agrees. Each capacity change's cause is kept for the launches and terminations
//! it asks for (`GroupRecord::scaling_cause`).

use super::*;
use crate::alarms::{AlarmSignal, PolicyAlarms};
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
                let t = TargetTracking {
                    predefined: spec.predefined,
                    customized: spec.customized,
                    target_value,
                    disable_scale_in: spec.disable_scale_in,
                };
                if crate::alarms::tracking_metric(&req.group, &t).is_none() {
                    let label = t.predefined.as_ref().and_then(|p| p.resource_label.clone());
                    return Err(v(format!(
                        "Invalid ResourceLabel {}: it must be app/<load-balancer-name>/<load-balancer-id>/targetgroup/<target-group-name>/<target-group-id>",
                        label.unwrap_or_default()
                    )));
                }
                tracking = Some(t);
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
            // A policy that stops tracking loses the alarms Auto Scaling made for it.
            (None, _) => existing
                .as_ref()
                .filter(|p| p.target_tracking.is_none())
                .map(|p| p.alarms.clone())
                .unwrap_or_default(),
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
        // The alarms first: a policy whose alarms could not be made is not made (nor changed).
        let made = crate::alarms::tracking_alarms(&record);
        let cloudwatch = self.policy_alarms.read().clone();
        // A new policy's alarms would act on a policy that is not there: undone on failure.
        let undo = |cw: &Arc<dyn PolicyAlarms>, names: Vec<String>| {
            if existing.is_none()
                && !names.is_empty()
                && let Err(e) = cw.delete(&names)
            {
                tracing::warn!(group = record.group, "alarms {names:?} left behind: {e}");
            }
        };
        if let Some(cw) = &cloudwatch {
            for (i, a) in made.iter().enumerate() {
                if let Err(e) = cw.put(a) {
                    undo(cw, made[..i].iter().map(|a| a.name.clone()).collect());
                    return Err(AsgError::validation(format!(
                        "Unable to put alarm {} for policy: {e}",
                        a.name
                    )));
                }
            }
        }
        let stale: Vec<String> = existing
            .iter()
            .filter(|p| p.target_tracking.is_some())
            .flat_map(|p| &p.alarms)
            .filter(|a| !made.iter().any(|m| m.name == a.name))
            .map(|a| a.name.clone())
            .collect();
        if let Err(e) =
            self.store.put(POLICIES, &format!("{}/{}", record.group, record.name), &record)
        {
            if let Some(cw) = &cloudwatch {
                undo(cw, made.iter().map(|a| a.name.clone()).collect());
            }
            return Err(e.into());
        }
        self.forget_alarms(cloudwatch.as_deref(), &record.group, &stale);
        Ok(record)
    }

    /// Gives the service where target tracking policies' alarms are kept (the region's
    /// CloudWatch). Until then their alarms are only named.
    pub fn set_policy_alarms(&self, alarms: Arc<dyn PolicyAlarms>) {
        *self.policy_alarms.write() = Some(alarms);
    }

    /// Deletes alarms Auto Scaling made (best effort: a policy or group going is not held up
    /// by CloudWatch) and their last signals.
    fn forget_alarms(&self, cloudwatch: Option<&dyn PolicyAlarms>, group: &str, names: &[String]) {
        if names.is_empty() {
            return;
        }
        if let Some(cw) = cloudwatch
            && let Err(e) = cw.delete(names)
        {
            tracing::warn!(group, "cannot delete alarms {names:?}: {e}");
        }
        let mut signals = self.signals.lock();
        for n in names {
            signals.remove(n);
        }
    }

    /// The alarms of a group's target tracking policies go with the group.
    pub(super) fn forget_group_alarms(&self, policies: &[PolicyRecord]) {
        let cloudwatch = self.policy_alarms.read().clone();
        for p in policies.iter().filter(|p| p.target_tracking.is_some()) {
            let names: Vec<String> = p.alarms.iter().map(|a| a.name.clone()).collect();
            self.forget_alarms(cloudwatch.as_deref(), &p.group, &names);
        }
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
        // Its target tracking alarms go first: left behind, they would invoke nothing.
        let cloudwatch = self.policy_alarms.read().clone();
        let owned: Vec<String> = if p.target_tracking.is_some() {
            p.alarms.iter().map(|a| a.name.clone()).collect()
        } else {
            Vec::new()
        };
        if let Some(cw) = &cloudwatch
            && !owned.is_empty()
        {
            cw.delete(&owned).map_err(|e| {
                AsgError::validation(format!("Unable to delete alarms {}: {e}", owned.join(", ")))
            })?;
        }
        self.store.delete(POLICIES, &format!("{}/{}", p.group, p.name))?;
        self.forget_alarms(None, &p.group, &owned);
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
        let cause = format!(
            "At {} a user request executed policy {} changing the desired capacity from {} to {desired}.",
            cause_time(&self.clock),
            p.name,
            g.desired
        );
        if desired != g.desired {
            tracing::info!(group = g.name, "{cause}");
        }
        self.scale_to(&g, &p, desired, cause, true)?;
        Ok(())
    }

    /// Sets the desired capacity a policy asked for, through the group's update and wake:
    /// a simple policy starts its cooldown (when `always`, even if the capacity stays), a
    /// scale-out marks its new instances as warming, and the cause is kept for the activities.
    fn scale_to(
        &self,
        g: &GroupRecord,
        p: &PolicyRecord,
        desired: u32,
        cause: String,
        always: bool,
    ) -> Result<bool, AsgError> {
        let now = self.now();
        let simple = p.policy_type == "SimpleScaling";
        let cooldown = p.cooldown.unwrap_or(g.cooldown);
        let from = g.desired;
        if desired == from && !always {
            return Ok(false);
        }
        // Instances still warming from an earlier scale-out stay warming.
        let warming = self.warm_counts(g, p).1 > 0;
        let changed = self.update(&g.name, |g| {
            g.desired = desired;
            if simple {
                g.scaled = Some(Scaled { at: now, cooldown });
            }
            if desired > from && !(warming && g.scaled_out_at.is_some()) {
                g.scaled_out_at = Some(now);
            }
            if desired != from {
                g.scaling_cause = Some(ScalingCause { desired, cause });
            }
        })?;
        self.wake(&g.name);
        Ok(changed.is_some() && desired != from)
    }

    // ---- alarms ----

    /// An alarm that invokes the policy `policy_arn` was evaluated (CloudWatch calls this on
    /// each evaluation in ALARM, every minute while it stays there, and may on others). Runs
    /// the policy as AWS does and answers the cause when the desired capacity changed:
    /// `At <time> a monitor alarm <alarm> in state ALARM triggered policy <policy> changing
    /// the desired capacity from 2 to 3.` A disabled policy, a state other than ALARM, a
    /// group with AlarmNotification suspended or being deleted change nothing.
    pub fn alarm_fired(
        &self,
        policy_arn: &str,
        signal: &AlarmSignal,
    ) -> Result<Option<String>, AsgError> {
        self.signals.lock().insert(signal.alarm_name.clone(), signal.clone());
        let p =
            self.policies(None)?.into_iter().find(|p| p.arn == policy_arn).ok_or_else(|| {
                AsgError::validation(format!(
                    "Scaling policy not found - Policy {policy_arn} not found"
                ))
            })?;
        if !p.enabled || signal.state != "ALARM" {
            return Ok(None);
        }
        let Some(g) = self.group(&p.group)? else { return Ok(None) };
        if g.status.is_some() {
            return Ok(None);
        }
        if g.suspended("AlarmNotification") {
            tracing::info!(
                group = g.name,
                policy = p.name,
                "alarm {} ignored: AlarmNotification is suspended",
                signal.alarm_name
            );
            return Ok(None);
        }
        let wanted = match p.policy_type.as_str() {
            "SimpleScaling" => self.simple_wants(&g, &p),
            "StepScaling" => self.step_wants(&g, &p, signal),
            "TargetTrackingScaling" => self.tracking_wants(&g, &p, signal)?,
            _ => None,
        };
        let Some(desired) = wanted.filter(|d| *d != g.desired) else { return Ok(None) };
        let cause = format!(
            "At {} a monitor alarm {} in state ALARM triggered policy {} changing the desired capacity from {} to {desired}.",
            cause_time(&self.clock),
            signal.alarm_name,
            p.name,
            g.desired
        );
        if !self.scale_to(&g, &p, desired, cause.clone(), false)? {
            return Ok(None);
        }
        tracing::info!(group = g.name, policy = p.name, "{cause}");
        Ok(Some(cause))
    }

    /// A simple policy's capacity, unless an activity is in progress or the cooldown runs.
    fn simple_wants(&self, g: &GroupRecord, p: &PolicyRecord) -> Option<u32> {
        let busy = g.instances.iter().any(|m| {
            matches!(
                m.lifecycle,
                Lifecycle::Pending
                    | Lifecycle::PendingWait
                    | Lifecycle::Terminating
                    | Lifecycle::TerminatingWait
            )
        });
        if busy || self.in_cooldown(g) {
            tracing::info!(
                group = g.name,
                policy = p.name,
                "alarm ignored: a scaling activity or the cooldown is in progress"
            );
            return None;
        }
        let kind = p.adjustment_type.as_deref().unwrap_or("ChangeInCapacity");
        crate::policy::adjusted_capacity(
            g.desired,
            kind,
            p.scaling_adjustment?,
            p.min_adjustment_magnitude,
            g.min,
            g.max,
        )
    }

    /// A step policy's capacity: the step the aggregated metric falls in, relative to the
    /// alarm's threshold. A scale-out starts from the instances that are not warming (so a
    /// second alarm in the same step adds nothing) and never lowers the capacity; a scale-in
    /// waits for warming instances.
    fn step_wants(&self, g: &GroupRecord, p: &PolicyRecord, signal: &AlarmSignal) -> Option<u32> {
        let aggregation = p.metric_aggregation_type.as_deref().unwrap_or("Average");
        let metric = crate::policy::aggregate(aggregation, &signal.values)?;
        let step = crate::policy::step_for(&p.steps, metric, signal.threshold)?;
        let kind = p.adjustment_type.as_deref().unwrap_or("ChangeInCapacity");
        let adjust = |from: u32| {
            crate::policy::adjusted_capacity(
                from,
                kind,
                step.adjustment,
                p.min_adjustment_magnitude,
                g.min,
                g.max,
            )
        };
        let out = match kind {
            "ExactCapacity" => i64::from(step.adjustment) > i64::from(g.desired),
            _ => step.adjustment > 0,
        };
        let (settled, warming) = self.warm_counts(g, p);
        if out {
            Some(adjust(settled)?.max(g.desired))
        } else if warming > 0 {
            tracing::info!(
                group = g.name,
                policy = p.name,
                "scale-in waits: {warming} instances warming"
            );
            None
        } else {
            Some(adjust(g.desired)?.min(g.desired))
        }
    }

    /// A target tracking policy's capacity, `ceil(current × metric / target)` with the newest
    /// datapoint: its High alarm only scales out (from the instances not warming), its Low
    /// alarm only scales in, once no instance warms and every target tracking policy of the
    /// group that scales in has its Low alarm in ALARM too (the least scale-in of theirs).
    fn tracking_wants(
        &self,
        g: &GroupRecord,
        p: &PolicyRecord,
        signal: &AlarmSignal,
    ) -> Result<Option<u32>, AsgError> {
        let Some(t) = &p.target_tracking else { return Ok(None) };
        let Some(&metric) = signal.values.last() else { return Ok(None) };
        let high = match p.alarms.iter().find(|a| a.name == signal.alarm_name) {
            Some(a) => crate::alarms::is_high(&a.name),
            None => signal.comparison.starts_with("Greater"),
        };
        let (settled, warming) = self.warm_counts(g, p);
        if high {
            if settled == 0 && warming > 0 {
                return Ok(None);
            }
            // From zero, a breach asks for one instance.
            let want = crate::policy::tracking_capacity(settled, metric, t.target_value).max(1);
            return Ok(Some(want.clamp(g.min, g.max).max(g.desired)));
        }
        if t.disable_scale_in {
            return Ok(None);
        }
        if warming > 0 {
            tracing::info!(
                group = g.name,
                policy = p.name,
                "scale-in waits: {warming} instances warming"
            );
            return Ok(None);
        }
        let mut want: Option<u32> = None;
        for other in self.policies(Some(&g.name))? {
            let Some(ot) = other.target_tracking.as_ref().filter(|_| other.enabled) else {
                continue;
            };
            if ot.disable_scale_in {
                continue;
            }
            let low = other.alarms.iter().find(|a| !crate::alarms::is_high(&a.name));
            let last = low.and_then(|a| self.signals.lock().get(&a.name).cloned());
            let agreed = last.as_ref().filter(|s| s.state == "ALARM").and_then(|s| s.values.last());
            let Some(&value) = agreed else {
                tracing::info!(
                    group = g.name,
                    policy = p.name,
                    "scale-in waits for policy {}",
                    other.name
                );
                return Ok(None);
            };
            let theirs = crate::policy::tracking_capacity(g.desired, value, ot.target_value);
            want = Some(want.map_or(theirs, |w| w.max(theirs)));
        }
        Ok(want.map(|w| w.clamp(g.min, g.max).min(g.desired)))
    }

    /// The warm-up a policy's new instances need: its EstimatedInstanceWarmup, else the
    /// group's DefaultInstanceWarmup, else its DefaultCooldown.
    fn warmup(g: &GroupRecord, p: &PolicyRecord) -> u64 {
        p.estimated_instance_warmup.or(g.default_instance_warmup).unwrap_or(g.cooldown)
    }

    /// (capacity past its warm-up, instances warming): warming are the ones a scale-out
    /// launched (every new one with DefaultInstanceWarmup) still launching or in service for
    /// less than the warm-up; the rest count up to the desired capacity (instances a scale-in
    /// is about to take out do not).
    fn warm_counts(&self, g: &GroupRecord, p: &PolicyRecord) -> (u32, u32) {
        let now = self.now();
        let warmup = AutoScaling::warmup(g, p) as i64;
        let (mut settled, mut warming) = (0, 0);
        for m in g.active() {
            let new = g.default_instance_warmup.is_some()
                || g.scaled_out_at.is_some_and(|at| m.launched_at >= at);
            let warm = m.in_service_at.is_some_and(|at| now >= at + warmup);
            if new && !warm {
                warming += 1;
            } else {
                settled += 1;
            }
        }
        (settled.min(g.desired), warming)
    }
}
