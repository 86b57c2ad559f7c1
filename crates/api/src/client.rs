//! A client of the Query protocol, for Cumulo's own commands (`deploy`, `status`, ...): the
//! same requests the aws CLI sends, so the commands exercise the real API.

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client as HttpClient;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

use crate::query::encode;
use crate::xml::XmlNode;

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The service answered with an AWS error.
    #[error("{message}")]
    Api { code: String, message: String },
    #[error(
        "no Cumulo region answers at {endpoint} ({reason}); start one with `cumulo serve` or set --endpoint-url / AWS_ENDPOINT_URL"
    )]
    Unreachable { endpoint: String, reason: String },
    #[error("bad response from {endpoint}: {reason}")]
    Protocol { endpoint: String, reason: String },
}

#[derive(Clone)]
pub struct Client {
    endpoint: String,
    http: HttpClient<HttpConnector, Full<Bytes>>,
    /// Access key, secret and region that requests are SigV4-signed with.
    signer: Option<(String, String, String)>,
}

/// The signing name of each API version the client calls.
fn signing_name(version: &str) -> &'static str {
    match version {
        "2016-11-15" => "ec2",
        "2015-12-01" | "2012-06-01" => "elasticloadbalancing",
        "2011-01-01" => "autoscaling",
        "2011-06-15" => "sts",
        _ => "cloudformation",
    }
}

impl Client {
    pub fn new(endpoint: &str) -> Client {
        let http = HttpClient::builder(TokioExecutor::new()).build_http();
        Client { endpoint: endpoint.trim_end_matches('/').to_string(), http, signer: None }
    }

    /// Signs Query calls (SigV4) with these credentials, for a region that checks signatures.
    pub fn signing(mut self, access_key: &str, secret: &str, region: &str) -> Client {
        self.signer = Some((access_key.into(), secret.into(), region.into()));
        self
    }

    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// A response that does not say what it should.
    pub(crate) fn bad(&self, reason: String) -> ClientError {
        ClientError::Protocol { endpoint: self.endpoint.clone(), reason }
    }

    /// Calls `action` of `service` (its API version) with `params`; returns the `<Action>Result`
    /// element (or the response root when there is none).
    pub async fn call(
        &self,
        version: &str,
        action: &str,
        params: &[(String, String)],
    ) -> Result<XmlNode, ClientError> {
        let mut all = vec![
            ("Action".to_string(), action.to_string()),
            ("Version".to_string(), version.to_string()),
        ];
        all.extend(params.iter().cloned());
        let body = encode(&all);
        let mut headers = vec![(
            "Content-Type".to_string(),
            "application/x-www-form-urlencoded; charset=utf-8".to_string(),
        )];
        if let Some((key, secret, region)) = &self.signer {
            let host = self.endpoint.split("://").nth(1).unwrap_or(&self.endpoint);
            headers.push(("Host".into(), host.split('/').next().unwrap_or(host).to_string()));
            let now = clock::Clock::real().now();
            let amz_date = now.strftime("%Y%m%dT%H%M%SZ").to_string();
            crate::sigv4::sign(
                &mut headers,
                "POST",
                "/",
                "",
                body.as_bytes(),
                (key, secret),
                (region, signing_name(version)),
                &amz_date,
            );
        }
        let mut request = http::Request::post(format!("{}/", self.endpoint));
        for (k, v) in &headers {
            request = request.header(k.as_str(), v.as_str());
        }
        let request = request.body(Full::new(Bytes::from(body))).map_err(|e| {
            ClientError::Protocol { endpoint: self.endpoint.clone(), reason: e.to_string() }
        })?;
        let response = self.http.request(request).await.map_err(|e| ClientError::Unreachable {
            endpoint: self.endpoint.clone(),
            reason: root_cause(&e),
        })?;
        let status = response.status();
        let bytes = response
            .into_body()
            .collect()
            .await
            .map_err(|e| ClientError::Protocol {
                endpoint: self.endpoint.clone(),
                reason: e.to_string(),
            })?
            .to_bytes();
        let text = String::from_utf8_lossy(&bytes);
        let root = XmlNode::parse(&text)
            .map_err(|reason| ClientError::Protocol { endpoint: self.endpoint.clone(), reason })?;
        if !status.is_success() {
            return Err(ClientError::Api {
                code: root.get("Error/Code").unwrap_or("Unknown").to_string(),
                message: root.get("Error/Message").unwrap_or(&text).to_string(),
            });
        }
        let result = format!("{action}Result");
        Ok(root.child(&result).cloned().unwrap_or(root))
    }
}

impl Client {
    /// Calls an awsJson 1.1 operation (`X-Amz-Target: <target>`, signed for `signing_name`
    /// when the client signs); returns the output document.
    pub async fn call_json(
        &self,
        target: &str,
        signing_name: &str,
        input: &serde_json::Value,
    ) -> Result<serde_json::Value, ClientError> {
        let body = input.to_string();
        let mut headers = vec![
            ("Content-Type".to_string(), "application/x-amz-json-1.1".to_string()),
            ("X-Amz-Target".to_string(), target.to_string()),
        ];
        if let Some((key, secret, region)) = &self.signer {
            let host = self.endpoint.split("://").nth(1).unwrap_or(&self.endpoint);
            headers.push(("Host".into(), host.split('/').next().unwrap_or(host).to_string()));
            let amz_date = clock::Clock::real().now().strftime("%Y%m%dT%H%M%SZ").to_string();
            crate::sigv4::sign(
                &mut headers,
                "POST",
                "/",
                "",
                body.as_bytes(),
                (key, secret),
                (region, signing_name),
                &amz_date,
            );
        }
        let mut request = http::Request::post(format!("{}/", self.endpoint));
        for (k, v) in &headers {
            request = request.header(k.as_str(), v.as_str());
        }
        let request =
            request.body(Full::new(Bytes::from(body))).map_err(|e| self.bad(e.to_string()))?;
        let response = self.http.request(request).await.map_err(|e| ClientError::Unreachable {
            endpoint: self.endpoint.clone(),
            reason: root_cause(&e),
        })?;
        let status = response.status();
        let bytes =
            response.into_body().collect().await.map_err(|e| self.bad(e.to_string()))?.to_bytes();
        let json: serde_json::Value = serde_json::from_slice(&bytes).map_err(|e| {
            self.bad(format!("not JSON ({e}): {}", String::from_utf8_lossy(&bytes)))
        })?;
        if !status.is_success() {
            let code = json["__type"].as_str().unwrap_or("Unknown");
            return Err(ClientError::Api {
                code: code.rsplit('#').next().unwrap_or(code).to_string(),
                message: json["message"]
                    .as_str()
                    .or(json["Message"].as_str())
                    .unwrap_or_default()
                    .to_string(),
            });
        }
        Ok(json)
    }

    /// A GET of a local (non-AWS) endpoint of the region, e.g. `/_cumulo/instances`.
    pub async fn get_text(&self, path: &str) -> Result<String, ClientError> {
        self.local(http::Method::GET, path).await.map(|(_, text)| text)
    }

    /// A request to a local endpoint; returns whether it succeeded, and its text.
    pub async fn local(
        &self,
        method: http::Method,
        path: &str,
    ) -> Result<(bool, String), ClientError> {
        let request = http::Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.endpoint))
            .body(Full::new(Bytes::new()))
            .map_err(|e| ClientError::Protocol {
                endpoint: self.endpoint.clone(),
                reason: e.to_string(),
            })?;
        let response = self.http.request(request).await.map_err(|e| ClientError::Unreachable {
            endpoint: self.endpoint.clone(),
            reason: root_cause(&e),
        })?;
        let ok = response.status().is_success();
        let bytes = response
            .into_body()
            .collect()
            .await
            .map_err(|e| ClientError::Protocol {
                endpoint: self.endpoint.clone(),
                reason: e.to_string(),
            })?
            .to_bytes();
        Ok((ok, String::from_utf8_lossy(&bytes).into_owned()))
    }
}

fn root_cause(e: &dyn std::error::Error) -> String {
    let mut current = e;
    while let Some(next) = current.source() {
        current = next;
    }
    current.to_string()
}
