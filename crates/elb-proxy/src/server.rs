//! Listener sockets: the accept loop, one task per connection, HTTP/1.1 keep-alive on plain
//! listeners and HTTP/1.1 or HTTP/2 (by ALPN) on TLS listeners.

use std::convert::Infallible;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use hyper::server::conn::{http1, http2};
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;

use crate::config::{Listener, Peer};
use crate::metered::Metered;
use crate::metrics::Counters;
use crate::proxy::{self, Conn, TlsSession};
use crate::upstream::Upstream;
use crate::workers::Workers;

/// How long a TLS handshake may take.
const TLS_HANDSHAKE: Duration = Duration::from_secs(10);
/// Hyper's read buffer: large enough that ALB's own header limits (16K line or header, 64K in
/// all) are what a client meets first, answered with 400 by the proxy.
const MAX_BUF: usize = 96 * 1024;

/// A listener being served (one `SO_REUSEPORT` socket per data-plane thread). Dropping it
/// stops accepting; open connections finish their current request.
pub struct Serving {
    pub local_addr: SocketAddr,
    /// Replace the listener's rules or targets by storing a new snapshot.
    pub config: Arc<ArcSwap<Listener>>,
    tasks: Vec<JoinHandle<()>>,
}

impl Drop for Serving {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

impl Serving {
    pub fn publish(&self, listener: Listener) {
        self.config.store(Arc::new(listener));
    }
}

fn reuse_port_socket(addr: SocketAddr) -> io::Result<std::net::TcpListener> {
    let socket = if addr.is_ipv4() { TcpSocket::new_v4()? } else { TcpSocket::new_v6()? };
    socket.set_reuseaddr(true)?;
    socket.set_reuseport(true)?;
    socket.set_nodelay(true)?;
    socket.bind(addr)?;
    socket.listen(4096)?.into_std()
}

/// Binds `addr` (fails fast, so the control plane can pick another port) and serves it on
/// every data-plane thread.
pub async fn bind(
    addr: SocketAddr,
    listener: Listener,
    tls: Option<Arc<rustls::ServerConfig>>,
    upstream: Upstream,
) -> io::Result<Serving> {
    let handles = Workers::get().handles();
    // SO_REUSEPORT would let another process of this user share the port (another Cumulo
    // region): a plain bind first proves the port is free.
    let probe = std::net::TcpListener::bind(addr)?;
    let addr = probe.local_addr()?;
    drop(probe);
    let first = reuse_port_socket(addr)?;
    let local_addr = first.local_addr()?;
    let mut sockets = vec![first];
    for _ in 1..handles.len() {
        sockets.push(reuse_port_socket(local_addr)?);
    }
    let config = Arc::new(ArcSwap::from_pointee(listener));
    let acceptor = tls.map(TlsAcceptor::from);
    let mut tasks = Vec::new();
    for (socket, handle) in sockets.into_iter().zip(handles.iter().cycle()) {
        let (config, acceptor, upstream) = (config.clone(), acceptor.clone(), upstream.clone());
        tasks.push(handle.spawn(async move {
            match TcpListener::from_std(socket) {
                Ok(socket) => accept_loop(socket, config, acceptor, upstream).await,
                Err(e) => tracing::error!("cannot serve a listener socket: {e}"),
            }
        }));
    }
    Ok(Serving { local_addr, config, tasks })
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
        // TCP_NODELAY comes from the listening socket (Linux copies it to accepted ones).
        let conn = Conn::new(config.clone(), Peer { addr }, upstream.clone());
        let counters = conn.listener.load().lb.counters.clone();
        Counters::add(&counters.new_connections, 1);
        let active = Active::new(counters.clone());
        let stream = Metered::new(stream, counters);
        // Two spawns, not one future with a branch: a task's future is copied on spawn and
        // on completion, and the TLS state would make every plain connection's future large.
        match &tls {
            None => {
                tokio::spawn(async move {
                    serve_http1(stream, Arc::new(conn)).await;
                    drop(active);
                });
            }
            Some(acceptor) => {
                let acceptor = acceptor.clone();
                tokio::spawn(Box::pin(async move {
                    serve_tls(stream, acceptor, conn).await;
                    drop(active);
                }));
            }
        }
    }
}

/// One open client connection in ActiveConnectionCount, for as long as it lives.
struct Active(Arc<Counters>);

impl Active {
    fn new(counters: Arc<Counters>) -> Active {
        counters.active_connections.add(1);
        Active(counters)
    }
}

impl Drop for Active {
    fn drop(&mut self) {
        self.0.active_connections.sub(1);
    }
}

fn http1_builder(idle: Duration) -> http1::Builder {
    let mut b = http1::Builder::new();
    b.timer(TokioTimer::new())
        .keep_alive(true)
        .header_read_timeout(Some(idle))
        .max_buf_size(MAX_BUF);
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

async fn serve_tls(stream: Metered<TcpStream>, acceptor: TlsAcceptor, mut conn: Conn) {
    let tls = match tokio::time::timeout(TLS_HANDSHAKE, acceptor.accept(stream)).await {
        Ok(Ok(tls)) => tls,
        Ok(Err(e)) => {
            tracing::debug!(error = %e, "TLS handshake failed");
            return;
        }
        Err(_) => return,
    };
    let h2 = tls.get_ref().1.alpn_protocol() == Some(b"h2");
    conn.tls = Some(TlsSession::of(tls.get_ref().1));
    let conn = Arc::new(conn);
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The accept loop relies on this instead of a setsockopt per connection.
    #[tokio::test]
    async fn accepted_connections_inherit_tcp_nodelay_from_the_listener() {
        let socket = reuse_port_socket("127.0.0.1:0".parse().unwrap()).unwrap();
        let listener = TcpListener::from_std(socket).unwrap();
        let addr = listener.local_addr().unwrap();
        let _client = TcpStream::connect(addr).await.unwrap();
        let (accepted, _) = listener.accept().await.unwrap();
        assert!(accepted.nodelay().unwrap());
    }
}
