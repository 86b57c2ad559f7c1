//! CloudWatch on the wire: a scenario (metrics put and read back with statistics, percentiles
//! and metric math, an alarm made, described, set and its history, and the key errors) sent as
//! botocore 1.44.8 sends it in each protocol CloudWatch speaks — smithy-rpc-v2-cbor, awsJson
//! 1.0 and awsQuery — and every whole response (status, protocol headers, body: CBOR in
//! diagnostic notation) against `tests/golden/cloudwatch/<case>.txt`, the three protocols of a
//! case side by side.
//!
//! The requests are botocore's own bytes (a PutMetricData gzipped, as botocore sends one of
//! 10 KiB or more), in `tests/golden/cloudwatch/requests.txt`
//! (`scripts/cloudwatch-wire.py capture` writes it); each protocol runs the scenario on a
//! region of its own (an in-memory CloudWatch, the clock at 2026-01-01T00:00:00Z, 10 s more
//! before each case) through `api::server::answer`, what the endpoint runs for `/` and
//! `/service/...`. `UPDATE_EXPECT=1 cbw test -p api --test golden_cloudwatch` rewrites the
//! goldens after a deliberate change; with `CLOUDWATCH_WIRE_DUMP=DIR` the raw responses go to
//! DIR too, for `scripts/cloudwatch-wire.py check DIR` (botocore parses each response and all
//! three protocols must parse alike).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use api::protocol::cbor_diagnostic;
use api::registry::Registry;
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, Uri};
use http_body_util::BodyExt;

const RID: &str = "11111111-2222-4333-8444-555555555555";
const PROTOCOLS: [&str; 3] = ["cbor", "json", "query"];

/// One request of `requests.txt`.
struct Request {
    case: String,
    protocol: String,
    path: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

fn golden_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/golden/cloudwatch")
}

fn hex(s: &str) -> Vec<u8> {
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
}

/// `=== <case> <protocol>`, `POST <path>`, headers, a blank line, the body on one line (CBOR
/// and gzip bodies in hex).
fn requests() -> Vec<Request> {
    let text = std::fs::read_to_string(golden_dir().join("requests.txt")).unwrap();
    text.split("=== ")
        .filter(|block| !block.trim().is_empty())
        .map(|block| {
            let (head, body) = block.split_once("\n\n").unwrap();
            let mut lines = head.lines();
            let (case, protocol) = lines.next().unwrap().split_once(' ').unwrap();
            let path = lines.next().unwrap().strip_prefix("POST ").unwrap().to_string();
            let headers: Vec<(String, String)> = lines
                .map(|l| {
                    let (k, v) = l.split_once(": ").unwrap();
                    (k.to_string(), v.to_string())
                })
                .collect();
            let body = body.trim_end_matches('\n');
            let gzip = headers.iter().any(|(k, v)| k == "content-encoding" && v == "gzip");
            let body =
                if protocol == "cbor" || gzip { hex(body) } else { body.as_bytes().to_vec() };
            Request { case: case.into(), protocol: protocol.into(), path, headers, body }
        })
        .collect()
}

fn region() -> Registry {
    let store = Arc::new(store::Store::in_memory().unwrap());
    let clock = clock::Clock::starting_at(1.0, "2026-01-01T00:00:00Z".parse().unwrap());
    let cloudwatch =
        Arc::new(::cloudwatch::CloudWatch::new(store, clock, aws_ids::Account::default()).unwrap());
    let mut registry = Registry::default();
    registry.add(Arc::new(api::cloudwatch::Api::new(cloudwatch)));
    registry
}

fn render_body(content_type: &str, body: &[u8]) -> String {
    if content_type == "application/cbor" {
        cbor_diagnostic(body)
    } else {
        String::from_utf8_lossy(body).into_owned()
    }
}

/// What a response is: its status, the headers the protocols define, its body.
struct Answer {
    status: u16,
    headers: Vec<(&'static str, String)>,
    content_type: String,
    body: Vec<u8>,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| *k == name).map(|(_, v)| v.as_str())
    }
}

async fn send(registry: &Registry, r: &Request) -> Answer {
    let mut headers = HeaderMap::new();
    headers.insert("host", HeaderValue::from_static("127.0.0.1:4566"));
    for (k, v) in &r.headers {
        headers.append(
            HeaderName::from_bytes(k.as_bytes()).unwrap(),
            HeaderValue::from_str(v).unwrap(),
        );
    }
    let uri: Uri = r.path.parse().unwrap();
    let response =
        api::server::answer(registry, None, &Method::POST, &uri, &headers, &r.body, RID).await;
    let status = response.status().as_u16();
    let headers: Vec<(&'static str, String)> = [
        "content-type",
        "smithy-protocol",
        "x-amzn-errortype",
        "x-amzn-query-error",
        "x-amzn-requestid",
    ]
    .into_iter()
    .filter_map(|name| Some((name, response.headers().get(name)?.to_str().ok()?.to_string())))
    .collect();
    let content_type =
        headers.iter().find(|(k, _)| *k == "content-type").map_or("", |(_, v)| v).to_string();
    let body = response.into_body().collect().await.unwrap().to_bytes().to_vec();
    Answer { status, headers, content_type, body }
}

fn render(r: &Request, a: &Answer) -> String {
    let mut out = format!("--- {}\nPOST {}\n", r.protocol, r.path);
    for (k, v) in &r.headers {
        out.push_str(&format!("{k}: {v}\n"));
    }
    let request_type =
        r.headers.iter().find(|(k, _)| k == "content-type").map_or("", |(_, v)| v.as_str());
    let body = if r.headers.iter().any(|(k, v)| k == "content-encoding" && v == "gzip") {
        let mut inflated = Vec::new();
        std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&r.body[..]), &mut inflated)
            .unwrap();
        format!("({} bytes of gzip:)\n{}", r.body.len(), render_body(request_type, &inflated))
    } else {
        render_body(request_type, &r.body)
    };
    out.push_str(&format!("\n{body}\n\nHTTP {}\n", a.status));
    for (k, v) in &a.headers {
        out.push_str(&format!("{k}: {v}\n"));
    }
    out.push_str(&format!("\n{}\n", render_body(&a.content_type, &a.body)));
    out
}

/// The error cases: (case, HTTP status, CloudWatch's Query error code, its error shape in
/// botocore's model).
const ERRORS: &[(&str, u16, &str, &str)] = &[
    ("Error-MissingParameter", 400, "MissingParameter", "MissingRequiredParameterException"),
    ("Error-InvalidPeriod", 400, "InvalidParameterValue", "InvalidParameterValueException"),
    ("Error-SetAlarmState-unknown", 404, "ResourceNotFound", "ResourceNotFound"),
];

/// Whether an error answer is shaped as its protocol says: JSON and CBOR name the error shape
/// in `__type` and (CloudWatch being awsQueryCompatible) the code in
/// `x-amzn-query-error: Code;Sender`, Query an `ErrorResponse` with the code.
fn error_shape(
    protocol: &str,
    a: &Answer,
    (status, code, shape): (u16, &str, &str),
) -> Result<(), String> {
    if a.status != status {
        return Err(format!("HTTP {} instead of {status}", a.status));
    }
    match protocol {
        "query" => {
            let body = String::from_utf8_lossy(&a.body);
            let wanted = format!("<Type>Sender</Type><Code>{code}</Code>");
            if !body.starts_with("<ErrorResponse") || !body.contains(&wanted) {
                return Err(format!("not an ErrorResponse with {wanted}: {body}"));
            }
        }
        _ => {
            let body = render_body(&a.content_type, &a.body);
            let type_member = if protocol == "cbor" { "\"__type\": " } else { "\"__type\":" };
            if !body.contains(&format!("{type_member}\"{shape}\"")) {
                return Err(format!("no __type {shape}: {body}"));
            }
            let query_error = format!("{code};Sender");
            if a.header("x-amzn-query-error") != Some(query_error.as_str()) {
                return Err(format!("x-amzn-query-error is {:?}", a.header("x-amzn-query-error")));
            }
        }
    }
    Ok(())
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn cloudwatch_answers_botocore_in_all_three_protocols() {
    let requests = requests();
    let dump = std::env::var_os("CLOUDWATCH_WIRE_DUMP").map(PathBuf::from);
    if let Some(dir) = &dump {
        std::fs::create_dir_all(dir).unwrap();
    }
    let mut cases: Vec<String> = Vec::new();
    let mut rendered: std::collections::HashMap<String, String> = Default::default();
    let mut problems = Vec::new();
    for protocol in PROTOCOLS {
        let registry = region();
        let start = tokio::time::Instant::now();
        for r in requests.iter().filter(|r| r.protocol == protocol) {
            tokio::time::advance(Duration::from_secs(10)).await;
            let answer = send(&registry, r).await;
            if !cases.contains(&r.case) {
                cases.push(r.case.clone());
            }
            rendered.entry(r.case.clone()).or_default().push_str(&render(r, &answer));
            if let Some(dir) = &dump {
                let mut raw = format!("{}\n", answer.status);
                for (k, v) in &answer.headers {
                    raw.push_str(&format!("{k}: {v}\n"));
                }
                raw.push('\n');
                let mut raw = raw.into_bytes();
                raw.extend_from_slice(&answer.body);
                std::fs::write(dir.join(format!("{}.{protocol}", r.case)), raw).unwrap();
            }
            match ERRORS.iter().find(|(case, ..)| *case == r.case) {
                Some((_, status, code, shape)) => {
                    if let Err(e) = error_shape(protocol, &answer, (*status, code, shape)) {
                        problems.push(format!("{} over {protocol}: {e}", r.case));
                    }
                }
                None if answer.status != 200 => problems.push(format!(
                    "{} over {protocol}: HTTP {}: {}",
                    r.case,
                    answer.status,
                    render_body(&answer.content_type, &answer.body)
                )),
                None => {}
            }
        }
        // Every protocol ran the whole scenario, on the same clock.
        assert_eq!(start.elapsed(), Duration::from_secs(10 * cases.len() as u64), "{protocol}");
    }
    assert_eq!(cases.len() * PROTOCOLS.len(), requests.len(), "a case misses a protocol");
    for (case, ..) in ERRORS {
        assert!(cases.iter().any(|c| c == case), "{case} is not in requests.txt");
    }
    for case in &cases {
        let actual = &rendered[case];
        let path = golden_dir().join(format!("{case}.txt"));
        let expected = std::fs::read_to_string(&path).unwrap_or_default();
        if *actual != expected {
            if std::env::var_os("UPDATE_EXPECT").is_some() {
                std::fs::write(&path, actual).unwrap();
            } else {
                problems
                    .push(format!("{case}.txt:\n--- expected\n{expected}\n--- actual\n{actual}"));
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n\n"));
}
