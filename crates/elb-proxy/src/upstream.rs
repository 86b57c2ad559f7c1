//! Connections to targets. HTTP/1.1 keep-alive connections are pooled per data-plane thread
//! and target address (the thread that took a connection gives it back when the response
//! body ends); HTTP/2 target groups share a multiplexing client.

use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response, Uri};
use http_body_util::{Either, Empty};
use hyper::body::{Body, Frame, Incoming, SizeHint};
use hyper::client::conn::http1;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};

use crate::config::Target;
use crate::h1::{self, CONNECT_TIMEOUT};

pub type RequestBody = Either<Incoming, Empty<Bytes>>;

/// A target's response body: read from a pooled HTTP/1.1 connection, or from hyper.
pub enum ResponseBody {
    H1(h1::TargetBody),
    /// HTTP/2 targets, and the answer to an upgrade request.
    Hyper(Incoming),
}

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

impl Body for ResponseBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        match self.get_mut() {
            ResponseBody::H1(b) => Pin::new(b).poll_frame(cx).map_err(Into::into),
            ResponseBody::Hyper(b) => Pin::new(b).poll_frame(cx).map_err(Into::into),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            ResponseBody::H1(b) => b.is_end_stream(),
            ResponseBody::Hyper(b) => b.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            ResponseBody::H1(b) => b.size_hint(),
            ResponseBody::Hyper(b) => b.size_hint(),
        }
    }
}

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
    /// Whether the target failed without a response head: it refused, reset or closed the
    /// connection (an idempotent request may be sent elsewhere; the target looks unwell).
    pub fn no_response(&self) -> bool {
        matches!(self, UpstreamError::Connect(_) | UpstreamError::Reset(_))
    }
}

#[derive(Clone)]
pub struct Upstream {
    h2: Client<HttpConnector, RequestBody>,
}

impl Default for Upstream {
    fn default() -> Upstream {
        Upstream::new()
    }
}

fn classify(e: &hyper::Error) -> UpstreamError {
    if e.is_user() {
        UpstreamError::ClientBody(e.to_string())
    } else if e.is_timeout() {
        UpstreamError::Timeout
    } else {
        UpstreamError::Reset(e.to_string())
    }
}

/// Sends an upgrade request (WebSocket) on a connection of its own, which the upgrade then
/// takes over; the response head must come within `idle`.
pub async fn send_upgrade(
    addr: SocketAddr,
    request: Request<RequestBody>,
    idle: Duration,
) -> Result<Response<Incoming>, UpstreamError> {
    let exchange = async {
        let stream = h1::connect_tcp(addr).await?;
        let (mut sender, connection) = http1::Builder::new()
            .handshake(TokioIo::new(stream))
            .await
            .map_err(|e| UpstreamError::Connect(e.to_string()))?;
        tokio::spawn(async move {
            if let Err(e) = connection.with_upgrades().await {
                tracing::trace!(error = %e, "upgraded target connection ended");
            }
        });
        sender.send_request(request).await.map_err(|e| classify(&e))
    };
    match tokio::time::timeout(idle, exchange).await {
        Err(_) => Err(UpstreamError::Timeout),
        Ok(result) => result,
    }
}

impl Upstream {
    pub fn new() -> Upstream {
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        connector.set_connect_timeout(Some(CONNECT_TIMEOUT));
        connector.enforce_http(true);
        let h2 = Client::builder(TokioExecutor::new())
            .http2_only(true)
            .timer(TokioTimer::new())
            .build(connector);
        Upstream { h2 }
    }

    /// Sends a request to `target`; the response head must come within `idle`. An HTTP/1.1
    /// answer's body gives its connection back to this thread's pool when it ends.
    pub async fn send(
        &self,
        target: &Target,
        http2: bool,
        request: Request<RequestBody>,
        idle: Duration,
    ) -> Result<Response<ResponseBody>, UpstreamError> {
        if http2 {
            return self.send_h2(target, request, idle).await.map(|r| r.map(ResponseBody::Hyper));
        }
        match tokio::time::timeout(idle, send_h1(target.addr, request)).await {
            Err(_) => Err(UpstreamError::Timeout),
            Ok(result) => result,
        }
    }

    async fn send_h2(
        &self,
        target: &Target,
        mut request: Request<RequestBody>,
        idle: Duration,
    ) -> Result<Response<Incoming>, UpstreamError> {
        let path = request.uri().path_and_query().map_or("/", |p| p.as_str());
        let uri: Uri = format!("http://{}{path}", target.addr)
            .parse()
            .map_err(|e: http::uri::InvalidUri| UpstreamError::Reset(e.to_string()))?;
        *request.uri_mut() = uri;
        *request.version_mut() = http::Version::HTTP_2;
        match tokio::time::timeout(idle, self.h2.request(request)).await {
            Err(_) => Err(UpstreamError::Timeout),
            Ok(Ok(response)) => Ok(response),
            Ok(Err(e)) => {
                let hyper_error =
                    std::error::Error::source(&e).and_then(|s| s.downcast_ref::<hyper::Error>());
                if let Some(h) = hyper_error {
                    Err(classify(h))
                } else if e.is_connect() {
                    Err(UpstreamError::Connect(format!("{e:?}")))
                } else {
                    Err(UpstreamError::Reset(format!("{e:?}")))
                }
            }
        }
    }
}

/// An HTTP/1.1 exchange on an idle pooled connection, or a new one. A request without a body
/// that a reused connection got no answer to at all (the target had closed it while idle)
/// goes out again on a fresh connection.
async fn send_h1(
    addr: SocketAddr,
    mut request: Request<RequestBody>,
) -> Result<Response<ResponseBody>, UpstreamError> {
    // The head names the path only; HTTP/1.1 requires Host, which an HTTP/2 request carries in
    // its URI instead.
    if !request.headers().contains_key(http::header::HOST)
        && let Some(host) = request.uri().authority().map(|a| a.as_str().to_string())
        && let Ok(value) = http::HeaderValue::from_str(&host)
    {
        request.headers_mut().insert(http::header::HOST, value);
    }
    let mut prepared = h1::Prepared::new(request);
    if let Some(conn) = h1::Connection::take_idle(addr) {
        match h1::send(conn, &mut prepared).await {
            Ok(response) => return Ok(response.map(ResponseBody::H1)),
            Err(e) if e.nothing_read && prepared.repeatable() => {}
            Err(e) => return Err(e.error),
        }
    }
    let conn = h1::Connection::connect(addr).await?;
    h1::send(conn, &mut prepared).await.map(|r| r.map(ResponseBody::H1)).map_err(|e| e.error)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// An HTTP/2 client's request has no Host header, only an authority: the HTTP/1.1 target
    /// gets it as Host, and the request line names the path alone.
    #[tokio::test]
    async fn an_authority_becomes_the_host_toward_http1_targets() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let target = tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.unwrap();
            let mut head = Vec::new();
            let mut buf = [0u8; 1024];
            while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                let n = s.read(&mut buf).await.unwrap();
                assert!(n > 0, "the request head arrives");
                head.extend_from_slice(&buf[..n]);
            }
            s.write_all(b"HTTP/1.1 204 No Content\r\n\r\n").await.unwrap();
            String::from_utf8(head).unwrap()
        });
        let mut request = Request::new(Either::Right(Empty::new()));
        *request.uri_mut() = "https://app.example.com/photos?page=2".parse().unwrap();
        *request.version_mut() = http::Version::HTTP_2;
        let response = send_h1(addr, request).await.unwrap();
        assert_eq!(response.status(), 204);
        assert_eq!(
            target.await.unwrap(),
            "GET /photos?page=2 HTTP/1.1\r\nhost: app.example.com\r\n\r\n"
        );
    }
}
