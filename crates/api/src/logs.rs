//! CloudWatch Logs over awsJson 1.1 (`X-Amz-Target: Logs_20140328.<Operation>`): the
//! region's `logs` crate. Times are epoch milliseconds (`long`s in botocore's model), except
//! StartQuery's start and end (epoch seconds).

use std::sync::Arc;

use ::logs::insights::StartQuery;
use ::logs::{
    CreateGroup, FilterInput, GetInput, InputEvent, LogGroup, LogStream, Logs, LogsError,
    MetricFilter, StreamOrder, SubscriptionFilter, Transformation,
};

use crate::error::ApiError;
use crate::protocol::Value;
use crate::registry::{Context, JsonVersion, RpcService, Wire};

const OPERATIONS: &[&str] = &[
    "CreateLogGroup",
    "DeleteLogGroup",
    "DescribeLogGroups",
    "CreateLogStream",
    "DeleteLogStream",
    "DescribeLogStreams",
    "PutLogEvents",
    "GetLogEvents",
    "FilterLogEvents",
    "PutRetentionPolicy",
    "DeleteRetentionPolicy",
    "AssociateKmsKey",
    "DisassociateKmsKey",
    "PutMetricFilter",
    "DescribeMetricFilters",
    "DeleteMetricFilter",
    "TestMetricFilter",
    "PutSubscriptionFilter",
    "DescribeSubscriptionFilters",
    "DeleteSubscriptionFilter",
    "StartQuery",
    "GetQueryResults",
    "StopQuery",
    "TagLogGroup",
    "UntagLogGroup",
    "ListTagsLogGroup",
    "TagResource",
    "UntagResource",
    "ListTagsForResource",
];

/// Every operation it answers (COVERAGE.md).
pub fn actions() -> &'static [&'static str] {
    OPERATIONS
}

/// CloudWatch Logs in the endpoint's registry.
pub struct Api {
    logs: Arc<Logs>,
    wire: Wire,
}

impl Api {
    pub fn new(logs: Arc<Logs>) -> Api {
        let wire = Wire {
            signing_name: "logs",
            json: Some(("Logs_20140328", JsonVersion::V1_1)),
            ..Wire::default()
        };
        Api { logs, wire }
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
        call(&self.logs, operation, input)
    }
}

impl From<LogsError> for ApiError {
    fn from(e: LogsError) -> ApiError {
        ApiError::new(e.code(), e.to_string(), e.status())
    }
}

fn lower_first(s: &str) -> String {
    let mut c = s.chars();
    c.next().map_or_else(String::new, |f| f.to_lowercase().collect::<String>() + c.as_str())
}

fn invalid(msg: impl Into<String>) -> ApiError {
    ApiError::new("InvalidParameterException", msg, 400)
}

fn required<'a>(input: &'a Value, key: &str) -> Result<&'a str, ApiError> {
    input.str(key).ok_or_else(|| {
        invalid(format!(
            "1 validation error detected: Value null at '{}' failed to satisfy constraint: Member must not be null",
            lower_first(key)
        ))
    })
}

fn int(input: &Value, key: &str) -> Option<i64> {
    input.get(key).and_then(Value::as_i64)
}

fn flag(input: &Value, key: &str) -> bool {
    input.get(key).and_then(Value::as_bool).unwrap_or(false)
}

/// `limit` between 1 and `max` (default `max`).
fn limit(input: &Value, max: i64) -> Result<usize, ApiError> {
    match int(input, "limit") {
        None => Ok(max as usize),
        Some(n) if (1..=max).contains(&n) => Ok(n as usize),
        Some(n) => Err(invalid(format!(
            "1 validation error detected: Value '{n}' at 'limit' failed to satisfy constraint: Member must have value between 1 and {max}"
        ))),
    }
}

fn optional_limit(input: &Value, key: &str) -> Option<usize> {
    int(input, key).map(|n| usize::try_from(n).unwrap_or(usize::MAX))
}

/// `logGroupName`, or `logGroupIdentifier` (a name or an ARN).
fn group_name(logs: &Logs, input: &Value) -> Result<String, ApiError> {
    match (input.str("logGroupName"), input.str("logGroupIdentifier")) {
        (Some(_), Some(_)) => {
            Err(invalid("LogGroup name and LogGroup ARN are mutually exclusive parameters."))
        }
        (Some(n), None) => Ok(n.to_string()),
        (None, Some(id)) => Ok(logs.group_identifier(id)?),
        (None, None) => required(input, "logGroupName").map(str::to_string),
    }
}

fn tags_in(input: &Value, key: &str) -> Vec<(String, String)> {
    match input.get(key) {
        Some(Value::Map(m) | Value::Dict(m)) => {
            m.iter().filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string()))).collect()
        }
        _ => Vec::new(),
    }
}

fn dict<'a>(pairs: impl IntoIterator<Item = (&'a String, &'a String)>) -> Value {
    Value::Dict(pairs.into_iter().map(|(k, v)| (k.clone(), Value::from(v.as_str()))).collect())
}

fn group_out(logs: &Logs, g: &LogGroup) -> Result<Value, ApiError> {
    let mut v = Value::map();
    v.set("logGroupName", Value::from(g.name.as_str()))
        .set("creationTime", Value::Int(g.created_ms))
        .set("retentionInDays", g.retention_days.map(|d| Value::Int(i64::from(d))))
        .set("metricFilterCount", Value::Int(logs.metric_filter_count(&g.name)? as i64))
        .set("arn", Value::from(logs.group_arn(&g.name)))
        .set("storedBytes", Value::Int(0))
        .set("kmsKeyId", g.kms_key_id.as_deref().map(Value::from))
        .set("logGroupClass", Value::from(g.class.as_str()))
        .set("logGroupArn", Value::from(logs.group_arn_bare(&g.name)));
    Ok(v)
}

fn stream_out(logs: &Logs, s: &LogStream) -> Value {
    let mut v = Value::map();
    v.set("logStreamName", Value::from(s.name.as_str()))
        .set("creationTime", Value::Int(s.created_ms))
        .set("firstEventTimestamp", s.first_event_ms.map(Value::Int))
        .set("lastEventTimestamp", s.last_event_ms.map(Value::Int))
        .set("lastIngestionTime", s.last_ingestion_ms.map(Value::Int))
        .set("uploadSequenceToken", Value::from(format!("{:056}", s.last_seq.max(0))))
        .set("arn", Value::from(logs.stream_arn(&s.group, &s.name)))
        .set("storedBytes", Value::Int(0));
    v
}

fn transformations_in(input: &Value) -> Vec<Transformation> {
    input
        .list("metricTransformations")
        .iter()
        .map(|t| Transformation {
            metric_name: t.str("metricName").unwrap_or_default().to_string(),
            namespace: t.str("metricNamespace").unwrap_or_default().to_string(),
            value: t.str("metricValue").unwrap_or_default().to_string(),
            default_value: t.get("defaultValue").and_then(Value::as_f64),
            dimensions: tags_in(t, "dimensions").into_iter().collect(),
            unit: t.str("unit").map(str::to_string),
        })
        .collect()
}

fn metric_filter_out(f: &MetricFilter) -> Value {
    let transformations = f
        .transformations
        .iter()
        .map(|t| {
            let mut v = Value::map();
            v.set("metricName", Value::from(t.metric_name.as_str()))
                .set("metricNamespace", Value::from(t.namespace.as_str()))
                .set("metricValue", Value::from(t.value.as_str()))
                .set("defaultValue", t.default_value.map(Value::Float))
                .set("dimensions", (!t.dimensions.is_empty()).then(|| dict(&t.dimensions)))
                .set("unit", t.unit.as_deref().map(Value::from));
            v
        })
        .collect();
    let mut v = Value::map();
    v.set("filterName", Value::from(f.name.as_str()))
        .set("filterPattern", Value::from(f.pattern.as_str()))
        .set("metricTransformations", Value::List(transformations))
        .set("creationTime", Value::Int(f.created_ms))
        .set("logGroupName", Value::from(f.group.as_str()));
    v
}

fn subscription_out(f: &SubscriptionFilter) -> Value {
    let mut v = Value::map();
    v.set("filterName", Value::from(f.name.as_str()))
        .set("logGroupName", Value::from(f.group.as_str()))
        .set("filterPattern", Value::from(f.pattern.as_str()))
        .set("destinationArn", Value::from(f.destination_arn.as_str()))
        .set("roleArn", f.role_arn.as_deref().map(Value::from))
        .set("distribution", Value::from(f.distribution.as_str()))
        .set("creationTime", Value::Int(f.created_ms));
    v
}

pub fn call(logs: &Logs, operation: &str, input: &Value) -> Result<Value, ApiError> {
    let mut out = Value::map();
    match operation {
        "CreateLogGroup" => {
            logs.create_group(CreateGroup {
                name: required(input, "logGroupName")?.to_string(),
                kms_key_id: input.str("kmsKeyId").map(str::to_string),
                tags: tags_in(input, "tags"),
                class: input.str("logGroupClass").map(str::to_string),
            })?;
        }
        "DeleteLogGroup" => logs.delete_group(required(input, "logGroupName")?)?,
        "DescribeLogGroups" => {
            let page = logs.describe_groups(
                input.str("logGroupNamePrefix"),
                input.str("logGroupNamePattern"),
                limit(input, 50)?,
                input.str("nextToken"),
            )?;
            let groups = page.items.iter().map(|g| group_out(logs, g)).collect::<Result<_, _>>()?;
            out.set("logGroups", Value::List(groups))
                .set("nextToken", page.next_token.map(Value::from));
        }
        "CreateLogStream" => {
            logs.create_stream(
                required(input, "logGroupName")?,
                required(input, "logStreamName")?,
            )?;
        }
        "DeleteLogStream" => {
            logs.delete_stream(
                required(input, "logGroupName")?,
                required(input, "logStreamName")?,
            )?;
        }
        "DescribeLogStreams" => {
            let group = group_name(logs, input)?;
            let order = match input.str("orderBy") {
                None | Some("LogStreamName") => StreamOrder::LogStreamName,
                Some("LastEventTime") => StreamOrder::LastEventTime,
                Some(o) => {
                    return Err(invalid(format!(
                        "1 validation error detected: Value '{o}' at 'orderBy' failed to satisfy constraint: Member must satisfy enum value set: [LastEventTime, LogStreamName]"
                    )));
                }
            };
            let page = logs.describe_streams(
                &group,
                input.str("logStreamNamePrefix"),
                order,
                flag(input, "descending"),
                limit(input, 50)?,
                input.str("nextToken"),
            )?;
            out.set(
                "logStreams",
                Value::List(page.items.iter().map(|s| stream_out(logs, s)).collect()),
            )
            .set("nextToken", page.next_token.map(Value::from));
        }
        "PutLogEvents" => {
            let group = required(input, "logGroupName")?;
            let stream = required(input, "logStreamName")?;
            if input.get("logEvents").is_none() {
                required(input, "logEvents")?;
            }
            let mut events = Vec::with_capacity(input.list("logEvents").len());
            for e in input.list("logEvents") {
                let (Some(timestamp), Some(message)) = (int(e, "timestamp"), e.str("message"))
                else {
                    return Err(invalid(
                        "1 validation error detected: Value null at 'logEvents.member.timestamp' failed to satisfy constraint: Member must not be null",
                    ));
                };
                events.push(InputEvent { timestamp, message: message.to_string() });
            }
            let r = logs.put_events(group, stream, &events)?;
            out.set("nextSequenceToken", Value::from(r.next_sequence_token));
            if let Some(rej) = r.rejected {
                let idx = |i: Option<usize>| i.map(|i| Value::Int(i as i64));
                let mut v = Value::map();
                v.set("tooNewLogEventStartIndex", idx(rej.too_new_start))
                    .set("tooOldLogEventEndIndex", idx(rej.too_old_end))
                    .set("expiredLogEventEndIndex", idx(rej.expired_end));
                out.set("rejectedLogEventsInfo", v);
            }
        }
        "GetLogEvents" => {
            let page = logs.get_events(&GetInput {
                group: group_name(logs, input)?,
                stream: required(input, "logStreamName")?.to_string(),
                start_time: int(input, "startTime"),
                end_time: int(input, "endTime"),
                token: input.str("nextToken").map(str::to_string),
                limit: optional_limit(input, "limit"),
                start_from_head: flag(input, "startFromHead"),
            })?;
            let events = page
                .events
                .iter()
                .map(|e| {
                    let mut v = Value::map();
                    v.set("timestamp", Value::Int(e.timestamp))
                        .set("message", Value::from(e.message.as_str()))
                        .set("ingestionTime", Value::Int(e.ingestion_time));
                    v
                })
                .collect();
            out.set("events", Value::List(events))
                .set("nextForwardToken", Value::from(page.next_forward_token))
                .set("nextBackwardToken", Value::from(page.next_backward_token));
        }
        "FilterLogEvents" => {
            let page = logs.filter_events(&FilterInput {
                group: group_name(logs, input)?,
                stream_names: input.strings("logStreamNames"),
                stream_prefix: input.str("logStreamNamePrefix").map(str::to_string),
                start_time: int(input, "startTime"),
                end_time: int(input, "endTime"),
                pattern: input.str("filterPattern").map(str::to_string),
                token: input.str("nextToken").map(str::to_string),
                limit: optional_limit(input, "limit"),
            })?;
            let events = page
                .events
                .iter()
                .map(|e| {
                    let mut v = Value::map();
                    v.set("logStreamName", Value::from(e.stream.as_str()))
                        .set("timestamp", Value::Int(e.timestamp))
                        .set("message", Value::from(e.message.as_str()))
                        .set("ingestionTime", Value::Int(e.ingestion_time))
                        .set("eventId", Value::from(e.event_id.as_str()));
                    v
                })
                .collect();
            out.set("events", Value::List(events))
                .set("searchedLogStreams", Value::List(Vec::new()))
                .set("nextToken", page.next_token.map(Value::from));
        }
        "PutRetentionPolicy" => {
            let days = int(input, "retentionInDays").ok_or_else(|| {
                invalid("1 validation error detected: Value null at 'retentionInDays' failed to satisfy constraint: Member must not be null")
            })?;
            logs.put_retention(required(input, "logGroupName")?, days)?;
        }
        "DeleteRetentionPolicy" => logs.delete_retention(required(input, "logGroupName")?)?,
        "AssociateKmsKey" => {
            let key = required(input, "kmsKeyId")?.to_string();
            logs.set_kms_key(required(input, "logGroupName")?, Some(key))?;
        }
        "DisassociateKmsKey" => logs.set_kms_key(required(input, "logGroupName")?, None)?,
        "PutMetricFilter" => {
            logs.put_metric_filter(
                required(input, "logGroupName")?,
                required(input, "filterName")?,
                input.str("filterPattern").ok_or_else(|| {
                    invalid("1 validation error detected: Value null at 'filterPattern' failed to satisfy constraint: Member must not be null")
                })?,
                transformations_in(input),
            )?;
        }
        "DescribeMetricFilters" => {
            let metric = match (input.str("metricNamespace"), input.str("metricName")) {
                (Some(ns), Some(n)) => Some((ns, n)),
                (None, None) => None,
                _ => {
                    return Err(invalid("metricName and metricNamespace must be given together."));
                }
            };
            let page = logs.describe_metric_filters(
                input.str("logGroupName"),
                input.str("filterNamePrefix"),
                metric,
                limit(input, 50)?,
                input.str("nextToken"),
            )?;
            out.set(
                "metricFilters",
                Value::List(page.items.iter().map(metric_filter_out).collect()),
            )
            .set("nextToken", page.next_token.map(Value::from));
        }
        "DeleteMetricFilter" => {
            logs.delete_metric_filter(
                required(input, "logGroupName")?,
                required(input, "filterName")?,
            )?;
        }
        "TestMetricFilter" => {
            let matches = logs.test_metric_filter(
                input.str("filterPattern").unwrap_or_default(),
                &input.strings("logEventMessages"),
            )?;
            let list = matches
                .iter()
                .map(|m| {
                    let mut v = Value::map();
                    v.set("eventNumber", Value::Int(m.event_number as i64))
                        .set("eventMessage", Value::from(m.message.as_str()))
                        .set("extractedValues", dict(m.extracted.iter().map(|(k, v)| (k, v))));
                    v
                })
                .collect();
            out.set("matches", Value::List(list));
        }
        "PutSubscriptionFilter" => {
            logs.put_subscription_filter(
                required(input, "logGroupName")?,
                required(input, "filterName")?,
                input.str("filterPattern").unwrap_or_default(),
                required(input, "destinationArn")?,
                input.str("roleArn").map(str::to_string),
                input.str("distribution"),
            )?;
        }
        "DescribeSubscriptionFilters" => {
            let page = logs.describe_subscription_filters(
                required(input, "logGroupName")?,
                input.str("filterNamePrefix"),
                limit(input, 50)?,
                input.str("nextToken"),
            )?;
            out.set(
                "subscriptionFilters",
                Value::List(page.items.iter().map(subscription_out).collect()),
            )
            .set("nextToken", page.next_token.map(Value::from));
        }
        "DeleteSubscriptionFilter" => {
            logs.delete_subscription_filter(
                required(input, "logGroupName")?,
                required(input, "filterName")?,
            )?;
        }
        "StartQuery" => {
            let mut groups: Vec<String> =
                input.str("logGroupName").map(str::to_string).into_iter().collect();
            groups.extend(input.strings("logGroupNames"));
            for id in input.strings("logGroupIdentifiers") {
                groups.push(logs.group_identifier(&id)?);
            }
            let time = |key: &str| {
                int(input, key).ok_or_else(|| {
                    invalid(format!("1 validation error detected: Value null at '{key}' failed to satisfy constraint: Member must not be null"))
                })
            };
            let id = logs.start_query(&StartQuery {
                groups,
                start_time: time("startTime")?,
                end_time: time("endTime")?,
                query: required(input, "queryString")?.to_string(),
                limit: optional_limit(input, "limit"),
            })?;
            out.set("queryId", Value::from(id));
        }
        "GetQueryResults" => {
            let r = logs.query_results(required(input, "queryId")?)?;
            let rows = r
                .rows
                .iter()
                .map(|row| {
                    Value::List(
                        row.iter()
                            .map(|(f, v)| {
                                let mut cell = Value::map();
                                cell.set("field", Value::from(f.as_str()))
                                    .set("value", Value::from(v.as_str()));
                                cell
                            })
                            .collect(),
                    )
                })
                .collect();
            let mut stats = Value::map();
            stats
                .set("recordsMatched", Value::Float(r.records_matched))
                .set("recordsScanned", Value::Float(r.records_scanned))
                .set("bytesScanned", Value::Float(r.bytes_scanned));
            out.set("queryLanguage", Value::from("CWLI"))
                .set("results", Value::List(rows))
                .set("statistics", stats)
                .set("status", Value::from(r.status.as_str()));
        }
        "StopQuery" => {
            let stopped = logs.stop_query(required(input, "queryId")?)?;
            out.set("success", Value::Bool(stopped));
        }
        "TagLogGroup" => logs.tag(required(input, "logGroupName")?, &tags_in(input, "tags"))?,
        "UntagLogGroup" => logs.untag(required(input, "logGroupName")?, &input.strings("tags"))?,
        "ListTagsLogGroup" => {
            let g = logs.group(required(input, "logGroupName")?)?;
            out.set("tags", dict(&g.tags));
        }
        "TagResource" => {
            let group = logs.group_from_arn(required(input, "resourceArn")?)?;
            logs.tag(&group, &tags_in(input, "tags"))?;
        }
        "UntagResource" => {
            let group = logs.group_from_arn(required(input, "resourceArn")?)?;
            logs.untag(&group, &input.strings("tagKeys"))?;
        }
        "ListTagsForResource" => {
            let group = logs.group_from_arn(required(input, "resourceArn")?)?;
            out.set("tags", dict(&logs.group(&group)?.tags));
        }
        other => {
            return Err(ApiError::new(
                "UnknownOperationException",
                format!("The operation {other} is not known to logs."),
                400,
            ));
        }
    }
    Ok(out)
}
