//! The front door that makes load balancer DNS names answer. Browsers and curl send every
//! `*.localhost` name to 127.0.0.1 (and ::1), while each load balancer listens on an address
//! of its own (127.0.1.x). A front listens on 127.0.0.1 and ::1 at a listener's port, reads
//! the name a connection asks for (the HTTP `Host`, or the TLS ClientHello's SNI, without
//! terminating TLS), and joins it byte for byte to the load balancer of that name.
//!
//! The table of names is a published snapshot (`ArcSwap`), read without locks.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

/// The most a front reads before it knows where a connection goes.
const MAX_PEEK: usize = 16 * 1024;
/// How long a client may take to say where it goes (real time: the data plane's clock).
const PEEK_TIMEOUT: Duration = Duration::from_secs(10);

/// Names (lowercase, no port) and where their load balancer listens, per front port.
#[derive(Default)]
pub struct FrontTable {
    routes: ArcSwap<HashMap<String, SocketAddr>>,
}

impl FrontTable {
    pub fn new() -> Arc<FrontTable> {
        Arc::new(FrontTable::default())
    }

    /// Publishes a new table.
    pub fn publish(&self, routes: HashMap<String, SocketAddr>) {
        self.routes.store(Arc::new(routes));
    }

    fn lookup(&self, name: &str) -> Option<SocketAddr> {
        self.routes.load().get(&name.to_ascii_lowercase()).copied()
    }
}

/// What the first bytes of a connection ask for.
#[derive(Debug, PartialEq, Eq)]
pub enum Asked {
    /// The name (HTTP `Host` without its port, or TLS SNI).
    Name(String),
    /// More bytes are needed.
    Incomplete,
    /// Not a request a front can route (no Host, no SNI, not HTTP or TLS).
    Unroutable,
}

/// The name an HTTP/1 request head or a TLS ClientHello asks for.
pub fn asked(bytes: &[u8]) -> Asked {
    if bytes.first() == Some(&0x16) {
        return sni(bytes);
    }
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut request = httparse::Request::new(&mut headers);
    match request.parse(bytes) {
        Ok(httparse::Status::Partial) => Asked::Incomplete,
        Err(_) => Asked::Unroutable,
        Ok(httparse::Status::Complete(_)) => {
            let host = request
                .headers
                .iter()
                .find(|h| h.name.eq_ignore_ascii_case("host"))
                .and_then(|h| std::str::from_utf8(h.value).ok());
            match host {
                Some(h) => Asked::Name(strip_port(h.trim()).to_ascii_lowercase()),
                None => Asked::Unroutable,
            }
        }
    }
}

fn strip_port(host: &str) -> &str {
    if host.starts_with('[') {
        return host.split(']').next().map(|h| &host[..h.len() + 1]).unwrap_or(host);
    }
    host.rsplit_once(':')
        .filter(|(_, p)| p.bytes().all(|b| b.is_ascii_digit()))
        .map_or(host, |(h, _)| h)
}

/// A cursor over bytes that says `None` instead of reading past the end.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.0.len() < n {
            return None;
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Some(head)
    }

    fn u8(&mut self) -> Option<usize> {
        self.take(1).map(|b| b[0] as usize)
    }

    fn u16(&mut self) -> Option<usize> {
        self.take(2).map(|b| u16::from_be_bytes([b[0], b[1]]) as usize)
    }

    fn u24(&mut self) -> Option<usize> {
        self.take(3).map(|b| ((b[0] as usize) << 16) | ((b[1] as usize) << 8) | b[2] as usize)
    }

    /// A length-prefixed run of bytes (prefix of 1, 2 or 3 bytes).
    fn vec(&mut self, prefix: usize) -> Option<Reader<'a>> {
        let n = match prefix {
            1 => self.u8()?,
            2 => self.u16()?,
            _ => self.u24()?,
        };
        self.take(n).map(Reader)
    }
}

/// The server name of a TLS ClientHello (RFC 8446 4.1.2, RFC 6066 3), read from its first
/// record.
fn sni(bytes: &[u8]) -> Asked {
    let mut record = Reader(bytes);
    let Some(header) = record.take(5) else { return Asked::Incomplete };
    let length = u16::from_be_bytes([header[3], header[4]]) as usize;
    let Some(body) = record.take(length) else {
        return if length > MAX_PEEK { Asked::Unroutable } else { Asked::Incomplete };
    };
    let parse = || -> Option<Option<String>> {
        let mut r = Reader(body);
        if r.u8()? != 1 {
            return None; // not a ClientHello
        }
        let mut hello = r.vec(3)?;
        hello.take(2 + 32)?; // version, random
        hello.vec(1)?; // session id
        hello.vec(2)?; // cipher suites
        hello.vec(1)?; // compression methods
        if hello.0.is_empty() {
            return Some(None);
        }
        let mut extensions = hello.vec(2)?;
        while !extensions.0.is_empty() {
            let kind = extensions.u16()?;
            let mut data = extensions.vec(2)?;
            if kind != 0 {
                continue;
            }
            let mut names = data.vec(2)?;
            while !names.0.is_empty() {
                let name_type = names.u8()?;
                let name = names.vec(2)?.0;
                if name_type == 0 {
                    return Some(std::str::from_utf8(name).ok().map(str::to_ascii_lowercase));
                }
            }
        }
        Some(None)
    };
    match parse() {
        Some(Some(name)) => Asked::Name(name),
        _ => Asked::Unroutable,
    }
}

/// Serves a front on `listener` until `shutdown`: each connection goes to the load balancer
/// its name belongs to; a name no load balancer has gets a 421 (HTTP) or is closed (TLS).
pub async fn serve(listener: TcpListener, table: Arc<FrontTable>, shutdown: CancellationToken) {
    loop {
        let accepted = tokio::select! {
            _ = shutdown.cancelled() => return,
            accepted = listener.accept() => accepted,
        };
        let Ok((stream, _)) = accepted else { continue };
        let table = table.clone();
        let shutdown = shutdown.clone();
        tokio::spawn(async move {
            tokio::select! {
                _ = shutdown.cancelled() => {}
                _ = connection(stream, &table) => {}
            }
        });
    }
}

async fn connection(mut client: TcpStream, table: &FrontTable) {
    let mut buffer = Vec::with_capacity(1024);
    let name = loop {
        match asked(&buffer) {
            Asked::Name(name) => break name,
            Asked::Unroutable => return refuse(&mut client, &buffer, None).await,
            Asked::Incomplete if buffer.len() >= MAX_PEEK => {
                return refuse(&mut client, &buffer, None).await;
            }
            Asked::Incomplete => {}
        }
        let mut chunk = [0u8; 4096];
        match tokio::time::timeout(PEEK_TIMEOUT, client.read(&mut chunk)).await {
            Ok(Ok(n)) if n > 0 => buffer.extend_from_slice(&chunk[..n]),
            _ => return,
        }
    };
    let Some(backend) = table.lookup(&name) else {
        return refuse(&mut client, &buffer, Some(&name)).await;
    };
    let Ok(Ok(mut upstream)) =
        tokio::time::timeout(PEEK_TIMEOUT, TcpStream::connect(backend)).await
    else {
        tracing::debug!(%name, %backend, "front: the load balancer does not answer");
        return;
    };
    if upstream.write_all(&buffer).await.is_err() {
        return;
    }
    let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
}

/// A connection the front cannot place: HTTP gets 421 naming the problem; TLS is closed.
async fn refuse(client: &mut TcpStream, buffer: &[u8], name: Option<&str>) {
    if buffer.first() == Some(&0x16) {
        return;
    }
    let body = match name {
        Some(n) => format!("No load balancer here is named {n}.\n"),
        None => "A request to a load balancer's DNS name needs a Host header.\n".to_string(),
    };
    let response = format!(
        "HTTP/1.1 421 Misdirected Request\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = client.write_all(response.as_bytes()).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_come_from_the_host_header_or_the_client_hello() {
        let cases: Vec<(&str, Asked)> = vec![
            (
                "GET / HTTP/1.1\r\nHost: Web-1.us-east-1.elb.localhost:8080\r\n\r\n",
                Asked::Name("web-1.us-east-1.elb.localhost".into()),
            ),
            ("GET / HTTP/1.1\r\nHost: web-1.us-east-1.elb.localhost\r\n", Asked::Incomplete),
            ("GET / HTTP/1.1\r\n\r\n", Asked::Unroutable),
            ("\x00\x01garbage\r\n\r\n", Asked::Unroutable),
            ("GET / HTTP/1.1\r\nHost: [::1]:80\r\n\r\n", Asked::Name("[::1]".into())),
        ];
        for (input, expected) in cases {
            assert_eq!(asked(input.as_bytes()), expected, "{input:?}");
        }
        // A real ClientHello, from rustls, names its server.
        let hello = client_hello("photos-1.us-east-1.elb.localhost");
        assert_eq!(asked(&hello), Asked::Name("photos-1.us-east-1.elb.localhost".into()));
        for cut in [0, 3, 5, 40, hello.len() - 1] {
            assert_ne!(
                asked(&hello[..cut]),
                Asked::Name("photos-1.us-east-1.elb.localhost".into())
            );
        }
        // Every prefix and every single-byte corruption parses without panicking.
        for i in 0..hello.len() {
            let mut bad = hello.clone();
            bad[i] ^= 0xff;
            let _ = asked(&bad);
            let _ = asked(&hello[..i]);
        }
    }

    /// A backend that answers every connection with its own name.
    async fn backend(name: &'static str) -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((mut s, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let mut buf = vec![0u8; 4096];
                    let n = s.read(&mut buf).await.unwrap_or(0);
                    let seen =
                        String::from_utf8_lossy(&buf[..n]).lines().next().unwrap_or("").to_string();
                    let body = format!("{name} saw {seen}");
                    let _ = s
                        .write_all(
                            format!(
                                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{body}",
                                body.len()
                            )
                            .as_bytes(),
                        )
                        .await;
                });
            }
        });
        addr
    }

    async fn get(front: SocketAddr, host: &str) -> String {
        let mut s = TcpStream::connect(front).await.unwrap();
        s.write_all(
            format!("GET /x HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n").as_bytes(),
        )
        .await
        .unwrap();
        let mut out = String::new();
        let _ = s.read_to_string(&mut out).await;
        out.split_once("\r\n\r\n")
            .map(|(head, body)| format!("{} | {body}", head.lines().next().unwrap_or("")))
            .unwrap_or(out)
    }

    #[tokio::test]
    async fn a_front_joins_each_name_to_its_load_balancer() {
        let (a, b) = (backend("photos").await, backend("api").await);
        let table = FrontTable::new();
        table.publish(HashMap::from([
            ("photos-1.us-east-1.elb.localhost".to_string(), a),
            ("api-2.us-east-1.elb.localhost".to_string(), b),
        ]));
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let front = listener.local_addr().unwrap();
        let shutdown = CancellationToken::new();
        tokio::spawn(serve(listener, table.clone(), shutdown.clone()));
        let answers = [
            get(front, "photos-1.us-east-1.elb.localhost").await,
            get(front, "API-2.us-east-1.elb.localhost:80").await,
            get(front, "other.elb.localhost").await,
        ];
        expect_test::expect![[r#"
            HTTP/1.1 200 OK | photos saw GET /x HTTP/1.1
            HTTP/1.1 200 OK | api saw GET /x HTTP/1.1
            HTTP/1.1 421 Misdirected Request | No load balancer here is named other.elb.localhost.

        "#]]
        .assert_eq(&(answers.join("\n") + "\n"));
        // A new table is read by the next connection.
        table.publish(HashMap::from([("other.elb.localhost".to_string(), b)]));
        assert!(get(front, "other.elb.localhost").await.contains("api saw"));
        shutdown.cancel();
    }

    fn client_hello(name: &str) -> Vec<u8> {
        let roots = rustls::RootCertStore::empty();
        let config = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
        let server = rustls::pki_types::ServerName::try_from(name.to_string()).unwrap();
        let mut conn = rustls::ClientConnection::new(Arc::new(config), server).unwrap();
        let mut out = Vec::new();
        conn.write_tls(&mut out).unwrap();
        out
    }
}
