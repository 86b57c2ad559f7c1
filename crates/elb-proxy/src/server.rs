//! Listener sockets: the accept loop, one task per connection, HTTP/1.1 keep-alive on plain
//! listeners and HTTP/1.1 or HTTP/2 (by ALPN) on TLS listeners.

use std::convert::Infallible;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use arc_swap::ArcSwap;
use hyper::server::conn::{http1, http2};
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;

use crate::config::{Listener, Peer};
use crate::metrics::Counters;
use crate::proxy::{self, Conn};
use crate::upstream::Upstream;

/// How long a TLS handshake may take.
const TLS_HANDSHAKE: Duration = Duration::from_secs(10);
/// Hyper's read buffer: large enough that ALB's own header limits (16K line or header, 64K in
/// all) are what a client meets first, answered with 400 by the proxy.
const MAX_BUF: usize = 96 * 1024;
/// Header lines per request (ALB has no count limit below its 64K size limit).
const MAX_HEADERS: usize = 1000;

/// A listener socket being served. Dropping it stops accepting; open connections finish
/// their current request.
pub struct Serving {
    pub local_addr: SocketAddr,
    /// Replace the listener's rules or targets by storing a new snapshot.
    pub config: Arc<ArcSwap<Listener>>,
    task: JoinHandle<()>,
}

impl Drop for Serving {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Serving {
    pub fn publish(&self, listener: Listener) {
        self.config.store(Arc::new(listener));
    }
}

/// Binds `addr` (fails fast, so the control plane can pick another port) and serves it.
pub async fn bind(
    addr: SocketAddr,
    listener: Listener,
    tls: Option<Arc<rustls::ServerConfig>>,
    upstream: Upstream,
) -> io::Result<Serving> {
    let socket = TcpListener::bind(addr).await?;
    Ok(serve(socket, listener, tls, upstream))
}

/// Serves an already bound socket.
pub fn serve(
    socket: TcpListener,
    listener: Listener,
    tls: Option<Arc<rustls::ServerConfig>>,
    upstream: Upstream,
) -> Serving {
    let local_addr = socket.local_addr().unwrap_or_else(|_| SocketAddr::from(([127, 0, 0, 1], 0)));
    let config = Arc::new(ArcSwap::from_pointee(listener));
    let acceptor = tls.map(TlsAcceptor::from);
    let task = tokio::spawn(accept_loop(socket, config.clone(), acceptor, upstream));
    Serving { local_addr, config, task }
}

async fn accept_loop(
    socket: TcpListener,
    config: Arc<ArcSwap<Listener>>,
    tls: Option<TlsAcceptor>,
    upstream: Upstream,
) {
    loop {
        let (stream, addr) = match socket.accept().await {
            Ok(pair) => pair,
            Err(e) => {
                // Out of descriptors and the like: back off instead of spinning.
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let conn = Arc::new(Conn {
            listener: config.clone(),
            peer: Peer { addr },
            upstream: upstream.clone(),
        });
        let tls = tls.clone();
        tokio::spawn(async move {
            let counters = conn.listener.load().lb.counters.clone();
            Counters::add(&counters.new_connections, 1);
            counters.active_connections.fetch_add(1, Ordering::Relaxed);
            let _ = stream.set_nodelay(true);
            match tls {
                None => serve_http1(stream, conn).await,
                Some(acceptor) => serve_tls(stream, acceptor, conn).await,
            }
            counters.active_connections.fetch_sub(1, Ordering::Relaxed);
        });
    }
}

fn http1_builder(idle: Duration) -> http1::Builder {
    let mut b = http1::Builder::new();
    b.timer(TokioTimer::new())
        .keep_alive(true)
        .header_read_timeout(Some(idle))
        .max_buf_size(MAX_BUF)
        .max_headers(MAX_HEADERS);
    b
}

async fn serve_http1<S>(io: S, conn: Arc<Conn>)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let idle = conn.listener.load().lb.idle_timeout;
    let service = {
        let conn = conn.clone();
        service_fn(move |req| {
            let conn = conn.clone();
            async move { Ok::<_, Infallible>(proxy::handle(req, conn).await) }
        })
    };
    if let Err(e) =
        http1_builder(idle).serve_connection(TokioIo::new(io), service).with_upgrades().await
    {
        tracing::debug!(error = %e, "client connection ended");
    }
}

async fn serve_tls(stream: TcpStream, acceptor: TlsAcceptor, conn: Arc<Conn>) {
    let tls = match tokio::time::timeout(TLS_HANDSHAKE, acceptor.accept(stream)).await {
        Ok(Ok(tls)) => tls,
        Ok(Err(e)) => {
            tracing::debug!(error = %e, "TLS handshake failed");
            return;
        }
        Err(_) => return,
    };
    let h2 = tls.get_ref().1.alpn_protocol() == Some(b"h2");
    if !h2 {
        return serve_http1(tls, conn).await;
    }
    let service = {
        let conn = conn.clone();
        service_fn(move |req| {
            let conn = conn.clone();
            async move { Ok::<_, Infallible>(proxy::handle(req, conn).await) }
        })
    };
    let mut b = http2::Builder::new(TokioExecutor::new());
    b.timer(TokioTimer::new()).max_concurrent_streams(128).max_header_list_size(64 * 1024);
    if let Err(e) = b.serve_connection(TokioIo::new(tls), service).await {
        tracing::debug!(error = %e, "HTTP/2 client connection ended");
    }
}

/// A rustls server configuration offering HTTP/2 and HTTP/1.1, choosing the certificate by SNI.
pub fn tls_config(
    resolver: Arc<dyn rustls::server::ResolvesServerCert>,
    http2: bool,
) -> Arc<rustls::ServerConfig> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map(|b| b.with_no_client_auth().with_cert_resolver(resolver.clone()))
        .unwrap_or_else(|_| {
            rustls::ServerConfig::builder().with_no_client_auth().with_cert_resolver(resolver)
        });
    config.alpn_protocols =
        if http2 { vec![b"h2".to_vec(), b"http/1.1".to_vec()] } else { vec![b"http/1.1".to_vec()] };
    Arc::new(config)
}
