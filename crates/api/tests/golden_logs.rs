//! CloudWatch Logs on the wire: a scenario (a log group with a KMS key and tags, two streams,
//! a metric filter, events put — one too far ahead — and read back with GetLogEvents and
//! FilterLogEvents, the Describe calls, TestMetricFilter, tags by ARN, and the key errors) sent
//! as botocore 1.44.8 serializes it (awsJson 1.1, `tests/golden/logs/requests.txt`, written by
//! `scripts/logs-wire.py`), every whole response (status, protocol headers, body) against
//! `tests/golden/logs/<case>.txt`. The region is an in-memory Logs with the clock at
//! 2026-01-01T00:00:00Z, 10 s more before each case; requests go through
//! `api::server::answer`, what the endpoint runs for `/`. `UPDATE_EXPECT=1 cbw test -p api
//! --test golden_logs` rewrites the goldens after a deliberate change.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use api::registry::Registry;
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, Uri};
use http_body_util::BodyExt;

const RID: &str = "11111111-2222-4333-8444-555555555555";

struct Request {
    case: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

fn golden_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/golden/logs")
}

fn requests() -> Vec<Request> {
    let text = std::fs::read_to_string(golden_dir().join("requests.txt")).unwrap();
    text.split("=== ")
        .filter(|block| !block.trim().is_empty())
        .map(|block| {
            let (head, body) = block.split_once("\n\n").unwrap();
            let mut lines = head.lines();
            let case = lines.next().unwrap().trim().to_string();
            assert_eq!(lines.next(), Some("POST /"));
            let headers = lines
                .map(|l| {
                    let (k, v) = l.split_once(": ").unwrap();
                    (k.to_string(), v.to_string())
                })
                .collect();
            Request { case, headers, body: body.trim_end_matches('\n').as_bytes().to_vec() }
        })
        .collect()
}

fn region() -> Registry {
    let store = Arc::new(store::Store::in_memory().unwrap());
    let clock = clock::Clock::starting_at(1.0, "2026-01-01T00:00:00Z".parse().unwrap());
    let logs = ::logs::Logs::new(store, clock, aws_ids::Account::default());
    let mut registry = Registry::default();
    registry.add(Arc::new(api::logs::Api::new(logs)));
    registry
}

/// The error cases: (case, HTTP status, the error shape botocore's model names).
const ERRORS: &[(&str, u16, &str)] = &[
    ("Error-ResourceNotFound", 400, "ResourceNotFoundException"),
    ("Error-ResourceAlreadyExists", 400, "ResourceAlreadyExistsException"),
    ("Error-InvalidParameter", 400, "InvalidParameterException"),
    ("Error-MalformedQuery", 400, "MalformedQueryException"),
];

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn logs_answers_botocore() {
    let registry = region();
    let mut problems = Vec::new();
    for r in requests() {
        tokio::time::advance(Duration::from_secs(10)).await;
        let mut headers = HeaderMap::new();
        headers.insert("host", HeaderValue::from_static("127.0.0.1:4566"));
        for (k, v) in &r.headers {
            headers.append(
                HeaderName::from_bytes(k.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        let uri: Uri = "/".parse().unwrap();
        let response =
            api::server::answer(&registry, None, &Method::POST, &uri, &headers, &r.body, RID).await;
        let status = response.status().as_u16();
        let shown: Vec<(&str, String)> = ["content-type", "x-amzn-errortype", "x-amzn-requestid"]
            .into_iter()
            .filter_map(|n| Some((n, response.headers().get(n)?.to_str().ok()?.to_string())))
            .collect();
        let body = response.into_body().collect().await.unwrap().to_bytes().to_vec();
        let body = String::from_utf8_lossy(&body).into_owned();
        let mut actual = String::from("POST /\n");
        for (k, v) in &r.headers {
            actual.push_str(&format!("{k}: {v}\n"));
        }
        actual.push_str(&format!("\n{}\n\nHTTP {status}\n", String::from_utf8_lossy(&r.body)));
        for (k, v) in &shown {
            actual.push_str(&format!("{k}: {v}\n"));
        }
        actual.push_str(&format!("\n{body}\n"));
        match ERRORS.iter().find(|(case, ..)| *case == r.case) {
            Some((_, want, shape))
                if status != *want || !body.contains(&format!("\"__type\":\"{shape}\"")) =>
            {
                problems.push(format!("{}: not a {want} {shape}: {body}", r.case));
            }
            Some(_) => {}
            None if status != 200 => problems.push(format!("{}: HTTP {status}: {body}", r.case)),
            None => {}
        }
        let path = golden_dir().join(format!("{}.txt", r.case));
        let expected = std::fs::read_to_string(&path).unwrap_or_default();
        if actual != expected {
            if std::env::var_os("UPDATE_EXPECT").is_some() {
                std::fs::write(&path, &actual).unwrap();
            } else {
                problems.push(format!(
                    "{}.txt:\n--- expected\n{expected}\n--- actual\n{actual}",
                    r.case
                ));
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n\n"));
}
