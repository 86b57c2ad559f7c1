//! HTTP/1.1 to targets without a connection task: the request's own task writes the request
//! head (and body) to a pooled connection, reads the response head with httparse and hands the
//! connection to the response body, which puts it back in this thread's pool once the body has
//! been read to its end. A general client keeps each connection in a task of its own and
//! reaches it through channels; a proxy thread that owns its connections does not need to.
//!
//! Framing follows RFC 9112 §6: no body for HEAD and 204/304; `Transfer-Encoding` ending in
//! `chunked` is decoded (any other coding reads to close); `Content-Length` values must agree;
//! otherwise the body runs to the connection's close. Only connections whose response ended
//! exactly where its framing said go back to the pool.

use std::cell::RefCell;
use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http::header::{self, HeaderName, HeaderValue};
use http::{Method, Request, Response, StatusCode, Version};
use hyper::body::{Body as HttpBody, Frame, SizeHint};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

use crate::upstream::{RequestBody, UpstreamError};

/// How long a TCP connect to a target may take (then 504).
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Idle connections kept per target and thread.
const MAX_IDLE: usize = 512;
/// ALB answers 502 when a target's response headers pass 32K; a little slack for the line.
const MAX_HEAD: usize = 33 * 1024;
const MAX_HEADERS: usize = 128;
/// A chunk-size line (with extensions) or a trailer line longer than this is malformed.
const MAX_LINE: usize = 4096;
const READ_CHUNK: usize = 16 * 1024;

/// An open HTTP/1.1 connection to a target, with what has been read from it and not used.
pub struct Connection {
    io: TcpStream,
    buf: BytesMut,
    addr: SocketAddr,
}

thread_local! {
    static IDLE: RefCell<HashMap<SocketAddr, Vec<Connection>>> = RefCell::new(HashMap::new());
}

/// A TCP connection to a target: refused or unreachable is a connect error (502), no answer
/// within 10 s a timeout (504).
pub async fn connect_tcp(addr: SocketAddr) -> Result<TcpStream, UpstreamError> {
    let io = match tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(addr)).await {
        Err(_) => return Err(UpstreamError::Timeout),
        Ok(Err(e)) => return Err(UpstreamError::Connect(e.to_string())),
        Ok(Ok(s)) => s,
    };
    let _ = io.set_nodelay(true);
    Ok(io)
}

impl Connection {
    pub async fn connect(addr: SocketAddr) -> Result<Connection, UpstreamError> {
        let io = connect_tcp(addr).await?;
        Ok(Connection { io, buf: BytesMut::with_capacity(READ_CHUNK), addr })
    }

    /// An idle connection of this thread's pool that the target has not closed, if any.
    pub fn take_idle(addr: SocketAddr) -> Option<Connection> {
        IDLE.with(|idle| {
            let mut idle = idle.borrow_mut();
            let list = idle.get_mut(&addr)?;
            while let Some(conn) = list.pop() {
                if conn.still_open() {
                    return Some(conn);
                }
            }
            None
        })
    }

    /// Closes this thread's idle connections that their target has closed (an instance that
    /// was stopped or replaced), so targets that are gone leave no sockets behind. Runs on
    /// every data-plane thread.
    pub async fn sweep_idle(every: Duration) {
        let mut tick = tokio::time::interval(every);
        loop {
            tick.tick().await;
            IDLE.with(|idle| {
                idle.borrow_mut().retain(|_, list| {
                    list.retain(Connection::still_open);
                    !list.is_empty()
                });
            });
        }
    }

    /// Idle connections this thread holds for `addr`.
    #[cfg(test)]
    fn idle_count(addr: SocketAddr) -> usize {
        IDLE.with(|idle| idle.borrow().get(&addr).map_or(0, Vec::len))
    }

    /// An idle connection has nothing to read: a close (or stray bytes) shows as readable.
    /// No system call unless the socket was reported readable.
    fn still_open(&self) -> bool {
        let mut probe = [0u8; 1];
        matches!(self.io.try_read(&mut probe), Err(e) if e.kind() == io::ErrorKind::WouldBlock)
    }

    fn release(self) {
        if !self.buf.is_empty() {
            return;
        }
        IDLE.with(|idle| {
            let mut idle = idle.borrow_mut();
            let list = idle.entry(self.addr).or_default();
            if list.len() < MAX_IDLE {
                list.push(self);
            }
        });
    }

    /// Reads more into the buffer; 0 at the end of the stream.
    fn poll_fill(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<usize>> {
        if self.buf.capacity() - self.buf.len() < 1024 {
            self.buf.reserve(READ_CHUNK);
        }
        tokio_util::io::poll_read_buf(Pin::new(&mut self.io), cx, &mut self.buf)
    }

    async fn fill(&mut self) -> io::Result<usize> {
        std::future::poll_fn(|cx| self.poll_fill(cx)).await
    }
}

/// Why an exchange failed, and whether the target had answered anything at all.
#[derive(Debug)]
pub struct SendError {
    pub error: UpstreamError,
    /// Nothing of a response arrived (a reused connection that the target had closed can be
    /// replaced by a fresh one for a request without a body).
    pub nothing_read: bool,
}

fn reset(msg: impl Into<String>, nothing_read: bool) -> SendError {
    SendError { error: UpstreamError::Reset(msg.into()), nothing_read }
}

/// Writes the request head: origin-form target, the headers as given (the proxy has removed
/// hop-by-hop ones), and chunked framing for a body of unknown length.
fn encode_head(req: &Request<RequestBody>, chunked: bool, out: &mut Vec<u8>) {
    out.extend_from_slice(req.method().as_str().as_bytes());
    out.push(b' ');
    out.extend_from_slice(req.uri().path_and_query().map_or("/", |p| p.as_str()).as_bytes());
    out.extend_from_slice(b" HTTP/1.1\r\n");
    for (name, value) in req.headers() {
        out.extend_from_slice(name.as_str().as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    if chunked {
        out.extend_from_slice(b"transfer-encoding: chunked\r\n");
    }
    out.extend_from_slice(b"\r\n");
}

/// A request ready to go out: its encoded head and, if it has one, its body.
pub struct Prepared {
    head: Vec<u8>,
    body: Option<RequestBody>,
    chunked: bool,
    head_request: bool,
}

impl Prepared {
    pub fn new(req: Request<RequestBody>) -> Prepared {
        let has_length = req.headers().contains_key(header::CONTENT_LENGTH);
        let empty = req.body().is_end_stream();
        let chunked = !empty && !has_length;
        let head_request = req.method() == Method::HEAD;
        let mut head = Vec::with_capacity(512);
        encode_head(&req, chunked, &mut head);
        let body = (!empty).then(|| req.into_body());
        Prepared { head, body, chunked, head_request }
    }

    /// Whether the request can be sent again (it has no body, so nothing was consumed).
    pub fn repeatable(&self) -> bool {
        self.body.is_none()
    }
}

/// Sends the request on `conn` and reads the response head; the body reads the rest.
pub async fn send(
    mut conn: Connection,
    req: &mut Prepared,
) -> Result<Response<TargetBody>, SendError> {
    if let Err(e) = conn.io.write_all(&req.head).await {
        return Err(reset(e.to_string(), true));
    }
    if let Some(body) = req.body.take() {
        write_body(&mut conn.io, body, req.chunked).await?;
    }
    read_response(conn, req.head_request).await
}

async fn write_body(
    io: &mut TcpStream,
    mut body: RequestBody,
    chunked: bool,
) -> Result<(), SendError> {
    let client = |e: Box<dyn std::error::Error + Send + Sync>| SendError {
        error: UpstreamError::ClientBody(e.to_string()),
        nothing_read: false,
    };
    let mut framed = Vec::new();
    while let Some(frame) = std::future::poll_fn(|cx| Pin::new(&mut body).poll_frame(cx)).await {
        let Ok(data) = frame.map_err(client)?.into_data() else {
            continue; // trailers are not forwarded
        };
        if data.is_empty() {
            continue;
        }
        let written = if chunked {
            framed.clear();
            framed.extend_from_slice(format!("{:x}\r\n", data.len()).as_bytes());
            framed.extend_from_slice(&data);
            framed.extend_from_slice(b"\r\n");
            io.write_all(&framed).await
        } else {
            io.write_all(&data).await
        };
        written.map_err(|e| reset(e.to_string(), false))?;
    }
    if chunked {
        io.write_all(b"0\r\n\r\n").await.map_err(|e| reset(e.to_string(), false))?;
    }
    Ok(())
}

/// How the rest of a response is delimited.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Framing {
    Length(u64),
    Chunked(Chunk),
    Close,
    Done,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Chunk {
    Size,
    Data(u64),
    DataEnd,
    Trailers,
}

/// The parsed head, by offsets into the bytes read (so header values share them).
struct Head {
    len: usize,
    status: u16,
    version: Version,
    headers: Vec<(std::ops::Range<usize>, std::ops::Range<usize>)>,
}

fn parse_head(buf: &[u8]) -> Result<Option<Head>, String> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut res = httparse::Response::new(&mut headers);
    let len = match res.parse(buf) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(e) => return Err(format!("malformed response head: {e}")),
    };
    let base = buf.as_ptr() as usize;
    let offsets = res
        .headers
        .iter()
        .map(|h| {
            let n = h.name.as_ptr() as usize - base;
            let v = h.value.as_ptr() as usize - base;
            (n..n + h.name.len(), v..v + h.value.len())
        })
        .collect();
    Ok(Some(Head {
        len,
        status: res.code.unwrap_or(0),
        version: if res.version == Some(0) { Version::HTTP_10 } else { Version::HTTP_11 },
        headers: offsets,
    }))
}

async fn read_response(
    mut conn: Connection,
    head_request: bool,
) -> Result<Response<TargetBody>, SendError> {
    loop {
        let head = loop {
            match parse_head(&conn.buf) {
                Ok(Some(head)) => break head,
                Ok(None) if conn.buf.len() > MAX_HEAD => {
                    return Err(reset("response headers too large", false));
                }
                Ok(None) => {}
                Err(e) => return Err(reset(e, false)),
            }
            match conn.fill().await {
                Ok(0) => {
                    let nothing = conn.buf.is_empty();
                    return Err(reset("the target closed the connection", nothing));
                }
                Ok(_) => {}
                Err(e) => {
                    let nothing = conn.buf.is_empty();
                    return Err(reset(e.to_string(), nothing));
                }
            }
        };
        let bytes = conn.buf.split_to(head.len).freeze();
        // Interim answers (100 Continue, 103 Early Hints) are not passed on.
        if (100..200).contains(&head.status) && head.status != 101 {
            continue;
        }
        return respond(conn, head, &bytes, head_request);
    }
}

fn respond(
    conn: Connection,
    head: Head,
    bytes: &Bytes,
    head_request: bool,
) -> Result<Response<TargetBody>, SendError> {
    let (parts, framing, keep_alive) =
        interpret(head, bytes, head_request).map_err(|e| reset(e, false))?;
    let mut body = TargetBody { conn: Some(conn), framing, keep_alive };
    if body.framing == Framing::Done || body.framing == Framing::Length(0) {
        body.finish();
    }
    Ok(Response::from_parts(parts, body))
}

/// What a response head means: its status and headers, how its body is delimited, and whether
/// the connection may be reused after it.
fn interpret(
    head: Head,
    bytes: &Bytes,
    head_request: bool,
) -> Result<(http::response::Parts, Framing, bool), String> {
    let status =
        StatusCode::from_u16(head.status).map_err(|_| format!("invalid status {}", head.status))?;
    if status == StatusCode::SWITCHING_PROTOCOLS {
        return Err("101 to a request that did not ask to upgrade".into());
    }
    let mut response = Response::new(());
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.reserve(head.headers.len());
    let mut keep_alive = head.version == Version::HTTP_11;
    let mut length: Option<u64> = None;
    let mut coding_chunked: Option<bool> = None;
    for (n, v) in head.headers {
        let name = HeaderName::from_bytes(&bytes[n])
            .map_err(|_| "invalid response header name".to_string())?;
        let value = HeaderValue::from_maybe_shared(bytes.slice(v))
            .map_err(|_| "invalid response header value".to_string())?;
        if name == header::CONTENT_LENGTH {
            for part in value.as_bytes().split(|b| *b == b',') {
                let parsed = std::str::from_utf8(part)
                    .ok()
                    .map(str::trim)
                    .filter(|s| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
                    .and_then(|s| s.parse::<u64>().ok());
                match (parsed, length) {
                    (Some(l), None) => length = Some(l),
                    (Some(l), Some(prev)) if l == prev => {}
                    _ => return Err("invalid Content-Length in the response".into()),
                }
            }
        } else if name == header::TRANSFER_ENCODING {
            let last = value.as_bytes().rsplit(|b| *b == b',').next().unwrap_or_default();
            coding_chunked = Some(last.trim_ascii().eq_ignore_ascii_case(b"chunked"));
        } else if name == header::CONNECTION {
            for token in value.as_bytes().split(|b| *b == b',') {
                let token = token.trim_ascii();
                if token.eq_ignore_ascii_case(b"close") {
                    keep_alive = false;
                } else if token.eq_ignore_ascii_case(b"keep-alive")
                    && head.version == Version::HTTP_10
                {
                    keep_alive = true;
                }
            }
        }
        headers.append(name, value);
    }
    let framing =
        if head_request || status == StatusCode::NO_CONTENT || status == StatusCode::NOT_MODIFIED {
            Framing::Done
        } else if let Some(chunked) = coding_chunked {
            // Transfer-Encoding overrides Content-Length; a message with both is not reused.
            if length.is_some() {
                keep_alive = false;
            }
            if chunked { Framing::Chunked(Chunk::Size) } else { Framing::Close }
        } else if let Some(l) = length {
            Framing::Length(l)
        } else {
            Framing::Close
        };
    if framing == Framing::Close {
        keep_alive = false;
    }
    let (parts, ()) = response.into_parts();
    Ok((parts, framing, keep_alive))
}

/// A target's response head as the data plane reads it (pure: for fuzzing and tests):
/// `Ok(None)` when more bytes are needed, else the status, the framing of the body (`Debug`
/// text: `Length(n)`, `Chunked(Size)`, `Close`, `Done`) and whether the connection is reused.
pub fn parse_response_head(
    buf: &[u8],
    head_request: bool,
) -> Result<Option<(u16, String, bool)>, String> {
    let Some(head) = parse_head(buf)? else { return Ok(None) };
    let bytes = Bytes::copy_from_slice(&buf[..head.len]);
    let (parts, framing, keep_alive) = interpret(head, &bytes, head_request)?;
    Ok(Some((parts.status.as_u16(), format!("{framing:?}"), keep_alive)))
}

/// A target's response body, read from its connection as the client takes it.
pub struct TargetBody {
    conn: Option<Connection>,
    framing: Framing,
    keep_alive: bool,
}

/// A response body that broke off or was malformed.
#[derive(Debug, thiserror::Error)]
#[error("target response body: {0}")]
pub struct BodyError(String);

impl TargetBody {
    /// The body has ended where its framing said: the connection may serve another request.
    fn finish(&mut self) {
        self.framing = Framing::Done;
        if let Some(conn) = self.conn.take()
            && self.keep_alive
        {
            conn.release();
        }
    }

    fn take_data(&mut self, max: u64) -> Bytes {
        let Some(conn) = self.conn.as_mut() else { return Bytes::new() };
        let n = (conn.buf.len() as u64).min(max) as usize;
        conn.buf.split_to(n).freeze()
    }

    /// Reads more, failing when the target closes before the framing is satisfied.
    fn poll_more(&mut self, cx: &mut Context<'_>) -> Poll<Result<usize, BodyError>> {
        let Some(conn) = self.conn.as_mut() else {
            return Poll::Ready(Err(BodyError("connection gone".into())));
        };
        match ready!(conn.poll_fill(cx)) {
            Ok(n) => Poll::Ready(Ok(n)),
            Err(e) => Poll::Ready(Err(BodyError(e.to_string()))),
        }
    }

    fn buffered(&self) -> &[u8] {
        self.conn.as_ref().map_or(&[], |c| &c.buf[..])
    }

    fn advance(&mut self, n: usize) {
        if let Some(conn) = self.conn.as_mut() {
            let _ = conn.buf.split_to(n);
        }
    }
}

impl HttpBody for TargetBody {
    type Data = Bytes;
    type Error = BodyError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        let this = self.get_mut();
        loop {
            match this.framing {
                Framing::Done => return Poll::Ready(None),
                Framing::Length(remaining) => {
                    if !this.buffered().is_empty() {
                        let data = this.take_data(remaining);
                        let left = remaining - data.len() as u64;
                        this.framing = Framing::Length(left);
                        if left == 0 {
                            this.finish();
                        }
                        return Poll::Ready(Some(Ok(Frame::data(data))));
                    }
                    if ready!(this.poll_more(cx))? == 0 {
                        return Poll::Ready(Some(Err(BodyError(
                            "the target closed before the end of the body".into(),
                        ))));
                    }
                }
                Framing::Close => {
                    if !this.buffered().is_empty() {
                        let data = this.take_data(u64::MAX);
                        return Poll::Ready(Some(Ok(Frame::data(data))));
                    }
                    if ready!(this.poll_more(cx))? == 0 {
                        this.framing = Framing::Done;
                        this.conn = None;
                        return Poll::Ready(None);
                    }
                }
                Framing::Chunked(state) => {
                    if let Some(frame) = this.step_chunked(state)? {
                        return Poll::Ready(Some(Ok(frame)));
                    }
                    if this.framing == Framing::Done {
                        return Poll::Ready(None);
                    }
                    if matches!(this.framing, Framing::Chunked(s) if s == state)
                        && ready!(this.poll_more(cx))? == 0
                    {
                        return Poll::Ready(Some(Err(BodyError(
                            "the target closed inside a chunked body".into(),
                        ))));
                    }
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.framing == Framing::Done
    }

    fn size_hint(&self) -> SizeHint {
        match self.framing {
            Framing::Length(n) => SizeHint::with_exact(n),
            Framing::Done => SizeHint::with_exact(0),
            _ => SizeHint::default(),
        }
    }
}

impl TargetBody {
    /// One step of chunked decoding over the buffered bytes: a data frame, or a state change,
    /// or nothing (the state is unchanged: more bytes are needed).
    fn step_chunked(&mut self, state: Chunk) -> Result<Option<Frame<Bytes>>, BodyError> {
        let bad = |what: &str| BodyError(format!("malformed chunked body: {what}"));
        match state {
            Chunk::Size => match httparse::parse_chunk_size(self.buffered()) {
                Ok(httparse::Status::Complete((used, size))) => {
                    self.advance(used);
                    self.framing = Framing::Chunked(if size == 0 {
                        Chunk::Trailers
                    } else {
                        Chunk::Data(size)
                    });
                    Ok(None)
                }
                Ok(httparse::Status::Partial) if self.buffered().len() > MAX_LINE => {
                    Err(bad("chunk size line too long"))
                }
                Ok(httparse::Status::Partial) => Ok(None),
                Err(_) => Err(bad("invalid chunk size")),
            },
            Chunk::Data(remaining) => {
                if self.buffered().is_empty() {
                    return Ok(None);
                }
                let data = self.take_data(remaining);
                let left = remaining - data.len() as u64;
                self.framing =
                    Framing::Chunked(if left == 0 { Chunk::DataEnd } else { Chunk::Data(left) });
                Ok(Some(Frame::data(data)))
            }
            Chunk::DataEnd => {
                let b = self.buffered();
                if b.len() < 2 {
                    return Ok(None);
                }
                if &b[..2] != b"\r\n" {
                    return Err(bad("chunk data not followed by CRLF"));
                }
                self.advance(2);
                self.framing = Framing::Chunked(Chunk::Size);
                Ok(None)
            }
            Chunk::Trailers => {
                // Trailer fields are read and dropped, up to the empty line.
                let b = self.buffered();
                let Some(end) = b.windows(2).position(|w| w == b"\r\n") else {
                    return if b.len() > MAX_LINE {
                        Err(bad("trailer line too long"))
                    } else {
                        Ok(None)
                    };
                };
                self.advance(end + 2);
                if end == 0 {
                    self.finish();
                }
                Ok(None)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;
    use tokio::io::AsyncReadExt;
    use tokio::net::TcpListener;

    /// A target that reads one request head and answers with `answer` (written in pieces to
    /// exercise partial reads), then reports what it received.
    async fn target(answer: &'static [u8]) -> (SocketAddr, tokio::task::JoinHandle<String>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let task = tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.unwrap();
            let mut got = Vec::new();
            let mut buf = [0u8; 4096];
            while !got.windows(4).any(|w| w == b"\r\n\r\n") {
                let n = s.read(&mut buf).await.unwrap_or(0);
                if n == 0 {
                    break;
                }
                got.extend_from_slice(&buf[..n]);
            }
            for piece in answer.chunks(7) {
                if s.write_all(piece).await.is_err() {
                    break; // the client gave up on a malformed answer
                }
                tokio::task::yield_now().await;
            }
            // Read what else comes (a second request on a reused connection, or nothing).
            let _ = tokio::time::timeout(Duration::from_millis(50), s.read(&mut buf)).await;
            String::from_utf8_lossy(&got).into_owned()
        });
        (addr, task)
    }

    fn get(path: &str) -> Request<RequestBody> {
        let mut req = Request::new(http_body_util::Either::Right(http_body_util::Empty::new()));
        *req.uri_mut() = path.parse().unwrap();
        req.headers_mut().insert(header::HOST, HeaderValue::from_static("app"));
        req
    }

    async fn exchange(answer: &'static [u8], req: Request<RequestBody>) -> String {
        let (addr, task) = target(answer).await;
        let conn = Connection::connect(addr).await.unwrap();
        let out = match send(conn, &mut Prepared::new(req)).await {
            Err(e) => format!("error: {:?} nothing_read={}", e.error, e.nothing_read),
            Ok(response) => {
                let status = response.status();
                let headers: Vec<String> = response
                    .headers()
                    .iter()
                    .map(|(n, v)| format!("{n}: {}", v.to_str().unwrap()))
                    .collect();
                let body = response.into_body().collect().await;
                let body = match body {
                    Ok(b) => String::from_utf8_lossy(&b.to_bytes()).into_owned(),
                    Err(e) => format!("<{e}>"),
                };
                let pooled = Connection::take_idle(addr).is_some();
                format!("{status} [{}] {body:?} pooled={pooled}", headers.join("; "))
            }
        };
        let sent = task.await.unwrap();
        format!("{out}\n{}", sent.lines().next().unwrap_or_default())
    }

    #[tokio::test]
    async fn idle_connections_of_a_target_that_went_away_are_swept() {
        let (addr, task) = target(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok").await;
        let conn = Connection::connect(addr).await.unwrap();
        let response = send(conn, &mut Prepared::new(get("/"))).await.unwrap();
        let _ = response.into_body().collect().await.unwrap();
        assert_eq!(Connection::idle_count(addr), 1, "pooled after its response");
        // The target ends (closing its side); the sweep notices and drops the connection.
        task.await.unwrap();
        let sweeper = tokio::spawn(Connection::sweep_idle(Duration::from_millis(10)));
        let mut swept = false;
        for _ in 0..100 {
            tokio::time::sleep(Duration::from_millis(10)).await;
            if Connection::idle_count(addr) == 0 {
                swept = true;
                break;
            }
        }
        sweeper.abort();
        assert!(swept, "the closed connection left the pool");
    }

    #[tokio::test]
    async fn framings_of_target_responses() {
        let cases: Vec<(&str, &'static [u8], &str)> = vec![
            ("length", b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-A: 1\r\n\r\nhello", "/"),
            ("chunked", b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nX-Trailer: t\r\n\r\n", "/c"),
            ("to close", b"HTTP/1.1 200 OK\r\n\r\nuntil the end", "/close"),
            ("no content", b"HTTP/1.1 204 No Content\r\n\r\n", "/nc"),
            ("interim first", b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\nok", "/i"),
            ("connection close", b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok", "/cc"),
            ("http/1.0", b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok", "/10"),
            ("bad length", b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nok", "/bl"),
            ("garbage", b"SSH-2.0-OpenSSH\r\n\r\n", "/g"),
            ("short body", b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort", "/s"),
            ("bad chunk", b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", "/bc"),
            ("silent close", b"", "/q"),
        ];
        let mut report = Vec::new();
        for (what, answer, path) in cases {
            report.push(format!("{what}: {}", exchange(answer, get(path)).await));
        }
        expect_test::expect![[r#"
            length: 200 OK [content-length: 5; x-a: 1] "hello" pooled=true
            GET / HTTP/1.1
            chunked: 200 OK [transfer-encoding: chunked] "hello world" pooled=true
            GET /c HTTP/1.1
            to close: 200 OK [] "until the end" pooled=false
            GET /close HTTP/1.1
            no content: 204 No Content [] "" pooled=true
            GET /nc HTTP/1.1
            interim first: 201 Created [content-length: 2] "ok" pooled=true
            GET /i HTTP/1.1
            connection close: 200 OK [content-length: 2; connection: close] "ok" pooled=false
            GET /cc HTTP/1.1
            http/1.0: 200 OK [content-length: 2] "ok" pooled=false
            GET /10 HTTP/1.1
            bad length: error: Reset("invalid Content-Length in the response") nothing_read=false
            GET /bl HTTP/1.1
            garbage: error: Reset("malformed response head: invalid HTTP version") nothing_read=false
            GET /g HTTP/1.1
            short body: 200 OK [content-length: 10] "<target response body: the target closed before the end of the body>" pooled=false
            GET /s HTTP/1.1
            bad chunk: 200 OK [transfer-encoding: chunked] "<target response body: malformed chunked body: invalid chunk size>" pooled=false
            GET /bc HTTP/1.1
            silent close: error: Reset("the target closed the connection") nothing_read=true
            GET /q HTTP/1.1"#]].assert_eq(&report.join("\n"));
    }

    #[test]
    fn response_heads_as_the_data_plane_reads_them() {
        let cases: [(&[u8], bool, &str); 8] = [
            (
                b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n",
                false,
                "Ok(Some((200, \"Length(5)\", true)))",
            ),
            (b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n", false, "Ok(None)"),
            (
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\nContent-Length: 3\r\n\r\n",
                false,
                "Ok(Some((200, \"Chunked(Size)\", false)))",
            ),
            (b"HTTP/1.0 200 OK\r\n\r\n", false, "Ok(Some((200, \"Close\", false)))"),
            (b"HTTP/1.1 204 No Content\r\n\r\n", false, "Ok(Some((204, \"Done\", true)))"),
            (
                b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n",
                true,
                "Ok(Some((200, \"Done\", true)))",
            ),
            (
                b"HTTP/1.1 200 OK\r\nContent-Length: 5, 6\r\n\r\n",
                false,
                "Err(\"invalid Content-Length in the response\")",
            ),
            (
                b"HTTP/1.1 101 Switching\r\n\r\n",
                false,
                "Err(\"101 to a request that did not ask to upgrade\")",
            ),
        ];
        for (input, head_request, expected) in cases {
            let got = format!("{:?}", parse_response_head(input, head_request));
            assert_eq!(got, expected, "{}", String::from_utf8_lossy(input));
        }
    }
}
