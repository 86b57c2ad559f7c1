//! Resource signals: what `cfn-signal` (SignalResource) and wait-condition handles deliver, and
//! what CreationPolicy, WaitCondition and rolling updates wait for.

use std::collections::HashMap;
use std::time::Duration;

use clock::Clock;
use parking_lot::Mutex;
use tokio::sync::Notify;

#[derive(Clone, Debug, Default)]
struct Received {
    successes: Vec<String>,
    failure: Option<(String, String)>,
    /// Data sent with wait-condition signals, by unique id.
    data: Vec<(String, String)>,
}

/// Signals received, by (stack id, logical id).
#[derive(Debug, Default)]
pub struct Signals {
    received: Mutex<HashMap<(String, String), Received>>,
    notify: Notify,
}

/// How waiting for signals ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SignalOutcome {
    /// `count` SUCCESS signals arrived.
    Success,
    /// A FAILURE signal arrived: its unique id and reason.
    Failure { unique_id: String, reason: String },
    /// The timeout passed with `received` of `count` successes.
    Timeout { received: usize },
}

impl Signals {
    /// Records a signal. Repeated SUCCESS signals with the same unique id count once.
    pub fn signal(
        &self,
        stack_id: &str,
        logical_id: &str,
        unique_id: &str,
        success: bool,
        reason: &str,
        data: &str,
    ) {
        let mut map = self.received.lock();
        let entry = map.entry((stack_id.to_string(), logical_id.to_string())).or_default();
        if success {
            if !entry.successes.iter().any(|u| u == unique_id) {
                entry.successes.push(unique_id.to_string());
                entry.data.push((unique_id.to_string(), data.to_string()));
            }
        } else if entry.failure.is_none() {
            entry.failure = Some((unique_id.to_string(), reason.to_string()));
        }
        drop(map);
        self.notify.notify_waiters();
    }

    /// Forgets the signals of a resource (before a new wait: a replacement, the next batch).
    pub fn reset(&self, stack_id: &str, logical_id: &str) {
        self.received.lock().remove(&(stack_id.to_string(), logical_id.to_string()));
    }

    /// The data sent with SUCCESS signals (a wait condition's `Data` attribute), by unique id.
    pub fn data(&self, stack_id: &str, logical_id: &str) -> Vec<(String, String)> {
        self.received
            .lock()
            .get(&(stack_id.to_string(), logical_id.to_string()))
            .map(|r| r.data.clone())
            .unwrap_or_default()
    }

    /// How many SUCCESS signals have arrived.
    pub fn successes(&self, stack_id: &str, logical_id: &str) -> usize {
        self.received
            .lock()
            .get(&(stack_id.to_string(), logical_id.to_string()))
            .map_or(0, |r| r.successes.len())
    }

    /// Waits for `count` SUCCESS signals, a FAILURE, or the timeout (an AWS duration).
    pub async fn wait(
        &self,
        clock: &Clock,
        stack_id: &str,
        logical_id: &str,
        count: usize,
        timeout: Duration,
    ) -> SignalOutcome {
        let key = (stack_id.to_string(), logical_id.to_string());
        let deadline = clock.deadline(timeout);
        loop {
            let notified = self.notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            {
                let map = self.received.lock();
                let r = map.get(&key).cloned().unwrap_or_default();
                if let Some((unique_id, reason)) = r.failure {
                    return SignalOutcome::Failure { unique_id, reason };
                }
                if r.successes.len() >= count {
                    return SignalOutcome::Success;
                }
            }
            tokio::select! {
                _ = &mut notified => {}
                _ = clock.sleep_until(deadline) => {
                    return SignalOutcome::Timeout { received: self.successes(stack_id, logical_id) };
                }
            }
        }
    }
}

/// Parses an ISO 8601 duration as CloudFormation writes them (`PT5M`, `PT1H30M`, `PT0S`, `P1D`).
pub fn parse_duration(s: &str) -> Option<Duration> {
    let s = s.trim();
    let rest = s.strip_prefix('P')?;
    let (days, time) = match rest.split_once('T') {
        Some((d, t)) => (d, t),
        None => (rest, ""),
    };
    let mut secs = 0f64;
    if !days.is_empty() {
        secs += days.strip_suffix('D')?.parse::<f64>().ok()? * 86_400.0;
    }
    let mut number = String::new();
    for c in time.chars() {
        match c {
            '0'..='9' | '.' => number.push(c),
            'H' | 'M' | 'S' => {
                let n: f64 = number.parse().ok()?;
                number.clear();
                secs += n * match c {
                    'H' => 3600.0,
                    'M' => 60.0,
                    _ => 1.0,
                };
            }
            _ => return None,
        }
    }
    if !number.is_empty() || (days.is_empty() && time.is_empty()) {
        return None;
    }
    Some(Duration::from_secs_f64(secs))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("PT5M"), Some(Duration::from_secs(300)));
        assert_eq!(parse_duration("PT1H30M"), Some(Duration::from_secs(5400)));
        assert_eq!(parse_duration("PT0S"), Some(Duration::ZERO));
        assert_eq!(parse_duration("P1DT1S"), Some(Duration::from_secs(86_401)));
        assert_eq!(parse_duration("5M"), None);
        assert_eq!(parse_duration("PT5"), None);
        assert_eq!(parse_duration("P"), None);
    }

    #[tokio::test(flavor = "current_thread", start_paused = true)]
    async fn waits_for_count_failure_or_timeout() {
        let clock = Clock::new(1.0);
        let signals = std::sync::Arc::new(Signals::default());
        let s2 = signals.clone();
        let c2 = clock.clone();
        tokio::spawn(async move {
            c2.sleep(Duration::from_secs(10)).await;
            s2.signal("st", "Group", "i-1", true, "", "");
            s2.signal("st", "Group", "i-1", true, "", "");
            s2.signal("st", "Group", "i-2", true, "", "");
        });
        let out = signals.wait(&clock, "st", "Group", 2, Duration::from_secs(300)).await;
        assert_eq!(out, SignalOutcome::Success);
        let out = signals.wait(&clock, "st", "Other", 1, Duration::from_secs(60)).await;
        assert_eq!(out, SignalOutcome::Timeout { received: 0 });
        signals.signal("st", "Bad", "i-9", false, "app failed", "");
        let out = signals.wait(&clock, "st", "Bad", 1, Duration::from_secs(60)).await;
        assert_eq!(
            out,
            SignalOutcome::Failure { unique_id: "i-9".into(), reason: "app failed".into() }
        );
    }
}
