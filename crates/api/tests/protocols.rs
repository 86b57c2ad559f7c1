//! Wire goldens of the JSON and CBOR protocols and of signature checks: each case is a request
//! (as botocore sends it) and the whole response (status, protocol headers, body: JSON as text,
//! CBOR in diagnostic notation), in `tests/golden/protocols/<case>.txt`.
//! `UPDATE_EXPECT=1 cargo test -p api --test protocols` rewrites them after a deliberate change.

use std::path::PathBuf;
use std::sync::Arc;

use api::ApiError;
use api::protocol::{Value, cbor_diagnostic};
use api::registry::{Context, Registry, RpcService, Wire};
use api::sigv4::Credentials;
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, Uri};
use http_body_util::BodyExt;

/// A CloudWatch-shaped service (rpc-v2-cbor first, awsQueryCompatible, also Query): `Echo`
/// returns its input, `Fail` fails with the code it is given.
struct Granite(Wire);

#[async_trait::async_trait]
impl RpcService for Granite {
    fn wire(&self) -> &Wire {
        &self.0
    }
    fn handles(&self, op: &str) -> bool {
        matches!(op, "PutMetricData" | "GetMetricData" | "Fail")
    }
    async fn call(&self, op: &str, input: &Value, _: &Context<'_>) -> Result<Value, ApiError> {
        match op {
            "Fail" => {
                Err(ApiError::new(input.str("Code").unwrap_or("InternalFailure"), "it failed", 400))
            }
            _ => Ok(input.clone()),
        }
    }
}

fn hex(s: &str) -> Vec<u8> {
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
}

struct Case {
    name: &'static str,
    path: &'static str,
    headers: Vec<(&'static str, String)>,
    body: Vec<u8>,
    /// Sign with (access key, secret).
    sign: Option<(&'static str, &'static str)>,
}

fn json(name: &'static str, op: &str, body: &str) -> Case {
    Case {
        name,
        path: "/",
        headers: vec![
            ("x-amz-target", format!("AmazonSSM.{op}")),
            ("content-type", "application/x-amz-json-1.1".into()),
        ],
        body: body.as_bytes().to_vec(),
        sign: None,
    }
}

fn cbor(name: &'static str, path: &'static str, body_hex: &str) -> Case {
    Case {
        name,
        path,
        headers: vec![
            ("smithy-protocol", "rpc-v2-cbor".into()),
            ("x-amzn-query-mode", "true".into()),
            ("content-type", "application/cbor".into()),
            ("accept", "application/cbor".into()),
        ],
        body: hex(body_hex),
        sign: None,
    }
}

fn render_body(content_type: &str, body: &[u8]) -> String {
    if content_type == "application/cbor" {
        cbor_diagnostic(body)
    } else {
        String::from_utf8_lossy(body).into_owned()
    }
}

async fn run(registry: &Registry, credentials: Option<&Credentials>, case: &Case) -> String {
    let mut headers = HeaderMap::new();
    let mut pairs: Vec<(String, String)> = vec![("host".into(), "127.0.0.1:4566".into())];
    pairs.extend(case.headers.iter().map(|(k, v)| (k.to_string(), v.clone())));
    if let Some((key, secret)) = case.sign {
        let service = if case.path == "/" && case.headers.iter().any(|(k, _)| *k == "x-amz-target")
        {
            "ssm"
        } else {
            "monitoring"
        };
        let (path, query) = case.path.split_once('?').unwrap_or((case.path, ""));
        api::sigv4::sign(
            &mut pairs,
            "POST",
            path,
            query,
            &case.body,
            (key, secret),
            ("us-east-1", service),
            "20260101T000000Z",
        );
    }
    for (k, v) in &pairs {
        headers.append(
            HeaderName::from_bytes(k.as_bytes()).unwrap(),
            HeaderValue::from_str(v).unwrap(),
        );
    }
    let uri: Uri = case.path.parse().unwrap();
    let response = api::server::answer(
        registry,
        credentials,
        &Method::POST,
        &uri,
        &headers,
        &case.body,
        "rid",
    )
    .await;
    let status = response.status().as_u16();
    let mut out = String::new();
    out.push_str(&format!("POST {}\n", case.path));
    for (k, v) in &case.headers {
        out.push_str(&format!("{k}: {v}\n"));
    }
    let request_type =
        case.headers.iter().find(|(k, _)| *k == "content-type").map_or("", |(_, v)| v.as_str());
    out.push_str(&format!("\n{}\n\nHTTP {status}\n", render_body(request_type, &case.body)));
    let response_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    for name in [
        "content-type",
        "smithy-protocol",
        "x-amzn-errortype",
        "x-amzn-query-error",
        "x-amzn-requestid",
    ] {
        if let Some(v) = response.headers().get(name) {
            out.push_str(&format!("{name}: {}\n", v.to_str().unwrap()));
        }
    }
    let body = response.into_body().collect().await.unwrap().to_bytes();
    out.push_str(&format!("\n{}\n", render_body(&response_type, &body)));
    out
}

fn registry() -> Registry {
    let store = Arc::new(store::Store::in_memory().unwrap());
    let clock = clock::Clock::starting_at(1.0, "2026-01-01T00:00:00Z".parse().unwrap());
    let ssm = Arc::new(ssm::Ssm::new(store, clock, aws_ids::Account::default()));
    let mut registry = Registry::default();
    registry.add(Arc::new(api::ssm::Api::new(ssm))).add(Arc::new(Granite(Wire {
        signing_name: "monitoring",
        cbor: Some("GraniteServiceVersion20100801"),
        query: Some(("2010-08-01", "http://monitoring.amazonaws.com/doc/2010-08-01/")),
        query_compatible: true,
        ..Wire::default()
    })));
    registry
}

fn compare(mismatches: &mut Vec<String>, name: &str, actual: &str) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join(format!("tests/golden/protocols/{name}.txt"));
    let expected = std::fs::read_to_string(&path).unwrap_or_default();
    if actual != expected {
        if std::env::var_os("UPDATE_EXPECT").is_some() {
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, actual).unwrap();
        } else {
            mismatches.push(format!("{name}:\n--- expected\n{expected}\n--- actual\n{actual}"));
        }
    }
}

#[tokio::test(start_paused = true)]
async fn json_and_cbor_on_the_wire() {
    let registry = registry();
    let granite = "/service/GraniteServiceVersion20100801/operation";
    let cases = [
        json("ssm-PutParameter", "PutParameter", r#"{"Name": "/app/db/host", "Value": "db.local", "Type": "String"}"#),
        json("ssm-PutParameter-exists", "PutParameter", r#"{"Name": "/app/db/host", "Value": "other", "Type": "String"}"#),
        json("ssm-PutParameter-overwrite", "PutParameter", r#"{"Name": "/app/db/host", "Value": "db2.local", "Type": "String", "Overwrite": true}"#),
        json("ssm-PutParameter-bad-type", "PutParameter", r#"{"Name": "/app/x", "Value": "v", "Type": "Number"}"#),
        json("ssm-PutParameter-list", "PutParameter", r#"{"Name": "/app/zones", "Value": "a,b", "Type": "StringList", "Description": "zones"}"#),
        json("ssm-PutParameter-secure", "PutParameter", r#"{"Name": "/app/db/password", "Value": "hunter2", "Type": "SecureString"}"#),
        json("ssm-GetParameter", "GetParameter", r#"{"Name": "/app/db/host"}"#),
        json("ssm-GetParameter-secure", "GetParameter", r#"{"Name": "/app/db/password"}"#),
        json("ssm-GetParameter-secure-decrypted", "GetParameter", r#"{"Name": "/app/db/password", "WithDecryption": true}"#),
        json("ssm-GetParameter-public", "GetParameter", r#"{"Name": "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-x86_64"}"#),
        json("ssm-GetParameter-missing", "GetParameter", r#"{"Name": "/nope"}"#),
        json("ssm-GetParameter-no-name", "GetParameter", "{}"),
        json("ssm-GetParameters", "GetParameters", r#"{"Names": ["/app/db/host", "/nope", "/app/zones"]}"#),
        json("ssm-GetParametersByPath", "GetParametersByPath", r#"{"Path": "/app", "Recursive": true, "MaxResults": 2}"#),
        json("ssm-GetParametersByPath-page2", "GetParametersByPath", r#"{"Path": "/app", "Recursive": true, "MaxResults": 2, "NextToken": "2f6170702f7a6f6e6573"}"#),
        json("ssm-GetParametersByPath-one-level", "GetParametersByPath", r#"{"Path": "/app"}"#),
        json("ssm-GetParametersByPath-max", "GetParametersByPath", r#"{"Path": "/app", "MaxResults": 11}"#),
        json("ssm-DescribeParameters", "DescribeParameters", r#"{"ParameterFilters": [{"Key": "Type", "Values": ["StringList", "SecureString"]}]}"#),
        json("ssm-DeleteParameters", "DeleteParameters", r#"{"Names": ["/app/zones", "/nope"]}"#),
        json("ssm-DeleteParameter-missing", "DeleteParameter", r#"{"Name": "/app/zones"}"#),
        json("ssm-unknown-operation", "Frobnicate", "{}"),
        json("ssm-not-json", "GetParameter", "{\"Name\": "),
        Case { name: "json-unknown-target", path: "/", headers: vec![("x-amz-target", "Logs_20140328.DescribeLogGroups".into()), ("content-type", "application/x-amz-json-1.1".into())], body: b"{}".to_vec(), sign: None },
        // botocore 1.44.8's own bytes for PutMetricData and GetMetricData (tag 1 timestamps,
        // a double), echoed back.
        cbor("cbor-PutMetricData", "/service/GraniteServiceVersion20100801/operation/PutMetricData", "a2694e616d657370616365634170706a4d65747269634461746181a56a4d65747269634e616d65674c6174656e63796556616c7565fb3ff800000000000064556e6974675365636f6e64736954696d657374616d70c1fb41da556e402000006a44696d656e73696f6e7381a2644e616d6564486f73746556616c75656161"),
        cbor("cbor-GetMetricData", "/service/GraniteServiceVersion20100801/operation/GetMetricData", "a3714d6574726963446174615175657269657381a26249646271316a45787072657373696f6e6653554d28782969537461727454696d65c11a6955b90067456e6454696d65c11a6955c710"),
        // {"Code": "ResourceNotFound"}
        cbor("cbor-error-query-compatible", "/service/GraniteServiceVersion20100801/operation/Fail", "a164436f6465705265736f757263654e6f74466f756e64"),
        cbor("cbor-unknown-operation", "/service/GraniteServiceVersion20100801/operation/ListDashboards", "a0"),
        cbor("cbor-unknown-service", "/service/Logs_20140328/operation/DescribeLogGroups", "a0"),
        cbor("cbor-malformed", "/service/GraniteServiceVersion20100801/operation/PutMetricData", "a1644e616d"),
        Case { name: "query-rpc-service", path: "/", headers: vec![("content-type", "application/x-www-form-urlencoded".into())], body: b"Action=GetMetricData&Version=2010-08-01&StartTime=2026-01-01T00%3A00%3A00Z&MetricDataQueries.member.1.Id=q1".to_vec(), sign: None },
    ];
    let _ = granite;
    let mut mismatches = Vec::new();
    for case in &cases {
        let actual = run(&registry, None, case).await;
        compare(&mut mismatches, case.name, &actual);
    }
    assert!(mismatches.is_empty(), "{}", mismatches.join("\n\n"));
}

#[tokio::test(start_paused = true)]
async fn signatures_are_checked_when_the_region_has_credentials() {
    let registry = registry();
    let credentials = Credentials::new([("AKIDCUMULO".to_string(), "s3cret".to_string())]);
    let signed = |name, key, secret, mut case: Case| {
        case.name = name;
        case.sign = Some((key, secret));
        case
    };
    let put = || json("", "PutParameter", r#"{"Name": "/signed", "Value": "v", "Type": "String"}"#);
    let cases = [
        signed("sigv4-json-right-key", "AKIDCUMULO", "s3cret", put()),
        signed("sigv4-json-wrong-secret", "AKIDCUMULO", "wrong", put()),
        signed("sigv4-json-unknown-key", "AKIDOTHER", "s3cret", put()),
        Case { name: "sigv4-json-unsigned", ..put() },
        signed(
            "sigv4-cbor-wrong-secret",
            "AKIDCUMULO",
            "wrong",
            cbor("", "/service/GraniteServiceVersion20100801/operation/GetMetricData", "a0"),
        ),
        signed(
            "sigv4-query-unknown-key",
            "AKIDOTHER",
            "s3cret",
            Case {
                name: "",
                path: "/",
                headers: vec![("content-type", "application/x-www-form-urlencoded".into())],
                body: b"Action=GetMetricData&Version=2010-08-01".to_vec(),
                sign: None,
            },
        ),
    ];
    let mut mismatches = Vec::new();
    for case in &cases {
        let actual = run(&registry, Some(&credentials), case).await;
        compare(&mut mismatches, case.name, &actual);
    }
    assert!(mismatches.is_empty(), "{}", mismatches.join("\n\n"));
    // Only the rightly signed put changed anything.
    let get = json("", "GetParameters", r#"{"Names": ["/signed"]}"#);
    let out = run(&registry, None, &get).await;
    assert!(
        out.contains(r#""Parameters":[{"Name":"/signed","Type":"String","Value":"v","Version":1"#),
        "{out}"
    );
}
