//! Connections to targets. HTTP/1.1 keep-alive connections are pooled per data-plane thread
//! and target address (the thread that took a connection gives it back when the response
//! body ends); HTTP/2 target groups share a multiplexing client.

use std::cell::RefCell;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response, Uri};
use http_body_util::{Either, Empty};
use hyper::body::Incoming;
use hyper::client::conn::http1;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};

use crate::config::Target;

pub type RequestBody = Either<Incoming, Empty<Bytes>>;

/// How long a TCP connect to a target may take (then 504).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Idle connections kept per target and thread.
const MAX_IDLE: usize = 512;

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

thread_local! {
    static IDLE: RefCell<HashMap<SocketAddr, Vec<http1::SendRequest<RequestBody>>>> = RefCell::new(HashMap::new());
}

/// A pooled HTTP/1.1 connection lent for one request; [`Pooled::release`] gives it back.
pub struct Pooled {
    addr: SocketAddr,
    sender: http1::SendRequest<RequestBody>,
}

impl Pooled {
    /// Back to this thread's idle pool (when the response has been read to its end).
    pub fn release(self) {
        if self.sender.is_closed() {
            return;
        }
        IDLE.with(|idle| {
            let mut idle = idle.borrow_mut();
            let list = idle.entry(self.addr).or_default();
            if list.len() < MAX_IDLE {
                list.push(self.sender);
            }
        });
    }
}

fn take_idle(addr: SocketAddr) -> Option<http1::SendRequest<RequestBody>> {
    IDLE.with(|idle| {
        let mut idle = idle.borrow_mut();
        let list = idle.get_mut(&addr)?;
        while let Some(sender) = list.pop() {
            if !sender.is_closed() {
                return Some(sender);
            }
        }
        None
    })
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

async fn connect(addr: SocketAddr) -> Result<http1::SendRequest<RequestBody>, UpstreamError> {
    let stream =
        match tokio::time::timeout(CONNECT_TIMEOUT, tokio::net::TcpStream::connect(addr)).await {
            Err(_) => return Err(UpstreamError::Timeout),
            Ok(Err(e)) => return Err(UpstreamError::Connect(e.to_string())),
            Ok(Ok(s)) => s,
        };
    let _ = stream.set_nodelay(true);
    let (sender, connection) = http1::Builder::new()
        .handshake(TokioIo::new(stream))
        .await
        .map_err(|e| UpstreamError::Connect(e.to_string()))?;
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            tracing::trace!(error = %e, "target connection ended");
        }
    });
    Ok(sender)
}

/// Sends an upgrade request (WebSocket) on a connection of its own, which the upgrade then
/// takes over; the response head must come within `idle`.
pub async fn send_upgrade(
    addr: SocketAddr,
    request: Request<RequestBody>,
    idle: Duration,
) -> Result<Response<Incoming>, UpstreamError> {
    let exchange = async {
        let stream =
            match tokio::time::timeout(CONNECT_TIMEOUT, tokio::net::TcpStream::connect(addr)).await
            {
                Err(_) => return Err(UpstreamError::Timeout),
                Ok(Err(e)) => return Err(UpstreamError::Connect(e.to_string())),
                Ok(Ok(s)) => s,
            };
        let _ = stream.set_nodelay(true);
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

    /// Sends a request to `target`; the response head must come within `idle`. HTTP/1.1
    /// answers come with the connection to give back when their body ends.
    pub async fn send(
        &self,
        target: &Target,
        http2: bool,
        request: Request<RequestBody>,
        idle: Duration,
    ) -> Result<(Response<Incoming>, Option<Pooled>), UpstreamError> {
        if http2 {
            return self.send_h2(target, request, idle).await.map(|r| (r, None));
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

/// An HTTP/1.1 exchange on an idle pooled connection, or a new one. A request that a reused
/// connection could not even start (the target had closed it) goes out on a fresh one.
async fn send_h1(
    addr: SocketAddr,
    mut request: Request<RequestBody>,
) -> Result<(Response<Incoming>, Option<Pooled>), UpstreamError> {
    *request.version_mut() = http::Version::HTTP_11;
    if request.uri().scheme().is_some() {
        let path = request.uri().path_and_query().map_or("/", |p| p.as_str()).to_string();
        *request.uri_mut() = path.parse().unwrap_or_else(|_| Uri::from_static("/"));
    }
    loop {
        let (mut sender, reused) = match take_idle(addr) {
            Some(s) => (s, true),
            None => (connect(addr).await?, false),
        };
        if sender.ready().await.is_err() {
            if reused {
                continue;
            }
            return Err(UpstreamError::Reset("the target closed the connection".into()));
        }
        match sender.try_send_request(request).await {
            Ok(response) => return Ok((response, Some(Pooled { addr, sender }))),
            Err(mut e) => match e.take_message() {
                Some(unsent) if reused => request = unsent,
                _ => return Err(classify(e.error())),
            },
        }
    }
}
