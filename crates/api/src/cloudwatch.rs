//! CloudWatch (metrics and alarms) over RPCv2-CBOR (what current botocore and the SDKs
//! send), awsJson 1.0 (`GraniteServiceVersion20100801`) and awsQuery (2010-08-01); it is
//! awsQueryCompatible, so JSON and CBOR errors carry the Query code too. Every operation reads
//! a `Value` tree, whatever carried it, into the `cloudwatch` crate's typed requests.

use std::sync::Arc;

use ::cloudwatch::alarms::{
    AlarmFilter, AlarmKind, AlarmRecord, CompositeAlarm, MetricAlarm, PutAlarm,
};
use ::cloudwatch::evaluate::StateValue;
use ::cloudwatch::query::{DataQuery, MetricStat, StatisticsQuery};
use ::cloudwatch::{CloudWatch, CwError, Datum, MetricId};

use crate::error::ApiError;
use crate::protocol::Value;
use crate::registry::{Context, JsonVersion, RpcService, Wire};

const OPERATIONS: &[&str] = &[
    "PutMetricData",
    "GetMetricStatistics",
    "GetMetricData",
    "ListMetrics",
    "PutMetricAlarm",
    "PutCompositeAlarm",
    "DescribeAlarms",
    "DescribeAlarmsForMetric",
    "DescribeAlarmHistory",
    "SetAlarmState",
    "EnableAlarmActions",
    "DisableAlarmActions",
    "DeleteAlarms",
    "ListTagsForResource",
];

/// The error shapes (botocore's model) whose name is not their Query code: what JSON and
/// CBOR errors name in `__type`.
const ERROR_SHAPES: &[(&str, &str)] = &[
    ("InvalidParameterValue", "InvalidParameterValueException"),
    ("InvalidParameterCombination", "InvalidParameterCombinationException"),
    ("MissingParameter", "MissingRequiredParameterException"),
    ("InternalServiceError", "InternalServiceFault"),
    ("LimitExceeded", "LimitExceededFault"),
    ("InvalidFormat", "InvalidFormatFault"),
    ("ValidationError", "ValidationException"),
];

/// Every operation it answers (COVERAGE.md).
pub fn actions() -> &'static [&'static str] {
    OPERATIONS
}

/// CloudWatch in the endpoint's registry.
pub struct Api {
    cloudwatch: Arc<CloudWatch>,
    wire: Wire,
}

impl Api {
    pub fn new(cloudwatch: Arc<CloudWatch>) -> Api {
        let wire = Wire {
            signing_name: "monitoring",
            json: Some(("GraniteServiceVersion20100801", JsonVersion::V1_0)),
            cbor: Some("GraniteServiceVersion20100801"),
            query: Some(("2010-08-01", "http://monitoring.amazonaws.com/doc/2010-08-01/")),
            query_compatible: true,
            error_shapes: ERROR_SHAPES,
        };
        Api { cloudwatch, wire }
    }
}

#[async_trait::async_trait]
impl RpcService for Api {
    fn wire(&self) -> &Wire {
        &self.wire
    }

    fn handles(&self, operation: &str) -> bool {
        OPERATIONS.contains(&operation)
    }

    async fn call(
        &self,
        operation: &str,
        input: &Value,
        _: &Context<'_>,
    ) -> Result<Value, ApiError> {
        call(&self.cloudwatch, operation, input)
    }
}

impl From<CwError> for ApiError {
    fn from(e: CwError) -> ApiError {
        ApiError::new(e.code(), e.to_string(), e.status())
    }
}

fn missing(name: &str) -> ApiError {
    ApiError::new("MissingParameter", format!("The parameter {name} is required."), 400)
}

fn required<'a>(input: &'a Value, key: &str) -> Result<&'a str, ApiError> {
    input.str(key).ok_or_else(|| missing(key))
}

fn time(input: &Value, key: &str) -> Result<i64, ApiError> {
    let t = input.get(key).ok_or_else(|| missing(key))?.as_timestamp().ok_or_else(|| {
        ApiError::new(
            "InvalidParameterValue",
            format!("The parameter {key} is not a valid timestamp."),
            400,
        )
    })?;
    Ok(t.floor() as i64)
}

fn dimensions(v: &Value) -> Vec<(String, String)> {
    v.list("Dimensions")
        .iter()
        .filter_map(|d| Some((d.str("Name")?.to_string(), d.str("Value")?.to_string())))
        .collect()
}

fn dimensions_out(dims: &[(String, String)]) -> Value {
    Value::List(
        dims.iter()
            .map(|(k, v)| {
                let mut d = Value::map();
                d.set("Name", Value::from(k.as_str())).set("Value", Value::from(v.as_str()));
                d
            })
            .collect(),
    )
}

fn metric_out(id: &MetricId) -> Value {
    let mut m = Value::map();
    m.set("Namespace", Value::from(id.namespace.as_str()))
        .set("MetricName", Value::from(id.name.as_str()))
        .set("Dimensions", dimensions_out(&id.dimensions));
    m
}

fn queries(v: &Value) -> Vec<DataQuery> {
    v.list("Metrics")
        .iter()
        .chain(v.list("MetricDataQueries"))
        .map(|q| DataQuery {
            id: q.str("Id").unwrap_or_default().to_string(),
            metric: q.get("MetricStat").map(|s| {
                let m = s.get("Metric").cloned().unwrap_or(Value::Null);
                MetricStat {
                    metric: MetricId::new(
                        m.str("Namespace").unwrap_or_default(),
                        m.str("MetricName").unwrap_or_default(),
                        dimensions(&m),
                    ),
                    period: s.get("Period").and_then(Value::as_i64).unwrap_or(0),
                    stat: s.str("Stat").unwrap_or_default().to_string(),
                    unit: s.str("Unit").map(str::to_string),
                }
            }),
            expression: q.str("Expression").map(str::to_string),
            label: q.str("Label").map(str::to_string),
            return_data: q.get("ReturnData").and_then(Value::as_bool).unwrap_or(true),
            period: q.get("Period").and_then(Value::as_i64),
        })
        .collect()
}

fn queries_out(list: &[DataQuery]) -> Value {
    Value::List(
        list.iter()
            .map(|q| {
                let mut o = Value::map();
                o.set("Id", Value::from(q.id.as_str()));
                if let Some(m) = &q.metric {
                    let mut s = Value::map();
                    s.set("Metric", metric_out(&m.metric))
                        .set("Period", Value::Int(m.period))
                        .set("Stat", Value::from(m.stat.as_str()))
                        .set("Unit", m.unit.as_deref().map(Value::from));
                    o.set("MetricStat", s);
                }
                o.set("Expression", q.expression.as_deref().map(Value::from))
                    .set("Label", q.label.as_deref().map(Value::from))
                    .set("ReturnData", Value::Bool(q.return_data))
                    .set("Period", q.period.map(Value::Int));
                o
            })
            .collect(),
    )
}

fn strings(v: &Value, key: &str) -> Vec<String> {
    v.strings(key)
}

fn put_alarm(input: &Value, composite: bool) -> Result<PutAlarm, ApiError> {
    let name = required(input, "AlarmName")?.to_string();
    let tags = input
        .list("Tags")
        .iter()
        .filter_map(|t| Some((t.str("Key")?.to_string(), t.str("Value")?.to_string())))
        .collect();
    let mut req = PutAlarm {
        name,
        description: input.str("AlarmDescription").map(str::to_string),
        actions_enabled: input.get("ActionsEnabled").and_then(Value::as_bool),
        ok_actions: strings(input, "OKActions"),
        alarm_actions: strings(input, "AlarmActions"),
        insufficient_data_actions: strings(input, "InsufficientDataActions"),
        tags,
        ..PutAlarm::default()
    };
    if composite {
        req.composite = Some(CompositeAlarm {
            rule: required(input, "AlarmRule")?.to_string(),
            actions_suppressor: input.str("ActionsSuppressor").map(str::to_string),
            actions_suppressor_wait_period: input
                .get("ActionsSuppressorWaitPeriod")
                .and_then(Value::as_i64),
            actions_suppressor_extension_period: input
                .get("ActionsSuppressorExtensionPeriod")
                .and_then(Value::as_i64),
        });
    } else {
        let periods = input
            .get("EvaluationPeriods")
            .and_then(Value::as_i64)
            .ok_or_else(|| missing("EvaluationPeriods"))?;
        req.metric = Some(MetricAlarm {
            namespace: input.str("Namespace").map(str::to_string),
            metric_name: input.str("MetricName").map(str::to_string),
            dimensions: dimensions(input),
            statistic: input.str("Statistic").map(str::to_string),
            extended_statistic: input.str("ExtendedStatistic").map(str::to_string),
            period: input.get("Period").and_then(Value::as_i64),
            unit: input.str("Unit").map(str::to_string),
            metrics: queries(input),
            threshold: input.get("Threshold").and_then(Value::as_f64),
            threshold_metric_id: input.str("ThresholdMetricId").map(str::to_string),
            comparison: required(input, "ComparisonOperator")?.to_string(),
            evaluation_periods: u32::try_from(periods).unwrap_or(0),
            datapoints_to_alarm: input
                .get("DatapointsToAlarm")
                .and_then(Value::as_i64)
                .map(|n| u32::try_from(n).unwrap_or(0)),
            treat_missing_data: input.str("TreatMissingData").map(str::to_string),
            evaluate_low_sample_count_percentile: input
                .str("EvaluateLowSampleCountPercentile")
                .map(str::to_string),
        });
    }
    Ok(req)
}

fn ts(ms: i64) -> Value {
    Value::Timestamp(ms as f64 / 1000.0)
}

fn alarm_out(a: &AlarmRecord) -> Value {
    let mut o = Value::map();
    let list = |l: &[String]| Value::List(l.iter().map(|s| Value::from(s.as_str())).collect());
    o.set("AlarmName", Value::from(a.name.as_str()))
        .set("AlarmArn", Value::from(a.arn.as_str()))
        .set("AlarmDescription", a.description.as_deref().map(Value::from))
        .set("AlarmConfigurationUpdatedTimestamp", ts(a.configuration_updated))
        .set("ActionsEnabled", Value::Bool(a.actions_enabled))
        .set("OKActions", list(&a.ok_actions))
        .set("AlarmActions", list(&a.alarm_actions))
        .set("InsufficientDataActions", list(&a.insufficient_data_actions))
        .set("StateValue", Value::from(a.state.as_str()))
        .set("StateReason", Value::from(a.state_reason.as_str()))
        .set("StateReasonData", a.state_reason_data.as_deref().map(Value::from))
        .set("StateUpdatedTimestamp", ts(a.state_updated));
    match &a.kind {
        AlarmKind::Metric(m) => {
            o.set("MetricName", m.metric_name.as_deref().map(Value::from))
                .set("Namespace", m.namespace.as_deref().map(Value::from))
                .set("Statistic", m.statistic.as_deref().map(Value::from))
                .set("ExtendedStatistic", m.extended_statistic.as_deref().map(Value::from))
                .set("Dimensions", dimensions_out(&m.dimensions))
                .set("Period", m.period.map(Value::Int))
                .set("Unit", m.unit.as_deref().map(Value::from))
                .set("EvaluationPeriods", Value::Int(i64::from(m.evaluation_periods)))
                .set("DatapointsToAlarm", m.datapoints_to_alarm.map(|d| Value::Int(i64::from(d))))
                .set("Threshold", m.threshold.map(Value::Float))
                .set("ComparisonOperator", Value::from(m.comparison.as_str()))
                .set("TreatMissingData", m.treat_missing_data.as_deref().map(Value::from))
                .set(
                    "EvaluateLowSampleCountPercentile",
                    m.evaluate_low_sample_count_percentile.as_deref().map(Value::from),
                );
            if !m.metrics.is_empty() {
                o.set("Metrics", queries_out(&m.metrics));
            }
            o.set("ThresholdMetricId", m.threshold_metric_id.as_deref().map(Value::from));
        }
        AlarmKind::Composite(c) => {
            o.set("AlarmRule", Value::from(c.rule.as_str()))
                .set("ActionsSuppressor", c.actions_suppressor.as_deref().map(Value::from))
                .set(
                    "ActionsSuppressorWaitPeriod",
                    c.actions_suppressor_wait_period.map(Value::Int),
                )
                .set(
                    "ActionsSuppressorExtensionPeriod",
                    c.actions_suppressor_extension_period.map(Value::Int),
                );
        }
    }
    o.set("StateTransitionedTimestamp", ts(a.state_transitioned));
    o
}

/// An opaque page token: the index of the first item of the next page.
fn page<T>(items: Vec<T>, input: &Value, max: usize) -> Result<(Vec<T>, Option<String>), ApiError> {
    let size = input
        .get("MaxRecords")
        .and_then(Value::as_i64)
        .map_or(max, |n| usize::try_from(n).unwrap_or(max).clamp(1, max));
    let from = match input.str("NextToken") {
        None => 0,
        Some(t) => t.parse::<usize>().ok().filter(|n| *n <= items.len()).ok_or_else(|| {
            ApiError::new(
                "InvalidNextToken",
                "The service couldn't process your request because the NextToken is invalid.",
                400,
            )
        })?,
    };
    let next = (from + size < items.len()).then(|| (from + size).to_string());
    Ok((items.into_iter().skip(from).take(size).collect(), next))
}

fn names(input: &Value) -> Vec<String> {
    input.strings("AlarmNames")
}

pub fn call(cw: &CloudWatch, operation: &str, input: &Value) -> Result<Value, ApiError> {
    let mut out = Value::map();
    match operation {
        "PutMetricData" => {
            let namespace = required(input, "Namespace")?;
            let data: Vec<Datum> = input
                .list("MetricData")
                .iter()
                .map(|d| Datum {
                    name: d.str("MetricName").unwrap_or_default().to_string(),
                    dimensions: dimensions(d),
                    timestamp: d
                        .get("Timestamp")
                        .and_then(Value::as_timestamp)
                        .map(|t| (t * 1000.0) as i64),
                    value: d.get("Value").and_then(Value::as_f64),
                    values: d.list("Values").iter().filter_map(Value::as_f64).collect(),
                    counts: d.list("Counts").iter().filter_map(Value::as_f64).collect(),
                    statistic_values: d.get("StatisticValues").map(|s| {
                        let f = |k: &str| s.get(k).and_then(Value::as_f64).unwrap_or(f64::NAN);
                        (f("SampleCount"), f("Sum"), f("Minimum"), f("Maximum"))
                    }),
                    unit: d.str("Unit").map(str::to_string),
                    storage_resolution: d.get("StorageResolution").and_then(Value::as_i64),
                })
                .collect();
            if data.is_empty() {
                return Err(missing("MetricData"));
            }
            cw.put_metric_data(namespace, &data)?;
        }
        "GetMetricStatistics" => {
            let q = StatisticsQuery {
                metric: MetricId::new(
                    required(input, "Namespace")?,
                    required(input, "MetricName")?,
                    dimensions(input),
                ),
                start: time(input, "StartTime")?,
                end: time(input, "EndTime")?,
                period: input
                    .get("Period")
                    .and_then(Value::as_i64)
                    .ok_or_else(|| missing("Period"))?,
                statistics: input.strings("Statistics"),
                extended: input.strings("ExtendedStatistics"),
                unit: input.str("Unit").map(str::to_string),
            };
            let points = cw.get_metric_statistics(&q)?;
            out.set("Label", Value::from(q.metric.name.as_str()));
            out.set(
                "Datapoints",
                Value::List(
                    points
                        .iter()
                        .map(|p| {
                            let mut d = Value::map();
                            d.set("Timestamp", Value::Timestamp(p.timestamp as f64));
                            for (k, v) in &p.values {
                                d.set(k, Value::Float(*v));
                            }
                            d.set("Unit", Value::from(p.unit.as_str()));
                            if !p.extended.is_empty() {
                                // DatapointValueMap: a map shape (Query writes `entry`s).
                                let e = p
                                    .extended
                                    .iter()
                                    .map(|(k, v)| (k.clone(), Value::Float(*v)))
                                    .collect();
                                d.set("ExtendedStatistics", Value::Dict(e));
                            }
                            d
                        })
                        .collect(),
                ),
            );
        }
        "GetMetricData" => {
            let list = queries(input);
            let start = time(input, "StartTime")?;
            let end = time(input, "EndTime")?;
            let newest_first = input.str("ScanBy") != Some("TimestampAscending");
            let results = cw.get_metric_data(&list, start, end, newest_first)?;
            let max = input.get("MaxDatapoints").and_then(Value::as_i64).unwrap_or(100_800).max(1)
                as usize;
            out.set(
                "MetricDataResults",
                Value::List(
                    results
                        .iter()
                        .map(|r| {
                            let mut o = Value::map();
                            let points = &r.points[..r.points.len().min(max)];
                            o.set("Id", Value::from(r.id.as_str()))
                                .set("Label", Value::from(r.label.as_str()))
                                .set(
                                    "Timestamps",
                                    Value::List(
                                        points
                                            .iter()
                                            .map(|(t, _)| Value::Timestamp(*t as f64))
                                            .collect(),
                                    ),
                                )
                                .set(
                                    "Values",
                                    Value::List(
                                        points.iter().map(|(_, v)| Value::Float(*v)).collect(),
                                    ),
                                )
                                .set(
                                    "StatusCode",
                                    Value::from(if points.len() < r.points.len() {
                                        "PartialData"
                                    } else {
                                        "Complete"
                                    }),
                                );
                            o
                        })
                        .collect(),
                ),
            );
            out.set("Messages", Value::List(Vec::new()));
        }
        "ListMetrics" => {
            let filters: Vec<(String, Option<String>)> = input
                .list("Dimensions")
                .iter()
                .filter_map(|d| {
                    Some((d.str("Name")?.to_string(), d.str("Value").map(str::to_string)))
                })
                .collect();
            let recently = match input.str("RecentlyActive") {
                None => false,
                Some("PT3H") => true,
                Some(other) => {
                    return Err(ApiError::new(
                        "InvalidParameterValue",
                        format!(
                            "The value {other} for parameter RecentlyActive is invalid; the only valid value is PT3H."
                        ),
                        400,
                    ));
                }
            };
            let metrics = cw.list_metrics(
                input.str("Namespace"),
                input.str("MetricName"),
                &filters,
                recently,
            );
            let (metrics, next) = page(metrics, input, 500)?;
            out.set("Metrics", Value::List(metrics.iter().map(metric_out).collect()))
                .set("NextToken", next.map(Value::from));
        }
        "PutMetricAlarm" => {
            cw.put_alarm(put_alarm(input, false)?)?;
        }
        "PutCompositeAlarm" => {
            cw.put_alarm(put_alarm(input, true)?)?;
        }
        "DescribeAlarms" => {
            let state = match input.str("StateValue") {
                None => None,
                Some(s) => Some(StateValue::parse(s).ok_or_else(|| {
                    ApiError::new(
                        "InvalidParameterValue",
                        format!("The value {s} for parameter StateValue is invalid."),
                        400,
                    )
                })?),
            };
            let filter = AlarmFilter {
                names: names(input),
                prefix: input.str("AlarmNamePrefix").map(str::to_string),
                state,
                action_prefix: input.str("ActionPrefix").map(str::to_string),
                types: input.strings("AlarmTypes"),
            };
            let alarms = cw.describe_alarms(&filter)?;
            let (alarms, next) = page(alarms, input, 100)?;
            let (composites, metrics): (Vec<&AlarmRecord>, Vec<&AlarmRecord>) =
                alarms.iter().partition(|a| a.is_composite());
            out.set("MetricAlarms", Value::List(metrics.into_iter().map(alarm_out).collect()));
            if !filter.types.is_empty() {
                out.set(
                    "CompositeAlarms",
                    Value::List(composites.into_iter().map(alarm_out).collect()),
                );
            }
            out.set("NextToken", next.map(Value::from));
        }
        "DescribeAlarmsForMetric" => {
            let metric = MetricId::new(
                required(input, "Namespace")?,
                required(input, "MetricName")?,
                dimensions(input),
            );
            let alarms = cw.alarms_for_metric(
                &metric,
                input.str("Statistic"),
                input.str("ExtendedStatistic"),
                input.get("Period").and_then(Value::as_i64),
                input.str("Unit"),
            )?;
            out.set("MetricAlarms", Value::List(alarms.iter().map(alarm_out).collect()));
        }
        "DescribeAlarmHistory" => {
            let ms =
                |k: &str| input.get(k).and_then(Value::as_timestamp).map(|t| (t * 1000.0) as i64);
            let mut items = cw.alarm_history(
                input.str("AlarmName"),
                input.str("HistoryItemType"),
                ms("StartDate"),
                ms("EndDate"),
            )?;
            let types = input.strings("AlarmTypes");
            if !types.is_empty() {
                items.retain(|i| types.contains(&i.alarm_type));
            }
            if input.str("ScanBy") == Some("TimestampAscending") {
                items.reverse();
            }
            let (items, next) = page(items, input, 100)?;
            out.set(
                "AlarmHistoryItems",
                Value::List(
                    items
                        .iter()
                        .map(|i| {
                            let mut o = Value::map();
                            o.set("AlarmName", Value::from(i.alarm_name.as_str()))
                                .set("AlarmType", Value::from(i.alarm_type.as_str()))
                                .set("Timestamp", ts(i.timestamp))
                                .set("HistoryItemType", Value::from(i.item_type.as_str()))
                                .set("HistorySummary", Value::from(i.summary.as_str()))
                                .set("HistoryData", Value::from(i.data.as_str()));
                            o
                        })
                        .collect(),
                ),
            )
            .set("NextToken", next.map(Value::from));
        }
        "SetAlarmState" => {
            let name = required(input, "AlarmName")?;
            let value = required(input, "StateValue")?;
            let state = StateValue::parse(value).ok_or_else(|| {
                ApiError::new(
                    "InvalidParameterValue",
                    format!("The value {value} for parameter StateValue is invalid."),
                    400,
                )
            })?;
            cw.set_alarm_state(
                name,
                state,
                required(input, "StateReason")?,
                input.str("StateReasonData"),
            )?;
        }
        "EnableAlarmActions" => cw.set_actions_enabled(&names(input), true)?,
        "DisableAlarmActions" => cw.set_actions_enabled(&names(input), false)?,
        "DeleteAlarms" => cw.delete_alarms(&names(input))?,
        "ListTagsForResource" => {
            let arn = required(input, "ResourceARN")?;
            let alarm = cw.alarms()?.into_iter().find(|a| a.arn == arn).ok_or_else(|| {
                ApiError::new(
                    "ResourceNotFoundException",
                    format!("The resource {arn} does not exist."),
                    404,
                )
            })?;
            out.set(
                "Tags",
                Value::List(
                    alarm
                        .tags
                        .iter()
                        .map(|(k, v)| {
                            let mut t = Value::map();
                            t.set("Key", Value::from(k.as_str()))
                                .set("Value", Value::from(v.as_str()));
                            t
                        })
                        .collect(),
                ),
            );
        }
        other => {
            return Err(ApiError::new(
                "UnknownOperationException",
                format!("Unknown operation {other}"),
                400,
            ));
        }
    }
    Ok(out)
}
