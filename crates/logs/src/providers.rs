//! `AWS::Logs::LogGroup`, `AWS::Logs::LogStream`, `AWS::Logs::MetricFilter` and
//! `AWS::Logs::SubscriptionFilter`: the same calls the API makes, so a template's log group
//! collects events and its metric filters publish.

use std::sync::Arc;

use async_trait::async_trait;
use cfn_stacks::model::ResourceRecord;
use cfn_stacks::props;
use cfn_stacks::{Provided, ProviderError, ResourceProvider, ResourceRequest};
use serde_json::Value as Json;

use crate::metrics::Transformation;
use crate::{CreateGroup, Logs, LogsError};

pub const TYPES: &[&str] = &[
    "AWS::Logs::LogGroup",
    "AWS::Logs::LogStream",
    "AWS::Logs::MetricFilter",
    "AWS::Logs::SubscriptionFilter",
];

pub struct LogsProvider {
    pub logs: Arc<Logs>,
}

fn provider_error(e: LogsError) -> ProviderError {
    let code = if matches!(e, LogsError::Store(_)) { "InternalFailure" } else { e.code() };
    ProviderError::service("CloudWatchLogs", code, e)
}

fn tags(p: &Json) -> Vec<(String, String)> {
    p.get("Tags")
        .and_then(Json::as_array)
        .into_iter()
        .flatten()
        .filter_map(|t| Some((props::text(t, "Key")?, props::text(t, "Value")?)))
        .collect()
}

fn float(p: &Json, key: &str) -> Option<f64> {
    props::text(p, key)?.trim().parse().ok()
}

/// A template's `MetricTransformations`.
pub fn transformations(p: &Json) -> Vec<Transformation> {
    p.get("MetricTransformations")
        .and_then(Json::as_array)
        .into_iter()
        .flatten()
        .map(|t| Transformation {
            metric_name: props::text(t, "MetricName").unwrap_or_default(),
            namespace: props::text(t, "MetricNamespace").unwrap_or_default(),
            value: props::text(t, "MetricValue").unwrap_or_default(),
            default_value: float(t, "DefaultValue"),
            dimensions: t
                .get("Dimensions")
                .and_then(Json::as_array)
                .into_iter()
                .flatten()
                .filter_map(|d| Some((props::text(d, "Key")?, props::text(d, "Value")?)))
                .collect(),
            unit: props::text(t, "Unit"),
        })
        .collect()
}

impl LogsProvider {
    fn apply(
        &self,
        req: &ResourceRequest<'_>,
        current: Option<&ResourceRecord>,
    ) -> Result<Provided, ProviderError> {
        let mut provided = cfn_stacks::generic::model(req, current);
        let p = req.properties;
        let name = provided.physical_id.clone();
        let group = props::text(p, "LogGroupName").unwrap_or_default();
        match req.type_name {
            "AWS::Logs::LogGroup" => {
                if current.is_none() {
                    self.logs
                        .create_group(CreateGroup {
                            name: name.clone(),
                            kms_key_id: props::text(p, "KmsKeyId"),
                            tags: tags(p),
                            class: props::text(p, "LogGroupClass"),
                        })
                        .map_err(provider_error)?;
                } else {
                    self.logs
                        .set_kms_key(&name, props::text(p, "KmsKeyId"))
                        .map_err(provider_error)?;
                    let old: Vec<String> =
                        self.logs.group(&name).map_err(provider_error)?.tags.into_keys().collect();
                    self.logs.untag(&name, &old).map_err(provider_error)?;
                    self.logs.tag(&name, &tags(p)).map_err(provider_error)?;
                }
                match props::number(p, "RetentionInDays") {
                    Some(d) => self.logs.put_retention(&name, d as i64),
                    None => self.logs.delete_retention(&name),
                }
                .map_err(provider_error)?;
                provided.attributes.insert("Arn".into(), Json::String(self.logs.group_arn(&name)));
            }
            "AWS::Logs::LogStream" => {
                if current.is_none() {
                    self.logs.create_stream(&group, &name).map_err(provider_error)?;
                }
            }
            "AWS::Logs::MetricFilter" => {
                self.logs
                    .put_metric_filter(
                        &group,
                        &name,
                        &props::text(p, "FilterPattern").unwrap_or_default(),
                        transformations(p),
                    )
                    .map_err(provider_error)?;
            }
            _ => {
                self.logs
                    .put_subscription_filter(
                        &group,
                        &name,
                        &props::text(p, "FilterPattern").unwrap_or_default(),
                        &props::text(p, "DestinationArn").unwrap_or_default(),
                        props::text(p, "RoleArn"),
                        props::text(p, "Distribution").as_deref(),
                    )
                    .map_err(provider_error)?;
            }
        }
        provided.modelled = false;
        Ok(provided)
    }
}

#[async_trait]
impl ResourceProvider for LogsProvider {
    async fn create(&self, req: &ResourceRequest<'_>) -> Result<Provided, ProviderError> {
        self.apply(req, None)
    }

    async fn update(
        &self,
        req: &ResourceRequest<'_>,
        current: &ResourceRecord,
    ) -> Result<Provided, ProviderError> {
        self.apply(req, Some(current))
    }

    async fn delete(
        &self,
        req: &ResourceRequest<'_>,
        current: &ResourceRecord,
    ) -> Result<(), ProviderError> {
        let Some(name) = &current.physical_id else { return Ok(()) };
        let group = props::text(req.properties, "LogGroupName").unwrap_or_default();
        let result = match req.type_name {
            "AWS::Logs::LogGroup" => self.logs.delete_group(name),
            "AWS::Logs::LogStream" => self.logs.delete_stream(&group, name),
            "AWS::Logs::MetricFilter" => self.logs.delete_metric_filter(&group, name),
            _ => self.logs.delete_subscription_filter(&group, name),
        };
        match result {
            Ok(()) | Err(LogsError::ResourceNotFound(_)) => Ok(()),
            Err(e) => Err(provider_error(e)),
        }
    }
}
