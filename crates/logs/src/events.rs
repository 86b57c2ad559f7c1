//! Log events: PutLogEvents with AWS's batch rules, GetLogEvents and FilterLogEvents with
//! their paging.
//!
//! An event's position is (timestamp, batch sequence number, index in the batch): the order
//! GetLogEvents and FilterLogEvents return events in, and what their tokens encode
//! (`f/` or `b/` and 56 digits, as AWS's tokens look; FilterLogEvents' token is the digits).

use serde::{Deserialize, Serialize};

use crate::pattern::FilterPattern;
use crate::{
    EVENTS, LogGroup, LogStream, Logs, LogsError, STREAMS, invalid, stream_key, stream_not_found,
};

/// Most events in one PutLogEvents.
pub const MAX_BATCH_EVENTS: usize = 10_000;
/// Most bytes in one PutLogEvents: messages' UTF-8 bytes plus 26 per event.
pub const MAX_BATCH_BYTES: usize = 1_048_576;
pub const EVENT_OVERHEAD: usize = 26;
/// A batch spans at most 24 hours.
pub const MAX_BATCH_SPAN_MS: i64 = 24 * 3_600_000;
/// Events older than 14 days or more than 2 hours ahead are rejected.
pub const MAX_AGE_MS: i64 = 14 * 86_400_000;
pub const MAX_AHEAD_MS: i64 = 2 * 3_600_000;
/// Most events one GetLogEvents or FilterLogEvents page returns (and 1 MB of them).
pub const MAX_PAGE_EVENTS: usize = 10_000;
pub const MAX_PAGE_BYTES: usize = 1_048_576;

/// An event of PutLogEvents.
#[derive(Clone, Debug, PartialEq)]
pub struct InputEvent {
    pub timestamp: i64,
    pub message: String,
}

/// Which events PutLogEvents refused, by index (AWS's `rejectedLogEventsInfo`).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Rejected {
    pub too_new_start: Option<usize>,
    pub too_old_end: Option<usize>,
    pub expired_end: Option<usize>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct PutResult {
    pub next_sequence_token: String,
    pub rejected: Option<Rejected>,
}

/// What the store keeps per accepted batch.
#[derive(Serialize, Deserialize)]
pub(crate) struct Batch {
    /// Ingestion time.
    pub i: i64,
    /// The newest timestamp (what retention reads).
    pub m: i64,
    /// (timestamp, message).
    pub e: Vec<(i64, String)>,
}

/// An event read back.
#[derive(Clone, Debug, PartialEq)]
pub struct OutputEvent {
    pub timestamp: i64,
    pub message: String,
    pub ingestion_time: i64,
}

/// A stored event with its position.
#[derive(Clone, Debug)]
pub(crate) struct Stored {
    pub key: Key,
    pub stream: String,
    pub ingestion: i64,
    pub message: String,
}

/// (timestamp, batch sequence, index): the events' order, and what tokens encode.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Default)]
pub(crate) struct Key(pub i64, pub i64, pub i64);

impl Key {
    fn digits(self) -> String {
        format!("{:020}{:020}{:016}", self.0.max(0), self.1.max(0), self.2.clamp(0, 10i64.pow(15)))
    }

    fn parse(digits: &str) -> Option<Key> {
        if digits.len() != 56 || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        Some(Key(
            digits[..20].parse().ok()?,
            digits[20..40].parse().ok()?,
            digits[40..].parse().ok()?,
        ))
    }

    fn successor(self) -> Key {
        Key(self.0, self.1, self.2 + 1)
    }

    const END: Key = Key(99_999_999_999_999_999, 0, 0);
}

/// GetLogEvents.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct GetInput {
    pub group: String,
    pub stream: String,
    pub start_time: Option<i64>,
    pub end_time: Option<i64>,
    pub token: Option<String>,
    pub limit: Option<usize>,
    pub start_from_head: bool,
}

#[derive(Clone, Debug, PartialEq)]
pub struct EventsPage {
    pub events: Vec<OutputEvent>,
    pub next_forward_token: String,
    pub next_backward_token: String,
}

/// FilterLogEvents.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct FilterInput {
    pub group: String,
    pub stream_names: Vec<String>,
    pub stream_prefix: Option<String>,
    pub start_time: Option<i64>,
    pub end_time: Option<i64>,
    pub pattern: Option<String>,
    pub token: Option<String>,
    pub limit: Option<usize>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct FilteredEvent {
    pub stream: String,
    pub timestamp: i64,
    pub message: String,
    pub ingestion_time: i64,
    pub event_id: String,
}

#[derive(Clone, Debug, PartialEq)]
pub struct FilteredPage {
    pub events: Vec<FilteredEvent>,
    pub next_token: Option<String>,
}

fn bad_token() -> LogsError {
    LogsError::InvalidParameter("The specified nextToken is invalid.".into())
}

fn limit(l: Option<usize>) -> Result<usize, LogsError> {
    match l {
        None => Ok(MAX_PAGE_EVENTS),
        Some(n) if (1..=MAX_PAGE_EVENTS).contains(&n) => Ok(n),
        Some(n) => invalid(format!(
            "1 validation error detected: Value '{n}' at 'limit' failed to satisfy constraint: Member must have value between 1 and 10000"
        )),
    }
}

impl Logs {
    /// PutLogEvents. The sequence token is accepted and not required, as AWS does today.
    pub fn put_events(
        &self,
        group: &str,
        stream: &str,
        events: &[InputEvent],
    ) -> Result<PutResult, LogsError> {
        if events.is_empty() {
            return invalid(
                "1 validation error detected: Value '[]' at 'logEvents' failed to satisfy constraint: Member must have length greater than or equal to 1",
            );
        }
        if events.len() > MAX_BATCH_EVENTS {
            return invalid(format!(
                "1 validation error detected: Value at 'logEvents' failed to satisfy constraint: Member must have length less than or equal to {MAX_BATCH_EVENTS}"
            ));
        }
        let bytes: usize = events.iter().map(|e| e.message.len() + EVENT_OVERHEAD).sum();
        if bytes > MAX_BATCH_BYTES {
            return invalid(format!(
                "Upload too large: {bytes} bytes exceeds limit of {MAX_BATCH_BYTES}"
            ));
        }
        if events.iter().any(|e| e.message.is_empty()) {
            return invalid(
                "1 validation error detected: Value '' at 'logEvents.member.message' failed to satisfy constraint: Member must have length greater than or equal to 1",
            );
        }
        if events.windows(2).any(|w| w[1].timestamp < w[0].timestamp) {
            return invalid(
                "Log events in a single PutLogEvents request must be in chronological order.",
            );
        }
        let first = events[0].timestamp;
        let last = events[events.len() - 1].timestamp;
        if last - first > MAX_BATCH_SPAN_MS {
            return invalid(
                "The batch of log events in a single PutLogEvents request cannot span more than 24 hours.",
            );
        }
        let _guard = self.writes.lock();
        let g = self.group(group)?;
        let key = stream_key(group, stream);
        let mut s: LogStream = self.store.get(STREAMS, &key)?.ok_or_else(stream_not_found)?;
        let now = self.now_ms();
        let too_old = now - MAX_AGE_MS;
        let expired = self.retention_cutoff(&g);
        let too_new = now + MAX_AHEAD_MS;
        let mut rejected = Rejected::default();
        let mut accepted = Vec::with_capacity(events.len());
        for (i, e) in events.iter().enumerate() {
            if e.timestamp > too_new {
                rejected.too_new_start.get_or_insert(i);
            } else if expired.is_some_and(|c| e.timestamp < c) {
                rejected.expired_end = Some(i);
            } else if e.timestamp < too_old {
                rejected.too_old_end = Some(i);
            } else {
                accepted.push((e.timestamp, e.message.clone()));
            }
        }
        let rejected = (rejected != Rejected::default()).then_some(rejected);
        if accepted.is_empty() {
            return Ok(PutResult { next_sequence_token: sequence_token(s.last_seq), rejected });
        }
        let batch =
            Batch { i: now, m: accepted.iter().map(|e| e.0).max().unwrap_or(0), e: accepted };
        let first_ts = batch.e.iter().map(|e| e.0).min().unwrap_or(0);
        s.first_event_ms = Some(s.first_event_ms.map_or(first_ts, |f| f.min(first_ts)));
        s.last_event_ms = Some(s.last_event_ms.map_or(batch.m, |l| l.max(batch.m)));
        s.last_ingestion_ms = Some(now);
        s.stored_bytes += batch.e.iter().map(|e| (e.1.len() + EVENT_OVERHEAD) as u64).sum::<u64>();
        let seq = self.store.batch(|b| {
            let seq = b.append(EVENTS, &key, &batch)?;
            s.last_seq = seq;
            b.put(STREAMS, &key, &s)?;
            Ok(seq)
        })?;
        drop(_guard);
        self.apply_metric_filters(group, &batch.e)?;
        Ok(PutResult { next_sequence_token: sequence_token(seq), rejected })
    }

    /// Every event of a stream still within retention, in position order, with a time window
    /// (`start` inclusive, `end` exclusive unless `end_inclusive`) and a test applied before
    /// sorting.
    pub(crate) fn stream_events(
        &self,
        group: &LogGroup,
        stream: &str,
        window: (Option<i64>, Option<i64>, bool),
        keep: &dyn Fn(&str) -> bool,
        out: &mut Vec<Stored>,
    ) -> Result<(), LogsError> {
        let cutoff = self.retention_cutoff(group).unwrap_or(i64::MIN);
        let (start, end, end_inclusive) = window;
        let key = stream_key(&group.name, stream);
        let batches: Vec<(i64, Batch)> = self.store.read_log(EVENTS, &key, 0)?;
        for (seq, b) in batches {
            if b.m < cutoff || start.is_some_and(|s| b.m < s) {
                continue;
            }
            for (i, (ts, msg)) in b.e.into_iter().enumerate() {
                let in_window = ts >= cutoff
                    && start.is_none_or(|s| ts >= s)
                    && end.is_none_or(|e| if end_inclusive { ts <= e } else { ts < e });
                if in_window && keep(&msg) {
                    out.push(Stored {
                        key: Key(ts, seq, i as i64),
                        stream: stream.to_string(),
                        ingestion: b.i,
                        message: msg,
                    });
                }
            }
        }
        Ok(())
    }

    /// GetLogEvents.
    pub fn get_events(&self, input: &GetInput) -> Result<EventsPage, LogsError> {
        let limit = limit(input.limit)?;
        let g = self.group(&input.group)?;
        self.stream(&input.group, &input.stream)?;
        let token = match input.token.as_deref() {
            None => None,
            Some(t) => {
                let (dir, digits) = t.split_once('/').ok_or_else(bad_token)?;
                let key = Key::parse(digits).ok_or_else(bad_token)?;
                match dir {
                    "f" => Some((true, key)),
                    "b" => Some((false, key)),
                    _ => return Err(bad_token()),
                }
            }
        };
        let mut all = Vec::new();
        self.stream_events(
            &g,
            &input.stream,
            (input.start_time, input.end_time, false),
            &|_| true,
            &mut all,
        )?;
        all.sort_by_key(|e| e.key);
        let (forward, at) = match token {
            Some((f, k)) => (f, k),
            None if input.start_from_head => (true, Key::default()),
            None => (false, Key::END),
        };
        let range = if forward {
            let from = all.partition_point(|e| e.key < at);
            let mut to = from;
            let mut bytes = 0;
            while to < all.len() && to - from < limit {
                bytes += all[to].message.len() + EVENT_OVERHEAD;
                if bytes > MAX_PAGE_BYTES && to > from {
                    break;
                }
                to += 1;
            }
            from..to
        } else {
            let to = all.partition_point(|e| e.key < at);
            let mut from = to;
            let mut bytes = 0;
            while from > 0 && to - from < limit {
                bytes += all[from - 1].message.len() + EVENT_OVERHEAD;
                if bytes > MAX_PAGE_BYTES && from < to {
                    break;
                }
                from -= 1;
            }
            from..to
        };
        let page = &all[range];
        let (next_forward, next_backward) = match (page.first(), page.last()) {
            (Some(first), Some(last)) => (last.key.successor(), first.key),
            _ => (at, at),
        };
        Ok(EventsPage {
            events: page
                .iter()
                .map(|e| OutputEvent {
                    timestamp: e.key.0,
                    message: e.message.clone(),
                    ingestion_time: e.ingestion,
                })
                .collect(),
            next_forward_token: format!("f/{}", next_forward.digits()),
            next_backward_token: format!("b/{}", next_backward.digits()),
        })
    }

    /// FilterLogEvents: the matching events of the chosen streams, interleaved by timestamp.
    pub fn filter_events(&self, input: &FilterInput) -> Result<FilteredPage, LogsError> {
        let limit = limit(input.limit)?;
        if !input.stream_names.is_empty() && input.stream_prefix.is_some() {
            return invalid(
                "logStreamNames and logStreamNamePrefix are mutually exclusive parameters.",
            );
        }
        if input.stream_names.len() > 100 {
            return invalid(
                "1 validation error detected: Value at 'logStreamNames' failed to satisfy constraint: Member must have length less than or equal to 100",
            );
        }
        let pattern = match input.pattern.as_deref() {
            None => None,
            Some(p) => Some(FilterPattern::parse(p)?),
        };
        let after = match input.token.as_deref() {
            None => None,
            Some(t) => Some(Key::parse(t).ok_or_else(bad_token)?),
        };
        let g = self.group(&input.group)?;
        let streams: Vec<String> = if input.stream_names.is_empty() {
            let prefix = format!("{}:{}", g.name, input.stream_prefix.as_deref().unwrap_or(""));
            self.store
                .list::<LogStream>(STREAMS, &prefix)?
                .into_iter()
                .filter(|(_, s)| s.group == g.name)
                .map(|(_, s)| s.name)
                .collect()
        } else {
            for s in &input.stream_names {
                self.stream(&g.name, s)?;
            }
            input.stream_names.clone()
        };
        let keep = |msg: &str| pattern.as_ref().is_none_or(|p| p.matches(msg));
        let mut all = Vec::new();
        for s in &streams {
            self.stream_events(&g, s, (input.start_time, input.end_time, true), &keep, &mut all)?;
        }
        if let Some(after) = after {
            all.retain(|e| e.key > after);
        }
        all.sort_by_key(|e| e.key);
        let mut events = Vec::new();
        let mut bytes = 0;
        for e in &all {
            bytes += e.message.len() + EVENT_OVERHEAD;
            if events.len() == limit || (bytes > MAX_PAGE_BYTES && !events.is_empty()) {
                break;
            }
            events.push(FilteredEvent {
                stream: e.stream.clone(),
                timestamp: e.key.0,
                message: e.message.clone(),
                ingestion_time: e.ingestion,
                event_id: e.key.digits(),
            });
        }
        let next_token = (events.len() < all.len())
            .then(|| all.get(events.len().wrapping_sub(1)).map(|e| e.key.digits()))
            .flatten();
        Ok(FilteredPage { events, next_token })
    }
}

/// The upload sequence token AWS still returns (56 digits).
fn sequence_token(seq: i64) -> String {
    format!("{:056}", seq.max(0))
}
