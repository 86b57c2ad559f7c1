//! One request through the load balancer: route by the listener's rules, answer fixed
//! responses and redirects, or pick a target and forward (headers as ALB sets them), mapping
//! failures to ALB's own status codes.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::task::{Context, Poll};
use std::time::Instant;

use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Request, Response, StatusCode};
use http_body_util::{Either, Empty, Full};
use hyper::body::{Body, Frame, Incoming, SizeHint};

use crate::access_log::{self, Entry, Trail};
use crate::balance;
use crate::config::{
    Action, Forward, Listener, Peer, Redirect, Stickiness, Target, TargetGroup, XffMode,
};
use crate::matcher;
use crate::metrics::Counters;
use crate::pages;
use crate::upstream::{ResponseBody, Upstream, UpstreamError};

/// What the load balancer answers with.
pub type ProxyBody = Either<Tracked, Full<Bytes>>;

/// A target's response body; the target's in-flight count drops when it ends (or is dropped).
pub struct Tracked {
    inner: ResponseBody,
    target: Option<Arc<Target>>,
}

impl Drop for Tracked {
    fn drop(&mut self) {
        if let Some(t) = self.target.take() {
            t.in_flight.fetch_sub(1, Ordering::Relaxed);
        }
    }
}

impl Body for Tracked {
    type Data = Bytes;
    type Error = crate::upstream::BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        if let Poll::Ready(None) = polled
            && let Some(t) = self.target.take()
        {
            t.in_flight.fetch_sub(1, Ordering::Relaxed);
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// What one connection shares across its requests.
pub struct Conn {
    pub listener: Arc<arc_swap::ArcSwap<Listener>>,
    pub peer: Peer,
    pub upstream: Upstream,
    /// The client's address as X-Forwarded-For gives it, without and with its port (made
    /// once per connection, not per request).
    client_ip: std::sync::OnceLock<HeaderValue>,
    client_ip_port: std::sync::OnceLock<HeaderValue>,
    /// What the TLS handshake settled, on HTTPS listeners.
    pub tls: Option<TlsSession>,
}

/// A client connection's TLS parameters, as access log lines name them.
#[derive(Clone, Debug, Default)]
pub struct TlsSession {
    /// OpenSSL's name of the cipher suite (`ECDHE-RSA-AES128-GCM-SHA256`, `TLS_AES_128_GCM_SHA256`).
    pub cipher: &'static str,
    /// `TLSv1.2` or `TLSv1.3`.
    pub protocol: &'static str,
    /// The SNI server name the client sent.
    pub server_name: Option<String>,
}

impl TlsSession {
    pub fn of(conn: &rustls::ServerConnection) -> TlsSession {
        use rustls::CipherSuite as S;
        let cipher = match conn.negotiated_cipher_suite().map(|s| s.suite()) {
            Some(S::TLS13_AES_128_GCM_SHA256) => "TLS_AES_128_GCM_SHA256",
            Some(S::TLS13_AES_256_GCM_SHA384) => "TLS_AES_256_GCM_SHA384",
            Some(S::TLS13_CHACHA20_POLY1305_SHA256) => "TLS_CHACHA20_POLY1305_SHA256",
            Some(S::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256) => "ECDHE-ECDSA-AES128-GCM-SHA256",
            Some(S::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384) => "ECDHE-ECDSA-AES256-GCM-SHA384",
            Some(S::TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256) => {
                "ECDHE-ECDSA-CHACHA20-POLY1305"
            }
            Some(S::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256) => "ECDHE-RSA-AES128-GCM-SHA256",
            Some(S::TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384) => "ECDHE-RSA-AES256-GCM-SHA384",
            Some(S::TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256) => "ECDHE-RSA-CHACHA20-POLY1305",
            _ => "-",
        };
        let protocol = match conn.protocol_version() {
            Some(rustls::ProtocolVersion::TLSv1_2) => "TLSv1.2",
            Some(rustls::ProtocolVersion::TLSv1_3) => "TLSv1.3",
            _ => "-",
        };
        TlsSession { cipher, protocol, server_name: conn.server_name().map(str::to_string) }
    }
}

impl Conn {
    pub fn new(listener: Arc<arc_swap::ArcSwap<Listener>>, peer: Peer, upstream: Upstream) -> Conn {
        Conn {
            listener,
            peer,
            upstream,
            client_ip: std::sync::OnceLock::new(),
            client_ip_port: std::sync::OnceLock::new(),
            tls: None,
        }
    }

    /// The client as X-Forwarded-For names it, with or without its port (made once per
    /// connection, when first needed).
    fn forwarded_for(&self, with_port: bool) -> &HeaderValue {
        let make = |text: String| {
            HeaderValue::from_maybe_shared(Bytes::from(text))
                .unwrap_or(HeaderValue::from_static("-"))
        };
        if with_port {
            self.client_ip_port.get_or_init(|| {
                make(match self.peer.addr {
                    std::net::SocketAddr::V6(a) => format!("[{}]:{}", a.ip(), a.port()),
                    a => a.to_string(),
                })
            })
        } else {
            self.client_ip.get_or_init(|| make(self.peer.addr.ip().to_string()))
        }
    }
}

fn full(status: u16, content_type: &'static str, body: Bytes) -> Response<ProxyBody> {
    let mut r = Response::new(Either::Right(Full::new(body)));
    *r.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_GATEWAY);
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    r
}

/// An answer of the load balancer's own (`Server: awselb/2.0`).
pub fn elb_error(status: u16, counters: &Counters) -> Response<ProxyBody> {
    counters.elb_status(status);
    let mut r = full(status, "text/html", pages::body(status));
    r.headers_mut().insert(header::SERVER, HeaderValue::from_static("awselb/2.0"));
    r
}

const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
const X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
const X_FORWARDED_PORT: HeaderName = HeaderName::from_static("x-forwarded-port");
const X_AMZN_TRACE_ID: HeaderName = HeaderName::from_static("x-amzn-trace-id");

const HOP_BY_HOP: [HeaderName; 7] = [
    header::CONNECTION,
    HeaderName::from_static("keep-alive"),
    HeaderName::from_static("proxy-connection"),
    header::TE,
    header::TRAILER,
    header::TRANSFER_ENCODING,
    header::UPGRADE,
];

fn strip_hop_by_hop(headers: &mut HeaderMap) {
    // One pass over the names finds which are present (most messages have none).
    let mut present = [false; 7];
    for name in headers.keys() {
        if let Some(i) = HOP_BY_HOP.iter().position(|h| h == name) {
            present[i] = true;
        }
    }
    if !present.contains(&true) {
        return;
    }
    // Headers named in Connection are hop-by-hop too.
    if present[0] {
        let named: Vec<HeaderName> = headers
            .get_all(header::CONNECTION)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .filter_map(|n| HeaderName::from_bytes(n.trim().as_bytes()).ok())
            .collect();
        for name in &named {
            headers.remove(name);
        }
    }
    for (name, _) in HOP_BY_HOP.iter().zip(present).filter(|(_, p)| *p) {
        headers.remove(name);
    }
}

/// `1-<epoch hex>-<24 hex>`, written into `out`.
fn trace_root_into(out: &mut Vec<u8>) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.extend_from_slice(b"1-");
    let epoch = crate::balance::now_secs() as u32;
    for shift in (0..8).rev() {
        out.push(HEX[((epoch >> (shift * 4)) & 0xf) as usize]);
    }
    out.push(b'-');
    let (a, b) = (fastrand::u64(..), fastrand::u64(..));
    for i in 0..24 {
        let word = if i < 16 { a >> ((15 - i) * 4) } else { b >> ((23 - i) * 4) };
        out.push(HEX[(word & 0xf) as usize]);
    }
}

fn trace_root() -> String {
    let mut out = Vec::with_capacity(35);
    trace_root_into(&mut out);
    // ASCII hex digits only.
    String::from_utf8(out).unwrap_or_default()
}

/// X-Amzn-Trace-Id as ALB sets it: add a Root, or a Self before an existing Root.
fn trace_id(existing: Option<&HeaderValue>) -> HeaderValue {
    let value = match existing.and_then(|v| v.to_str().ok()) {
        None => {
            // The common case, without intermediate strings.
            let mut out = Vec::with_capacity(40);
            out.extend_from_slice(b"Root=");
            trace_root_into(&mut out);
            return HeaderValue::from_maybe_shared(Bytes::from(out)).unwrap_or_else(|_| {
                HeaderValue::from_static("Root=1-00000000-000000000000000000000000")
            });
        }
        Some(v) if v.len() > 7 * 1024 => format!("Root={}", trace_root()),
        Some(v) if v.contains("Self=") => {
            let rest: Vec<&str> =
                v.split(';').filter(|p| !p.trim_start().starts_with("Self=")).collect();
            format!("Self={};{}", trace_root(), rest.join(";"))
        }
        Some(v) if v.contains("Root=") => format!("Self={};{v}", trace_root()),
        Some(v) => format!("Root={};{v}", trace_root()),
    };
    HeaderValue::from_str(&value)
        .unwrap_or_else(|_| HeaderValue::from_static("Root=1-00000000-000000000000000000000000"))
}

/// ALB's header limits: request line over 16K, one header over 16K, all headers over 64K.
fn oversized<B>(req: &Request<B>) -> bool {
    const LINE: usize = 16 * 1024;
    let uri = req.uri();
    let target = uri.path_and_query().map_or(1, |p| p.as_str().len())
        + uri.authority().map_or(0, |a| a.as_str().len() + 3)
        + uri.scheme_str().map_or(0, str::len);
    if target > LINE {
        return true;
    }
    let mut total = 0;
    for (name, value) in req.headers() {
        let size = name.as_str().len() + value.len() + 4;
        if size > LINE {
            return true;
        }
        total += size;
    }
    total > 64 * 1024
}

/// Handles one request (and writes its access log line when the load balancer has them on).
pub async fn handle(req: Request<Incoming>, conn: Arc<Conn>) -> Response<ProxyBody> {
    let listener = conn.listener.load_full();
    let counters = &listener.lb.counters;
    let Some(log) = &listener.lb.access_log else {
        let mut unanswered = Unanswered { counters, log: None, armed: true };
        let response = respond(req, &conn, &listener, &mut None).await;
        unanswered.armed = false;
        return response;
    };
    let scheme = if listener.https { "https" } else { "http" };
    let host = request_host_of(&req).map(|h| matcher::strip_port(h).to_string());
    let request_line = format!(
        "{} {scheme}://{}:{}{} {:?}",
        req.method(),
        host.as_deref().unwrap_or("-"),
        listener.port,
        req.uri().path_and_query().map_or("/", |p| p.as_str()),
        req.version()
    );
    let user_agent = req
        .headers()
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("-")
        .to_string();
    let context = LogContext {
        log,
        kind: match (req.version(), listener.https) {
            (http::Version::HTTP_2, _) => "h2",
            (_, true) => "https",
            _ => "http",
        },
        elb: &listener.lb.full_name,
        client: conn.peer.addr,
        received_bytes: head_size(req.headers(), request_line.len())
            + req.body().size_hint().exact().unwrap_or(0),
        request: &request_line,
        user_agent: &user_agent,
        tls: conn.tls.as_ref(),
        created: std::time::SystemTime::now(),
    };
    let mut unanswered = Unanswered { counters, log: Some(context), armed: true };
    let mut trail = Some(Trail::default());
    let response = respond(req, &conn, &listener, &mut trail).await;
    unanswered.armed = false;
    let sent_bytes =
        head_size(response.headers(), 17) + response.body().size_hint().exact().unwrap_or(0);
    if let Some(context) = &unanswered.log {
        context.send(response.status().as_u16(), sent_bytes, &trail.unwrap_or_default());
    }
    response
}

/// What an access log line says of a request besides how it was answered.
struct LogContext<'a> {
    log: &'a crate::config::AccessLog,
    kind: &'static str,
    elb: &'a str,
    client: std::net::SocketAddr,
    received_bytes: u64,
    request: &'a str,
    user_agent: &'a str,
    tls: Option<&'a TlsSession>,
    created: std::time::SystemTime,
}

impl LogContext<'_> {
    /// Hands the line over to the writer without waiting (a full queue drops and counts it).
    fn send(&self, elb_status: u16, sent_bytes: u64, trail: &Trail) {
        let line = access_log::format(&Entry {
            kind: self.kind,
            time: std::time::SystemTime::now(),
            elb: self.elb,
            client: self.client,
            elb_status,
            received_bytes: self.received_bytes,
            sent_bytes,
            request: self.request,
            user_agent: self.user_agent,
            ssl_cipher: self.tls.map(|t| t.cipher),
            ssl_protocol: self.tls.map(|t| t.protocol),
            domain_name: self.tls.and_then(|t| t.server_name.as_deref()),
            created: self.created,
            trail,
        });
        if self.log.lines.try_send(line).is_err() {
            self.log.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// Counts (and logs, when access logs are on) a request whose client went away before the
/// load balancer answered: ALB's 460, in HTTPCode_ELB_4XX_Count. The request's future is
/// dropped unfinished.
struct Unanswered<'a> {
    counters: &'a Counters,
    log: Option<LogContext<'a>>,
    armed: bool,
}

impl Drop for Unanswered<'_> {
    fn drop(&mut self) {
        if self.armed {
            self.counters.elb_status(460);
            if let Some(context) = &self.log {
                context.send(460, 0, &Trail::default());
            }
        }
    }
}

/// The request's host: the URI's authority (HTTP/2, absolute form) or the Host header.
fn request_host_of<B>(req: &Request<B>) -> Option<&str> {
    req.uri()
        .authority()
        .map(|a| a.as_str())
        .or_else(|| req.headers().get(header::HOST).and_then(|h| h.to_str().ok()))
}

/// Bytes of a message head: its first line and its headers.
fn head_size(headers: &HeaderMap, first_line: usize) -> u64 {
    let fields: usize = headers.iter().map(|(n, v)| n.as_str().len() + v.len() + 4).sum();
    (first_line + 2 + fields + 2) as u64
}

async fn respond(
    req: Request<Incoming>,
    conn: &Conn,
    listener: &Arc<Listener>,
    trail: &mut Option<Trail>,
) -> Response<ProxyBody> {
    let counters = &listener.lb.counters;
    if oversized(&req) {
        return elb_error(400, counters);
    }
    if req.method() == http::Method::TRACE {
        return elb_error(405, counters);
    }
    // More than 30 addresses in X-Forwarded-For: 463.
    let xff_count: usize = req
        .headers()
        .get_all(&X_FORWARDED_FOR)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .map(|v| v.split(',').count())
        .sum();
    if xff_count > 30 {
        return elb_error(463, counters);
    }
    if let Some(te) = req.headers().get(header::TRANSFER_ENCODING).and_then(|v| v.to_str().ok()) {
        let ok = te
            .split(',')
            .map(str::trim)
            .all(|t| t.eq_ignore_ascii_case("chunked") || t.eq_ignore_ascii_case("identity"));
        if !ok {
            return elb_error(501, counters);
        }
    }
    let (parts, body) = req.into_parts();
    let Some(rule) = matcher::route(listener, &parts, conn.peer) else {
        return elb_error(503, counters);
    };
    if let Some(t) = trail {
        t.priority = Some(rule.priority);
        t.action = Some(match rule.action {
            Action::Forward(_) => "forward",
            Action::Redirect(_) => "redirect",
            Action::Fixed { .. } => "fixed-response",
        });
    }
    match &rule.action {
        Action::Fixed { status, content_type, body } => {
            Counters::add(&counters.fixed_responses, 1);
            let mut r = Response::new(Either::Right(Full::new(body.clone())));
            *r.status_mut() = StatusCode::from_u16(*status).unwrap_or(StatusCode::OK);
            if let Ok(v) = HeaderValue::from_str(content_type) {
                r.headers_mut().insert(header::CONTENT_TYPE, v);
            }
            r.headers_mut().insert(header::SERVER, HeaderValue::from_static("awselb/2.0"));
            r
        }
        Action::Redirect(redirect) => {
            Counters::add(&counters.redirects, 1);
            let response = redirect_response(redirect, &parts, listener);
            if let Some(t) = trail {
                t.redirect_url = response
                    .headers()
                    .get(header::LOCATION)
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_string);
            }
            response
        }
        Action::Forward(forward) => {
            forward_request(forward, parts, body, listener, conn, trail).await
        }
    }
}

fn redirect_response(
    r: &Redirect,
    parts: &http::request::Parts,
    listener: &Listener,
) -> Response<ProxyBody> {
    let protocol = if listener.https { "https" } else { "http" };
    let host = matcher::request_host(parts).unwrap_or("localhost").to_string();
    let port = listener.port.to_string();
    let path = parts.uri.path().trim_start_matches('/').to_string();
    let query = parts.uri.query().unwrap_or("").to_string();
    let fill = |template: &Option<String>, default: &str| -> String {
        template
            .as_deref()
            .unwrap_or(default)
            .replace("#{protocol}", protocol)
            .replace("#{host}", &host)
            .replace("#{port}", &port)
            .replace("#{path}", &path)
            .replace("#{query}", &query)
    };
    let new_protocol = fill(&r.protocol, "#{protocol}").to_lowercase();
    let new_host = fill(&r.host, "#{host}");
    let new_port = fill(&r.port, "#{port}");
    let new_path = fill(&r.path, "/#{path}");
    let new_query = fill(&r.query, "#{query}");
    let default_port = (new_protocol == "https" && new_port == "443")
        || (new_protocol == "http" && new_port == "80");
    let mut location = format!("{new_protocol}://{new_host}");
    if !default_port {
        location.push(':');
        location.push_str(&new_port);
    }
    if !new_path.starts_with('/') {
        location.push('/');
    }
    location.push_str(&new_path);
    if !new_query.is_empty() {
        location.push('?');
        location.push_str(&new_query);
    }
    let status = if r.status == 302 { StatusCode::FOUND } else { StatusCode::MOVED_PERMANENTLY };
    let mut response = Response::new(Either::Right(Full::new(Bytes::new())));
    *response.status_mut() = status;
    if let Ok(v) = HeaderValue::from_str(&location) {
        response.headers_mut().insert(header::LOCATION, v);
    }
    response.headers_mut().insert(header::SERVER, HeaderValue::from_static("awselb/2.0"));
    response
}

/// Sets the headers ALB adds toward targets.
fn rewrite_request_headers(parts: &mut http::request::Parts, listener: &Listener, conn: &Conn) {
    let headers = &mut parts.headers;
    let lb = &listener.lb;
    let client = conn.forwarded_for(lb.xff_client_port);
    match lb.xff {
        XffMode::Append => {
            let mut existing = headers.get_all(&X_FORWARDED_FOR).iter().peekable();
            if existing.peek().is_none() {
                headers.insert(X_FORWARDED_FOR, client.clone());
            } else {
                let mut value: Vec<u8> = Vec::with_capacity(64);
                for v in existing {
                    value.extend_from_slice(v.as_bytes());
                    value.extend_from_slice(b", ");
                }
                value.extend_from_slice(client.as_bytes());
                if let Ok(v) = HeaderValue::from_bytes(&value) {
                    headers.insert(X_FORWARDED_FOR, v);
                }
            }
        }
        XffMode::Remove => {
            headers.remove(&X_FORWARDED_FOR);
        }
        XffMode::Preserve => {}
    }
    headers.insert(
        X_FORWARDED_PROTO,
        HeaderValue::from_static(if listener.https { "https" } else { "http" }),
    );
    headers.insert(X_FORWARDED_PORT, HeaderValue::from(listener.port));
    let trace = trace_id(headers.get(&X_AMZN_TRACE_ID));
    headers.insert(X_AMZN_TRACE_ID, trace);
    if !lb.preserve_host {
        // Listener 80/443: no port in Host; other ports: append the listener port if missing.
        let from_uri = parts.uri.authority().is_some();
        let host = parts
            .uri
            .authority()
            .map(|a| a.as_str())
            .or_else(|| headers.get(header::HOST).and_then(|h| h.to_str().ok()));
        if let Some(host) = host {
            let bare = matcher::strip_port(host);
            let has_port = host.len() != bare.len();
            let default_port = listener.port == 80 || listener.port == 443;
            // Most requests already carry the Host the target should see.
            if from_uri || has_port == default_port {
                let value = if default_port {
                    bare.to_string()
                } else if !has_port {
                    format!("{bare}:{}", listener.port)
                } else {
                    host.to_string()
                };
                if let Ok(v) = HeaderValue::from_str(&value) {
                    headers.insert(header::HOST, v);
                }
            }
        }
    }
}

async fn forward_request(
    forward: &Forward,
    mut parts: http::request::Parts,
    body: Incoming,
    listener: &Listener,
    conn: &Conn,
    trail: &mut Option<Trail>,
) -> Response<ProxyBody> {
    let counters = &listener.lb.counters;
    let arrived = Instant::now();
    // The group: by AWSALBTG stickiness, else by weight.
    let sticky_group = forward.group_stickiness.and_then(|d| {
        let v = balance::cookie(&parts.headers, "AWSALBTG")?;
        let (g, _, issued) = balance::decode_cookie(v)?;
        balance::fresh(issued, d).then_some(())?;
        forward.groups.iter().find(|(tg, w)| tg.id == g && *w > 0).map(|(tg, _)| tg.clone())
    });
    let group_stuck = sticky_group.is_some();
    let Some(group) = sticky_group.or_else(|| balance::choose_group(&forward.groups)) else {
        return elb_error(503, counters);
    };
    if let Some(t) = trail
        && let Some(log) = &listener.lb.access_log
    {
        t.target_group_arn = Some(format!("{}{}", log.arn_prefix, group.full_name));
    }
    let set = group.targets.load();
    if set.routable.is_empty() {
        return elb_error(503, counters);
    }
    if set.fail_open {
        Counters::add(&counters.unhealthy_routing, 1);
    }
    let (target, cookies) = pick(&group, &set, &parts.headers, counters);
    Counters::add(&counters.request_count, 1);
    Counters::add(&group.counters.request_count, 1);
    rewrite_request_headers(&mut parts, listener, conn);
    // A WebSocket (or other) upgrade keeps its Upgrade header and gets a connection of its own.
    let upgrade = upgrade_of(&parts.headers);
    strip_hop_by_hop(&mut parts.headers);
    if let Some(t) = trail {
        t.trace_id =
            parts.headers.get(&X_AMZN_TRACE_ID).and_then(|v| v.to_str().ok()).map(str::to_string);
    }
    if let Some(protocol) = upgrade {
        return forward_upgrade(parts, body, protocol, &target, &group, listener, trail).await;
    }
    let idempotent = listener.lb.retry_idempotent
        && matches!(parts.method, http::Method::GET | http::Method::HEAD | http::Method::OPTIONS)
        && body.is_end_stream();
    let started = Instant::now();
    let mut attempt_target = target;
    let mut body = Some(body);
    // The request is kept for a retry only when one may happen.
    let mut spare = idempotent.then(|| parts.clone());
    let mut parts = Some(parts);
    let result = loop {
        attempt_target.in_flight.fetch_add(1, Ordering::Relaxed);
        let request_body = match body.take() {
            Some(b) => Either::Left(b),
            None => Either::Right(Empty::new()),
        };
        let head = match parts.take().or_else(|| spare.take()) {
            Some(p) => p,
            None => break Err(UpstreamError::Reset("no request to retry".into())),
        };
        let request = Request::from_parts(head, request_body);
        if let Some(t) = trail {
            t.target = Some(attempt_target.addr);
            t.request_processing = Some(arrived.elapsed());
        }
        let sent = tokio::select! {
            r = conn.upstream.send(&attempt_target, group.http2, request, listener.lb.idle_timeout) => r,
            _ = attempt_target.cut.notified() => Err(UpstreamError::Reset("deregistration delay expired".into())),
        };
        match sent {
            Ok(response) => break Ok((response, attempt_target)),
            Err(e) => {
                attempt_target.in_flight.fetch_sub(1, Ordering::Relaxed);
                if matches!(e, UpstreamError::Connect(_)) {
                    Counters::add(&counters.target_connection_errors, 1);
                    Counters::add(&group.counters.target_connection_errors, 1);
                    tracing::debug!(target_id = %attempt_target.id, addr = %attempt_target.addr, "cannot connect to the target: {e:?}");
                }
                // A connection that failed without a response counts toward outlier ejection
                // (when the group has it on).
                if e.no_response() && attempt_target.note_failure(&group) {
                    Counters::add(&counters.outlier_ejections, 1);
                    Counters::add(&group.counters.outlier_ejections, 1);
                    tracing::info!(target_id = %attempt_target.id, "outlier ejection: the target gets no new requests for a while");
                }
                // Cumulo's opt-in: retry an idempotent request on another target when the
                // connection failed before any response byte (refused, reset or closed).
                if idempotent && e.no_response() && spare.is_some() {
                    let others: Vec<Arc<Target>> = group
                        .targets
                        .load()
                        .routable
                        .iter()
                        .filter(|t| !Arc::ptr_eq(t, &attempt_target))
                        .cloned()
                        .collect();
                    if let Some(next) = others.get(fastrand::usize(..others.len().max(1))).cloned()
                    {
                        attempt_target = next;
                        continue;
                    }
                }
                break Err(e);
            }
        }
    };
    let (response, target) = match result {
        Ok(r) => r,
        Err(e) => {
            let (status, reason) = match e {
                UpstreamError::Timeout => (504, "TargetResponseTimeout"),
                UpstreamError::ClientBody(_) => (400, "ClientBodyError"),
                UpstreamError::Connect(_) => (502, "TargetConnectionError"),
                _ => (502, "TargetResponseError"),
            };
            if let Some(t) = trail {
                t.error_reason = Some(reason);
                t.target_processing = Some(started.elapsed());
            }
            return elb_error(status, counters);
        }
    };
    target.note_success(&group);
    let elapsed = started.elapsed();
    if let Some(t) = trail {
        t.target = Some(target.addr);
        t.target_processing = Some(elapsed);
        t.target_status = Some(response.status().as_u16());
    }
    let (mut head, incoming) = response.into_parts();
    counters.target_status(head.status.as_u16());
    group.counters.target_status(head.status.as_u16());
    Counters::add(&counters.target_response_us, elapsed.as_micros() as u64);
    Counters::add(&counters.target_responses, 1);
    strip_hop_by_hop(&mut head.headers);
    for c in cookies {
        head.headers.append(header::SET_COOKIE, c);
    }
    if let Some(value) = app_cookie(&group, &target, &head.headers) {
        head.headers.append(header::SET_COOKIE, value);
    }
    if forward.group_stickiness.is_some() && !group_stuck {
        let v = balance::encode_cookie(&group.id, "");
        if let Ok(h) =
            HeaderValue::from_str(&format!("AWSALBTG={v}; Expires={}; Path=/", expires()))
        {
            head.headers.append(header::SET_COOKIE, h);
        }
    }
    Response::from_parts(head, Either::Left(Tracked { inner: incoming, target: Some(target) }))
}

/// The protocol an HTTP/1.1 request asks to upgrade to (`Connection: upgrade` + `Upgrade`).
fn upgrade_of(headers: &HeaderMap) -> Option<HeaderValue> {
    let asks = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|t| t.trim().eq_ignore_ascii_case("upgrade"));
    if asks { headers.get(header::UPGRADE).cloned() } else { None }
}

/// Forwards an upgrade request. When the target answers 101, the client's and the target's
/// connections are joined byte for byte until either side closes (the WebSocket stays with
/// the target that accepted it).
async fn forward_upgrade(
    mut parts: http::request::Parts,
    body: Incoming,
    protocol: HeaderValue,
    target: &Arc<Target>,
    group: &TargetGroup,
    listener: &Listener,
    trail: &mut Option<Trail>,
) -> Response<ProxyBody> {
    let counters = &listener.lb.counters;
    let client_side = parts.extensions.remove::<hyper::upgrade::OnUpgrade>();
    parts.headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
    parts.headers.insert(header::UPGRADE, protocol);
    if let Some(t) = trail {
        t.target = Some(target.addr);
    }
    let started = Instant::now();
    let request = Request::from_parts(parts, Either::Left(body));
    let mut response =
        match crate::upstream::send_upgrade(target.addr, request, listener.lb.idle_timeout).await {
            Ok(r) => r,
            Err(e) => {
                if e.no_response() && target.note_failure(group) {
                    Counters::add(&counters.outlier_ejections, 1);
                }
                let status = if matches!(e, UpstreamError::Timeout) { 504 } else { 502 };
                return elb_error(status, counters);
            }
        };
    target.note_success(group);
    let status = response.status().as_u16();
    counters.target_status(status);
    group.counters.target_status(status);
    if let Some(t) = trail {
        t.target_status = Some(status);
        t.target_processing = Some(started.elapsed());
    }
    if response.status() == StatusCode::SWITCHING_PROTOCOLS
        && let Some(client_side) = client_side
    {
        let target_side = hyper::upgrade::on(&mut response);
        let target = target.clone();
        target.in_flight.fetch_add(1, Ordering::Relaxed);
        tokio::spawn(async move {
            if let (Ok(client), Ok(upstream)) = (client_side.await, target_side.await) {
                let mut client = hyper_util::rt::TokioIo::new(client);
                let mut upstream = hyper_util::rt::TokioIo::new(upstream);
                let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
            }
            target.in_flight.fetch_sub(1, Ordering::Relaxed);
        });
        let (head, _) = response.into_parts();
        return Response::from_parts(head, Either::Right(Full::new(Bytes::new())));
    }
    let (mut head, incoming) = response.into_parts();
    strip_hop_by_hop(&mut head.headers);
    target.in_flight.fetch_add(1, Ordering::Relaxed);
    Response::from_parts(
        head,
        Either::Left(Tracked {
            inner: ResponseBody::Hyper(incoming),
            target: Some(target.clone()),
        }),
    )
}

/// The target for this request, and the stickiness cookies to set.
fn pick(
    group: &TargetGroup,
    set: &crate::config::TargetSet,
    headers: &HeaderMap,
    counters: &Counters,
) -> (Arc<Target>, Vec<HeaderValue>) {
    match &group.stickiness {
        Stickiness::None => {
            (balance::choose(group, set).unwrap_or_else(|| set.routable[0].clone()), Vec::new())
        }
        Stickiness::LbCookie(duration) => {
            let stuck = balance::cookie(headers, "AWSALB")
                .and_then(|v| balance::sticky_target(group, set, v, *duration));
            let fresh = stuck.is_none();
            if fresh {
                Counters::add(&counters.non_sticky, 1);
            }
            let target = stuck
                .or_else(|| balance::choose(group, set))
                .unwrap_or_else(|| set.routable[0].clone());
            let value = balance::encode_cookie(&group.id, &target.key());
            let expires = expires();
            let cookies = [
                format!("AWSALB={value}; Expires={expires}; Path=/"),
                format!("AWSALBCORS={value}; Expires={expires}; Path=/; SameSite=None; Secure"),
            ];
            (target, cookies.iter().filter_map(|c| HeaderValue::from_str(c).ok()).collect())
        }
        Stickiness::AppCookie { duration, .. } => {
            let stuck = (0..4)
                .find_map(|i| balance::cookie(headers, &format!("AWSALBAPP-{i}")))
                .and_then(|v| balance::sticky_target(group, set, v, *duration));
            if stuck.is_none() {
                Counters::add(&counters.non_sticky, 1);
            }
            (
                stuck
                    .or_else(|| balance::choose(group, set))
                    .unwrap_or_else(|| set.routable[0].clone()),
                Vec::new(),
            )
        }
    }
}

/// When the target sets the application cookie, ALB sets `AWSALBAPP-0` naming the target.
fn app_cookie(group: &TargetGroup, target: &Target, response: &HeaderMap) -> Option<HeaderValue> {
    let Stickiness::AppCookie { name, .. } = &group.stickiness else { return None };
    let sets = response
        .get_all(header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.trim_start().starts_with(&format!("{name}=")));
    if !sets {
        return None;
    }
    let value = balance::encode_cookie(&group.id, &target.key());
    HeaderValue::from_str(&format!("AWSALBAPP-0={value}; Expires={}; Path=/", expires())).ok()
}

/// An HTTP date seven days from now (ALB's cookies use Expires, not Max-Age).
fn expires() -> String {
    let t = std::time::SystemTime::now() + balance::COOKIE_LIFETIME;
    httpdate(t)
}

fn httpdate(t: std::time::SystemTime) -> String {
    let secs = t.duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let days = secs / 86_400;
    let rem = secs % 86_400;
    let (h, m, s) = (rem / 3600, (rem % 3600) / 60, rem % 60);
    let weekday = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"][(days % 7) as usize];
    let (year, month, day) = civil(days);
    let months =
        ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
    format!("{weekday}, {day:02} {} {year} {h:02}:{m:02}:{s:02} GMT", months[(month - 1) as usize])
}

/// The civil date (year, month, day) of a day counted from 1970-01-01 (Howard Hinnant's
/// algorithm).
pub(crate) fn civil(days: u64) -> (i64, u32, u32) {
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(month <= 2), month as u32, day as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_dates() {
        let t = std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_700_000_000);
        assert_eq!(httpdate(t), "Tue, 14 Nov 2023 22:13:20 GMT");
    }

    #[test]
    fn trace_ids() {
        let fresh = trace_id(None);
        let fresh = fresh.to_str().unwrap();
        assert!(fresh.starts_with("Root=1-") && fresh.len() == 40, "{fresh}");
        assert!(fresh[7..].chars().all(|c| c == '-' || c.is_ascii_hexdigit()), "{fresh}");
        let with_root = trace_id(Some(&HeaderValue::from_static("Root=1-abc;CalledFrom=app")));
        let v = with_root.to_str().unwrap();
        assert!(v.starts_with("Self=1-") && v.ends_with(";Root=1-abc;CalledFrom=app"), "{v}");
        let with_self = trace_id(Some(&HeaderValue::from_static("Self=1-old;Root=1-abc")));
        let v = with_self.to_str().unwrap();
        assert!(
            v.starts_with("Self=1-") && !v.contains("1-old") && v.ends_with(";Root=1-abc"),
            "{v}"
        );
    }
}
