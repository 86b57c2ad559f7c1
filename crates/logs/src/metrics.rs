//! Metric filters (their values aggregated per minute of event time and published when the
//! minute closes, through the [`MetricSink`] the region implements over CloudWatch) and
//! subscription filters (recorded: Cumulo has no Kinesis, Firehose or Lambda to deliver to).

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::pattern::{FilterPattern, Matched};
use crate::{Logs, LogsError, Page, invalid, offset, page, stream_key};

pub(crate) const METRIC_FILTERS: &str = "logs/metric-filter";
pub(crate) const SUBSCRIPTIONS: &str = "logs/subscription";

/// Where metric filters publish (the region implements it over CloudWatch's PutMetricData).
pub trait MetricSink: Send + Sync {
    fn put(
        &self,
        namespace: &str,
        name: &str,
        dimensions: &[(String, String)],
        timestamp_ms: i64,
        value: f64,
        unit: Option<&str>,
    ) -> Result<(), String>;
}

/// One metric transformation of a metric filter.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Transformation {
    pub metric_name: String,
    pub namespace: String,
    /// `"1"`, a number, `$.field` (JSON) or `$field` (space-delimited).
    pub value: String,
    #[serde(default)]
    pub default_value: Option<f64>,
    /// Dimension name to `$field` / `$.field`.
    #[serde(default)]
    pub dimensions: BTreeMap<String, String>,
    #[serde(default)]
    pub unit: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MetricFilter {
    pub group: String,
    pub name: String,
    pub pattern: String,
    pub transformations: Vec<Transformation>,
    pub created_ms: i64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SubscriptionFilter {
    pub group: String,
    pub name: String,
    pub pattern: String,
    pub destination_arn: String,
    #[serde(default)]
    pub role_arn: Option<String>,
    /// ByLogStream or Random.
    pub distribution: String,
    pub created_ms: i64,
}

/// A metric series and the minute (epoch ms) a value belongs to.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct SeriesMinute {
    pub minute: i64,
    pub namespace: String,
    pub name: String,
    pub dimensions: Vec<(String, String)>,
    pub unit: Option<String>,
}

/// What a minute holds: the sum of matched values, or the default when events were ingested
/// and none matched.
#[derive(Clone, Debug, Default)]
pub(crate) struct Aggregate {
    pub sum: f64,
    pub matched: bool,
    pub default: Option<f64>,
}

fn check_transformation(t: &Transformation) -> Result<(), LogsError> {
    if t.metric_name.is_empty() || t.metric_name.len() > 255 || t.metric_name.contains(':') {
        return invalid(format!("Invalid metric name: {}", t.metric_name));
    }
    if t.namespace.is_empty() || t.namespace.len() > 255 || t.namespace.starts_with("AWS/") {
        return invalid(format!("Invalid metric namespace: {}", t.namespace));
    }
    let v = t.value.trim();
    if v.is_empty() || !(v.starts_with('$') || v.parse::<f64>().is_ok_and(f64::is_finite)) {
        return invalid(format!(
            "Invalid metric value: {}. The metric value must be a number or a $field reference.",
            t.value
        ));
    }
    if t.dimensions.len() > 3 {
        return invalid("A metric transformation can have at most 3 dimensions.");
    }
    if !t.dimensions.is_empty() && t.default_value.is_some() {
        return invalid("Dimensions and DefaultValue cannot be used together in a metric filter.");
    }
    for (k, v) in &t.dimensions {
        if k.is_empty() || !v.starts_with('$') {
            return invalid(format!(
                "Invalid dimension {k}: a dimension's value must be a $field reference."
            ));
        }
    }
    if let Some(u) = &t.unit
        && !aws_ids::CLOUDWATCH_UNITS.contains(&u.as_str())
    {
        return invalid(format!("Invalid unit: {u}"));
    }
    Ok(())
}

fn check_filter_name(name: &str) -> Result<(), LogsError> {
    if name.is_empty() || name.len() > 512 || name.contains(':') || name.contains('*') {
        return invalid(format!(
            "1 validation error detected: Value '{name}' at 'filterName' failed to satisfy constraint: Member must satisfy regular expression pattern: [^:*]*"
        ));
    }
    Ok(())
}

/// The value a transformation takes from a matched event (`None`: the event adds nothing).
fn metric_value(t: &Transformation, m: &Matched) -> Option<f64> {
    let v = t.value.trim();
    if v.starts_with('$') {
        m.field(v)?.trim().parse::<f64>().ok().filter(|n| n.is_finite())
    } else {
        v.parse().ok()
    }
}

/// TestMetricFilter's answer for one message.
#[derive(Clone, Debug, PartialEq)]
pub struct TestMatch {
    /// 1-based.
    pub event_number: usize,
    pub message: String,
    pub extracted: Vec<(String, String)>,
}

impl Logs {
    pub fn set_metric_sink(&self, sink: Arc<dyn MetricSink>) {
        self.metrics.lock().sink = Some(sink);
    }

    /// PutMetricFilter (creates or replaces).
    pub fn put_metric_filter(
        &self,
        group: &str,
        name: &str,
        pattern: &str,
        transformations: Vec<Transformation>,
    ) -> Result<MetricFilter, LogsError> {
        check_filter_name(name)?;
        FilterPattern::parse(pattern)?;
        if transformations.len() != 1 {
            return invalid(
                "1 validation error detected: Value at 'metricTransformations' failed to satisfy constraint: Member must have length equal to 1",
            );
        }
        for t in &transformations {
            check_transformation(t)?;
        }
        let _guard = self.writes.lock();
        self.group(group)?;
        let key = stream_key(group, name);
        let existing: Option<MetricFilter> = self.store.get(METRIC_FILTERS, &key)?;
        if existing.is_none() && self.metric_filter_count(group)? >= 100 {
            return Err(LogsError::LimitExceeded(
                "Resource limit exceeded: a log group can have at most 100 metric filters.".into(),
            ));
        }
        let f = MetricFilter {
            group: group.to_string(),
            name: name.to_string(),
            pattern: pattern.to_string(),
            transformations,
            created_ms: existing.map_or_else(|| self.now_ms(), |e| e.created_ms),
        };
        self.store.put(METRIC_FILTERS, &key, &f)?;
        Ok(f)
    }

    pub fn delete_metric_filter(&self, group: &str, name: &str) -> Result<(), LogsError> {
        let _guard = self.writes.lock();
        self.group(group)?;
        if !self.store.delete(METRIC_FILTERS, &stream_key(group, name))? {
            return Err(LogsError::ResourceNotFound(
                "The specified metric filter does not exist.".into(),
            ));
        }
        Ok(())
    }

    /// DescribeMetricFilters: of a group (by name prefix), or of every group by metric.
    pub fn describe_metric_filters(
        &self,
        group: Option<&str>,
        name_prefix: Option<&str>,
        metric: Option<(&str, &str)>,
        limit: usize,
        token: Option<&str>,
    ) -> Result<Page<MetricFilter>, LogsError> {
        if name_prefix.is_some() && group.is_none() {
            return invalid("filterNamePrefix requires logGroupName.");
        }
        let from = offset(token)?;
        let prefix = match group {
            Some(g) => {
                self.group(g)?;
                format!("{g}:{}", name_prefix.unwrap_or(""))
            }
            None => String::new(),
        };
        let all: Vec<MetricFilter> = self
            .store
            .list::<MetricFilter>(METRIC_FILTERS, &prefix)?
            .into_iter()
            .map(|(_, f)| f)
            .filter(|f| group.is_none_or(|g| f.group == g))
            .filter(|f| {
                metric.is_none_or(|(ns, name)| {
                    f.transformations.iter().any(|t| t.namespace == ns && t.metric_name == name)
                })
            })
            .collect();
        Ok(page(all, from, limit))
    }

    /// TestMetricFilter.
    pub fn test_metric_filter(
        &self,
        pattern: &str,
        messages: &[String],
    ) -> Result<Vec<TestMatch>, LogsError> {
        if messages.is_empty() || messages.len() > 50 {
            return invalid(
                "1 validation error detected: Value at 'logEventMessages' failed to satisfy constraint: Member must have length between 1 and 50",
            );
        }
        let p = FilterPattern::parse(pattern)?;
        Ok(messages
            .iter()
            .enumerate()
            .filter_map(|(i, m)| {
                let matched = p.evaluate(m)?;
                let extracted = match matched {
                    Matched::Fields(f) => {
                        f.into_iter().map(|(k, v)| (format!("${k}"), v)).collect()
                    }
                    _ => Vec::new(),
                };
                Some(TestMatch { event_number: i + 1, message: m.clone(), extracted })
            })
            .collect())
    }

    /// Runs a group's metric filters over a batch just stored.
    pub(crate) fn apply_metric_filters(
        &self,
        group: &str,
        events: &[(i64, String)],
    ) -> Result<(), LogsError> {
        let filters: Vec<(String, MetricFilter)> =
            self.store.list(METRIC_FILTERS, &format!("{group}:"))?;
        if filters.is_empty() {
            return Ok(());
        }
        let mut adds: Vec<(SeriesMinute, Option<f64>, Option<f64>)> = Vec::new();
        for (_, f) in filters.iter().filter(|(_, f)| f.group == group) {
            let Ok(p) = FilterPattern::parse(&f.pattern) else { continue };
            for (ts, msg) in events {
                let minute = ts.div_euclid(60_000) * 60_000;
                let matched = p.evaluate(msg);
                for t in &f.transformations {
                    let series = |dimensions| SeriesMinute {
                        minute,
                        namespace: t.namespace.clone(),
                        name: t.metric_name.clone(),
                        dimensions,
                        unit: t.unit.clone(),
                    };
                    match &matched {
                        Some(m) => {
                            let Some(v) = metric_value(t, m) else { continue };
                            let mut dims = Vec::new();
                            for (k, sel) in &t.dimensions {
                                match m.field(sel) {
                                    Some(val) if !val.is_empty() => dims.push((k.clone(), val)),
                                    _ => {}
                                }
                            }
                            if dims.len() < t.dimensions.len() {
                                continue;
                            }
                            adds.push((series(dims), Some(v), t.default_value));
                        }
                        None => {
                            if t.default_value.is_some() {
                                adds.push((series(Vec::new()), None, t.default_value));
                            }
                        }
                    }
                }
            }
        }
        let mut state = self.metrics.lock();
        for (series, value, default) in adds {
            let a = state.minutes.entry(series).or_default();
            if let Some(v) = value {
                a.sum += v;
                a.matched = true;
            }
            if default.is_some() {
                a.default = default;
            }
        }
        Ok(())
    }

    /// Publishes the metric filters' minutes that have closed (the region calls this every
    /// minute; `run` does). Returns how many data points went out.
    pub fn flush_metrics(&self) -> usize {
        let current = self.now_ms().div_euclid(60_000) * 60_000;
        let (sink, due) = {
            let mut state = self.metrics.lock();
            let later = state.minutes.split_off(&SeriesMinute {
                minute: current,
                namespace: String::new(),
                name: String::new(),
                dimensions: Vec::new(),
                unit: None,
            });
            let due = std::mem::replace(&mut state.minutes, later);
            (state.sink.clone(), due)
        };
        let Some(sink) = sink else { return 0 };
        let mut sent = 0;
        for (s, a) in due {
            let value = if a.matched { Some(a.sum) } else { a.default };
            let Some(value) = value else { continue };
            match sink.put(&s.namespace, &s.name, &s.dimensions, s.minute, value, s.unit.as_deref())
            {
                Ok(()) => sent += 1,
                Err(e) => tracing::warn!("metric filter {}/{}: {e}", s.namespace, s.name),
            }
        }
        sent
    }

    /// PutSubscriptionFilter (recorded; at most two per group, as AWS allows).
    pub fn put_subscription_filter(
        &self,
        group: &str,
        name: &str,
        pattern: &str,
        destination_arn: &str,
        role_arn: Option<String>,
        distribution: Option<&str>,
    ) -> Result<SubscriptionFilter, LogsError> {
        check_filter_name(name)?;
        FilterPattern::parse(pattern)?;
        if !destination_arn.starts_with("arn:") {
            return invalid(format!("The destination ARN {destination_arn} is not valid."));
        }
        let distribution = match distribution {
            None => "ByLogStream",
            Some(d @ ("ByLogStream" | "Random")) => d,
            Some(d) => {
                return invalid(format!(
                    "1 validation error detected: Value '{d}' at 'distribution' failed to satisfy constraint: Member must satisfy enum value set: [Random, ByLogStream]"
                ));
            }
        };
        let _guard = self.writes.lock();
        self.group(group)?;
        let key = stream_key(group, name);
        let existing: Option<SubscriptionFilter> = self.store.get(SUBSCRIPTIONS, &key)?;
        if existing.is_none()
            && self.store.list::<SubscriptionFilter>(SUBSCRIPTIONS, &format!("{group}:"))?.len()
                >= 2
        {
            return Err(LogsError::LimitExceeded("Resource limit exceeded.".into()));
        }
        let f = SubscriptionFilter {
            group: group.to_string(),
            name: name.to_string(),
            pattern: pattern.to_string(),
            destination_arn: destination_arn.to_string(),
            role_arn,
            distribution: distribution.to_string(),
            created_ms: existing.map_or_else(|| self.now_ms(), |e| e.created_ms),
        };
        self.store.put(SUBSCRIPTIONS, &key, &f)?;
        Ok(f)
    }

    pub fn delete_subscription_filter(&self, group: &str, name: &str) -> Result<(), LogsError> {
        let _guard = self.writes.lock();
        self.group(group)?;
        if !self.store.delete(SUBSCRIPTIONS, &stream_key(group, name))? {
            return Err(LogsError::ResourceNotFound(
                "The specified subscription filter does not exist.".into(),
            ));
        }
        Ok(())
    }

    pub fn describe_subscription_filters(
        &self,
        group: &str,
        name_prefix: Option<&str>,
        limit: usize,
        token: Option<&str>,
    ) -> Result<Page<SubscriptionFilter>, LogsError> {
        let from = offset(token)?;
        self.group(group)?;
        let all: Vec<SubscriptionFilter> = self
            .store
            .list::<SubscriptionFilter>(
                SUBSCRIPTIONS,
                &format!("{group}:{}", name_prefix.unwrap_or("")),
            )?
            .into_iter()
            .map(|(_, f)| f)
            .filter(|f| f.group == group)
            .collect();
        Ok(page(all, from, limit))
    }
}
