//! HTTP delivery: one POST per attempt as SNS sends it, and the retry schedule of a delivery
//! policy ("Amazon SNS message delivery retries").
//!
//! A `healthyRetryPolicy` retries `numRetries` times: first `numNoDelayRetries` at once, then
//! `numMinDelayRetries` after `minDelayTarget` seconds each, then the backoff phase (the
//! retries left over) from `minDelayTarget` toward `maxDelayTarget` by `backoffFunction`, then
//! `numMaxDelayRetries` after `maxDelayTarget` each. AWS's default (no policy) is 3 retries
//! 20 s apart.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use serde_json::Value as Json;

/// A retry policy's numbers.
#[derive(Clone, Debug, PartialEq)]
pub struct RetryPolicy {
    pub min_delay: u64,
    pub max_delay: u64,
    pub num_retries: u64,
    pub no_delay: u64,
    pub min_delay_retries: u64,
    pub max_delay_retries: u64,
    pub backoff: String,
}

impl Default for RetryPolicy {
    fn default() -> RetryPolicy {
        RetryPolicy {
            min_delay: 20,
            max_delay: 20,
            num_retries: 3,
            no_delay: 0,
            min_delay_retries: 0,
            max_delay_retries: 0,
            backoff: "linear".into(),
        }
    }
}

/// At most this many retries (AWS's limit for HTTP/S, 100).
const MAX_RETRIES: u64 = 100;

impl RetryPolicy {
    /// A `healthyRetryPolicy` object; missing numbers take the defaults.
    pub fn from_json(p: &Json) -> RetryPolicy {
        let d = RetryPolicy::default();
        let n = |k: &str, default: u64| p.get(k).and_then(Json::as_u64).unwrap_or(default);
        let min_delay = n("minDelayTarget", d.min_delay);
        RetryPolicy {
            min_delay,
            max_delay: n("maxDelayTarget", d.max_delay).max(min_delay),
            num_retries: n("numRetries", d.num_retries).min(MAX_RETRIES),
            no_delay: n("numNoDelayRetries", 0),
            min_delay_retries: n("numMinDelayRetries", 0),
            max_delay_retries: n("numMaxDelayRetries", 0),
            backoff: p
                .get("backoffFunction")
                .and_then(Json::as_str)
                .unwrap_or("linear")
                .to_string(),
        }
    }

    /// The policy that applies to a subscription: its own `healthyRetryPolicy` unless the
    /// topic's `http.disableSubscriptionOverrides`, else the topic's
    /// `http.defaultHealthyRetryPolicy`, else the default.
    pub fn effective(topic_policy: Option<&str>, subscription_policy: Option<&str>) -> RetryPolicy {
        let parse = |s: Option<&str>| s.and_then(|s| serde_json::from_str::<Json>(s).ok());
        let topic = parse(topic_policy);
        let http = topic.as_ref().and_then(|t| t.get("http"));
        let overrides_disabled = http
            .and_then(|h| h.get("disableSubscriptionOverrides"))
            .and_then(Json::as_bool)
            .unwrap_or(false);
        if !overrides_disabled
            && let Some(p) = parse(subscription_policy)
            && let Some(retry) = p.get("healthyRetryPolicy")
        {
            return RetryPolicy::from_json(retry);
        }
        match http.and_then(|h| h.get("defaultHealthyRetryPolicy")) {
            Some(p) => RetryPolicy::from_json(p),
            None => RetryPolicy::default(),
        }
    }

    /// The wait before each retry, in order (AWS seconds).
    pub fn delays(&self) -> Vec<Duration> {
        let mut out = Vec::new();
        let mut left = self.num_retries;
        let take = |n: u64, left: &mut u64| {
            let n = n.min(*left);
            *left -= n;
            n
        };
        let no_delay = take(self.no_delay, &mut left);
        let min_retries = take(self.min_delay_retries, &mut left);
        let max_retries = take(self.max_delay_retries, &mut left);
        let backoff = left;
        out.extend((0..no_delay).map(|_| Duration::ZERO));
        out.extend((0..min_retries).map(|_| Duration::from_secs(self.min_delay)));
        let (lo, hi) = (self.min_delay as f64, self.max_delay as f64);
        for i in 1..=backoff {
            let x = i as f64 / backoff as f64;
            let f = match self.backoff.as_str() {
                "arithmetic" => x * x,
                "geometric" => x.powi(3),
                "exponential" => (2f64.powf(10.0 * x) - 1.0) / (2f64.powi(10) - 1.0),
                _ => x,
            };
            out.push(Duration::from_secs_f64((lo + (hi - lo) * f).round()));
        }
        out.extend((0..max_retries).map(|_| Duration::from_secs(self.max_delay)));
        out
    }
}

/// One HTTP request SNS sends.
#[derive(Clone, Debug)]
pub struct Post {
    pub url: String,
    pub headers: Vec<(&'static str, String)>,
    pub body: String,
}

/// Why an attempt failed.
#[derive(Debug, thiserror::Error)]
pub enum PostError {
    #[error("the endpoint {0} is not an http:// URL Cumulo can reach")]
    Url(String),
    #[error("cannot connect to {0}: {1}")]
    Connect(String, std::io::Error),
    #[error("HTTP: {0}")]
    Http(#[from] hyper::Error),
    #[error("the request cannot be built: {0}")]
    Request(#[from] http::Error),
}

/// Sends one POST (a connection of its own; `http://` only) and answers its status.
pub async fn post(p: &Post) -> Result<u16, PostError> {
    let uri: http::Uri = p.url.parse().map_err(|_| PostError::Url(p.url.clone()))?;
    if uri.scheme_str() != Some("http") {
        return Err(PostError::Url(p.url.clone()));
    }
    let host = uri.host().ok_or_else(|| PostError::Url(p.url.clone()))?.to_string();
    let port = uri.port_u16().unwrap_or(80);
    let bare = host.trim_start_matches('[').trim_end_matches(']').to_string();
    let stream = tokio::net::TcpStream::connect((bare.as_str(), port))
        .await
        .map_err(|e| PostError::Connect(format!("{host}:{port}"), e))?;
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream)).await?;
    let driver = tokio::spawn(async move {
        let _ = conn.await;
    });
    let path = uri.path_and_query().map_or("/", |p| p.as_str());
    let mut request = http::Request::builder().method("POST").uri(path);
    let authority = match uri.port_u16() {
        Some(port) => format!("{host}:{port}"),
        None => host.clone(),
    };
    request = request.header("host", authority);
    for (k, v) in &p.headers {
        request = request.header(*k, v.as_str());
    }
    let request = request.body(Full::new(Bytes::from(p.body.clone())))?;
    let result = async {
        let response = sender.send_request(request).await?;
        let status = response.status().as_u16();
        // Read (and drop) what the endpoint answers, so that it sees its answer taken.
        let _ = response.into_body().collect().await;
        Ok::<u16, PostError>(status)
    }
    .await;
    driver.abort();
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(policy: &RetryPolicy) -> Vec<u64> {
        policy.delays().iter().map(Duration::as_secs).collect()
    }

    #[test]
    fn retry_schedules_follow_the_delivery_policy() {
        assert_eq!(secs(&RetryPolicy::default()), [20, 20, 20]);
        let p = |json: &str| RetryPolicy::from_json(&serde_json::from_str(json).unwrap());
        let cases = [
            (
                r#"{"minDelayTarget":1,"maxDelayTarget":60,"numRetries":6,"numNoDelayRetries":1,"numMinDelayRetries":1,"numMaxDelayRetries":1,"backoffFunction":"linear"}"#,
                vec![0, 1, 21, 40, 60, 60],
            ),
            (r#"{"minDelayTarget":5,"maxDelayTarget":5,"numRetries":2}"#, vec![5, 5]),
            (
                r#"{"minDelayTarget":1,"maxDelayTarget":100,"numRetries":4,"backoffFunction":"exponential"}"#,
                vec![1, 4, 18, 100],
            ),
            (r#"{"numRetries":0}"#, vec![]),
            // More phase retries than retries: the phases take what there is, in order.
            (r#"{"numRetries":2,"numNoDelayRetries":5}"#, vec![0, 0]),
        ];
        for (json, want) in cases {
            assert_eq!(secs(&p(json)), want, "{json}");
        }
    }

    #[test]
    fn a_subscription_policy_overrides_the_topics_unless_the_topic_forbids_it() {
        let topic = r#"{"http":{"defaultHealthyRetryPolicy":{"minDelayTarget":7,"maxDelayTarget":7,"numRetries":1}}}"#;
        let locked = r#"{"http":{"defaultHealthyRetryPolicy":{"minDelayTarget":7,"maxDelayTarget":7,"numRetries":1},"disableSubscriptionOverrides":true}}"#;
        let sub =
            r#"{"healthyRetryPolicy":{"minDelayTarget":2,"maxDelayTarget":2,"numRetries":2}}"#;
        assert_eq!(secs(&RetryPolicy::effective(None, None)), [20, 20, 20]);
        assert_eq!(secs(&RetryPolicy::effective(Some(topic), None)), [7]);
        assert_eq!(secs(&RetryPolicy::effective(Some(topic), Some(sub))), [2, 2]);
        assert_eq!(secs(&RetryPolicy::effective(Some(locked), Some(sub))), [7]);
    }
}
