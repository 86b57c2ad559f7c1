//! CloudWatch calls of the client (over Query) with typed results: what `cumulo metrics` and
//! `cumulo alarms` read, so that they know no element names; and CloudWatch Logs'
//! FilterLogEvents (awsJson 1.1) for `cumulo logs --group`.

use crate::client::{Client, ClientError};

pub const VERSION: &str = "2010-08-01";

/// A metric as ListMetrics names it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Metric {
    pub namespace: String,
    pub name: String,
    pub dimensions: Vec<(String, String)>,
}

/// An alarm as DescribeAlarms shows it.
#[derive(Clone, Debug, PartialEq)]
pub struct Alarm {
    pub name: String,
    pub state: String,
    pub reason: String,
    pub updated: String,
    /// `Namespace MetricName Statistic Comparison Threshold`, or the composite's rule.
    pub condition: String,
    pub actions: Vec<String>,
}

/// One entry of an alarm's history.
#[derive(Clone, Debug, PartialEq)]
pub struct HistoryItem {
    pub timestamp: String,
    pub kind: String,
    pub summary: String,
}

fn dimension_params(prefix: &str, dims: &[(String, Option<String>)]) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for (i, (k, v)) in dims.iter().enumerate() {
        out.push((format!("{prefix}.member.{}.Name", i + 1), k.clone()));
        if let Some(v) = v {
            out.push((format!("{prefix}.member.{}.Value", i + 1), v.clone()));
        }
    }
    out
}

impl Client {
    /// The region's AWS time now (epoch seconds), from `/_cumulo/clock`.
    pub async fn region_now(&self) -> Result<f64, ClientError> {
        let text = self.get_text("/_cumulo/clock").await?;
        let json: serde_json::Value = serde_json::from_str(&text)
            .map_err(|e| self.bad(format!("bad /_cumulo/clock answer: {e}")))?;
        json["now"].as_f64().ok_or_else(|| self.bad("no time in /_cumulo/clock".into()))
    }

    /// ListMetrics (every page), optionally of one namespace and name, with dimension filters.
    pub async fn list_metrics(
        &self,
        namespace: Option<&str>,
        name: Option<&str>,
        dimensions: &[(String, Option<String>)],
    ) -> Result<Vec<Metric>, ClientError> {
        let mut out = Vec::new();
        let mut token: Option<String> = None;
        for _ in 0..100 {
            let mut params = dimension_params("Dimensions", dimensions);
            if let Some(n) = namespace {
                params.push(("Namespace".into(), n.into()));
            }
            if let Some(n) = name {
                params.push(("MetricName".into(), n.into()));
            }
            if let Some(t) = &token {
                params.push(("NextToken".into(), t.clone()));
            }
            let result = self.call(VERSION, "ListMetrics", &params).await?;
            for m in result.members("Metrics") {
                out.push(Metric {
                    namespace: m.get("Namespace").unwrap_or_default().to_string(),
                    name: m.get("MetricName").unwrap_or_default().to_string(),
                    dimensions: m
                        .members("Dimensions")
                        .iter()
                        .map(|d| {
                            (
                                d.get("Name").unwrap_or_default().to_string(),
                                d.get("Value").unwrap_or_default().to_string(),
                            )
                        })
                        .collect(),
                });
            }
            token = result.get("NextToken").map(str::to_string);
            if token.is_none() {
                break;
            }
        }
        Ok(out)
    }

    /// GetMetricStatistics of one statistic (basic or extended): (epoch seconds, value),
    /// oldest first.
    pub async fn metric_statistics(
        &self,
        metric: &Metric,
        statistic: &str,
        start: f64,
        end: f64,
        period: i64,
    ) -> Result<Vec<(f64, f64)>, ClientError> {
        let iso = |t: f64| {
            jiff::Timestamp::from_second(t.floor() as i64).map(clock::iso8601).unwrap_or_default()
        };
        let basic = ["SampleCount", "Sum", "Average", "Minimum", "Maximum"].contains(&statistic);
        let mut params = vec![
            ("Namespace".to_string(), metric.namespace.clone()),
            ("MetricName".to_string(), metric.name.clone()),
            ("StartTime".to_string(), iso(start)),
            ("EndTime".to_string(), iso(end)),
            ("Period".to_string(), period.to_string()),
            (
                if basic { "Statistics.member.1" } else { "ExtendedStatistics.member.1" }
                    .to_string(),
                statistic.to_string(),
            ),
        ];
        let dims: Vec<(String, Option<String>)> =
            metric.dimensions.iter().map(|(k, v)| (k.clone(), Some(v.clone()))).collect();
        params.extend(dimension_params("Dimensions", &dims));
        let result = self.call(VERSION, "GetMetricStatistics", &params).await?;
        let mut points: Vec<(f64, f64)> = result
            .members("Datapoints")
            .iter()
            .filter_map(|d| {
                let t = d.get("Timestamp")?.parse::<jiff::Timestamp>().ok()?.as_second() as f64;
                let v = if basic {
                    d.get(statistic)?
                } else {
                    d.path("ExtendedStatistics")?
                        .children
                        .iter()
                        .find(|e| e.get("key") == Some(statistic))?
                        .get("value")?
                };
                Some((t, v.parse().ok()?))
            })
            .collect();
        points.sort_by(|a, b| a.0.total_cmp(&b.0));
        Ok(points)
    }

    /// DescribeAlarms, metric and composite alarms (every page).
    pub async fn describe_alarms(&self) -> Result<Vec<Alarm>, ClientError> {
        let mut out = Vec::new();
        let mut token: Option<String> = None;
        for _ in 0..100 {
            let mut params = vec![
                ("AlarmTypes.member.1".to_string(), "MetricAlarm".to_string()),
                ("AlarmTypes.member.2".to_string(), "CompositeAlarm".to_string()),
            ];
            if let Some(t) = &token {
                params.push(("NextToken".into(), t.clone()));
            }
            let result = self.call(VERSION, "DescribeAlarms", &params).await?;
            for (list, composite) in [("MetricAlarms", false), ("CompositeAlarms", true)] {
                for a in result.members(list) {
                    let g = |k: &str| a.get(k).unwrap_or_default().to_string();
                    let condition = if composite {
                        g("AlarmRule")
                    } else {
                        let stat =
                            a.get("Statistic").or(a.get("ExtendedStatistic")).unwrap_or("math");
                        format!(
                            "{} {} {stat} {} {}",
                            g("Namespace"),
                            g("MetricName"),
                            g("ComparisonOperator"),
                            g("Threshold")
                        )
                    };
                    let actions = ["AlarmActions", "OKActions", "InsufficientDataActions"]
                        .iter()
                        .flat_map(|k| a.members(k))
                        .map(|m| m.text.clone())
                        .collect();
                    out.push(Alarm {
                        name: g("AlarmName"),
                        state: g("StateValue"),
                        reason: g("StateReason"),
                        updated: g("StateUpdatedTimestamp"),
                        condition,
                        actions,
                    });
                }
            }
            token = result.get("NextToken").map(str::to_string);
            if token.is_none() {
                break;
            }
        }
        Ok(out)
    }

    /// DescribeAlarmHistory of one alarm, newest first.
    pub async fn alarm_history(&self, name: &str) -> Result<Vec<HistoryItem>, ClientError> {
        let params = [("AlarmName".to_string(), name.to_string())];
        let result = self.call(VERSION, "DescribeAlarmHistory", &params).await?;
        Ok(result
            .members("AlarmHistoryItems")
            .iter()
            .map(|h| HistoryItem {
                timestamp: h.get("Timestamp").unwrap_or_default().to_string(),
                kind: h.get("HistoryItemType").unwrap_or_default().to_string(),
                summary: h.get("HistorySummary").unwrap_or_default().to_string(),
            })
            .collect())
    }
}

/// A log event as FilterLogEvents gives it.
#[derive(Clone, Debug, PartialEq)]
pub struct LogEvent {
    pub timestamp: i64,
    pub stream: String,
    pub message: String,
}

impl Client {
    /// FilterLogEvents of a group (every page), from `start_ms`, optionally one stream and a
    /// filter pattern; oldest first.
    pub async fn filter_log_events(
        &self,
        group: &str,
        stream: Option<&str>,
        pattern: Option<&str>,
        start_ms: Option<i64>,
    ) -> Result<Vec<LogEvent>, ClientError> {
        let mut out = Vec::new();
        let mut token: Option<String> = None;
        for _ in 0..1_000 {
            let mut input = serde_json::json!({"logGroupName": group});
            if let Some(s) = stream {
                input["logStreamNames"] = serde_json::json!([s]);
            }
            if let Some(p) = pattern {
                input["filterPattern"] = serde_json::json!(p);
            }
            if let Some(t) = start_ms {
                input["startTime"] = serde_json::json!(t);
            }
            if let Some(t) = &token {
                input["nextToken"] = serde_json::json!(t);
            }
            let page = self.call_json("Logs_20140328.FilterLogEvents", "logs", &input).await?;
            for e in page["events"].as_array().into_iter().flatten() {
                out.push(LogEvent {
                    timestamp: e["timestamp"].as_i64().unwrap_or(0),
                    stream: e["logStreamName"].as_str().unwrap_or_default().to_string(),
                    message: e["message"].as_str().unwrap_or_default().to_string(),
                });
            }
            token = page["nextToken"].as_str().map(str::to_string);
            if token.is_none() {
                break;
            }
        }
        Ok(out)
    }
}
