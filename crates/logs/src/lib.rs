//! CloudWatch Logs locally: log groups (retention enforced on the region's clock, KMS keys
//! recorded, tags), log streams and their events (`events`: PutLogEvents with AWS's batch
//! rules, GetLogEvents and FilterLogEvents with their paging), filter patterns (`pattern`),
//! metric filters that publish per-minute metrics through the [`MetricSink`] the region
//! implements over CloudWatch, subscription filters (recorded), Logs Insights queries for the
//! common commands (`insights`), and the CloudFormation providers (`providers`).
//!
//! Storage: group, stream and filter records are documents; a stream's events are records of
//! the store's append-only logs (log `logs/events`, one stream each), one record per accepted
//! PutLogEvents batch carrying its newest timestamp, so that retention deletes whole batches
//! in SQL (`Store::trim_log`) and reads drop the events a batch still holds past retention.
//!
//! Architecture Invariant: Logs knows no other service; metrics leave through [`MetricSink`].

use std::collections::BTreeMap;
use std::sync::Arc;

use aws_ids::Account;
use clock::Clock;
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use store::Store;

pub mod events;
pub mod insights;
pub mod metrics;
pub mod pattern;
pub mod providers;

pub use events::{
    EventsPage, FilterInput, FilteredEvent, FilteredPage, GetInput, InputEvent, OutputEvent,
    PutResult, Rejected,
};
pub use metrics::{MetricFilter, MetricSink, SubscriptionFilter, Transformation};
pub use pattern::{FilterPattern, PatternError};

pub(crate) const GROUPS: &str = "logs/group";
pub(crate) const STREAMS: &str = "logs/stream";
pub(crate) const EVENTS: &str = "logs/events";

/// The retention periods AWS accepts, in days.
pub const RETENTION_DAYS: &[u32] = &[
    1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922,
    3288, 3653,
];

#[derive(Debug, thiserror::Error)]
pub enum LogsError {
    #[error("the log store cannot be read or written: {0}")]
    Store(#[from] store::StoreError),
    #[error("{0}")]
    ResourceNotFound(String),
    #[error("{0}")]
    ResourceAlreadyExists(String),
    #[error("{0}")]
    InvalidParameter(String),
    #[error("{0}")]
    LimitExceeded(String),
    #[error("{0}")]
    MalformedQuery(String),
}

impl LogsError {
    /// CloudWatch Logs' error code (the error shape of botocore's model).
    pub fn code(&self) -> &'static str {
        match self {
            LogsError::Store(_) => "ServiceUnavailableException",
            LogsError::ResourceNotFound(_) => "ResourceNotFoundException",
            LogsError::ResourceAlreadyExists(_) => "ResourceAlreadyExistsException",
            LogsError::InvalidParameter(_) => "InvalidParameterException",
            LogsError::LimitExceeded(_) => "LimitExceededException",
            LogsError::MalformedQuery(_) => "MalformedQueryException",
        }
    }

    /// The HTTP status AWS answers it with.
    pub fn status(&self) -> u16 {
        match self {
            LogsError::Store(_) => 500,
            _ => 400,
        }
    }
}

impl From<PatternError> for LogsError {
    fn from(e: PatternError) -> LogsError {
        LogsError::InvalidParameter(e.to_string())
    }
}

pub(crate) fn invalid<T>(msg: impl Into<String>) -> Result<T, LogsError> {
    Err(LogsError::InvalidParameter(msg.into()))
}

pub(crate) fn group_not_found() -> LogsError {
    LogsError::ResourceNotFound("The specified log group does not exist.".into())
}

pub(crate) fn stream_not_found() -> LogsError {
    LogsError::ResourceNotFound("The specified log stream does not exist.".into())
}

/// A log group.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LogGroup {
    pub name: String,
    pub created_ms: i64,
    #[serde(default)]
    pub retention_days: Option<u32>,
    #[serde(default)]
    pub kms_key_id: Option<String>,
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
    /// STANDARD or INFREQUENT_ACCESS (recorded).
    #[serde(default = "standard")]
    pub class: String,
}

fn standard() -> String {
    "STANDARD".into()
}

/// A log stream.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LogStream {
    pub group: String,
    pub name: String,
    pub created_ms: i64,
    #[serde(default)]
    pub first_event_ms: Option<i64>,
    #[serde(default)]
    pub last_event_ms: Option<i64>,
    #[serde(default)]
    pub last_ingestion_ms: Option<i64>,
    /// Bytes of the events accepted (message bytes plus 26 per event), as AWS counts them.
    #[serde(default)]
    pub stored_bytes: u64,
    /// The sequence number of the last batch (the upload sequence token).
    #[serde(default)]
    pub last_seq: i64,
}

/// CreateLogGroup.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct CreateGroup {
    pub name: String,
    pub kms_key_id: Option<String>,
    pub tags: Vec<(String, String)>,
    pub class: Option<String>,
}

/// A page of a Describe call.
#[derive(Clone, Debug, PartialEq)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next_token: Option<String>,
}

/// How DescribeLogStreams orders.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum StreamOrder {
    #[default]
    LogStreamName,
    LastEventTime,
}

/// The metric aggregator and the sink it publishes to.
#[derive(Default)]
pub(crate) struct MetricState {
    pub sink: Option<Arc<dyn MetricSink>>,
    pub minutes: BTreeMap<metrics::SeriesMinute, metrics::Aggregate>,
}

/// A region's CloudWatch Logs.
pub struct Logs {
    pub(crate) store: Arc<Store>,
    pub(crate) clock: Clock,
    pub(crate) account: Account,
    pub(crate) metrics: Mutex<MetricState>,
    pub(crate) queries: Mutex<insights::Queries>,
    /// Serializes writes to one region's records (a PutLogEvents and a DeleteLogStream never
    /// interleave their read-modify-write of a stream record).
    pub(crate) writes: Mutex<()>,
}

pub(crate) fn stream_key(group: &str, stream: &str) -> String {
    format!("{group}:{stream}")
}

fn check_group_name(name: &str) -> Result<(), LogsError> {
    let ok = !name.is_empty()
        && name.len() <= 512
        && name.chars().all(|c| c.is_ascii_alphanumeric() || "._-/#".contains(c));
    if ok {
        Ok(())
    } else {
        invalid(format!(
            "1 validation error detected: Value '{name}' at 'logGroupName' failed to satisfy constraint: Member must satisfy regular expression pattern: [\\.\\-_/#A-Za-z0-9]+"
        ))
    }
}

fn check_stream_name(name: &str) -> Result<(), LogsError> {
    if name.is_empty() || name.len() > 512 || name.contains(':') || name.contains('*') {
        return invalid(format!(
            "1 validation error detected: Value '{name}' at 'logStreamName' failed to satisfy constraint: Member must satisfy regular expression pattern: [^:*]*"
        ));
    }
    Ok(())
}

fn check_tags(tags: &[(String, String)]) -> Result<(), LogsError> {
    if tags.len() > 50 {
        return invalid("A log group can have at most 50 tags.");
    }
    for (k, v) in tags {
        if k.is_empty() || k.len() > 128 || v.len() > 256 || k.starts_with("aws:") {
            return invalid(format!("The tag {k} is not valid."));
        }
    }
    Ok(())
}

/// Parses an offset paging token.
pub(crate) fn offset(token: Option<&str>) -> Result<usize, LogsError> {
    match token {
        None => Ok(0),
        Some(t) => t.strip_prefix("o/").and_then(|n| n.parse().ok()).ok_or_else(|| {
            LogsError::InvalidParameter("The specified nextToken is invalid.".into())
        }),
    }
}

pub(crate) fn page<T>(all: Vec<T>, from: usize, limit: usize) -> Page<T> {
    let total = all.len();
    let items: Vec<T> = all.into_iter().skip(from).take(limit).collect();
    let end = from + items.len();
    let next_token = (end < total).then(|| format!("o/{end}"));
    Page { items, next_token }
}

impl Logs {
    pub fn new(store: Arc<Store>, clock: Clock, account: Account) -> Arc<Logs> {
        Arc::new(Logs {
            store,
            clock,
            account,
            metrics: Mutex::new(MetricState::default()),
            queries: Mutex::new(insights::Queries::default()),
            writes: Mutex::new(()),
        })
    }

    pub fn account(&self) -> &Account {
        &self.account
    }

    pub fn clock(&self) -> &Clock {
        &self.clock
    }

    /// Now, in epoch milliseconds of AWS time.
    pub fn now_ms(&self) -> i64 {
        self.clock.now().as_millisecond()
    }

    /// `arn:aws:logs:REGION:ACCOUNT:log-group:NAME:*` (DescribeLogGroups' `arn`).
    pub fn group_arn(&self, name: &str) -> String {
        self.account.arn("logs", &format!("log-group:{name}:*"))
    }

    /// The ARN without `:*` (`logGroupArn`, what tagging APIs take).
    pub fn group_arn_bare(&self, name: &str) -> String {
        self.account.arn("logs", &format!("log-group:{name}"))
    }

    pub fn stream_arn(&self, group: &str, stream: &str) -> String {
        self.account.arn("logs", &format!("log-group:{group}:log-stream:{stream}"))
    }

    /// The log group an ARN names (`...:log-group:NAME` with or without `:*`).
    pub fn group_from_arn(&self, arn: &str) -> Result<String, LogsError> {
        let rest = arn
            .split_once(":log-group:")
            .map(|(_, r)| r)
            .filter(|_| arn.starts_with("arn:"))
            .ok_or_else(|| LogsError::InvalidParameter(format!("The ARN {arn} is not valid.")))?;
        Ok(rest.strip_suffix(":*").unwrap_or(rest).to_string())
    }

    /// A log group name or ARN (logGroupIdentifier).
    pub fn group_identifier(&self, id: &str) -> Result<String, LogsError> {
        if id.starts_with("arn:") { self.group_from_arn(id) } else { Ok(id.to_string()) }
    }

    pub fn group(&self, name: &str) -> Result<LogGroup, LogsError> {
        self.store.get(GROUPS, name)?.ok_or_else(group_not_found)
    }

    pub fn stream(&self, group: &str, stream: &str) -> Result<LogStream, LogsError> {
        self.group(group)?;
        self.store.get(STREAMS, &stream_key(group, stream))?.ok_or_else(stream_not_found)
    }

    /// CreateLogGroup.
    pub fn create_group(&self, req: CreateGroup) -> Result<LogGroup, LogsError> {
        check_group_name(&req.name)?;
        check_tags(&req.tags)?;
        let class = match req.class.as_deref() {
            None => standard(),
            Some(c @ ("STANDARD" | "INFREQUENT_ACCESS")) => c.to_string(),
            Some(c) => {
                return invalid(format!(
                    "1 validation error detected: Value '{c}' at 'logGroupClass' failed to satisfy constraint: Member must satisfy enum value set: [STANDARD, INFREQUENT_ACCESS]"
                ));
            }
        };
        let _guard = self.writes.lock();
        if self.store.get::<LogGroup>(GROUPS, &req.name)?.is_some() {
            return Err(LogsError::ResourceAlreadyExists(
                "The specified log group already exists".into(),
            ));
        }
        let group = LogGroup {
            name: req.name.clone(),
            created_ms: self.now_ms(),
            retention_days: None,
            kms_key_id: req.kms_key_id,
            tags: req.tags.into_iter().collect(),
            class,
        };
        self.store.put(GROUPS, &group.name, &group)?;
        Ok(group)
    }

    fn put_group(&self, group: &LogGroup) -> Result<(), LogsError> {
        self.store.put(GROUPS, &group.name, group)?;
        Ok(())
    }

    /// DeleteLogGroup: its streams, their events and its filters go with it.
    pub fn delete_group(&self, name: &str) -> Result<(), LogsError> {
        let _guard = self.writes.lock();
        self.group(name)?;
        let prefix = format!("{name}:");
        let streams: Vec<(String, LogStream)> = self.store.list(STREAMS, &prefix)?;
        for (key, _) in &streams {
            self.store.drop_log(EVENTS, key)?;
        }
        let filters: Vec<(String, MetricFilter)> =
            self.store.list(metrics::METRIC_FILTERS, &prefix)?;
        let subs: Vec<(String, SubscriptionFilter)> =
            self.store.list(metrics::SUBSCRIPTIONS, &prefix)?;
        self.store.batch(|b| {
            for (key, _) in &streams {
                b.delete(STREAMS, key)?;
            }
            for (key, _) in &filters {
                b.delete(metrics::METRIC_FILTERS, key)?;
            }
            for (key, _) in &subs {
                b.delete(metrics::SUBSCRIPTIONS, key)?;
            }
            b.delete(GROUPS, name)
        })?;
        Ok(())
    }

    /// DescribeLogGroups: by name prefix or a case-insensitive substring (`pattern`).
    pub fn describe_groups(
        &self,
        prefix: Option<&str>,
        pattern: Option<&str>,
        limit: usize,
        token: Option<&str>,
    ) -> Result<Page<LogGroup>, LogsError> {
        if prefix.is_some() && pattern.is_some() {
            return invalid(
                "LogGroup name prefix and LogGroup name pattern are mutually exclusive parameters.",
            );
        }
        let from = offset(token)?;
        let needle = pattern.map(str::to_lowercase);
        let groups: Vec<LogGroup> = self
            .store
            .list::<LogGroup>(GROUPS, prefix.unwrap_or(""))?
            .into_iter()
            .map(|(_, g)| g)
            .filter(|g| needle.as_ref().is_none_or(|n| g.name.to_lowercase().contains(n)))
            .collect();
        Ok(page(groups, from, limit))
    }

    /// How many metric filters a group has (DescribeLogGroups' `metricFilterCount`).
    pub fn metric_filter_count(&self, group: &str) -> Result<usize, LogsError> {
        Ok(self.store.list::<MetricFilter>(metrics::METRIC_FILTERS, &format!("{group}:"))?.len())
    }

    /// PutRetentionPolicy.
    pub fn put_retention(&self, group: &str, days: i64) -> Result<(), LogsError> {
        if !u32::try_from(days).is_ok_and(|d| RETENTION_DAYS.contains(&d)) {
            return invalid(format!(
                "1 validation error detected: Value '{days}' at 'retentionInDays' failed to satisfy constraint: Member must satisfy enum value set: [{}]",
                RETENTION_DAYS.iter().map(u32::to_string).collect::<Vec<_>>().join(", ")
            ));
        }
        let _guard = self.writes.lock();
        let mut g = self.group(group)?;
        g.retention_days = Some(days as u32);
        self.put_group(&g)
    }

    /// DeleteRetentionPolicy (events are kept forever again).
    pub fn delete_retention(&self, group: &str) -> Result<(), LogsError> {
        let _guard = self.writes.lock();
        let mut g = self.group(group)?;
        g.retention_days = None;
        self.put_group(&g)
    }

    /// AssociateKmsKey / DisassociateKmsKey (recorded; events are not encrypted locally).
    pub fn set_kms_key(&self, group: &str, key: Option<String>) -> Result<(), LogsError> {
        let _guard = self.writes.lock();
        let mut g = self.group(group)?;
        g.kms_key_id = key;
        self.put_group(&g)
    }

    /// TagLogGroup / TagResource.
    pub fn tag(&self, group: &str, tags: &[(String, String)]) -> Result<(), LogsError> {
        check_tags(tags)?;
        let _guard = self.writes.lock();
        let mut g = self.group(group)?;
        for (k, v) in tags {
            g.tags.insert(k.clone(), v.clone());
        }
        if g.tags.len() > 50 {
            return invalid("A log group can have at most 50 tags.");
        }
        self.put_group(&g)
    }

    /// UntagLogGroup / UntagResource.
    pub fn untag(&self, group: &str, keys: &[String]) -> Result<(), LogsError> {
        let _guard = self.writes.lock();
        let mut g = self.group(group)?;
        for k in keys {
            g.tags.remove(k);
        }
        self.put_group(&g)
    }

    /// CreateLogStream.
    pub fn create_stream(&self, group: &str, name: &str) -> Result<LogStream, LogsError> {
        check_stream_name(name)?;
        let _guard = self.writes.lock();
        self.group(group)?;
        let key = stream_key(group, name);
        if self.store.get::<LogStream>(STREAMS, &key)?.is_some() {
            return Err(LogsError::ResourceAlreadyExists(
                "The specified log stream already exists".into(),
            ));
        }
        let s = LogStream {
            group: group.to_string(),
            name: name.to_string(),
            created_ms: self.now_ms(),
            first_event_ms: None,
            last_event_ms: None,
            last_ingestion_ms: None,
            stored_bytes: 0,
            last_seq: 0,
        };
        self.store.put(STREAMS, &key, &s)?;
        Ok(s)
    }

    /// DeleteLogStream.
    pub fn delete_stream(&self, group: &str, name: &str) -> Result<(), LogsError> {
        let _guard = self.writes.lock();
        self.stream(group, name)?;
        let key = stream_key(group, name);
        self.store.drop_log(EVENTS, &key)?;
        self.store.delete(STREAMS, &key)?;
        Ok(())
    }

    /// DescribeLogStreams.
    pub fn describe_streams(
        &self,
        group: &str,
        prefix: Option<&str>,
        order: StreamOrder,
        descending: bool,
        limit: usize,
        token: Option<&str>,
    ) -> Result<Page<LogStream>, LogsError> {
        if prefix.is_some() && order == StreamOrder::LastEventTime {
            return invalid("Cannot order by LastEventTime with a logStreamNamePrefix.");
        }
        let from = offset(token)?;
        self.group(group)?;
        let mut streams: Vec<LogStream> = self
            .store
            .list::<LogStream>(STREAMS, &format!("{group}:{}", prefix.unwrap_or("")))?
            .into_iter()
            .map(|(_, s)| s)
            .filter(|s| s.group == group)
            .collect();
        if order == StreamOrder::LastEventTime {
            streams.sort_by_key(|s| (s.last_event_ms.unwrap_or(0), s.name.clone()));
        }
        if descending {
            streams.reverse();
        }
        Ok(page(streams, from, limit))
    }

    /// The retention pass (the region calls it on the clock; `run` does): deletes the event
    /// batches whose newest event is older than their group's retention. Returns how many
    /// batches went.
    pub fn expire(&self) -> Result<usize, LogsError> {
        let now = self.now_ms();
        let mut removed = 0;
        let groups: Vec<(String, LogGroup)> = self.store.list(GROUPS, "")?;
        for (_, g) in groups {
            let Some(days) = g.retention_days else { continue };
            let cutoff = now - i64::from(days) * 86_400_000;
            let streams: Vec<(String, LogStream)> =
                self.store.list(STREAMS, &format!("{}:", g.name))?;
            for (key, s) in streams {
                if s.group != g.name {
                    continue;
                }
                removed += self.store.trim_log(EVENTS, &key, "m", cutoff)?;
            }
        }
        Ok(removed)
    }

    /// The cutoff below which a group's events are past retention (epoch ms), if it has one.
    pub(crate) fn retention_cutoff(&self, group: &LogGroup) -> Option<i64> {
        group.retention_days.map(|d| self.now_ms() - i64::from(d) * 86_400_000)
    }

    /// Runs the clocked passes until cancelled: metric filters' minutes published every
    /// minute, the retention pass every ten minutes (AWS time).
    pub async fn run(self: Arc<Self>, cancel: tokio_util::sync::CancellationToken) {
        let mut tick = self.clock.interval(std::time::Duration::from_secs(60));
        let mut ticks = 0u64;
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = cancel.cancelled() => break,
            }
            ticks += 1;
            self.flush_metrics();
            if ticks.is_multiple_of(10)
                && let Err(e) = self.expire()
            {
                tracing::warn!("log retention: {e}");
            }
        }
        self.flush_metrics();
    }
}
