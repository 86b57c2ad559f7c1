//! SNS locally: topics and subscriptions kept in the store, and delivery. HTTP endpoints get
//! AWS's handshake (a SubscriptionConfirmation with its SubscribeURL and Token, pending until
//! ConfirmSubscription) and messages signed as AWS signs them (`signing`), with AWS's headers
//! and retries by the delivery policy (`delivery`), raw or in the JSON envelope; `email` and
//! `email-json` go into a mailbox in the store; `sqs` and `lambda` deliveries are written to the
//! mailbox as not delivered (there is no local SQS or Lambda), never silently dropped. Filter
//! policies (`filter`) decide who gets a message.
//!
//! Every wait (retry delays, the 15 s an endpoint has to answer) is the region's clock; every
//! delivery is a task of its own, bounded in number, ended by [`Sns::shutdown`].
//!
//! Other services publish through [`Notifier`].

use std::collections::BTreeMap;
use std::sync::{Arc, Weak};
use std::time::Duration;

use aws_ids::Account;
use clock::Clock;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value as Json};
use store::Store;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub mod delivery;
pub mod filter;
pub mod providers;
pub mod signing;

use signing::{SignatureVersion, Signer};

const TOPICS: &str = "sns/topic";
const SUBSCRIPTIONS: &str = "sns/subscription";
const MAIL_LOG: &str = "sns/mail";
const MAIL_STREAM: &str = "mailbox";

/// Protocols Cumulo takes subscriptions for.
pub const PROTOCOLS: &[&str] = &["http", "https", "email", "email-json", "sqs", "lambda"];
/// How long an unconfirmed subscription lives (AWS: 48 hours).
const PENDING_LIFETIME_MS: i64 = 48 * 3_600_000;
/// How long an endpoint has to answer (AWS: 15 s).
const HTTP_TIMEOUT: Duration = Duration::from_secs(15);
/// Deliveries in flight at once; more wait for a turn.
const MAX_IN_FLIGHT: usize = 256;
/// Largest message (AWS: 256 KiB).
const MAX_MESSAGE: usize = 262_144;
/// Page size of the List calls (AWS: 100).
const PAGE: usize = 100;

#[derive(Debug, thiserror::Error)]
pub enum SnsError {
    #[error("the SNS records cannot be read or written: {0}")]
    Store(#[from] store::StoreError),
    #[error("the signing key: {0}")]
    Signing(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    ResourceNotFound(String),
    #[error("{0}")]
    InvalidParameter(String),
    #[error("{0}")]
    ParameterValueInvalid(String),
    #[error("{0}")]
    AuthorizationError(String),
    #[error("{0}")]
    EmptyBatchRequest(String),
    #[error("{0}")]
    TooManyEntriesInBatchRequest(String),
    #[error("{0}")]
    BatchEntryIdsNotDistinct(String),
    #[error("{0}")]
    InvalidBatchEntryId(String),
    #[error("{0}")]
    TagLimitExceeded(String),
}

impl SnsError {
    /// SNS's error code.
    pub fn code(&self) -> &'static str {
        match self {
            SnsError::Store(_) | SnsError::Signing(_) => "InternalError",
            SnsError::NotFound(_) => "NotFound",
            SnsError::ResourceNotFound(_) => "ResourceNotFound",
            SnsError::InvalidParameter(_) => "InvalidParameter",
            SnsError::ParameterValueInvalid(_) => "ParameterValueInvalid",
            SnsError::AuthorizationError(_) => "AuthorizationError",
            SnsError::EmptyBatchRequest(_) => "EmptyBatchRequest",
            SnsError::TooManyEntriesInBatchRequest(_) => "TooManyEntriesInBatchRequest",
            SnsError::BatchEntryIdsNotDistinct(_) => "BatchEntryIdsNotDistinct",
            SnsError::InvalidBatchEntryId(_) => "InvalidBatchEntryId",
            SnsError::TagLimitExceeded(_) => "TagLimitExceeded",
        }
    }

    /// The HTTP status AWS answers it with.
    pub fn status(&self) -> u16 {
        match self {
            SnsError::Store(_) | SnsError::Signing(_) => 500,
            SnsError::NotFound(_) | SnsError::ResourceNotFound(_) => 404,
            SnsError::AuthorizationError(_) => 403,
            _ => 400,
        }
    }
}

fn invalid(what: impl std::fmt::Display) -> SnsError {
    SnsError::InvalidParameter(format!("Invalid parameter: {what}"))
}

fn topic_missing() -> SnsError {
    SnsError::NotFound("Topic does not exist".into())
}

/// A topic.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Topic {
    pub arn: String,
    pub name: String,
    /// The attributes set (DisplayName, Policy, DeliveryPolicy, SignatureVersion, ...).
    pub attributes: BTreeMap<String, String>,
    pub tags: Vec<(String, String)>,
    pub fifo: bool,
}

/// A subscription.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Subscription {
    pub arn: String,
    pub topic_arn: String,
    pub protocol: String,
    pub endpoint: String,
    pub owner: String,
    /// The attributes set (RawMessageDelivery, FilterPolicy, FilterPolicyScope, DeliveryPolicy, ...).
    pub attributes: BTreeMap<String, String>,
    pub pending: bool,
    /// The confirmation token (what the SubscribeURL carries).
    pub token: String,
    /// Confirmed with `AuthenticateOnUnsubscribe=true`: unsubscribing then needs a signed call.
    pub authenticate_on_unsubscribe: bool,
    /// When it was made, epoch milliseconds of AWS time.
    pub created_ms: i64,
    /// Its place in creation order (lists and deliveries follow it).
    #[serde(default)]
    pub order: u64,
}

impl Subscription {
    fn sort_key(&self) -> String {
        format!("{:020}:{}", self.order, self.arn)
    }

    fn raw(&self) -> bool {
        self.attributes.get("RawMessageDelivery").is_some_and(|v| v.eq_ignore_ascii_case("true"))
    }
}

/// A message attribute.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MessageAttribute {
    pub data_type: String,
    pub string_value: Option<String>,
    pub binary_value: Option<Vec<u8>>,
}

/// What Publish is given.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PublishInput {
    pub topic_arn: String,
    pub message: String,
    pub subject: Option<String>,
    /// `json`: `message` is a JSON object with a message per protocol and a `default`.
    pub message_structure: Option<String>,
    pub attributes: BTreeMap<String, MessageAttribute>,
    pub group_id: Option<String>,
    pub deduplication_id: Option<String>,
}

/// What Publish answers.
#[derive(Clone, Debug, PartialEq)]
pub struct Published {
    pub message_id: String,
    /// FIFO topics only.
    pub sequence_number: Option<String>,
}

/// One entry of PublishBatch (`input.topic_arn` is the batch's).
#[derive(Clone, Debug, PartialEq)]
pub struct BatchEntry {
    pub id: String,
    pub input: PublishInput,
}

/// A PublishBatch entry that failed.
#[derive(Clone, Debug, PartialEq)]
pub struct BatchFailure {
    pub id: String,
    pub code: String,
    pub message: String,
    pub sender_fault: bool,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct BatchResult {
    pub successful: Vec<(String, Published)>,
    pub failed: Vec<BatchFailure>,
}

/// One page of a List call.
#[derive(Clone, Debug, PartialEq)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next_token: Option<String>,
}

/// A mail in the local mailbox (email and email-json deliveries, and the deliveries to SQS
/// and Lambda that could not be made).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Mail {
    /// Its place in the mailbox (increasing); `mailbox(since)` answers those after `since`.
    #[serde(skip)]
    pub id: i64,
    pub to: String,
    pub subject: String,
    pub body: String,
    /// Epoch milliseconds of AWS time.
    pub at: i64,
    pub topic_arn: String,
    pub protocol: String,
}

/// How other services publish (CloudWatch alarm actions, Auto Scaling notifications, stack
/// events).
pub trait Notifier: Send + Sync {
    /// Publishes to a topic; answers the MessageId, or the error (`NotFound: Topic does not
    /// exist`).
    fn publish(
        &self,
        topic_arn: &str,
        subject: Option<&str>,
        message: &str,
    ) -> Result<String, String>;
}

/// A region's SNS.
pub struct Sns {
    store: Arc<Store>,
    clock: Clock,
    account: Account,
    endpoint: String,
    signer: parking_lot::Mutex<Option<Arc<Signer>>>,
    tasks: TaskTracker,
    shutdown: CancellationToken,
    permits: Arc<tokio::sync::Semaphore>,
    sequence: std::sync::atomic::AtomicU64,
    me: Weak<Sns>,
}

/// The message types of HTTP deliveries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    SubscriptionConfirmation,
    Notification,
    UnsubscribeConfirmation,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Kind::SubscriptionConfirmation => "SubscriptionConfirmation",
            Kind::Notification => "Notification",
            Kind::UnsubscribeConfirmation => "UnsubscribeConfirmation",
        }
    }
}

impl Sns {
    /// `endpoint` is the region's API URL (`http://127.0.0.1:4566`): SubscribeURL,
    /// UnsubscribeURL and SigningCertURL point there.
    pub fn new(store: Arc<Store>, clock: Clock, account: Account, endpoint: String) -> Arc<Sns> {
        Arc::new_cyclic(|me| Sns {
            store,
            clock,
            account,
            endpoint: endpoint.trim_end_matches('/').to_string(),
            signer: parking_lot::Mutex::new(None),
            tasks: TaskTracker::new(),
            shutdown: CancellationToken::new(),
            permits: Arc::new(tokio::sync::Semaphore::new(MAX_IN_FLIGHT)),
            sequence: std::sync::atomic::AtomicU64::new(0),
            me: me.clone(),
        })
    }

    pub fn account(&self) -> &Account {
        &self.account
    }

    /// Ends the deliveries in flight (retries waiting included) and waits for them.
    pub async fn shutdown(&self) {
        self.shutdown.cancel();
        self.tasks.close();
        self.tasks.wait().await;
    }

    /// Waits until no delivery is in flight (tests).
    pub async fn idle(&self) {
        self.tasks.close();
        self.tasks.wait().await;
        self.tasks.reopen();
    }

    fn now_ms(&self) -> i64 {
        self.clock.now().as_millisecond()
    }

    fn timestamp(&self) -> String {
        clock::iso8601(self.clock.now())
    }

    fn signer(&self) -> Result<Arc<Signer>, SnsError> {
        let mut slot = self.signer.lock();
        if let Some(s) = &*slot {
            return Ok(s.clone());
        }
        let s = Arc::new(Signer::load_or_create(&self.store)?);
        *slot = Some(s.clone());
        Ok(s)
    }

    /// The certificate that signs messages (PEM), served at [`Sns::signing_cert_url`].
    pub fn signing_cert_pem(&self) -> Result<String, SnsError> {
        Ok(self.signer()?.cert_pem().to_string())
    }

    /// Where the API serves the certificate.
    pub fn signing_cert_url(&self) -> String {
        format!("{}/_cumulo/sns/SimpleNotificationService.pem", self.endpoint)
    }

    fn subscribe_url(&self, topic_arn: &str, token: &str) -> String {
        format!("{}/?Action=ConfirmSubscription&TopicArn={topic_arn}&Token={token}", self.endpoint)
    }

    fn unsubscribe_url(&self, subscription_arn: &str) -> String {
        format!("{}/?Action=Unsubscribe&SubscriptionArn={subscription_arn}", self.endpoint)
    }

    // ---- topics -------------------------------------------------------------------------

    /// CreateTopic: idempotent for the same name (attributes must agree, tags are added).
    pub fn create_topic(
        &self,
        name: &str,
        attributes: &BTreeMap<String, String>,
        tags: &[(String, String)],
    ) -> Result<Topic, SnsError> {
        let base = name.strip_suffix(".fifo").unwrap_or(name);
        let fifo_attr = attributes.get("FifoTopic").is_some_and(|v| v.eq_ignore_ascii_case("true"));
        let valid = !base.is_empty()
            && name.len() <= 256
            && base.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
        if !valid || (fifo_attr != name.ends_with(".fifo")) {
            return Err(invalid("Topic Name"));
        }
        check_tags(tags)?;
        let arn = self.account.arn("sns", name);
        let mut topic = match self.store.get::<Topic>(TOPICS, &arn)? {
            Some(existing) => {
                for (k, v) in attributes {
                    if k != "FifoTopic" && existing.attributes.get(k) != Some(v) {
                        return Err(invalid(
                            "Attributes Reason: Topic already exists with different attributes",
                        ));
                    }
                }
                existing
            }
            None => {
                let mut topic = Topic {
                    arn: arn.clone(),
                    name: name.to_string(),
                    attributes: BTreeMap::new(),
                    tags: Vec::new(),
                    fifo: fifo_attr,
                };
                for (k, v) in attributes {
                    if k == "FifoTopic" {
                        continue;
                    }
                    check_topic_attribute(&topic, k, v)?;
                    topic.attributes.insert(k.clone(), v.clone());
                }
                topic
            }
        };
        merge_tags(&mut topic.tags, tags)?;
        self.store.put(TOPICS, &arn, &topic)?;
        Ok(topic)
    }

    pub fn topic(&self, arn: &str) -> Result<Topic, SnsError> {
        self.store.get::<Topic>(TOPICS, arn)?.ok_or_else(topic_missing)
    }

    /// DeleteTopic: its subscriptions go too; a topic that is not there is no error (as AWS).
    pub fn delete_topic(&self, arn: &str) -> Result<(), SnsError> {
        let subs = self.subscriptions_of(arn)?;
        self.store.batch(|b| {
            for s in &subs {
                b.delete(SUBSCRIPTIONS, &s.arn)?;
            }
            b.delete(TOPICS, arn)
        })?;
        Ok(())
    }

    pub fn list_topics(&self, next_token: Option<&str>) -> Result<Page<Topic>, SnsError> {
        let all: Vec<Topic> =
            self.store.list::<Topic>(TOPICS, "")?.into_iter().map(|(_, t)| t).collect();
        page(all, next_token, |t| t.arn.clone())
    }

    /// GetTopicAttributes: what was set, and what SNS computes (Owner, the default Policy,
    /// EffectiveDeliveryPolicy, subscription counts).
    pub fn topic_attributes(&self, arn: &str) -> Result<BTreeMap<String, String>, SnsError> {
        let topic = self.topic(arn)?;
        let subs = self.subscriptions_of(arn)?;
        let mut out = BTreeMap::new();
        out.insert("TopicArn".into(), topic.arn.clone());
        out.insert("Owner".into(), self.account.account_id.clone());
        out.insert("Policy".into(), default_policy(&topic.arn, &self.account.account_id));
        out.insert("DisplayName".into(), String::new());
        let pending = subs.iter().filter(|s| s.pending).count();
        out.insert("SubscriptionsPending".into(), pending.to_string());
        out.insert("SubscriptionsConfirmed".into(), (subs.len() - pending).to_string());
        out.insert("SubscriptionsDeleted".into(), "0".into());
        out.insert(
            "EffectiveDeliveryPolicy".into(),
            topic.attributes.get("DeliveryPolicy").cloned().unwrap_or_else(default_delivery_policy),
        );
        if topic.fifo {
            out.insert("FifoTopic".into(), "true".into());
            out.insert("ContentBasedDeduplication".into(), "false".into());
        }
        for (k, v) in &topic.attributes {
            out.insert(k.clone(), v.clone());
        }
        Ok(out)
    }

    pub fn set_topic_attribute(&self, arn: &str, name: &str, value: &str) -> Result<(), SnsError> {
        let mut topic = self.topic(arn)?;
        check_topic_attribute(&topic, name, value)?;
        topic.attributes.insert(name.to_string(), value.to_string());
        self.store.put(TOPICS, arn, &topic)?;
        Ok(())
    }

    // ---- tags ---------------------------------------------------------------------------

    fn tagged(&self, arn: &str) -> Result<Topic, SnsError> {
        self.store
            .get::<Topic>(TOPICS, arn)?
            .ok_or_else(|| SnsError::ResourceNotFound("Resource does not exist".into()))
    }

    pub fn tag(&self, arn: &str, tags: &[(String, String)]) -> Result<(), SnsError> {
        check_tags(tags)?;
        let mut topic = self.tagged(arn)?;
        merge_tags(&mut topic.tags, tags)?;
        self.store.put(TOPICS, arn, &topic)?;
        Ok(())
    }

    pub fn untag(&self, arn: &str, keys: &[String]) -> Result<(), SnsError> {
        let mut topic = self.tagged(arn)?;
        topic.tags.retain(|(k, _)| !keys.contains(k));
        self.store.put(TOPICS, arn, &topic)?;
        Ok(())
    }

    pub fn tags(&self, arn: &str) -> Result<Vec<(String, String)>, SnsError> {
        Ok(self.tagged(arn)?.tags)
    }

    // ---- subscriptions ------------------------------------------------------------------

    fn subscriptions_of(&self, topic_arn: &str) -> Result<Vec<Subscription>, SnsError> {
        let prefix = format!("{topic_arn}:");
        let now = self.now_ms();
        let mut subs: Vec<Subscription> = self
            .store
            .list::<Subscription>(SUBSCRIPTIONS, &prefix)?
            .into_iter()
            .map(|(_, s)| s)
            .filter(|s| s.topic_arn == topic_arn && !expired(s, now))
            .collect();
        subs.sort_by_key(Subscription::sort_key);
        Ok(subs)
    }

    pub fn subscription(&self, arn: &str) -> Result<Subscription, SnsError> {
        match self.store.get::<Subscription>(SUBSCRIPTIONS, arn)? {
            Some(s) if !expired(&s, self.now_ms()) => Ok(s),
            _ => Err(SnsError::NotFound("Subscription does not exist".into())),
        }
    }

    /// Subscribe: sqs and lambda subscriptions are confirmed at once; http, https, email and
    /// email-json are pending until confirmed (their confirmation is sent now).
    pub fn subscribe(
        &self,
        topic_arn: &str,
        protocol: &str,
        endpoint: &str,
        attributes: &BTreeMap<String, String>,
    ) -> Result<Subscription, SnsError> {
        let topic = self.topic(topic_arn)?;
        if !PROTOCOLS.contains(&protocol) {
            return Err(invalid(format!(
                "Amazon SNS does not support this protocol string locally: {protocol} (Cumulo delivers over {})",
                PROTOCOLS.join(", ")
            )));
        }
        let endpoint_ok = match protocol {
            "http" => endpoint.starts_with("http://"),
            "https" => endpoint.starts_with("https://"),
            "email" | "email-json" => {
                endpoint.split_once('@').is_some_and(|(u, d)| !u.is_empty() && !d.is_empty())
            }
            "sqs" => endpoint.starts_with("arn:") && endpoint.contains(":sqs:"),
            "lambda" => endpoint.starts_with("arn:") && endpoint.contains(":lambda:"),
            _ => false,
        };
        if !endpoint_ok {
            return Err(invalid(format!(
                "{protocol} endpoint: {endpoint:?} does not match the protocol"
            )));
        }
        let mut sub = Subscription {
            arn: format!("{topic_arn}:{}", aws_ids::uuid()),
            topic_arn: topic_arn.to_string(),
            protocol: protocol.to_string(),
            endpoint: endpoint.to_string(),
            owner: self.account.account_id.clone(),
            attributes: BTreeMap::new(),
            pending: !matches!(protocol, "sqs" | "lambda"),
            token: token(),
            authenticate_on_unsubscribe: false,
            created_ms: self.now_ms(),
            order: (self.now_ms().max(0) as u64) * 1000
                + self.sequence.fetch_add(1, std::sync::atomic::Ordering::Relaxed) % 1000,
        };
        for (k, v) in attributes {
            check_subscription_attribute(&sub, k, v)?;
            sub.attributes.insert(k.clone(), v.clone());
        }
        if let Some(existing) = self
            .subscriptions_of(topic_arn)?
            .into_iter()
            .find(|s| s.protocol == protocol && s.endpoint == endpoint)
        {
            if attributes.iter().any(|(k, v)| existing.attributes.get(k) != Some(v)) {
                return Err(invalid(
                    "Attributes Reason: Subscription already exists with different attributes",
                ));
            }
            if existing.pending {
                self.send_confirmation(&topic, &existing)?;
            }
            return Ok(existing);
        }
        self.store.put(SUBSCRIPTIONS, &sub.arn, &sub)?;
        if sub.pending {
            self.send_confirmation(&topic, &sub)?;
        }
        Ok(sub)
    }

    /// ConfirmSubscription (and a GET of the SubscribeURL): the token is the authorization.
    pub fn confirm_subscription(
        &self,
        topic_arn: &str,
        token: &str,
        authenticate_on_unsubscribe: bool,
    ) -> Result<Subscription, SnsError> {
        self.topic(topic_arn)?;
        let Some(mut sub) = self
            .subscriptions_of(topic_arn)?
            .into_iter()
            .find(|s| !token.is_empty() && s.token == token)
        else {
            return Err(invalid("Token"));
        };
        if sub.pending || authenticate_on_unsubscribe {
            sub.pending = false;
            sub.authenticate_on_unsubscribe |= authenticate_on_unsubscribe;
            self.store.put(SUBSCRIPTIONS, &sub.arn, &sub)?;
        }
        Ok(sub)
    }

    /// Unsubscribe. `signed` says whether the caller signed its request (an unsigned one, a
    /// GET of the UnsubscribeURL, may not remove a subscription confirmed with
    /// AuthenticateOnUnsubscribe). HTTP endpoints get an UnsubscribeConfirmation.
    pub fn unsubscribe(&self, arn: &str, signed: bool) -> Result<(), SnsError> {
        let sub = self.subscription(arn)?;
        if sub.pending {
            return Err(invalid("Cannot unsubscribe a subscription that is pending confirmation"));
        }
        if sub.authenticate_on_unsubscribe && !signed {
            return Err(SnsError::AuthorizationError(
                "Unsubscribe requires authentication for this subscription".into(),
            ));
        }
        self.store.delete(SUBSCRIPTIONS, arn)?;
        if matches!(sub.protocol.as_str(), "http" | "https")
            && let Ok(topic) = self.topic(&sub.topic_arn)
        {
            let message = format!(
                "You have chosen to deactivate subscription {arn}.\nTo cancel this operation and restore the subscription, visit the SubscribeURL included in this message."
            );
            let json = self.envelope(
                Kind::UnsubscribeConfirmation,
                &topic,
                &sub,
                &aws_ids::uuid(),
                None,
                &message,
                &BTreeMap::new(),
            )?;
            self.spawn_http(&topic, &sub, Kind::UnsubscribeConfirmation, json);
        }
        Ok(())
    }

    /// Removes a subscription whatever its state (CloudFormation deleting its resource).
    pub fn remove_subscription(&self, arn: &str) -> Result<(), SnsError> {
        if !self.store.delete(SUBSCRIPTIONS, arn)? {
            return Err(SnsError::NotFound("Subscription does not exist".into()));
        }
        Ok(())
    }

    /// ListSubscriptions (every topic's).
    pub fn list_subscriptions(
        &self,
        next_token: Option<&str>,
    ) -> Result<Page<Subscription>, SnsError> {
        let now = self.now_ms();
        let mut all: Vec<Subscription> = self
            .store
            .list::<Subscription>(SUBSCRIPTIONS, "")?
            .into_iter()
            .map(|(_, s)| s)
            .filter(|s| !expired(s, now))
            .collect();
        all.sort_by_key(Subscription::sort_key);
        page(all, next_token, Subscription::sort_key)
    }

    pub fn list_subscriptions_by_topic(
        &self,
        topic_arn: &str,
        next_token: Option<&str>,
    ) -> Result<Page<Subscription>, SnsError> {
        self.topic(topic_arn)?;
        page(self.subscriptions_of(topic_arn)?, next_token, Subscription::sort_key)
    }

    /// GetSubscriptionAttributes.
    pub fn subscription_attributes(&self, arn: &str) -> Result<BTreeMap<String, String>, SnsError> {
        let sub = self.subscription(arn)?;
        let mut out = BTreeMap::new();
        out.insert("SubscriptionArn".into(), sub.arn.clone());
        out.insert("TopicArn".into(), sub.topic_arn.clone());
        out.insert("Owner".into(), sub.owner.clone());
        out.insert("Protocol".into(), sub.protocol.clone());
        out.insert("Endpoint".into(), sub.endpoint.clone());
        out.insert("PendingConfirmation".into(), sub.pending.to_string());
        out.insert(
            "ConfirmationWasAuthenticated".into(),
            sub.authenticate_on_unsubscribe.to_string(),
        );
        out.insert("RawMessageDelivery".into(), "false".into());
        out.insert(
            "SubscriptionPrincipal".into(),
            format!("arn:{}:iam::{}:root", self.account.partition, self.account.account_id),
        );
        if matches!(sub.protocol.as_str(), "http" | "https") {
            let topic_policy = self
                .topic(&sub.topic_arn)
                .ok()
                .and_then(|t| t.attributes.get("DeliveryPolicy").cloned());
            let effective = delivery::RetryPolicy::effective(
                topic_policy.as_deref(),
                sub.attributes.get("DeliveryPolicy").map(String::as_str),
            );
            out.insert("EffectiveDeliveryPolicy".into(), effective_policy_json(&effective));
        }
        if sub.attributes.contains_key("FilterPolicy") {
            out.insert("FilterPolicyScope".into(), "MessageAttributes".into());
        }
        for (k, v) in &sub.attributes {
            out.insert(k.clone(), v.clone());
        }
        Ok(out)
    }

    pub fn set_subscription_attribute(
        &self,
        arn: &str,
        name: &str,
        value: &str,
    ) -> Result<(), SnsError> {
        let mut sub = self.subscription(arn)?;
        check_subscription_attribute(&sub, name, value)?;
        if value.is_empty() && matches!(name, "FilterPolicy" | "DeliveryPolicy" | "RedrivePolicy") {
            sub.attributes.remove(name);
        } else {
            sub.attributes.insert(name.to_string(), value.to_string());
        }
        self.store.put(SUBSCRIPTIONS, arn, &sub)?;
        Ok(())
    }

    // ---- publishing ---------------------------------------------------------------------

    /// Publish: checks the message, then delivers it to every confirmed subscription whose
    /// filter policy it passes (mail at once, HTTP in tasks of their own).
    pub fn publish(&self, input: &PublishInput) -> Result<Published, SnsError> {
        let topic = self.topic(&input.topic_arn)?;
        let per_protocol = check_message(input)?;
        let sequence_number = if topic.fifo {
            if input.group_id.as_deref().is_none_or(str::is_empty) {
                return Err(invalid("The MessageGroupId parameter is required for FIFO topics"));
            }
            let content_dedup =
                topic.attributes.get("ContentBasedDeduplication").is_some_and(|v| v == "true");
            if input.deduplication_id.is_none() && !content_dedup {
                return Err(invalid(
                    "The topic should either have ContentBasedDeduplication enabled or MessageDeduplicationId provided explicitly",
                ));
            }
            let n = self.sequence.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
            Some(format!("{:020}", self.now_ms() as u64 * 1000 + n % 1000))
        } else {
            None
        };
        let message_id = aws_ids::uuid();
        let subs = self.subscriptions_of(&topic.arn)?;
        for sub in subs.iter().filter(|s| !s.pending) {
            let message = per_protocol
                .as_ref()
                .and_then(|m| m.get(&sub.protocol).or_else(|| m.get("default")))
                .map_or(input.message.as_str(), String::as_str);
            if !self.passes(sub, message, &input.attributes) {
                continue;
            }
            self.deliver(
                &topic,
                sub,
                &message_id,
                input.subject.as_deref(),
                message,
                &input.attributes,
            )?;
        }
        Ok(Published { message_id, sequence_number })
    }

    /// PublishBatch: at most 10 entries with distinct ids; each is published or fails alone.
    pub fn publish_batch(
        &self,
        topic_arn: &str,
        entries: &[BatchEntry],
    ) -> Result<BatchResult, SnsError> {
        self.topic(topic_arn)?;
        if entries.is_empty() {
            return Err(SnsError::EmptyBatchRequest(
                "The batch request doesn't contain any entries".into(),
            ));
        }
        if entries.len() > 10 {
            return Err(SnsError::TooManyEntriesInBatchRequest(
                "The batch request contains more entries than permissible".into(),
            ));
        }
        let mut seen = std::collections::HashSet::new();
        for e in entries {
            let id_ok = !e.id.is_empty()
                && e.id.len() <= 80
                && e.id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
            if !id_ok {
                return Err(SnsError::InvalidBatchEntryId(
                    "The Id of a batch entry in a batch request doesn't abide by the specification"
                        .into(),
                ));
            }
            if !seen.insert(e.id.as_str()) {
                return Err(SnsError::BatchEntryIdsNotDistinct(
                    "Two or more batch entries in the request have the same Id".into(),
                ));
            }
        }
        let mut out = BatchResult::default();
        for e in entries {
            let input = PublishInput { topic_arn: topic_arn.to_string(), ..e.input.clone() };
            match self.publish(&input) {
                Ok(p) => out.successful.push((e.id.clone(), p)),
                Err(err @ (SnsError::Store(_) | SnsError::Signing(_))) => return Err(err),
                Err(err) => out.failed.push(BatchFailure {
                    id: e.id.clone(),
                    code: err.code().to_string(),
                    message: err.to_string(),
                    sender_fault: err.status() < 500,
                }),
            }
        }
        Ok(out)
    }

    fn passes(
        &self,
        sub: &Subscription,
        message: &str,
        attributes: &BTreeMap<String, MessageAttribute>,
    ) -> bool {
        let Some(policy) = sub.attributes.get("FilterPolicy").filter(|p| !p.trim().is_empty())
        else {
            return true;
        };
        let scope = sub
            .attributes
            .get("FilterPolicyScope")
            .and_then(|s| filter::Scope::parse(s))
            .unwrap_or(filter::Scope::MessageAttributes);
        match scope {
            filter::Scope::MessageAttributes => {
                let object =
                    filter::attributes_object(attributes.iter().map(|(k, a)| {
                        (k.as_str(), a.data_type.as_str(), a.string_value.as_deref())
                    }));
                filter::matches(policy, Some(&object))
            }
            filter::Scope::MessageBody => {
                let body = serde_json::from_str::<Json>(message).ok();
                filter::matches(policy, body.as_ref())
            }
        }
    }

    /// The JSON envelope of an HTTP or email-json delivery, signed.
    #[allow(clippy::too_many_arguments)]
    fn envelope(
        &self,
        kind: Kind,
        topic: &Topic,
        sub: &Subscription,
        message_id: &str,
        subject: Option<&str>,
        message: &str,
        attributes: &BTreeMap<String, MessageAttribute>,
    ) -> Result<String, SnsError> {
        let s = |v: &str| Json::String(v.to_string());
        let mut m = Map::new();
        m.insert("Type".into(), s(kind.as_str()));
        m.insert("MessageId".into(), s(message_id));
        if kind != Kind::Notification {
            m.insert("Token".into(), s(&sub.token));
        }
        m.insert("TopicArn".into(), s(&topic.arn));
        if kind == Kind::Notification
            && let Some(subject) = subject
        {
            m.insert("Subject".into(), s(subject));
        }
        m.insert("Message".into(), s(message));
        if kind != Kind::Notification {
            m.insert("SubscribeURL".into(), s(&self.subscribe_url(&topic.arn, &sub.token)));
        }
        m.insert("Timestamp".into(), s(&self.timestamp()));
        let version = topic
            .attributes
            .get("SignatureVersion")
            .and_then(|v| SignatureVersion::parse(v))
            .unwrap_or(SignatureVersion::V1);
        m.insert("SignatureVersion".into(), s(version.as_str()));
        let signature = self.signer()?.sign(version, &signing::string_to_sign(&m))?;
        m.insert("Signature".into(), s(&signature));
        m.insert("SigningCertURL".into(), s(&self.signing_cert_url()));
        if kind == Kind::Notification {
            m.insert("UnsubscribeURL".into(), s(&self.unsubscribe_url(&sub.arn)));
            if !attributes.is_empty() {
                let mut attrs = Map::new();
                for (name, a) in attributes {
                    let value = match (&a.string_value, &a.binary_value) {
                        (Some(v), _) => v.clone(),
                        (None, Some(b)) => {
                            use base64::Engine as _;
                            base64::engine::general_purpose::STANDARD.encode(b)
                        }
                        (None, None) => String::new(),
                    };
                    attrs.insert(
                        name.clone(),
                        serde_json::json!({"Type": a.data_type, "Value": value}),
                    );
                }
                m.insert("MessageAttributes".into(), Json::Object(attrs));
            }
        }
        Ok(Json::Object(m).to_string())
    }

    fn send_confirmation(&self, topic: &Topic, sub: &Subscription) -> Result<(), SnsError> {
        let message = format!(
            "You have chosen to subscribe to the topic {}.\nTo confirm the subscription, visit the SubscribeURL included in this message.",
            topic.arn
        );
        match sub.protocol.as_str() {
            "http" | "https" => {
                let json = self.envelope(
                    Kind::SubscriptionConfirmation,
                    topic,
                    sub,
                    &aws_ids::uuid(),
                    None,
                    &message,
                    &BTreeMap::new(),
                )?;
                self.spawn_http(topic, sub, Kind::SubscriptionConfirmation, json);
            }
            "email" => {
                let body = format!(
                    "You have chosen to subscribe to the topic: \n{}\n\nTo confirm this subscription, click or visit the link below (If this was in error no action is necessary): \n{}\n\nPlease do not reply directly to this email. If you wish to remove yourself from receiving all future SNS subscription confirmation requests please send an email to sns-opt-out",
                    topic.arn,
                    self.subscribe_url(&topic.arn, &sub.token)
                );
                self.mail(sub, "AWS Notification - Subscription Confirmation", body)?;
            }
            "email-json" => {
                let json = self.envelope(
                    Kind::SubscriptionConfirmation,
                    topic,
                    sub,
                    &aws_ids::uuid(),
                    None,
                    &message,
                    &BTreeMap::new(),
                )?;
                self.mail(sub, "AWS Notification - Subscription Confirmation", json)?;
            }
            _ => {}
        }
        Ok(())
    }

    fn deliver(
        &self,
        topic: &Topic,
        sub: &Subscription,
        message_id: &str,
        subject: Option<&str>,
        message: &str,
        attributes: &BTreeMap<String, MessageAttribute>,
    ) -> Result<(), SnsError> {
        let envelope = || {
            self.envelope(Kind::Notification, topic, sub, message_id, subject, message, attributes)
        };
        match sub.protocol.as_str() {
            "http" | "https" => {
                let body = if sub.raw() { message.to_string() } else { envelope()? };
                self.spawn_http(topic, sub, Kind::Notification, body);
            }
            "email" => {
                let body = format!(
                    "{message}\n\n--\nIf you wish to stop receiving notifications from this topic, please click or visit the link below to unsubscribe:\n{}\n\nPlease do not reply directly to this email. If you have any questions or comments regarding this email, please contact us at https://aws.amazon.com/support",
                    self.unsubscribe_url(&sub.arn)
                );
                self.mail(sub, subject.unwrap_or("AWS Notification Message"), body)?;
            }
            "email-json" => {
                self.mail(sub, subject.unwrap_or("AWS Notification Message"), envelope()?)?;
            }
            "sqs" | "lambda" => {
                let body = if sub.raw() { message.to_string() } else { envelope()? };
                let service = if sub.protocol == "sqs" { "SQS" } else { "Lambda" };
                self.mail(sub, &format!("not delivered: no local {service}"), body)?;
            }
            _ => {}
        }
        Ok(())
    }

    fn mail(&self, sub: &Subscription, subject: &str, body: String) -> Result<(), SnsError> {
        let mail = Mail {
            id: 0,
            to: sub.endpoint.clone(),
            subject: subject.to_string(),
            body,
            at: self.now_ms(),
            topic_arn: sub.topic_arn.clone(),
            protocol: sub.protocol.clone(),
        };
        self.store.append(MAIL_LOG, MAIL_STREAM, &mail)?;
        Ok(())
    }

    /// The mails after `since` (0: all), oldest first.
    pub fn mailbox(&self, since: i64) -> Result<Vec<Mail>, SnsError> {
        Ok(self
            .store
            .read_log::<Mail>(MAIL_LOG, MAIL_STREAM, since)?
            .into_iter()
            .map(|(id, mut m)| {
                m.id = id;
                m
            })
            .collect())
    }

    fn spawn_http(&self, topic: &Topic, sub: &Subscription, kind: Kind, body: String) {
        let Some(me) = self.me.upgrade() else { return };
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            tracing::warn!(
                endpoint = sub.endpoint,
                "no runtime to deliver on: the delivery is dropped"
            );
            return;
        };
        let message_id = serde_json::from_str::<Json>(&body)
            .ok()
            .and_then(|j| j.get("MessageId").and_then(Json::as_str).map(str::to_string))
            .unwrap_or_else(aws_ids::uuid);
        let mut headers = vec![
            ("content-type", "text/plain; charset=UTF-8".to_string()),
            ("user-agent", "Amazon Simple Notification Service Agent".to_string()),
            ("x-amz-sns-message-type", kind.as_str().to_string()),
            ("x-amz-sns-message-id", message_id),
            ("x-amz-sns-topic-arn", topic.arn.clone()),
        ];
        if kind != Kind::SubscriptionConfirmation {
            headers.push(("x-amz-sns-subscription-arn", sub.arn.clone()));
        }
        if kind == Kind::Notification && sub.raw() {
            headers.push(("x-amz-sns-rawdelivery", "true".to_string()));
        }
        let post = delivery::Post { url: sub.endpoint.clone(), headers, body };
        let policy = delivery::RetryPolicy::effective(
            topic.attributes.get("DeliveryPolicy").map(String::as_str),
            sub.attributes.get("DeliveryPolicy").map(String::as_str),
        );
        let task = self.tasks.track_future(async move { me.run_http(post, policy).await });
        runtime.spawn(task);
    }

    async fn run_http(self: Arc<Self>, post: delivery::Post, policy: delivery::RetryPolicy) {
        let Ok(_permit) = self.permits.clone().acquire_owned().await else { return };
        let delays = policy.delays();
        for attempt in 0..=delays.len() {
            if attempt > 0 {
                tokio::select! {
                    _ = self.shutdown.cancelled() => return,
                    _ = self.clock.sleep(delays[attempt - 1]) => {}
                }
            }
            let outcome = tokio::select! {
                _ = self.shutdown.cancelled() => return,
                r = self.clock.timeout(HTTP_TIMEOUT, delivery::post(&post)) => r,
            };
            match outcome {
                Ok(Ok(status)) if (200..500).contains(&status) => {
                    tracing::debug!(url = post.url, status, attempt, "SNS delivery made");
                    return;
                }
                Ok(Ok(status)) => {
                    tracing::info!(url = post.url, status, attempt, "SNS delivery refused")
                }
                Ok(Err(e)) => tracing::info!(url = post.url, attempt, "SNS delivery failed: {e}"),
                Err(_) => {
                    tracing::info!(url = post.url, attempt, "SNS delivery timed out after 15 s")
                }
            }
        }
        tracing::warn!(url = post.url, "SNS delivery dropped after {} retries", delays.len());
    }
}

impl Notifier for Sns {
    fn publish(
        &self,
        topic_arn: &str,
        subject: Option<&str>,
        message: &str,
    ) -> Result<String, String> {
        let input = PublishInput {
            topic_arn: topic_arn.to_string(),
            message: message.to_string(),
            subject: subject.map(str::to_string),
            ..PublishInput::default()
        };
        Sns::publish(self, &input).map(|p| p.message_id).map_err(|e| format!("{}: {e}", e.code()))
    }
}

fn expired(s: &Subscription, now_ms: i64) -> bool {
    s.pending && now_ms - s.created_ms > PENDING_LIFETIME_MS
}

/// A confirmation token: 256 hex digits, as AWS's are long.
fn token() -> String {
    aws_ids::hex(256)
}

/// A page of `all` (in key order) from `next_token` (the key of the first item of the page).
fn page<T>(
    all: Vec<T>,
    next_token: Option<&str>,
    key: impl Fn(&T) -> String,
) -> Result<Page<T>, SnsError> {
    let start = match next_token.filter(|t| !t.is_empty()) {
        None => 0,
        Some(t) => {
            use base64::Engine as _;
            let decoded = base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(t)
                .ok()
                .and_then(|b| String::from_utf8(b).ok())
                .ok_or_else(|| invalid("NextToken"))?;
            all.iter().position(|i| key(i) >= decoded).unwrap_or(all.len())
        }
    };
    let mut items: Vec<T> = all.into_iter().skip(start).collect();
    let next_token = if items.len() > PAGE {
        use base64::Engine as _;
        let rest = items.split_off(PAGE);
        rest.first()
            .map(|i| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(key(i).as_bytes()))
    } else {
        None
    };
    Ok(Page { items, next_token })
}

fn check_tags(tags: &[(String, String)]) -> Result<(), SnsError> {
    for (k, v) in tags {
        if k.is_empty() || k.len() > 128 || v.len() > 256 || k.starts_with("aws:") {
            return Err(invalid(format!("Tag key {k:?} or value is not valid")));
        }
    }
    Ok(())
}

fn merge_tags(into: &mut Vec<(String, String)>, tags: &[(String, String)]) -> Result<(), SnsError> {
    for (k, v) in tags {
        match into.iter_mut().find(|(key, _)| key == k) {
            Some(slot) => slot.1 = v.clone(),
            None => into.push((k.clone(), v.clone())),
        }
    }
    if into.len() > 50 {
        return Err(SnsError::TagLimitExceeded(
            "Could not complete request: tag quota of per resource exceeded".into(),
        ));
    }
    Ok(())
}

/// Topic attributes one may set.
const TOPIC_ATTRIBUTES: &[&str] = &[
    "DisplayName",
    "Policy",
    "DeliveryPolicy",
    "SignatureVersion",
    "TracingConfig",
    "KmsMasterKeyId",
    "ContentBasedDeduplication",
    "FifoThroughputScope",
    "ArchivePolicy",
    "DataProtectionPolicy",
    "HTTPSuccessFeedbackRoleArn",
    "HTTPSuccessFeedbackSampleRate",
    "HTTPFailureFeedbackRoleArn",
    "LambdaSuccessFeedbackRoleArn",
    "LambdaSuccessFeedbackSampleRate",
    "LambdaFailureFeedbackRoleArn",
    "SQSSuccessFeedbackRoleArn",
    "SQSSuccessFeedbackSampleRate",
    "SQSFailureFeedbackRoleArn",
    "FirehoseSuccessFeedbackRoleArn",
    "FirehoseSuccessFeedbackSampleRate",
    "FirehoseFailureFeedbackRoleArn",
    "ApplicationSuccessFeedbackRoleArn",
    "ApplicationSuccessFeedbackSampleRate",
    "ApplicationFailureFeedbackRoleArn",
];

fn check_topic_attribute(topic: &Topic, name: &str, value: &str) -> Result<(), SnsError> {
    if !TOPIC_ATTRIBUTES.contains(&name) {
        return Err(invalid("AttributeName"));
    }
    let bad = |why: &str| invalid(format!("Attributes Reason: {name}: {why}"));
    match name {
        "SignatureVersion" if SignatureVersion::parse(value).is_none() => {
            return Err(bad("must be 1 or 2"));
        }
        "Policy" | "DeliveryPolicy" | "ArchivePolicy" | "DataProtectionPolicy"
            if !serde_json::from_str::<Json>(value).is_ok_and(|j| j.is_object()) =>
        {
            return Err(bad("is not a JSON object"));
        }
        "ContentBasedDeduplication" | "FifoThroughputScope" | "ArchivePolicy" if !topic.fifo => {
            return Err(bad("applies to FIFO topics only"));
        }
        "DisplayName" if value.len() > 100 => return Err(bad("longer than 100 characters")),
        _ => {}
    }
    Ok(())
}

/// Subscription attributes one may set.
const SUBSCRIPTION_ATTRIBUTES: &[&str] = &[
    "DeliveryPolicy",
    "FilterPolicy",
    "FilterPolicyScope",
    "RawMessageDelivery",
    "RedrivePolicy",
    "SubscriptionRoleArn",
    "ReplayPolicy",
];

fn check_subscription_attribute(
    sub: &Subscription,
    name: &str,
    value: &str,
) -> Result<(), SnsError> {
    if !SUBSCRIPTION_ATTRIBUTES.contains(&name) {
        return Err(invalid("AttributeName"));
    }
    let bad = |why: String| invalid(format!("Attributes Reason: {why}"));
    match name {
        "RawMessageDelivery" => {
            if !matches!(value.to_ascii_lowercase().as_str(), "true" | "false") {
                return Err(bad("RawMessageDelivery: must be true or false".into()));
            }
            if !matches!(sub.protocol.as_str(), "http" | "https" | "sqs") {
                return Err(bad(format!(
                    "Delivery protocol [{}] does not support raw message delivery.",
                    sub.protocol
                )));
            }
        }
        "FilterPolicyScope" if filter::Scope::parse(value).is_none() => {
            return Err(bad("FilterPolicyScope: must be MessageAttributes or MessageBody".into()));
        }
        "FilterPolicy" if !value.is_empty() => {
            let scope = sub
                .attributes
                .get("FilterPolicyScope")
                .and_then(|s| filter::Scope::parse(s))
                .unwrap_or(filter::Scope::MessageAttributes);
            // A body policy may nest; it is checked as one before its scope is known.
            filter::validate(value, scope)
                .or_else(|_| filter::validate(value, filter::Scope::MessageBody))
                .map_err(|e| bad(format!("FilterPolicy: {e}")))?;
        }
        "DeliveryPolicy" if !value.is_empty() => {
            if !matches!(sub.protocol.as_str(), "http" | "https") {
                return Err(bad(format!(
                    "DeliveryPolicy: not supported for the protocol {}",
                    sub.protocol
                )));
            }
            if !serde_json::from_str::<Json>(value).is_ok_and(|j| j.is_object()) {
                return Err(bad("DeliveryPolicy: is not a JSON object".into()));
            }
        }
        _ => {}
    }
    Ok(())
}

/// Checks what Publish is given; with `MessageStructure=json`, the message per protocol.
fn check_message(input: &PublishInput) -> Result<Option<BTreeMap<String, String>>, SnsError> {
    if input.message.is_empty() {
        return Err(invalid("Empty message"));
    }
    if input.message.len() > MAX_MESSAGE {
        return Err(invalid("Message too long"));
    }
    if let Some(subject) = &input.subject {
        let printable = subject.chars().all(|c| !c.is_control());
        if subject.is_empty() || subject.chars().count() >= 100 || !printable {
            return Err(invalid("Subject"));
        }
    }
    for (name, a) in &input.attributes {
        let base = a.data_type.split('.').next().unwrap_or("");
        let ok = match base {
            "String" if a.data_type.starts_with("String.Array") => a
                .string_value
                .as_deref()
                .is_some_and(|v| serde_json::from_str::<Json>(v).is_ok_and(|j| j.is_array())),
            "String" => a.string_value.is_some(),
            "Number" => a.string_value.as_deref().is_some_and(|v| v.trim().parse::<f64>().is_ok()),
            "Binary" => a.binary_value.is_some(),
            _ => false,
        };
        if !ok {
            return Err(SnsError::ParameterValueInvalid(format!(
                "The message attribute '{name}' has an invalid message attribute type, the set of supported type prefixes is Binary, Number, and String."
            )));
        }
    }
    match input.message_structure.as_deref() {
        None => Ok(None),
        Some("json") => {
            let parsed: Json = serde_json::from_str(&input.message)
                .map_err(|_| invalid("Message Structure - JSON message body failed to parse"))?;
            let Json::Object(map) = parsed else {
                return Err(invalid("Message Structure - JSON message body failed to parse"));
            };
            if !map.get("default").is_some_and(Json::is_string) {
                return Err(invalid("Message Structure - No default entry in JSON message body"));
            }
            Ok(Some(
                map.into_iter().filter_map(|(k, v)| Some((k, v.as_str()?.to_string()))).collect(),
            ))
        }
        Some(_) => Err(invalid("MessageStructure")),
    }
}

fn default_policy(arn: &str, account: &str) -> String {
    serde_json::json!({
        "Version": "2008-10-17",
        "Id": "__default_policy_ID",
        "Statement": [{
            "Sid": "__default_statement_ID",
            "Effect": "Allow",
            "Principal": {"AWS": "*"},
            "Action": [
                "SNS:GetTopicAttributes", "SNS:SetTopicAttributes", "SNS:AddPermission",
                "SNS:RemovePermission", "SNS:DeleteTopic", "SNS:Subscribe",
                "SNS:ListSubscriptionsByTopic", "SNS:Publish"
            ],
            "Resource": arn,
            "Condition": {"StringEquals": {"AWS:SourceOwner": account}}
        }]
    })
    .to_string()
}

fn default_delivery_policy() -> String {
    serde_json::json!({"http": {
        "defaultHealthyRetryPolicy": {
            "minDelayTarget": 20, "maxDelayTarget": 20, "numRetries": 3,
            "numMaxDelayRetries": 0, "numNoDelayRetries": 0, "numMinDelayRetries": 0,
            "backoffFunction": "linear"
        },
        "disableSubscriptionOverrides": false,
        "defaultRequestPolicy": {"headerContentType": "text/plain; charset=UTF-8"}
    }})
    .to_string()
}

fn effective_policy_json(p: &delivery::RetryPolicy) -> String {
    serde_json::json!({
        "healthyRetryPolicy": {
            "minDelayTarget": p.min_delay, "maxDelayTarget": p.max_delay, "numRetries": p.num_retries,
            "numMaxDelayRetries": p.max_delay_retries, "numNoDelayRetries": p.no_delay,
            "numMinDelayRetries": p.min_delay_retries, "backoffFunction": p.backoff
        }
    })
    .to_string()
}

#[cfg(test)]
mod tests;
