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
}

impl Client {
    pub fn new(endpoint: &str) -> Client {
        let http = HttpClient::builder(TokioExecutor::new()).build_http();
        Client { endpoint: endpoint.trim_end_matches('/').to_string(), http }
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
        let request = http::Request::post(format!("{}/", self.endpoint))
            .header(http::header::CONTENT_TYPE, "application/x-www-form-urlencoded; charset=utf-8")
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| ClientError::Protocol {
                endpoint: self.endpoint.clone(),
                reason: e.to_string(),
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
