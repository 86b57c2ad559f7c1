//! Alarms: the records (metric alarms, metric-math alarms, composite alarms), the API's
//! operations on them, their evaluation on the clock (`evaluate` decides each state), their
//! history, and their actions, which leave through [`AlarmActions`].
//!
//! Evaluation runs every minute (every 10 s for alarms with a period under a minute) over the
//! trailing periods AWS evaluates; actions run on state transitions, except Auto Scaling
//! policy actions, which run again every minute while the alarm stays in the state.

use std::collections::HashMap;
use std::sync::Arc;

use parking_lot::{Mutex, RwLock};
use serde::{Deserialize, Serialize};
use serde_json::json;
use tokio::sync::broadcast;

use crate::evaluate::{self, AlarmRule, Comparison, Point, StateValue, TreatMissing};
use crate::metric::{self, MetricId, Statistic};
use crate::query::{DataQuery, MetricStat};
use crate::{CloudWatch, CwError};

const ALARMS: &str = "cloudwatch/alarm";
const HISTORY: &str = "cloudwatch/history";
/// History is kept 14 days.
const HISTORY_RETENTION_MS: i64 = 14 * 86_400 * 1000;

/// Where alarm actions go: the region implements it over Auto Scaling, EC2 and SNS.
#[async_trait::async_trait]
pub trait AlarmActions: Send + Sync {
    /// Runs one action; `Err` says why it failed (recorded in the alarm's history).
    async fn invoke(&self, arn: &str, fired: &Fired) -> Result<(), String>;
}

/// What an action learns of the alarm that invoked it.
#[derive(Clone, Debug)]
pub struct Fired {
    pub alarm: AlarmRecord,
    pub old_state: StateValue,
    /// Epoch milliseconds of the state change (or of this re-invocation).
    pub at: i64,
    /// The datapoints evaluated, newest last (what a step policy aggregates).
    pub values: Vec<f64>,
}

impl Fired {
    /// The instance a per-instance alarm watches (EC2 actions act on it).
    pub fn instance_id(&self) -> Option<&str> {
        match &self.alarm.kind {
            AlarmKind::Metric(m) => {
                m.dimensions.iter().find(|(k, _)| k == "InstanceId").map(|(_, v)| v.as_str())
            }
            AlarmKind::Composite(_) => None,
        }
    }
}

/// A metric alarm's definition (single metric, or metric math through `metrics`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, Default)]
pub struct MetricAlarm {
    pub namespace: Option<String>,
    pub metric_name: Option<String>,
    pub dimensions: Vec<(String, String)>,
    pub statistic: Option<String>,
    pub extended_statistic: Option<String>,
    pub period: Option<i64>,
    pub unit: Option<String>,
    pub metrics: Vec<DataQuery>,
    pub threshold: Option<f64>,
    pub threshold_metric_id: Option<String>,
    pub comparison: String,
    pub evaluation_periods: u32,
    pub datapoints_to_alarm: Option<u32>,
    pub treat_missing_data: Option<String>,
    pub evaluate_low_sample_count_percentile: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CompositeAlarm {
    pub rule: String,
    pub actions_suppressor: Option<String>,
    pub actions_suppressor_wait_period: Option<i64>,
    pub actions_suppressor_extension_period: Option<i64>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum AlarmKind {
    Metric(Box<MetricAlarm>),
    Composite(CompositeAlarm),
}

/// An alarm as DescribeAlarms shows it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AlarmRecord {
    pub name: String,
    pub arn: String,
    pub description: Option<String>,
    pub actions_enabled: bool,
    pub ok_actions: Vec<String>,
    pub alarm_actions: Vec<String>,
    pub insufficient_data_actions: Vec<String>,
    pub kind: AlarmKind,
    pub state: StateValue,
    pub state_reason: String,
    pub state_reason_data: Option<String>,
    /// Epoch milliseconds.
    pub state_updated: i64,
    pub state_transitioned: i64,
    pub configuration_updated: i64,
    pub tags: Vec<(String, String)>,
}

impl AlarmRecord {
    pub fn is_composite(&self) -> bool {
        matches!(self.kind, AlarmKind::Composite(_))
    }

    pub fn actions_for(&self, state: StateValue) -> &[String] {
        match state {
            StateValue::Ok => &self.ok_actions,
            StateValue::Alarm => &self.alarm_actions,
            StateValue::InsufficientData => &self.insufficient_data_actions,
        }
    }

    pub fn metric(&self) -> Option<&MetricAlarm> {
        match &self.kind {
            AlarmKind::Metric(m) => Some(m),
            AlarmKind::Composite(_) => None,
        }
    }
}

/// PutMetricAlarm / PutCompositeAlarm (and `AWS::CloudWatch::Alarm` / `CompositeAlarm`).
#[derive(Clone, Debug, PartialEq, Default)]
pub struct PutAlarm {
    pub name: String,
    pub description: Option<String>,
    pub actions_enabled: Option<bool>,
    pub ok_actions: Vec<String>,
    pub alarm_actions: Vec<String>,
    pub insufficient_data_actions: Vec<String>,
    pub metric: Option<MetricAlarm>,
    pub composite: Option<CompositeAlarm>,
    pub tags: Vec<(String, String)>,
}

/// One entry of DescribeAlarmHistory.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct HistoryItem {
    pub alarm_name: String,
    /// `MetricAlarm` or `CompositeAlarm`.
    pub alarm_type: String,
    /// Epoch milliseconds.
    pub timestamp: i64,
    /// `ConfigurationUpdate`, `StateUpdate` or `Action`.
    pub item_type: String,
    pub summary: String,
    /// JSON text.
    pub data: String,
}

/// DescribeAlarms' filters.
#[derive(Clone, Debug, Default)]
pub struct AlarmFilter {
    pub names: Vec<String>,
    pub prefix: Option<String>,
    pub state: Option<StateValue>,
    pub action_prefix: Option<String>,
    /// `MetricAlarm`, `CompositeAlarm` (none: metric alarms only, as AWS answers).
    pub types: Vec<String>,
}

/// The alarm side's live state.
pub(crate) struct State {
    actions: RwLock<Option<Arc<dyn AlarmActions>>>,
    /// When each alarm was last evaluated (AWS seconds).
    evaluated: Mutex<HashMap<String, i64>>,
    changes: broadcast::Sender<String>,
    /// One writer at a time (API calls and the evaluator).
    write: Mutex<()>,
}

impl Default for State {
    fn default() -> State {
        State {
            actions: RwLock::new(None),
            evaluated: Mutex::new(HashMap::new()),
            changes: broadcast::channel(1024).0,
            write: Mutex::new(()),
        }
    }
}

fn invalid(m: impl Into<String>) -> CwError {
    CwError::InvalidParameterValue(m.into())
}

fn is_ec2_action(arn: &str) -> bool {
    arn.contains(":automate:") && arn.contains(":ec2:")
        || arn.contains(":swf:") && arn.contains(":action/actions/AWS_EC2.")
}

fn is_autoscaling_action(arn: &str) -> bool {
    arn.starts_with("arn:aws:autoscaling:") || arn.contains(":autoscaling:")
}

impl CloudWatch {
    /// Where alarm actions go (the region sets it once every service is up).
    pub fn set_actions(&self, actions: Arc<dyn AlarmActions>) {
        *self.alarms.actions.write() = Some(actions);
    }

    /// Alarm state changes (the alarm's name), announced after they are stored.
    pub fn subscribe(&self) -> broadcast::Receiver<String> {
        self.alarms.changes.subscribe()
    }

    fn now_ms(&self) -> i64 {
        self.clock.now().as_millisecond()
    }

    pub fn alarm(&self, name: &str) -> Result<Option<AlarmRecord>, CwError> {
        Ok(self.store.get(ALARMS, name)?)
    }

    pub fn alarms(&self) -> Result<Vec<AlarmRecord>, CwError> {
        Ok(self.store.list(ALARMS, "")?.into_iter().map(|(_, a)| a).collect())
    }

    /// Checks a metric alarm's definition as PutMetricAlarm does.
    fn check_metric_alarm(&self, m: &MetricAlarm) -> Result<(), CwError> {
        let cmp = Comparison::parse(&m.comparison).ok_or_else(|| {
            invalid(format!(
                "The parameter ComparisonOperator must be a value in the set [ GreaterThanOrEqualToThreshold, GreaterThanThreshold, LessThanThreshold, LessThanOrEqualToThreshold, LessThanLowerOrGreaterThanUpperThreshold, LessThanLowerThreshold, GreaterThanUpperThreshold ] (got {}).",
                m.comparison
            ))
        })?;
        if cmp.is_anomaly_band() || m.threshold_metric_id.is_some() {
            return Err(invalid(
                "Anomaly detection bands (ThresholdMetricId, ANOMALY_DETECTION_BAND) are not supported by Cumulo; use a static Threshold.",
            ));
        }
        if m.threshold.is_none() {
            return Err(CwError::MissingParameter("The parameter Threshold is required.".into()));
        }
        if m.evaluation_periods < 1 {
            return Err(invalid("The parameter EvaluationPeriods must be at least 1."));
        }
        if let Some(d) = m.datapoints_to_alarm
            && (d < 1 || d > m.evaluation_periods)
        {
            return Err(invalid(
                "DatapointsToAlarm must be between 1 and the value of EvaluationPeriods.",
            ));
        }
        if let Some(t) = &m.treat_missing_data
            && TreatMissing::parse(t).is_none()
        {
            return Err(invalid(format!(
                "The parameter TreatMissingData must be one of breaching, notBreaching, ignore, missing (got {t})."
            )));
        }
        if let Some(e) = &m.evaluate_low_sample_count_percentile
            && e != "evaluate"
            && e != "ignore"
        {
            return Err(invalid(
                "The parameter EvaluateLowSampleCountPercentile must be one of evaluate, ignore.",
            ));
        }
        let single = m.metric_name.is_some() || m.namespace.is_some();
        let period = if single {
            if !m.metrics.is_empty() {
                return Err(CwError::InvalidParameterCombination(
                    "The parameters MetricName and Metrics are mutually exclusive.".into(),
                ));
            }
            let (Some(ns), Some(name)) = (&m.namespace, &m.metric_name) else {
                return Err(CwError::MissingParameter(
                    "The parameters Namespace and MetricName are required together.".into(),
                ));
            };
            MetricId::new(ns.clone(), name.clone(), m.dimensions.clone()).check()?;
            match (&m.statistic, &m.extended_statistic) {
                (Some(s), None) => {
                    if Statistic::parse(s).is_none_or(|st| st.is_extended()) {
                        return Err(invalid(format!(
                            "The parameter Statistic must be a value in the set [ SampleCount, Average, Sum, Minimum, Maximum ] (got {s})."
                        )));
                    }
                }
                (None, Some(s)) => {
                    if Statistic::parse_extended(s).is_none() {
                        return Err(invalid(format!(
                            "The value {s} for parameter ExtendedStatistic is not supported."
                        )));
                    }
                }
                _ => {
                    return Err(CwError::InvalidParameterCombination(
                        "Exactly one of Statistic and ExtendedStatistic must be specified.".into(),
                    ));
                }
            }
            if let Some(u) = &m.unit {
                metric::check_unit(u)?;
            }
            let p = m.period.ok_or_else(|| {
                CwError::MissingParameter("The parameter Period is required.".into())
            })?;
            metric::check_period(p)?;
            if p < 10 {
                return Err(invalid("The parameter Period must be 10, 30 or a multiple of 60."));
            }
            p
        } else {
            if m.metrics.is_empty() {
                return Err(CwError::MissingParameter(
                    "Either MetricName or Metrics must be specified.".into(),
                ));
            }
            crate::query::check_queries(&m.metrics)?;
            if m.metrics.iter().filter(|q| q.return_data).count() != 1 {
                return Err(invalid("Exactly one element of the metrics list should return data."));
            }
            for q in &m.metrics {
                if let Some(e) = &q.expression {
                    crate::math::parse(e)
                        .map_err(|e| invalid(format!("Error in expression '{}': {e}", q.id)))?;
                }
            }
            m.metrics
                .iter()
                .filter_map(|q| q.metric.as_ref().map(|s| s.period).or(q.period))
                .min()
                .unwrap_or(60)
        };
        let span = period * i64::from(m.evaluation_periods);
        if period < 3_600 && span > 86_400 {
            return Err(invalid(
                "Metrics cannot be checked across more than a day (EvaluationPeriods * Period must be <= 86400).",
            ));
        }
        if span > 604_800 {
            return Err(invalid(
                "Metrics cannot be checked across more than 7 days (EvaluationPeriods * Period must be <= 604800).",
            ));
        }
        Ok(())
    }

    /// PutMetricAlarm or PutCompositeAlarm: creates an alarm (in INSUFFICIENT_DATA) or
    /// replaces one's definition (its state is left as it is).
    pub fn put_alarm(&self, req: PutAlarm) -> Result<AlarmRecord, CwError> {
        if req.name.is_empty() || req.name.len() > 255 {
            return Err(invalid("The parameter AlarmName must be between 1 and 255 characters."));
        }
        for (list, name) in [
            (&req.ok_actions, "OKActions"),
            (&req.alarm_actions, "AlarmActions"),
            (&req.insufficient_data_actions, "InsufficientDataActions"),
        ] {
            if list.len() > 5 {
                return Err(invalid(format!(
                    "The collection {name} must not have a size greater than 5."
                )));
            }
        }
        let all_actions =
            req.ok_actions.iter().chain(&req.alarm_actions).chain(&req.insufficient_data_actions);
        let kind = match (&req.metric, &req.composite) {
            (Some(m), None) => {
                self.check_metric_alarm(m)?;
                for a in all_actions {
                    if is_ec2_action(a) {
                        if !m.metrics.is_empty() {
                            return Err(invalid(
                                "EC2 actions are not supported for alarms on metric math expressions.",
                            ));
                        }
                        if !m.dimensions.iter().any(|(k, _)| k == "InstanceId") {
                            return Err(invalid(format!(
                                "Invalid use of EC2 action {a}: the alarm must watch a metric of one instance (an InstanceId dimension)."
                            )));
                        }
                        if a.ends_with(":recover")
                            && m.metric_name.as_deref() == Some("StatusCheckFailed_Instance")
                        {
                            return Err(invalid(
                                "The EC2 recover action is not supported on the StatusCheckFailed_Instance metric.",
                            ));
                        }
                    }
                }
                AlarmKind::Metric(Box::new(m.clone()))
            }
            (None, Some(c)) => {
                let rule = AlarmRule::parse(&c.rule)
                    .map_err(|e| invalid(format!("Error in AlarmRule: {e}")))?;
                for a in all_actions {
                    if is_ec2_action(a) || is_autoscaling_action(a) {
                        return Err(invalid(format!(
                            "Composite alarms support SNS (and Systems Manager) actions only, not {a}."
                        )));
                    }
                }
                for referenced in rule.alarms() {
                    let name = referenced.rsplit(":alarm:").next().unwrap_or(&referenced);
                    if self.alarm(name)?.is_none() {
                        return Err(invalid(format!(
                            "Could not save the composite alarm as alarms [{name}] in the alarm rule do not exist"
                        )));
                    }
                }
                AlarmKind::Composite(c.clone())
            }
            _ => {
                return Err(CwError::InvalidParameterCombination(
                    "An alarm is either a metric alarm or a composite alarm.".into(),
                ));
            }
        };
        let _w = self.alarms.write.lock();
        let now = self.now_ms();
        let existing = self.alarm(&req.name)?;
        if let Some(e) = &existing
            && e.is_composite() != matches!(kind, AlarmKind::Composite(_))
        {
            return Err(invalid(format!(
                "An alarm named {} of another type already exists.",
                req.name
            )));
        }
        let record = AlarmRecord {
            arn: self.account.arn("cloudwatch", &format!("alarm:{}", req.name)),
            name: req.name.clone(),
            description: req.description,
            actions_enabled: req.actions_enabled.unwrap_or(true),
            ok_actions: req.ok_actions,
            alarm_actions: req.alarm_actions,
            insufficient_data_actions: req.insufficient_data_actions,
            kind,
            state: existing.as_ref().map_or(StateValue::InsufficientData, |e| e.state),
            state_reason: existing.as_ref().map_or_else(
                || "Unchecked: Initial alarm creation".into(),
                |e| e.state_reason.clone(),
            ),
            state_reason_data: existing.as_ref().and_then(|e| e.state_reason_data.clone()),
            state_updated: existing.as_ref().map_or(now, |e| e.state_updated),
            state_transitioned: existing.as_ref().map_or(now, |e| e.state_transitioned),
            configuration_updated: now,
            tags: if req.tags.is_empty() {
                existing.as_ref().map(|e| e.tags.clone()).unwrap_or_default()
            } else {
                req.tags
            },
        };
        let (verb, key) =
            if existing.is_some() { ("updated", "Update") } else { ("created", "Create") };
        let item = HistoryItem {
            alarm_name: record.name.clone(),
            alarm_type: alarm_type(&record).into(),
            timestamp: now,
            item_type: "ConfigurationUpdate".into(),
            summary: format!("Alarm \"{}\" {verb}", record.name),
            data: json!({
                "version": "1.0",
                "type": key,
                (if existing.is_some() { "updatedAlarm" } else { "createdAlarm" }): alarm_json(&record),
            })
            .to_string(),
        };
        self.store.batch(|b| {
            b.put(ALARMS, &record.name, &record)?;
            b.append(HISTORY, &record.name, &item)?;
            Ok(())
        })?;
        // Evaluated at the next tick.
        self.alarms.evaluated.lock().remove(&record.name);
        Ok(record)
    }

    /// DeleteAlarms: all or nothing; a composite alarm's children cannot go first.
    pub fn delete_alarms(&self, names: &[String]) -> Result<(), CwError> {
        if names.len() > 100 {
            return Err(invalid(
                "The collection AlarmNames must not have a size greater than 100.",
            ));
        }
        let _w = self.alarms.write.lock();
        let all = self.alarms()?;
        for n in names {
            if !all.iter().any(|a| &a.name == n) {
                return Err(CwError::ResourceNotFound(format!("Alarm {n} not found")));
            }
        }
        for a in all.iter().filter(|a| !names.contains(&a.name)) {
            if let AlarmKind::Composite(c) = &a.kind
                && let Ok(rule) = AlarmRule::parse(&c.rule)
            {
                for r in rule.alarms() {
                    let child = r.rsplit(":alarm:").next().unwrap_or(&r);
                    if names.iter().any(|n| n == child) {
                        return Err(invalid(format!(
                            "Alarm {child} cannot be deleted: the composite alarm {} refers to it.",
                            a.name
                        )));
                    }
                }
            }
        }
        self.store.batch(|b| {
            for n in names {
                b.delete(ALARMS, n)?;
            }
            Ok(())
        })?;
        // The history stays (as AWS keeps it, by name, for its 14 days).
        for n in names {
            self.alarms.evaluated.lock().remove(n);
        }
        Ok(())
    }

    /// DescribeAlarms.
    pub fn describe_alarms(&self, f: &AlarmFilter) -> Result<Vec<AlarmRecord>, CwError> {
        let metric_alarms = f.types.is_empty() || f.types.iter().any(|t| t == "MetricAlarm");
        let composites = f.types.iter().any(|t| t == "CompositeAlarm");
        Ok(self
            .alarms()?
            .into_iter()
            .filter(|a| if a.is_composite() { composites } else { metric_alarms })
            .filter(|a| f.names.is_empty() || f.names.contains(&a.name))
            .filter(|a| f.prefix.as_deref().is_none_or(|p| a.name.starts_with(p)))
            .filter(|a| f.state.is_none_or(|s| a.state == s))
            .filter(|a| {
                f.action_prefix.as_deref().is_none_or(|p| {
                    a.ok_actions
                        .iter()
                        .chain(&a.alarm_actions)
                        .chain(&a.insufficient_data_actions)
                        .any(|x| x.starts_with(p))
                })
            })
            .collect())
    }

    /// DescribeAlarmsForMetric.
    pub fn alarms_for_metric(
        &self,
        metric: &MetricId,
        statistic: Option<&str>,
        extended: Option<&str>,
        period: Option<i64>,
        unit: Option<&str>,
    ) -> Result<Vec<AlarmRecord>, CwError> {
        Ok(self
            .alarms()?
            .into_iter()
            .filter(|a| {
                let Some(m) = a.metric() else { return false };
                let id = MetricId::new(
                    m.namespace.clone().unwrap_or_default(),
                    m.metric_name.clone().unwrap_or_default(),
                    m.dimensions.clone(),
                );
                id == *metric
                    && statistic.is_none_or(|s| m.statistic.as_deref() == Some(s))
                    && extended.is_none_or(|s| m.extended_statistic.as_deref() == Some(s))
                    && period.is_none_or(|p| m.period == Some(p))
                    && unit.is_none_or(|u| m.unit.as_deref() == Some(u))
            })
            .collect())
    }

    /// DescribeAlarmHistory (newest first), for one alarm or all, within 14 days.
    pub fn alarm_history(
        &self,
        name: Option<&str>,
        item_type: Option<&str>,
        start_ms: Option<i64>,
        end_ms: Option<i64>,
    ) -> Result<Vec<HistoryItem>, CwError> {
        let names: Vec<String> = match name {
            Some(n) => vec![n.to_string()],
            None => self.alarms()?.into_iter().map(|a| a.name).collect(),
        };
        let oldest = self.now_ms() - HISTORY_RETENTION_MS;
        let mut out = Vec::new();
        for n in names {
            for (_, item) in self.store.read_log::<HistoryItem>(HISTORY, &n, 0)? {
                if item.timestamp >= oldest
                    && item_type.is_none_or(|t| item.item_type == t)
                    && start_ms.is_none_or(|s| item.timestamp >= s)
                    && end_ms.is_none_or(|e| item.timestamp <= e)
                {
                    out.push(item);
                }
            }
        }
        // Newest first; entries of the same instant newest first too (they were read oldest first).
        out.reverse();
        out.sort_by_key(|i| std::cmp::Reverse(i.timestamp));
        Ok(out)
    }

    /// EnableAlarmActions / DisableAlarmActions.
    pub fn set_actions_enabled(&self, names: &[String], enabled: bool) -> Result<(), CwError> {
        let _w = self.alarms.write.lock();
        for n in names {
            if let Some(mut a) = self.alarm(n)? {
                a.actions_enabled = enabled;
                self.store.put(ALARMS, n, &a)?;
            }
        }
        Ok(())
    }

    /// SetAlarmState: the state holds until the next evaluation; its actions run.
    pub fn set_alarm_state(
        &self,
        name: &str,
        state: StateValue,
        reason: &str,
        reason_data: Option<&str>,
    ) -> Result<(), CwError> {
        if reason.len() > 1023 {
            return Err(invalid("The parameter StateReason must be at most 1023 characters."));
        }
        if let Some(d) = reason_data
            && serde_json::from_str::<serde_json::Value>(d).is_err()
        {
            return Err(invalid("The parameter StateReasonData must be valid JSON."));
        }
        let alarm = self
            .alarm(name)?
            .ok_or_else(|| CwError::ResourceNotFound(format!("Alarm {name} not found")))?;
        self.transition(
            alarm,
            state,
            reason.to_string(),
            reason_data.map(str::to_string),
            Vec::new(),
        )?;
        // Held until the next evaluation: the next tick evaluates it as usual.
        Ok(())
    }

    /// Stores a state change with its history, announces it, and runs its actions.
    fn transition(
        &self,
        mut alarm: AlarmRecord,
        state: StateValue,
        reason: String,
        reason_data: Option<String>,
        values: Vec<f64>,
    ) -> Result<(), CwError> {
        let old = alarm.state;
        let now = self.now_ms();
        let item = HistoryItem {
            alarm_name: alarm.name.clone(),
            alarm_type: alarm_type(&alarm).into(),
            timestamp: now,
            item_type: "StateUpdate".into(),
            summary: format!("Alarm updated from {} to {}", old.as_str(), state.as_str()),
            data: json!({
                "version": "1.0",
                "oldState": {"stateValue": old.as_str(), "stateReason": alarm.state_reason},
                "newState": {
                    "stateValue": state.as_str(),
                    "stateReason": reason,
                    "stateReasonData": reason_data.as_deref().and_then(|d| serde_json::from_str::<serde_json::Value>(d).ok()),
                },
            })
            .to_string(),
        };
        alarm.state = state;
        alarm.state_reason = reason;
        alarm.state_reason_data = reason_data;
        alarm.state_updated = now;
        if old != state {
            alarm.state_transitioned = now;
        }
        {
            let _w = self.alarms.write.lock();
            // The alarm may have been deleted meanwhile: then nothing happens.
            if self.alarm(&alarm.name)?.is_none() {
                return Ok(());
            }
            self.store.batch(|b| {
                b.put(ALARMS, &alarm.name, &alarm)?;
                b.append(HISTORY, &alarm.name, &item)?;
                Ok(())
            })?;
        }
        let _ = self.alarms.changes.send(alarm.name.clone());
        if old != state {
            self.run_actions(&alarm, old, values, |_| true);
        }
        Ok(())
    }

    /// Runs the actions of the alarm's state that `pick` chooses, each in its own task,
    /// recording each outcome in the history.
    fn run_actions(
        &self,
        alarm: &AlarmRecord,
        old: StateValue,
        values: Vec<f64>,
        pick: impl Fn(&str) -> bool,
    ) {
        if !alarm.actions_enabled {
            return;
        }
        let Some(sink) = self.alarms.actions.read().clone() else { return };
        let fired =
            Arc::new(Fired { alarm: alarm.clone(), old_state: old, at: self.now_ms(), values });
        for arn in alarm.actions_for(alarm.state).iter().filter(|a| pick(a)) {
            let (sink, fired, arn) = (sink.clone(), fired.clone(), arn.clone());
            let store = self.store.clone();
            let clock = self.clock.clone();
            tokio::spawn(async move {
                let result = sink.invoke(&arn, &fired).await;
                let (summary, state, error) = match &result {
                    Ok(()) => (format!("Successfully executed action {arn}"), "Succeeded", None),
                    Err(e) => (
                        format!("Failed to execute action {arn}. Received error: \"{e}\""),
                        "Failed",
                        Some(e.clone()),
                    ),
                };
                let item = HistoryItem {
                    alarm_name: fired.alarm.name.clone(),
                    alarm_type: alarm_type(&fired.alarm).into(),
                    timestamp: clock.now().as_millisecond(),
                    item_type: "Action".into(),
                    summary,
                    data: json!({
                        "actionState": state,
                        "stateUpdateTimestamp": fired.at,
                        "notificationResource": arn,
                        "error": error,
                    })
                    .to_string(),
                };
                if let Err(e) = store.append(HISTORY, &fired.alarm.name, &item) {
                    tracing::warn!("cannot record the action of alarm {}: {e}", fired.alarm.name);
                }
            });
        }
    }

    /// Evaluates every alarm that is due (call every 10 s of AWS time).
    pub fn evaluate_due(&self) -> Result<usize, CwError> {
        let now = self.now();
        let mut n = 0;
        let alarms = self.alarms()?;
        let (composites, metrics): (Vec<AlarmRecord>, Vec<AlarmRecord>) =
            alarms.into_iter().partition(|a| a.is_composite());
        for alarm in metrics {
            let Some(m) = alarm.metric() else { continue };
            let period = m.period.unwrap_or(60);
            let every = if period < 60 { 10 } else { 60 };
            let due = {
                let mut last = self.alarms.evaluated.lock();
                let due = last.get(&alarm.name).is_none_or(|t| now - t >= every);
                if due {
                    last.insert(alarm.name.clone(), now - now.rem_euclid(every));
                }
                due
            };
            if due {
                self.evaluate_metric_alarm(alarm, now)?;
                n += 1;
            }
        }
        for alarm in composites {
            self.evaluate_composite(alarm)?;
            n += 1;
        }
        Ok(n)
    }

    /// The points an alarm evaluates now: its evaluation range, oldest first, with their
    /// sample counts.
    fn alarm_points(
        &self,
        m: &MetricAlarm,
        now: i64,
    ) -> Result<(Vec<Point>, Vec<f64>, i64), CwError> {
        let period = m.period.unwrap_or_else(|| {
            m.metrics
                .iter()
                .filter_map(|q| q.metric.as_ref().map(|s| s.period).or(q.period))
                .min()
                .unwrap_or(60)
        });
        let range = i64::from(evaluate::evaluation_range(m.evaluation_periods));
        // The newest complete period ends at the current period's start.
        let end = now - now.rem_euclid(period);
        let grid: Vec<i64> = (0..range).rev().map(|k| end - (k + 1) * period).collect();
        if m.metrics.is_empty() {
            let stat = MetricStat {
                metric: MetricId::new(
                    m.namespace.clone().unwrap_or_default(),
                    m.metric_name.clone().unwrap_or_default(),
                    m.dimensions.clone(),
                ),
                period,
                stat: m
                    .statistic
                    .clone()
                    .or_else(|| m.extended_statistic.clone())
                    .unwrap_or_default(),
                unit: m.unit.clone(),
            };
            let values = self.stat_series(&stat, &grid)?;
            let counts = values.iter().map(|v| v.map_or(0.0, |(_, c)| c)).collect();
            let points = grid
                .iter()
                .zip(values)
                .map(|(t, v)| Point { timestamp: *t, value: v.map(|(v, _)| v) })
                .collect();
            Ok((points, counts, period))
        } else {
            let series = self.evaluate_queries(&m.metrics, grid[0], end)?;
            let data = series.into_iter().find(|(q, _)| q.return_data).map(|(_, s)| s);
            let points = grid
                .iter()
                .map(|t| Point {
                    timestamp: *t,
                    value: data.as_ref().and_then(|s| {
                        let i = s.timestamps.iter().position(|x| x == t)?;
                        s.values.get(i).copied().flatten()
                    }),
                })
                .collect();
            Ok((points, vec![f64::INFINITY; grid.len()], period))
        }
    }

    fn evaluate_metric_alarm(&self, alarm: AlarmRecord, now: i64) -> Result<(), CwError> {
        let Some(m) = alarm.metric().cloned() else { return Ok(()) };
        let Some(comparison) = Comparison::parse(&m.comparison) else { return Ok(()) };
        let (points, counts, period) = match self.alarm_points(&m, now) {
            Ok(p) => p,
            Err(CwError::Store(e)) => return Err(CwError::Store(e)),
            Err(e) => {
                tracing::warn!("alarm {} cannot be evaluated: {e}", alarm.name);
                return Ok(());
            }
        };
        if m.evaluate_low_sample_count_percentile.as_deref() == Some("ignore")
            && let Some(p) = m
                .extended_statistic
                .as_deref()
                .and_then(Statistic::parse_extended)
                .and_then(|s| s.percentile())
        {
            let n = m.evaluation_periods as usize;
            let recent = counts.iter().rev().take(n);
            if recent.into_iter().any(|c| *c > 0.0 && evaluate::low_sample_count(p / 100.0, *c)) {
                // Too few samples to be significant: the state does not change.
                return Ok(());
            }
        }
        let rule = evaluate::Rule {
            comparison,
            threshold: m.threshold.unwrap_or(0.0),
            evaluation_periods: m.evaluation_periods,
            datapoints_to_alarm: m.datapoints_to_alarm.unwrap_or(m.evaluation_periods),
            treat_missing: m
                .treat_missing_data
                .as_deref()
                .and_then(TreatMissing::parse)
                .unwrap_or_default(),
        };
        let outcome = evaluate::evaluate(&rule, &points, alarm.state);
        let statistic = m
            .statistic
            .clone()
            .or(m.extended_statistic.clone())
            .unwrap_or_else(|| "Average".into());
        let data = evaluate::complete_reason_data(
            &outcome.reason_data,
            now * 1000,
            m.unit.as_deref(),
            m.metrics.is_empty().then_some(statistic.as_str()),
            u32::try_from(period).unwrap_or(60),
        );
        let values: Vec<f64> = outcome.used.iter().filter_map(|p| p.value).collect();
        if outcome.state != alarm.state {
            self.transition(alarm, outcome.state, outcome.reason, Some(data.to_string()), values)?;
        } else if outcome.state != StateValue::InsufficientData {
            // Auto Scaling policies hear from an alarm every minute while it stays.
            let old = alarm.state;
            self.run_actions(&alarm, old, values, is_autoscaling_action);
        }
        Ok(())
    }

    fn evaluate_composite(&self, alarm: AlarmRecord) -> Result<(), CwError> {
        let AlarmKind::Composite(c) = &alarm.kind else { return Ok(()) };
        let Ok(rule) = AlarmRule::parse(&c.rule) else { return Ok(()) };
        let states: HashMap<String, (StateValue, String, i64)> = self
            .alarms()?
            .into_iter()
            .map(|a| (a.name.clone(), (a.state, a.arn.clone(), a.state_updated)))
            .collect();
        let lookup = |r: &str| {
            let name = r.rsplit(":alarm:").next().unwrap_or(r);
            states.get(name).map(|s| s.0)
        };
        let state = if rule.evaluate(&lookup) { StateValue::Alarm } else { StateValue::Ok };
        if state == alarm.state {
            return Ok(());
        }
        let triggering: Vec<serde_json::Value> = rule
            .alarms()
            .iter()
            .filter_map(|r| {
                let name = r.rsplit(":alarm:").next().unwrap_or(r);
                let (s, arn, at) = states.get(name)?;
                Some(
                    json!({"arn": arn, "state": {"value": s.as_str(), "timestamp": aws_date(*at)}}),
                )
            })
            .collect();
        let reason = match triggering.first() {
            Some(t) => format!(
                "{} transitioned to {} at {}",
                t["arn"].as_str().unwrap_or_default(),
                t["state"]["value"].as_str().unwrap_or_default(),
                t["state"]["timestamp"].as_str().unwrap_or_default()
            ),
            None => "The alarm rule evaluates to FALSE".into(),
        };
        let data = json!({"triggeringAlarms": triggering}).to_string();
        self.transition(alarm, state, reason, Some(data), Vec::new())
    }

    /// Evaluates alarms on the clock until `cancel` fires, and flushes the metric store.
    pub async fn run(self: Arc<Self>, cancel: tokio_util::sync::CancellationToken) {
        let mut tick = self.clock.interval(std::time::Duration::from_secs(10));
        let mut ticks = 0u64;
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = cancel.cancelled() => break,
            }
            ticks += 1;
            if let Err(e) = self.evaluate_due() {
                tracing::warn!("alarm evaluation: {e}");
            }
            // Every five minutes of AWS time the metric store writes what changed.
            if ticks.is_multiple_of(30)
                && let Err(e) = self.flush()
            {
                tracing::warn!("metric store: {e}");
            }
        }
        if let Err(e) = self.flush() {
            tracing::warn!("metric store: {e}");
        }
    }
}

fn alarm_type(a: &AlarmRecord) -> &'static str {
    if a.is_composite() { "CompositeAlarm" } else { "MetricAlarm" }
}

/// `2022-10-18T20:01:25.573+0000`, as CloudWatch writes times in JSON.
pub fn aws_date(ms: i64) -> String {
    jiff::Timestamp::from_millisecond(ms)
        .map(|t| t.strftime("%Y-%m-%dT%H:%M:%S%.3f+0000").to_string())
        .unwrap_or_default()
}

/// An alarm as the history's configuration entries show it.
fn alarm_json(a: &AlarmRecord) -> serde_json::Value {
    let mut v = json!({
        "alarmName": a.name,
        "alarmArn": a.arn,
        "actionsEnabled": a.actions_enabled,
        "okactions": a.ok_actions,
        "alarmActions": a.alarm_actions,
        "insufficientDataActions": a.insufficient_data_actions,
    });
    if let (Some(obj), AlarmKind::Metric(m)) = (v.as_object_mut(), &a.kind) {
        obj.insert("namespace".into(), json!(m.namespace));
        obj.insert("metricName".into(), json!(m.metric_name));
        obj.insert(
            "dimensions".into(),
            json!(
                m.dimensions
                    .iter()
                    .map(|(k, v)| json!({"name": k, "value": v}))
                    .collect::<Vec<_>>()
            ),
        );
        obj.insert("statistic".into(), json!(m.statistic.as_deref().map(str::to_uppercase)));
        obj.insert("period".into(), json!(m.period));
        obj.insert("evaluationPeriods".into(), json!(m.evaluation_periods));
        obj.insert("threshold".into(), json!(m.threshold));
        obj.insert("comparisonOperator".into(), json!(m.comparison));
        obj.insert("treatMissingData".into(), json!(m.treat_missing_data));
    }
    v
}
