//! `AWS::CloudWatch::Alarm` and `AWS::CloudWatch::CompositeAlarm`: the same `PutAlarm` the
//! API builds, so a template's alarm is evaluated and acts as one made with PutMetricAlarm.

use std::sync::Arc;

use async_trait::async_trait;
use cfn_stacks::model::ResourceRecord;
use cfn_stacks::props;
use cfn_stacks::{Provided, ProviderError, ResourceProvider, ResourceRequest};
use serde_json::Value as Json;

use crate::alarms::{CompositeAlarm, MetricAlarm, PutAlarm};
use crate::metric::MetricId;
use crate::query::{DataQuery, MetricStat};
use crate::{CloudWatch, CwError};

pub const TYPES: &[&str] = &["AWS::CloudWatch::Alarm", "AWS::CloudWatch::CompositeAlarm"];

pub struct AlarmProvider {
    pub cloudwatch: Arc<CloudWatch>,
}

fn provider_error(e: CwError) -> ProviderError {
    ProviderError::service("CloudWatch", e.code(), e)
}

fn float(p: &Json, key: &str) -> Option<f64> {
    props::text(p, key)?.trim().parse().ok()
}

fn dimensions(v: Option<&Json>) -> Vec<(String, String)> {
    v.and_then(Json::as_array)
        .into_iter()
        .flatten()
        .filter_map(|d| Some((props::text(d, "Name")?, props::text(d, "Value")?)))
        .collect()
}

/// A template's `Metrics` (MetricDataQuery list).
pub fn queries(v: Option<&Json>) -> Vec<DataQuery> {
    v.and_then(Json::as_array)
        .into_iter()
        .flatten()
        .map(|q| {
            let metric = q.get("MetricStat").map(|s| {
                let m = s.get("Metric").cloned().unwrap_or(Json::Null);
                MetricStat {
                    metric: MetricId::new(
                        props::text(&m, "Namespace").unwrap_or_default(),
                        props::text(&m, "MetricName").unwrap_or_default(),
                        dimensions(m.get("Dimensions")),
                    ),
                    period: props::number(s, "Period").unwrap_or(60) as i64,
                    stat: props::text(s, "Stat").unwrap_or_default(),
                    unit: props::text(s, "Unit"),
                }
            });
            DataQuery {
                id: props::text(q, "Id").unwrap_or_default(),
                metric,
                expression: props::text(q, "Expression"),
                label: props::text(q, "Label"),
                return_data: props::boolean(q, "ReturnData").unwrap_or(true),
                period: props::number(q, "Period").map(|p| p as i64),
            }
        })
        .collect()
}

fn tags(p: &Json) -> Vec<(String, String)> {
    p.get("Tags")
        .and_then(Json::as_array)
        .into_iter()
        .flatten()
        .filter_map(|t| Some((props::text(t, "Key")?, props::text(t, "Value")?)))
        .collect()
}

/// The request a template's properties make.
pub fn request(type_name: &str, name: String, p: &Json) -> PutAlarm {
    let mut req = PutAlarm {
        name,
        description: props::text(p, "AlarmDescription"),
        actions_enabled: props::boolean(p, "ActionsEnabled"),
        ok_actions: props::strings(p, "OKActions"),
        alarm_actions: props::strings(p, "AlarmActions"),
        insufficient_data_actions: props::strings(p, "InsufficientDataActions"),
        tags: tags(p),
        ..PutAlarm::default()
    };
    if type_name == "AWS::CloudWatch::CompositeAlarm" {
        req.composite = Some(CompositeAlarm {
            rule: props::text(p, "AlarmRule").unwrap_or_default(),
            actions_suppressor: props::text(p, "ActionsSuppressor"),
            actions_suppressor_wait_period: props::number(p, "ActionsSuppressorWaitPeriod")
                .map(|n| n as i64),
            actions_suppressor_extension_period: props::number(
                p,
                "ActionsSuppressorExtensionPeriod",
            )
            .map(|n| n as i64),
        });
    } else {
        req.metric = Some(MetricAlarm {
            namespace: props::text(p, "Namespace"),
            metric_name: props::text(p, "MetricName"),
            dimensions: dimensions(p.get("Dimensions")),
            statistic: props::text(p, "Statistic"),
            extended_statistic: props::text(p, "ExtendedStatistic"),
            period: props::number(p, "Period").map(|n| n as i64),
            unit: props::text(p, "Unit"),
            metrics: queries(p.get("Metrics")),
            threshold: float(p, "Threshold"),
            threshold_metric_id: props::text(p, "ThresholdMetricId"),
            comparison: props::text(p, "ComparisonOperator").unwrap_or_default(),
            evaluation_periods: props::number(p, "EvaluationPeriods").unwrap_or(0) as u32,
            datapoints_to_alarm: props::number(p, "DatapointsToAlarm").map(|n| n as u32),
            treat_missing_data: props::text(p, "TreatMissingData"),
            evaluate_low_sample_count_percentile: props::text(
                p,
                "EvaluateLowSampleCountPercentile",
            ),
        });
    }
    req
}

#[async_trait]
impl ResourceProvider for AlarmProvider {
    async fn create(&self, req: &ResourceRequest<'_>) -> Result<Provided, ProviderError> {
        let mut provided = cfn_stacks::generic::model(req, None);
        let record = self
            .cloudwatch
            .put_alarm(request(req.type_name, provided.physical_id.clone(), req.properties))
            .map_err(provider_error)?;
        provided.attributes.insert("Arn".into(), Json::String(record.arn));
        provided.modelled = false;
        Ok(provided)
    }

    async fn update(
        &self,
        req: &ResourceRequest<'_>,
        current: &ResourceRecord,
    ) -> Result<Provided, ProviderError> {
        let mut provided = cfn_stacks::generic::model(req, Some(current));
        let record = self
            .cloudwatch
            .put_alarm(request(req.type_name, provided.physical_id.clone(), req.properties))
            .map_err(provider_error)?;
        provided.attributes.insert("Arn".into(), Json::String(record.arn));
        provided.modelled = false;
        Ok(provided)
    }

    async fn delete(
        &self,
        _: &ResourceRequest<'_>,
        current: &ResourceRecord,
    ) -> Result<(), ProviderError> {
        if let Some(name) = &current.physical_id {
            match self.cloudwatch.delete_alarms(std::slice::from_ref(name)) {
                Ok(()) | Err(CwError::ResourceNotFound(_)) => {}
                Err(e) => return Err(provider_error(e)),
            }
        }
        Ok(())
    }
}
