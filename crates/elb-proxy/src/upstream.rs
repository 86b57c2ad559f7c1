//! Connections to targets: pooled HTTP/1.1 (and HTTP/2 for HTTP2 target groups) keep-alive
//! connections, per target address.

use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response, Uri};
use http_body_util::{Either, Empty};
use hyper::body::Incoming;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};

use crate::config::Target;

pub type RequestBody = Either<Incoming, Empty<Bytes>>;

#[derive(Debug)]
pub enum UpstreamError {
    /// The TCP connection could not be made (refused, unreachable): 502.
    Connect(String),
    /// No connection within 10 s, or no response within the idle timeout: 504.
    Timeout,
    /// The target closed or reset the connection, or answered garbage: 502.
    Reset(String),
    /// The client's request body broke off or was malformed (bad chunking): 400.
    ClientBody(String),
}

impl UpstreamError {
    /// Whether nothing was received from the target (a retry cannot duplicate an effect).
    pub fn before_response(&self) -> bool {
        matches!(self, UpstreamError::Connect(_))
    }
}

#[derive(Clone)]
pub struct Upstream {
    h1: Client<HttpConnector, RequestBody>,
    h2: Client<HttpConnector, RequestBody>,
}

impl Default for Upstream {
    fn default() -> Upstream {
        Upstream::new()
    }
}

impl Upstream {
    pub fn new() -> Upstream {
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        connector.set_connect_timeout(Some(Duration::from_secs(10)));
        connector.enforce_http(true);
        let h1 = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(90))
            .pool_max_idle_per_host(1024)
            .pool_timer(TokioTimer::new())
            .timer(TokioTimer::new())
            .build(connector.clone());
        let h2 = Client::builder(TokioExecutor::new())
            .http2_only(true)
            .timer(TokioTimer::new())
            .build(connector);
        Upstream { h1, h2 }
    }

    /// Sends a request to `target`; the response head must come within `idle`.
    pub async fn send(
        &self,
        target: &Target,
        http2: bool,
        mut request: Request<RequestBody>,
        idle: Duration,
    ) -> Result<Response<Incoming>, UpstreamError> {
        let path = request.uri().path_and_query().map_or("/", |p| p.as_str());
        let uri: Uri = format!("http://{}{path}", target.addr)
            .parse()
            .map_err(|e: http::uri::InvalidUri| UpstreamError::Reset(e.to_string()))?;
        *request.uri_mut() = uri;
        *request.version_mut() = if http2 { http::Version::HTTP_2 } else { http::Version::HTTP_11 };
        let client = if http2 { &self.h2 } else { &self.h1 };
        match tokio::time::timeout(idle, client.request(request)).await {
            Err(_) => Err(UpstreamError::Timeout),
            Ok(Ok(response)) => Ok(response),
            Ok(Err(e)) => {
                let text = format!("{e:?}");
                let hyper_error =
                    std::error::Error::source(&e).and_then(|s| s.downcast_ref::<hyper::Error>());
                if hyper_error.is_some_and(|h| h.is_user()) {
                    Err(UpstreamError::ClientBody(text))
                } else if text.contains("ConnectTimeout") || text.contains("timed out") {
                    Err(UpstreamError::Timeout)
                } else if e.is_connect() {
                    Err(UpstreamError::Connect(text))
                } else {
                    Err(UpstreamError::Reset(text))
                }
            }
        }
    }
}
