//! SNS over awsQuery (2010-03-31), the only protocol botocore and the SDKs speak to it: every
//! operation reads the `Value` tree of its form parameters (`Attributes.entry.N.key/value`,
//! `MessageAttributes.entry.N.Name/Value.DataType`, `Tags.member.N.Key/Value`) into the `sns`
//! crate's typed inputs. ConfirmSubscription and Unsubscribe may come unsigned (the links in
//! SNS's messages: the token, or the subscription ARN, is the authorization).

use std::collections::BTreeMap;
use std::sync::Arc;

use ::sns::{BatchEntry, MessageAttribute, PublishInput, Sns, SnsError, Subscription};

use crate::error::ApiError;
use crate::protocol::Value;
use crate::registry::{Context, RpcService, Wire};

const OPERATIONS: &[&str] = &[
    "CreateTopic",
    "DeleteTopic",
    "ListTopics",
    "GetTopicAttributes",
    "SetTopicAttributes",
    "Subscribe",
    "ConfirmSubscription",
    "Unsubscribe",
    "ListSubscriptions",
    "ListSubscriptionsByTopic",
    "GetSubscriptionAttributes",
    "SetSubscriptionAttributes",
    "Publish",
    "PublishBatch",
    "TagResource",
    "UntagResource",
    "ListTagsForResource",
];

/// Every operation it answers (COVERAGE.md).
pub fn actions() -> &'static [&'static str] {
    OPERATIONS
}

/// SNS in the endpoint's registry.
pub struct Api {
    sns: Arc<Sns>,
    wire: Wire,
}

impl Api {
    pub fn new(sns: Arc<Sns>) -> Api {
        let wire = Wire {
            signing_name: "sns",
            query: Some(("2010-03-31", "http://sns.amazonaws.com/doc/2010-03-31/")),
            ..Wire::default()
        };
        Api { sns, wire }
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
        cx: &Context<'_>,
    ) -> Result<Value, ApiError> {
        call(&self.sns, operation, input, cx.signed)
    }

    fn unsigned(&self, operation: &str) -> bool {
        matches!(operation, "ConfirmSubscription" | "Unsubscribe")
    }
}

impl From<SnsError> for ApiError {
    fn from(e: SnsError) -> ApiError {
        ApiError::new(e.code(), e.to_string(), e.status())
    }
}

fn required<'a>(input: &'a Value, key: &str) -> Result<&'a str, ApiError> {
    input
        .str(key)
        .ok_or_else(|| ApiError::new("InvalidParameter", format!("Invalid parameter: {key}"), 400))
}

/// A `String -> String` map (`Attributes`).
fn string_map(input: &Value, key: &str) -> BTreeMap<String, String> {
    match input.get(key) {
        Some(Value::Map(m)) => {
            m.iter().map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string())).collect()
        }
        _ => BTreeMap::new(),
    }
}

fn tags(input: &Value) -> Vec<(String, String)> {
    input
        .list("Tags")
        .iter()
        .map(|t| {
            (
                t.str("Key").unwrap_or_default().to_string(),
                t.str("Value").unwrap_or_default().to_string(),
            )
        })
        .collect()
}

fn message_attributes(input: &Value) -> BTreeMap<String, MessageAttribute> {
    let Some(Value::Map(m)) = input.get("MessageAttributes") else { return BTreeMap::new() };
    m.iter()
        .map(|(name, v)| {
            let attribute = MessageAttribute {
                data_type: v.str("DataType").unwrap_or_default().to_string(),
                string_value: v.str("StringValue").map(str::to_string),
                binary_value: v.get("BinaryValue").and_then(Value::as_blob),
            };
            (name.clone(), attribute)
        })
        .collect()
}

fn publish_input(input: &Value, topic_arn: String) -> Result<PublishInput, ApiError> {
    Ok(PublishInput {
        topic_arn,
        message: required(input, "Message")?.to_string(),
        subject: input.str("Subject").map(str::to_string),
        message_structure: input.str("MessageStructure").map(str::to_string),
        attributes: message_attributes(input),
        group_id: input.str("MessageGroupId").map(str::to_string),
        deduplication_id: input.str("MessageDeduplicationId").map(str::to_string),
    })
}

fn attributes_out(attrs: BTreeMap<String, String>) -> Value {
    Value::Dict(attrs.into_iter().map(|(k, v)| (k, Value::from(v))).collect())
}

fn subscription_out(s: &Subscription) -> Value {
    let mut v = Value::map();
    let arn = if s.pending { "PendingConfirmation" } else { s.arn.as_str() };
    v.set("SubscriptionArn", Value::from(arn))
        .set("Owner", Value::from(s.owner.as_str()))
        .set("Protocol", Value::from(s.protocol.as_str()))
        .set("Endpoint", Value::from(s.endpoint.as_str()))
        .set("TopicArn", Value::from(s.topic_arn.as_str()));
    v
}

pub fn call(sns: &Sns, operation: &str, input: &Value, signed: bool) -> Result<Value, ApiError> {
    let mut out = Value::map();
    match operation {
        "CreateTopic" => {
            let topic = sns.create_topic(
                required(input, "Name")?,
                &string_map(input, "Attributes"),
                &tags(input),
            )?;
            out.set("TopicArn", Value::from(topic.arn));
        }
        "DeleteTopic" => sns.delete_topic(required(input, "TopicArn")?)?,
        "ListTopics" => {
            let page = sns.list_topics(input.str("NextToken"))?;
            let topics = page
                .items
                .iter()
                .map(|t| {
                    let mut v = Value::map();
                    v.set("TopicArn", Value::from(t.arn.as_str()));
                    v
                })
                .collect();
            out.set("Topics", Value::List(topics))
                .set("NextToken", page.next_token.map(Value::from));
        }
        "GetTopicAttributes" => {
            out.set(
                "Attributes",
                attributes_out(sns.topic_attributes(required(input, "TopicArn")?)?),
            );
        }
        "SetTopicAttributes" => sns.set_topic_attribute(
            required(input, "TopicArn")?,
            required(input, "AttributeName")?,
            input.str("AttributeValue").unwrap_or_default(),
        )?,
        "Subscribe" => {
            let sub = sns.subscribe(
                required(input, "TopicArn")?,
                required(input, "Protocol")?,
                input.str("Endpoint").unwrap_or_default(),
                &string_map(input, "Attributes"),
            )?;
            let return_arn =
                input.get("ReturnSubscriptionArn").and_then(Value::as_bool).unwrap_or(false);
            let arn = if sub.pending && !return_arn {
                "pending confirmation".to_string()
            } else {
                sub.arn
            };
            out.set("SubscriptionArn", Value::from(arn));
        }
        "ConfirmSubscription" => {
            let authenticate =
                input.get("AuthenticateOnUnsubscribe").and_then(Value::as_bool).unwrap_or(false);
            if authenticate && !signed {
                return Err(ApiError::new(
                    "AuthorizationError",
                    "AuthenticateOnUnsubscribe needs a signed ConfirmSubscription",
                    403,
                ));
            }
            let sub = sns.confirm_subscription(
                required(input, "TopicArn")?,
                required(input, "Token")?,
                authenticate,
            )?;
            out.set("SubscriptionArn", Value::from(sub.arn));
        }
        "Unsubscribe" => sns.unsubscribe(required(input, "SubscriptionArn")?, signed)?,
        "ListSubscriptions" | "ListSubscriptionsByTopic" => {
            let page = if operation == "ListSubscriptions" {
                sns.list_subscriptions(input.str("NextToken"))?
            } else {
                sns.list_subscriptions_by_topic(
                    required(input, "TopicArn")?,
                    input.str("NextToken"),
                )?
            };
            out.set(
                "Subscriptions",
                Value::List(page.items.iter().map(subscription_out).collect()),
            )
            .set("NextToken", page.next_token.map(Value::from));
        }
        "GetSubscriptionAttributes" => {
            let attrs = sns.subscription_attributes(required(input, "SubscriptionArn")?)?;
            out.set("Attributes", attributes_out(attrs));
        }
        "SetSubscriptionAttributes" => sns.set_subscription_attribute(
            required(input, "SubscriptionArn")?,
            required(input, "AttributeName")?,
            input.str("AttributeValue").unwrap_or_default(),
        )?,
        "Publish" => {
            if input.str("PhoneNumber").is_some() {
                return Err(ApiError::new(
                    "InvalidParameter",
                    "Invalid parameter: PhoneNumber Reason: Cumulo sends no SMS",
                    400,
                ));
            }
            let topic = input.str("TopicArn").or_else(|| input.str("TargetArn"));
            let topic = topic.ok_or_else(|| {
                ApiError::new("InvalidParameter", "Invalid parameter: TopicArn or TargetArn Reason: no value for required parameter", 400)
            })?;
            let published = sns.publish(&publish_input(input, topic.to_string())?)?;
            out.set("MessageId", Value::from(published.message_id))
                .set("SequenceNumber", published.sequence_number.map(Value::from));
        }
        "PublishBatch" => {
            let topic = required(input, "TopicArn")?;
            let entries = input
                .list("PublishBatchRequestEntries")
                .iter()
                .map(|e| {
                    Ok(BatchEntry {
                        id: e.str("Id").unwrap_or_default().to_string(),
                        input: publish_input(e, topic.to_string())?,
                    })
                })
                .collect::<Result<Vec<_>, ApiError>>()?;
            let result = sns.publish_batch(topic, &entries)?;
            let successful = result
                .successful
                .into_iter()
                .map(|(id, p)| {
                    let mut v = Value::map();
                    v.set("Id", Value::from(id))
                        .set("MessageId", Value::from(p.message_id))
                        .set("SequenceNumber", p.sequence_number.map(Value::from));
                    v
                })
                .collect();
            let failed = result
                .failed
                .into_iter()
                .map(|f| {
                    let mut v = Value::map();
                    v.set("Id", Value::from(f.id))
                        .set("Code", Value::from(f.code))
                        .set("Message", Value::from(f.message))
                        .set("SenderFault", Value::Bool(f.sender_fault));
                    v
                })
                .collect();
            out.set("Successful", Value::List(successful)).set("Failed", Value::List(failed));
        }
        "TagResource" => sns.tag(required(input, "ResourceArn")?, &tags(input))?,
        "UntagResource" => sns.untag(required(input, "ResourceArn")?, &input.strings("TagKeys"))?,
        "ListTagsForResource" => {
            let list = sns
                .tags(required(input, "ResourceArn")?)?
                .into_iter()
                .map(|(k, v)| {
                    let mut t = Value::map();
                    t.set("Key", Value::from(k)).set("Value", Value::from(v));
                    t
                })
                .collect();
            out.set("Tags", Value::List(list));
        }
        other => return Err(ApiError::invalid_action(other)),
    }
    Ok(out)
}
