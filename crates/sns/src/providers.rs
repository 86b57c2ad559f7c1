//! `AWS::SNS::Topic`, `AWS::SNS::Subscription` and `AWS::SNS::TopicPolicy`: the same calls
//! the API makes, so a template's topic delivers as one made with CreateTopic.

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use cfn_stacks::model::ResourceRecord;
use cfn_stacks::props;
use cfn_stacks::{Provided, ProviderError, ResourceProvider, ResourceRequest};
use serde_json::Value as Json;

use crate::{Sns, SnsError};

pub const TYPES: &[&str] = &["AWS::SNS::Topic", "AWS::SNS::Subscription", "AWS::SNS::TopicPolicy"];

pub struct SnsProvider {
    pub sns: Arc<Sns>,
}

fn provider_error(e: SnsError) -> ProviderError {
    let code = if e.status() >= 500 { "InternalFailure" } else { e.code() };
    ProviderError::service("Sns", code, e)
}

/// A property that is a JSON document in templates and a string in the API.
fn document(p: &Json, key: &str) -> Option<String> {
    match p.get(key)? {
        Json::String(s) => Some(s.clone()),
        Json::Null => None,
        other => Some(other.to_string()),
    }
}

fn tags(p: &Json) -> Vec<(String, String)> {
    p.get("Tags")
        .and_then(Json::as_array)
        .into_iter()
        .flatten()
        .filter_map(|t| Some((props::text(t, "Key")?, props::text(t, "Value")?)))
        .collect()
}

fn topic_attributes(p: &Json) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for key in [
        "DisplayName",
        "KmsMasterKeyId",
        "SignatureVersion",
        "TracingConfig",
        "FifoThroughputScope",
    ] {
        if let Some(v) = props::text(p, key) {
            out.insert(key.to_string(), v);
        }
    }
    for key in ["DeliveryPolicy", "ArchivePolicy", "DataProtectionPolicy"] {
        if let Some(v) = document(p, key) {
            out.insert(key.to_string(), v);
        }
    }
    if props::boolean(p, "ContentBasedDeduplication") == Some(true) {
        out.insert("ContentBasedDeduplication".into(), "true".into());
    }
    out
}

fn subscription_attributes(p: &Json) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    if let Some(raw) = props::boolean(p, "RawMessageDelivery") {
        out.insert("RawMessageDelivery".into(), raw.to_string());
    }
    if let Some(scope) = props::text(p, "FilterPolicyScope") {
        out.insert("FilterPolicyScope".into(), scope);
    }
    for key in ["FilterPolicy", "DeliveryPolicy", "RedrivePolicy", "ReplayPolicy"] {
        if let Some(v) = document(p, key) {
            out.insert(key.to_string(), v);
        }
    }
    if let Some(role) = props::text(p, "SubscriptionRoleArn") {
        out.insert("SubscriptionRoleArn".into(), role);
    }
    out
}

impl SnsProvider {
    async fn put_topic(
        &self,
        req: &ResourceRequest<'_>,
        current: Option<&ResourceRecord>,
    ) -> Result<Provided, ProviderError> {
        let p = req.properties;
        let fifo = props::boolean(p, "FifoTopic") == Some(true);
        let name =
            match (current.and_then(|c| c.physical_id.as_deref()), props::text(p, "TopicName")) {
                (Some(arn), _) => arn.rsplit(':').next().unwrap_or_default().to_string(),
                (None, Some(name)) => name,
                (None, None) => {
                    let base = aws_ids::physical_name(
                        req.stack_name,
                        req.logical_id,
                        if fifo { 251 } else { 256 },
                    );
                    if fifo { format!("{base}.fifo") } else { base }
                }
            };
        let attributes = topic_attributes(p);
        let topic = if current.is_some() {
            let topic =
                self.sns.topic(&self.sns.account().arn("sns", &name)).map_err(provider_error)?;
            for (k, v) in &attributes {
                if topic.attributes.get(k) != Some(v) {
                    self.sns.set_topic_attribute(&topic.arn, k, v).map_err(provider_error)?;
                }
            }
            self.sns.tag(&topic.arn, &tags(p)).map_err(provider_error)?;
            topic
        } else {
            let mut create = attributes.clone();
            if fifo {
                create.insert("FifoTopic".into(), "true".into());
            }
            self.sns.create_topic(&name, &create, &tags(p)).map_err(provider_error)?
        };
        for s in p.get("Subscription").and_then(Json::as_array).into_iter().flatten() {
            let (Some(protocol), Some(endpoint)) =
                (props::text(s, "Protocol"), props::text(s, "Endpoint"))
            else {
                continue;
            };
            self.sns
                .subscribe(&topic.arn, &protocol, &endpoint, &BTreeMap::new())
                .map_err(provider_error)?;
        }
        let mut provided = cfn_stacks::generic::model(req, current);
        provided.physical_id = topic.arn.clone();
        provided.attributes.insert("TopicArn".into(), Json::String(topic.arn.clone()));
        provided.attributes.insert("TopicName".into(), Json::String(topic.name.clone()));
        provided.modelled = false;
        Ok(provided)
    }

    fn put_subscription(
        &self,
        req: &ResourceRequest<'_>,
        current: Option<&ResourceRecord>,
    ) -> Result<Provided, ProviderError> {
        let p = req.properties;
        let attributes = subscription_attributes(p);
        let arn = match current.and_then(|c| c.physical_id.clone()) {
            Some(arn) => {
                for (k, v) in &attributes {
                    self.sns.set_subscription_attribute(&arn, k, v).map_err(provider_error)?;
                }
                arn
            }
            None => {
                let topic = props::text(p, "TopicArn").unwrap_or_default();
                let protocol = props::text(p, "Protocol").unwrap_or_default();
                let endpoint = props::text(p, "Endpoint").unwrap_or_default();
                self.sns
                    .subscribe(&topic, &protocol, &endpoint, &attributes)
                    .map_err(provider_error)?
                    .arn
            }
        };
        let mut provided = cfn_stacks::generic::model(req, current);
        provided.physical_id = arn.clone();
        provided.attributes.insert("Arn".into(), Json::String(arn));
        provided.modelled = false;
        Ok(provided)
    }

    fn put_policy(
        &self,
        req: &ResourceRequest<'_>,
        current: Option<&ResourceRecord>,
    ) -> Result<Provided, ProviderError> {
        let p = req.properties;
        let policy = document(p, "PolicyDocument").unwrap_or_else(|| "{}".into());
        for topic in props::strings(p, "Topics") {
            self.sns.set_topic_attribute(&topic, "Policy", &policy).map_err(provider_error)?;
        }
        let mut provided = cfn_stacks::generic::model(req, current);
        provided.modelled = false;
        Ok(provided)
    }
}

#[async_trait]
impl ResourceProvider for SnsProvider {
    async fn create(&self, req: &ResourceRequest<'_>) -> Result<Provided, ProviderError> {
        match req.type_name {
            "AWS::SNS::Topic" => self.put_topic(req, None).await,
            "AWS::SNS::Subscription" => self.put_subscription(req, None),
            _ => self.put_policy(req, None),
        }
    }

    async fn update(
        &self,
        req: &ResourceRequest<'_>,
        current: &ResourceRecord,
    ) -> Result<Provided, ProviderError> {
        match req.type_name {
            "AWS::SNS::Topic" => self.put_topic(req, Some(current)).await,
            "AWS::SNS::Subscription" => self.put_subscription(req, Some(current)),
            _ => self.put_policy(req, Some(current)),
        }
    }

    async fn delete(
        &self,
        req: &ResourceRequest<'_>,
        current: &ResourceRecord,
    ) -> Result<(), ProviderError> {
        let Some(id) = &current.physical_id else { return Ok(()) };
        match req.type_name {
            "AWS::SNS::Topic" => self.sns.delete_topic(id).map_err(provider_error),
            "AWS::SNS::Subscription" => match self.sns.remove_subscription(id) {
                Ok(()) | Err(SnsError::NotFound(_)) => Ok(()),
                Err(e) => Err(provider_error(e)),
            },
            _ => Ok(()),
        }
    }

    fn replacement_properties(&self, type_name: &str) -> &[&str] {
        match type_name {
            "AWS::SNS::Topic" => &["TopicName", "FifoTopic"],
            "AWS::SNS::Subscription" => &["TopicArn", "Protocol", "Endpoint"],
            _ => &[],
        }
    }
}
