//! The data plane over real sockets: a listener in front of small loopback backends, driven
//! by a real HTTP client (and raw TCP for hostile requests).

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use elb_proxy::matcher::{Pattern, SourceNet};
use elb_proxy::metrics::Counters;
use elb_proxy::{
    Action, Algorithm, Condition, Forward, Listener, LoadBalancer, Redirect, Rule, Stickiness,
    Target, TargetGroup, TargetSet, Upstream, XffMode,
};
use http_body_util::{BodyExt, Full};
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// A backend named `name`: answers `name METHOD PATH`, echoes request headers back as
/// `echo-<name>`, sleeps on `/slow`, sets a cookie on `/login`, reports the body it got on
/// `/echo-body`.
async fn backend(name: &'static str) -> SocketAddr {
    raw_target(move |stream| async move {
        let service = service_fn(move |req: hyper::Request<hyper::body::Incoming>| async move {
            if req.uri().path() == "/slow" {
                tokio::time::sleep(Duration::from_millis(800)).await;
            }
            if req.uri().path() == "/echo-body" {
                let body = req.into_body().collect().await.map(|b| b.to_bytes());
                let text = match body {
                    Ok(b) => format!(
                        "{name} got {} bytes: {}",
                        b.len(),
                        String::from_utf8_lossy(&b[..b.len().min(24)])
                    ),
                    Err(e) => format!("{name} body error: {e}"),
                };
                return Ok(hyper::Response::new(Full::new(Bytes::from(text))));
            }
            let mut response = hyper::Response::new(Full::new(Bytes::from(format!(
                "{name} {} {}",
                req.method(),
                req.uri().path()
            ))));
            for (k, v) in req.headers() {
                if let Ok(n) = http::HeaderName::from_bytes(format!("echo-{k}").as_bytes()) {
                    response.headers_mut().append(n, v.clone());
                }
            }
            if req.uri().path() == "/login" {
                response.headers_mut().insert("set-cookie", "SESSION=abc; Path=/".parse().unwrap());
            }
            Ok::<_, Infallible>(response)
        });
        let _ = hyper::server::conn::http1::Builder::new()
            .serve_connection(TokioIo::new(stream), service)
            .await;
    })
    .await
}

fn lb(idle: Duration) -> Arc<LoadBalancer> {
    Arc::new(LoadBalancer {
        full_name: "app/test/0123456789abcdef".into(),
        name: "test".into(),
        idle_timeout: idle,
        xff: XffMode::Append,
        xff_client_port: false,
        preserve_host: false,
        retry_idempotent: false,
        counters: Arc::new(Counters::default()),
        access_log: None,
    })
}

fn group(id: &str, targets: &[(&str, SocketAddr)], stickiness: Stickiness) -> Arc<TargetGroup> {
    let tg = TargetGroup::new(
        &format!("targetgroup/{id}/0"),
        id,
        Algorithm::RoundRobin,
        stickiness,
        false,
    );
    let routable =
        targets.iter().map(|(n, a)| Arc::new(Target::new(n, a.port(), *a, "us-east-1a"))).collect();
    tg.publish(TargetSet { routable, fail_open: false });
    Arc::new(tg)
}

fn forward(tg: &Arc<TargetGroup>) -> Action {
    Action::Forward(Forward { groups: vec![(tg.clone(), 1)], group_stickiness: None })
}

fn rule(conditions: Vec<Condition>, action: Action) -> Rule {
    let priority = if conditions.is_empty() { 0 } else { 1 };
    Rule { priority, conditions, action }
}

async fn start(lb: Arc<LoadBalancer>, rules: Vec<Rule>) -> elb_proxy::Serving {
    let listener = Listener { lb, port: 8080, https: false, rules };
    elb_proxy::bind("127.0.0.1:0".parse().unwrap(), listener, None, Upstream::new()).await.unwrap()
}

struct Reply {
    status: u16,
    headers: http::HeaderMap,
    body: String,
}

async fn get(addr: SocketAddr, path: &str, headers: &[(&str, &str)]) -> Reply {
    send(addr, "GET", path, headers).await
}

async fn send(addr: SocketAddr, method: &str, path: &str, headers: &[(&str, &str)]) -> Reply {
    let stream = TcpStream::connect(addr).await.unwrap();
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake(TokioIo::new(stream)).await.unwrap();
    tokio::spawn(conn);
    let mut req =
        hyper::Request::builder().method(method).uri(path).header("host", "app.example.com:8080");
    for (k, v) in headers {
        req.headers_mut()
            .unwrap()
            .insert(http::HeaderName::from_bytes(k.as_bytes()).unwrap(), v.parse().unwrap());
    }
    let response = sender.send_request(req.body(Full::new(Bytes::new())).unwrap()).await.unwrap();
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let body = String::from_utf8_lossy(&response.into_body().collect().await.unwrap().to_bytes())
        .into_owned();
    Reply { status, headers, body }
}

/// Sends raw bytes and returns what comes back until the server closes or 2 s pass.
async fn raw(addr: SocketAddr, bytes: &[u8]) -> String {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.write_all(bytes).await.unwrap();
    let mut out = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(2), stream.read_to_end(&mut out)).await;
    String::from_utf8_lossy(&out).into_owned()
}

fn status_line(raw: &str) -> &str {
    raw.lines().next().unwrap_or("")
}

#[tokio::test]
async fn every_condition_type_routes_and_the_default_rule_catches_the_rest() {
    let names = ["host", "path", "header", "method", "query", "source", "default"];
    let mut groups = Vec::new();
    for n in names {
        groups.push(group(n, &[(n, backend(n).await)], Stickiness::None));
    }
    let rules = vec![
        rule(
            vec![Condition::Host(vec![Pattern::new("*.Admin.example.com", true)])],
            forward(&groups[0]),
        ),
        rule(
            vec![Condition::Path(vec![
                Pattern::new("/api/*", false),
                Pattern::new("/img?.png", false),
            ])],
            forward(&groups[1]),
        ),
        rule(
            vec![Condition::Header {
                name: http::HeaderName::from_static("x-beta"),
                values: vec![Pattern::new("YES*", true)],
            }],
            forward(&groups[2]),
        ),
        rule(
            vec![Condition::Method(vec![http::Method::from_bytes(b"PURGE").unwrap()])],
            forward(&groups[3]),
        ),
        rule(
            vec![Condition::Query(vec![(
                Some(Pattern::new("version", true)),
                Pattern::new("v2", true),
            )])],
            forward(&groups[4]),
        ),
        rule(
            vec![
                Condition::SourceIp(vec![SourceNet::parse("127.0.0.2/32").unwrap()]),
                Condition::Path(vec![Pattern::new("/src", false)]),
            ],
            forward(&groups[5]),
        ),
        rule(vec![Condition::Path(vec![Pattern::new("/src", false)])], forward(&groups[6])),
        rule(vec![], forward(&groups[6])),
    ];
    let proxy = start(lb(Duration::from_secs(60)), rules).await;
    let a = proxy.local_addr;
    let cases: Vec<(String, Reply)> = vec![
        ("host".into(), get(a, "/", &[("host", "x.ADMIN.example.com")]).await),
        (
            "host (bare domain does not match *.)".into(),
            get(a, "/", &[("host", "admin.example.com")]).await,
        ),
        ("path".into(), get(a, "/api/users?x=1", &[]).await),
        ("path is case-sensitive".into(), get(a, "/API/users", &[]).await),
        ("path ?".into(), get(a, "/img1.png", &[]).await),
        ("header".into(), get(a, "/", &[("X-Beta", "yes-please")]).await),
        ("method".into(), send(a, "PURGE", "/", &[]).await),
        ("method is case-sensitive".into(), send(a, "purge", "/", &[]).await),
        ("query".into(), get(a, "/?a=1&Version=V2", &[]).await),
        (
            "source-ip is the peer's, not X-Forwarded-For".into(),
            get(a, "/src", &[("x-forwarded-for", "127.0.0.2")]).await,
        ),
    ];
    let report: Vec<String> =
        cases.iter().map(|(what, r)| format!("{what}: {} {}", r.status, r.body)).collect();
    expect_test::expect![[r#"
        host: 200 host GET /
        host (bare domain does not match *.): 200 default GET /
        path: 200 path GET /api/users
        path is case-sensitive: 200 default GET /API/users
        path ?: 200 path GET /img1.png
        header: 200 header GET /
        method: 200 method PURGE /
        method is case-sensitive: 200 default purge /
        query: 200 query GET /
        source-ip is the peer's, not X-Forwarded-For: 200 default GET /src"#]]
    .assert_eq(&report.join("\n"));
}

#[tokio::test]
async fn fixed_responses_and_redirects_with_placeholders() {
    let rules = vec![
        rule(
            vec![Condition::Path(vec![Pattern::new("/old/*", false)])],
            Action::Redirect(Redirect {
                protocol: Some("HTTPS".into()),
                host: None,
                port: Some("443".into()),
                path: Some("/new/#{path}".into()),
                query: Some("#{query}&from=old".into()),
                status: 301,
            }),
        ),
        rule(
            vec![Condition::Path(vec![Pattern::new("/moved", false)])],
            Action::Redirect(Redirect {
                protocol: None,
                host: Some("other.#{host}".into()),
                port: None,
                path: None,
                query: None,
                status: 302,
            }),
        ),
        rule(
            vec![],
            Action::Fixed {
                status: 404,
                content_type: "application/json".into(),
                body: Bytes::from_static(b"{\"error\":\"nope\"}"),
            },
        ),
    ];
    let proxy = start(lb(Duration::from_secs(60)), rules).await;
    let a = proxy.local_addr;
    let old = get(a, "/old/page?q=1", &[]).await;
    assert_eq!(old.status, 301);
    assert_eq!(old.headers["location"], "https://app.example.com/new/old/page?q=1&from=old");
    let moved = get(a, "/moved?x=y", &[]).await;
    assert_eq!(moved.status, 302);
    assert_eq!(moved.headers["location"], "http://other.app.example.com:8080/moved?x=y");
    let fixed = get(a, "/anything", &[]).await;
    assert_eq!((fixed.status, fixed.body.as_str()), (404, "{\"error\":\"nope\"}"));
    assert_eq!(fixed.headers["content-type"], "application/json");
}

#[tokio::test]
async fn headers_toward_targets_are_albs() {
    let tg = group("tg", &[("one", backend("one").await)], Stickiness::None);
    let proxy = start(lb(Duration::from_secs(60)), vec![rule(vec![], forward(&tg))]).await;
    let r = get(
        proxy.local_addr,
        "/",
        &[
            ("x-forwarded-for", "203.0.113.7"),
            ("connection", "keep-alive, x-private"),
            ("x-private", "secret"),
        ],
    )
    .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.headers["echo-x-forwarded-for"], "203.0.113.7, 127.0.0.1");
    assert_eq!(r.headers["echo-x-forwarded-proto"], "http");
    assert_eq!(r.headers["echo-x-forwarded-port"], "8080");
    assert_eq!(r.headers["echo-host"], "app.example.com:8080");
    assert!(r.headers["echo-x-amzn-trace-id"].to_str().unwrap().starts_with("Root=1-"));
    assert!(
        r.headers.get("echo-x-private").is_none(),
        "headers named in Connection are hop-by-hop"
    );
}

#[tokio::test]
async fn weighted_forwards_and_lb_cookie_stickiness() {
    let a = group(
        "a",
        &[("a1", backend("a1").await), ("a2", backend("a2").await)],
        Stickiness::LbCookie(Duration::from_secs(60)),
    );
    let never = group("never", &[("n", backend("n").await)], Stickiness::None);
    let action = Action::Forward(Forward {
        groups: vec![(a.clone(), 5), (never, 0)],
        group_stickiness: None,
    });
    let lb = lb(Duration::from_secs(60));
    let proxy = start(lb.clone(), vec![rule(vec![], action)]).await;
    let first = get(proxy.local_addr, "/", &[]).await;
    let cookie = first
        .headers
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .find(|c| c.starts_with("AWSALB="))
        .unwrap();
    assert!(cookie.contains("Expires=") && !cookie.contains("Max-Age"), "{cookie}");
    let cors = first
        .headers
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .find(|c| c.starts_with("AWSALBCORS="))
        .unwrap();
    assert!(cors.ends_with("SameSite=None; Secure"), "{cors}");
    let pair = cookie.split(';').next().unwrap().to_string();
    let stuck = first.body.split(' ').next().unwrap().to_string();
    for _ in 0..6 {
        let r = get(proxy.local_addr, "/", &[("cookie", &pair)]).await;
        assert_eq!(r.body.split(' ').next().unwrap(), stuck, "sticky");
    }
    let spread: std::collections::BTreeSet<String> = {
        let mut seen = std::collections::BTreeSet::new();
        for _ in 0..6 {
            seen.insert(
                get(proxy.local_addr, "/", &[]).await.body.split(' ').next().unwrap().to_string(),
            );
        }
        seen
    };
    assert_eq!(
        spread.into_iter().collect::<Vec<_>>(),
        ["a1", "a2"],
        "weight 0 gets nothing; no cookie round-robins"
    );
    assert_eq!(Counters::get(&lb.counters.non_sticky), 7);
}

#[tokio::test]
async fn albs_own_errors() {
    let empty = group("empty", &[], Stickiness::None);
    // A port nobody listens on.
    let dead_addr = { TcpListener::bind("127.0.0.1:0").await.unwrap().local_addr().unwrap() };
    let dead = group("dead", &[("dead", dead_addr)], Stickiness::None);
    let slow = group("slow", &[("slow", backend("slow").await)], Stickiness::None);
    let lb = lb(Duration::from_millis(300));
    let rules = vec![
        rule(vec![Condition::Path(vec![Pattern::new("/empty", false)])], forward(&empty)),
        rule(vec![Condition::Path(vec![Pattern::new("/dead", false)])], forward(&dead)),
        rule(vec![], forward(&slow)),
    ];
    let proxy = start(lb.clone(), rules).await;
    let a = proxy.local_addr;
    let no_targets = get(a, "/empty", &[]).await;
    assert_eq!(no_targets.status, 503);
    assert_eq!(no_targets.body.len(), 162);
    assert_eq!(no_targets.headers["server"], "awselb/2.0");
    assert_eq!(get(a, "/dead", &[]).await.status, 502);
    assert_eq!(get(a, "/slow", &[]).await.status, 504, "no response within the idle timeout");
    assert_eq!(send(a, "TRACE", "/", &[]).await.status, 405);
    let many: Vec<String> = (0..31).map(|i| format!("10.0.0.{i}")).collect();
    assert_eq!(get(a, "/", &[("x-forwarded-for", &many.join(", "))]).await.status, 463);
    assert_eq!(Counters::get(&lb.counters.elb_503), 1);
    assert_eq!(Counters::get(&lb.counters.elb_502), 1);
    assert_eq!(Counters::get(&lb.counters.elb_504), 1);
    assert_eq!(Counters::get(&lb.counters.target_connection_errors), 1);
}

#[tokio::test]
async fn retrying_idempotent_requests_is_opt_in() {
    let dead_addr = { TcpListener::bind("127.0.0.1:0").await.unwrap().local_addr().unwrap() };
    let live = backend("live").await;
    let tg = group("tg", &[("dead", dead_addr), ("live", live)], Stickiness::None);
    let plain = start(lb(Duration::from_secs(60)), vec![rule(vec![], forward(&tg))]).await;
    let mut statuses = Vec::new();
    for _ in 0..4 {
        statuses.push(get(plain.local_addr, "/", &[]).await.status);
    }
    assert!(statuses.contains(&502), "AWS does not retry: {statuses:?}");
    let mut retrying = (*lb(Duration::from_secs(60))).clone();
    retrying.retry_idempotent = true;
    let proxy = start(Arc::new(retrying), vec![rule(vec![], forward(&tg))]).await;
    for _ in 0..6 {
        assert_eq!(get(proxy.local_addr, "/", &[]).await.status, 200);
    }
    assert_ne!(send(proxy.local_addr, "POST", "/", &[]).await.status, 0);
}

#[tokio::test]
async fn passive_outlier_ejection_leaves_a_dead_target_out_after_its_first_failure() {
    let dead_addr = { TcpListener::bind("127.0.0.1:0").await.unwrap().local_addr().unwrap() };
    let live = backend("live").await;
    let tg = group("tg", &[("dead", dead_addr), ("live", live)], Stickiness::None);
    tg.outlier_errors.store(1, std::sync::atomic::Ordering::Relaxed);
    tg.outlier_base_ms.store(60_000, std::sync::atomic::Ordering::Relaxed);
    let lb = lb(Duration::from_secs(60));
    let proxy = start(lb.clone(), vec![rule(vec![], forward(&tg))]).await;
    let mut statuses = Vec::new();
    for _ in 0..20 {
        statuses.push(get(proxy.local_addr, "/", &[]).await.status);
    }
    // Round robin sends one of the first two requests to the dead target; after that one
    // failure it gets nothing more.
    assert_eq!(statuses.iter().filter(|s| **s == 502).count(), 1, "{statuses:?}");
    assert_eq!(Counters::get(&lb.counters.outlier_ejections), 1);
    let dead = tg.targets.load().routable.iter().find(|t| t.id == "dead").unwrap().clone();
    assert!(dead.ejected());
    // When every target is ejected, requests still go somewhere (as fail-open does).
    let only_dead = group("solo", &[("dead", dead_addr)], Stickiness::None);
    only_dead.outlier_errors.store(1, std::sync::atomic::Ordering::Relaxed);
    let proxy = start(lb.clone(), vec![rule(vec![], forward(&only_dead))]).await;
    for _ in 0..3 {
        assert_eq!(get(proxy.local_addr, "/", &[]).await.status, 502);
    }
}

#[tokio::test]
async fn processed_bytes_count_both_directions_of_client_connections() {
    let live = backend("live").await;
    let tg = group("tg", &[("live", live)], Stickiness::None);
    let lb = lb(Duration::from_secs(60));
    let proxy = start(lb.clone(), vec![rule(vec![], forward(&tg))]).await;
    let answer =
        raw(proxy.local_addr, b"GET /abc HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n").await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    let expected =
        (answer.len() + "GET /abc HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n".len()) as u64;
    let mut counted = 0;
    for _ in 0..40 {
        counted = Counters::get(&lb.counters.processed_bytes);
        if counted == expected {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert_eq!(counted, expected);
}

#[tokio::test]
async fn a_client_that_leaves_before_the_answer_counts_as_460() {
    let slow = backend("slow").await;
    let tg = group("tg", &[("slow", slow)], Stickiness::None);
    let (tx, mut rx) = tokio::sync::mpsc::channel(16);
    let mut with_log = (*lb(Duration::from_secs(60))).clone();
    with_log.access_log = Some(elb_proxy::AccessLog {
        arn_prefix: "arn:aws:elasticloadbalancing:us-east-1:000000000000:".into(),
        lines: tx,
        dropped: Default::default(),
    });
    let lb = Arc::new(with_log);
    let proxy = start(lb.clone(), vec![rule(vec![], forward(&tg))]).await;
    let mut stream = TcpStream::connect(proxy.local_addr).await.unwrap();
    stream.write_all(b"GET /slow HTTP/1.1\r\nHost: app.example.com\r\n\r\n").await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    drop(stream);
    let mut counted = 0;
    for _ in 0..40 {
        counted = Counters::get(&lb.counters.elb_4xx);
        if counted == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(counted, 1, "the abandoned request is an ELB 4XX (460)");
    let line = rx.recv().await.unwrap();
    assert!(
        line.contains(" 460 - ")
            && line.contains("\"GET http://app.example.com:8080/slow HTTP/1.1\""),
        "{line}"
    );
    // An answered request is not.
    assert_eq!(get(proxy.local_addr, "/", &[]).await.status, 200);
    assert_eq!(Counters::get(&lb.counters.elb_4xx), 1);
}

/// A target that accepts any upgrade and then echoes every byte, prefixed with its name.
async fn upgrading_backend(name: &'static str) -> SocketAddr {
    raw_target(move |stream| async move {
        let service =
            service_fn(move |mut req: hyper::Request<hyper::body::Incoming>| async move {
                let upgrade = req.headers().get("upgrade").cloned();
                let Some(protocol) = upgrade else {
                    return Ok::<_, Infallible>(hyper::Response::new(Full::new(Bytes::from(
                        "no upgrade",
                    ))));
                };
                let on = hyper::upgrade::on(&mut req);
                tokio::spawn(async move {
                    let Ok(upgraded) = on.await else { return };
                    let mut io = TokioIo::new(upgraded);
                    let mut buf = [0u8; 1024];
                    loop {
                        let n = match io.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => n,
                        };
                        let mut reply = format!("{name}:").into_bytes();
                        reply.extend_from_slice(&buf[..n]);
                        if io.write_all(&reply).await.is_err() {
                            return;
                        }
                    }
                });
                let mut response = hyper::Response::new(Full::new(Bytes::new()));
                *response.status_mut() = http::StatusCode::SWITCHING_PROTOCOLS;
                response.headers_mut().insert("upgrade", protocol);
                response.headers_mut().insert("connection", "upgrade".parse().unwrap());
                Ok(response)
            });
        let _ = hyper::server::conn::http1::Builder::new()
            .serve_connection(TokioIo::new(stream), service)
            .with_upgrades()
            .await;
    })
    .await
}

#[tokio::test]
async fn websocket_upgrades_are_joined_to_the_target_that_accepted_them() {
    let target = upgrading_backend("ws").await;
    let tg = group("tg", &[("ws", target)], Stickiness::None);
    let proxy = start(lb(Duration::from_secs(60)), vec![rule(vec![], forward(&tg))]).await;
    let mut stream = TcpStream::connect(proxy.local_addr).await.unwrap();
    stream
        .write_all(b"GET /chat HTTP/1.1\r\nHost: app.example.com\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n")
        .await
        .unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        let n = tokio::time::timeout(Duration::from_secs(2), stream.read(&mut byte))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(n, 1, "the head ends: {}", String::from_utf8_lossy(&head));
        head.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&head).to_lowercase();
    assert!(head.starts_with("http/1.1 101"), "{head}");
    assert!(head.contains("upgrade: websocket") && head.contains("connection: upgrade"), "{head}");
    // Bytes both ways, twice, on the joined connection.
    for message in ["hello", "again"] {
        stream.write_all(message.as_bytes()).await.unwrap();
        let mut buf = [0u8; 64];
        let n = tokio::time::timeout(Duration::from_secs(2), stream.read(&mut buf))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(std::str::from_utf8(&buf[..n]).unwrap(), format!("ws:{message}"));
    }
    // A plain request to the same target is still an ordinary request.
    assert_eq!(get(proxy.local_addr, "/", &[]).await.body, "no upgrade");
}

#[tokio::test]
async fn access_log_lines_follow_albs_format() {
    let live = backend("live").await;
    let tg = group("web", &[("i-0123456789abcdef0", live)], Stickiness::None);
    let (tx, mut rx) = tokio::sync::mpsc::channel(16);
    let mut with_log = (*lb(Duration::from_secs(60))).clone();
    with_log.access_log = Some(elb_proxy::AccessLog {
        arn_prefix: "arn:aws:elasticloadbalancing:us-east-1:000000000000:".into(),
        lines: tx,
        dropped: Default::default(),
    });
    let rules = vec![
        Rule {
            priority: 7,
            conditions: vec![Condition::Path(vec![Pattern::new("/old", false)])],
            action: Action::Redirect(Redirect {
                protocol: None,
                host: None,
                port: None,
                path: Some("/new".into()),
                query: None,
                status: 301,
            }),
        },
        rule(vec![], forward(&tg)),
    ];
    let proxy = start(Arc::new(with_log), rules).await;
    assert_eq!(
        get(proxy.local_addr, "/hello?x=1", &[("user-agent", "curl/8.0")]).await.status,
        200
    );
    assert_eq!(get(proxy.local_addr, "/old", &[]).await.status, 301);
    let forwarded = rx.recv().await.unwrap();
    let redirected = rx.recv().await.unwrap();
    let fields: Vec<&str> = forwarded.split(' ').collect();
    assert_eq!(fields[0], "http");
    assert_eq!(fields[2], "app/test/0123456789abcdef");
    assert_eq!(fields[4], live.to_string());
    assert_eq!((fields[8], fields[9]), ("200", "200"));
    assert!(
        forwarded.contains(
            " \"GET http://app.example.com:8080/hello?x=1 HTTP/1.1\" \"curl/8.0\" - - arn:aws:elasticloadbalancing:us-east-1:000000000000:targetgroup/web/0 \"Root=1-"
        ),
        "{forwarded}"
    );
    assert!(
        forwarded.contains(" 0 ") && forwarded.contains(" \"forward\" \"-\" \"-\" "),
        "{forwarded}"
    );
    assert!(
        redirected.contains(" - -1 -1 -1 301 - ")
            && redirected.contains(" 7 ")
            && redirected.contains("\"redirect\" \"http://app.example.com:8080/new\""),
        "{redirected}"
    );
}

#[tokio::test]
async fn hostile_requests_get_albs_answers_and_the_proxy_survives() {
    let tg = group("tg", &[("one", backend("one").await)], Stickiness::None);
    let proxy = start(lb(Duration::from_millis(500)), vec![rule(vec![], forward(&tg))]).await;
    let a = proxy.local_addr;
    let big = "a".repeat(17 * 1024);
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("one header over 16K", format!("GET / HTTP/1.1\r\nHost: x\r\nX-Big: {big}\r\n\r\n").into_bytes()),
        (
            "all headers over 64K",
            format!("GET / HTTP/1.1\r\nHost: x\r\n{}\r\n", (0..9).map(|i| format!("X-H{i}: {}\r\n", "b".repeat(8000))).collect::<String>()).into_bytes(),
        ),
        ("request line over 16K", format!("GET /{big} HTTP/1.1\r\nHost: x\r\n\r\n").into_bytes()),
        ("unknown transfer coding", b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n".to_vec()),
        // RFC 9112: a request whose last coding is not chunked has no knowable length.
        ("final coding not chunked", b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n".to_vec()),
        ("bad chunk size", b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n".to_vec()),
        ("two different Content-Lengths", b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nContent-Length: 5\r\n\r\nabcde".to_vec()),
        ("garbage request line", b"\x16\x03\x01 nonsense\r\n\r\n".to_vec()),
        ("header without a colon", b"GET / HTTP/1.1\r\nHost: x\r\nNoColonHere\r\n\r\n".to_vec()),
    ];
    let mut report = Vec::new();
    for (what, bytes) in cases {
        report.push(format!("{what}: {}", status_line(&raw(a, &bytes).await)));
    }
    // CL.TE smuggling: the body hides a second request. Whatever the front does, the backend
    // must not see a second request from this connection.
    let smuggle = b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 44\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n";
    let answer = raw(a, smuggle).await;
    report.push(format!(
        "CL.TE smuggling: {} (smuggled reached a target: {})",
        status_line(&answer),
        answer.contains("/smuggled")
    ));
    expect_test::expect![[r#"
        one header over 16K: HTTP/1.1 400 Bad Request
        all headers over 64K: HTTP/1.1 400 Bad Request
        request line over 16K: HTTP/1.1 400 Bad Request
        unknown transfer coding: HTTP/1.1 501 Not Implemented
        final coding not chunked: HTTP/1.1 400 Bad Request
        bad chunk size: HTTP/1.1 400 Bad Request
        two different Content-Lengths: HTTP/1.1 400 Bad Request
        garbage request line: HTTP/1.1 400 Bad Request
        header without a colon: HTTP/1.1 400 Bad Request
        CL.TE smuggling: HTTP/1.1 200 OK (smuggled reached a target: false)"#]]
    .assert_eq(&report.join("\n"));

    // Slowloris: a client that never finishes its headers is cut off after the idle timeout.
    let mut slow = TcpStream::connect(a).await.unwrap();
    slow.write_all(b"GET / HTTP/1.1\r\nHost: x\r\nX-Slow: ").await.unwrap();
    let mut out = Vec::new();
    // Bounded: the idle timeout here is far shorter than this.
    let closed = tokio::time::timeout(Duration::from_secs(10), slow.read_to_end(&mut out)).await;
    assert!(closed.is_ok(), "a slow client is disconnected");
    // Still serving.
    assert_eq!(get(a, "/", &[]).await.status, 200);
}

/// A target on raw TCP: `each` serves one accepted connection.
async fn raw_target<F, Fut>(each: F) -> SocketAddr
where
    F: Fn(TcpStream) -> Fut + Send + Copy + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let socket = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = socket.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = socket.accept().await else { return };
            tokio::spawn(each(stream));
        }
    });
    addr
}

/// Reads up to the end of a request head; false when the connection ends first.
async fn read_head(stream: &mut TcpStream) -> bool {
    let mut buf = [0u8; 8192];
    let mut got = Vec::new();
    while !got.windows(4).any(|w| w == b"\r\n\r\n") {
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => return false,
            Ok(n) => got.extend_from_slice(&buf[..n]),
        }
    }
    true
}

/// A target that answers every request on a connection with a chunked body in several
/// writes, as a streaming application would.
async fn chunked_backend() -> SocketAddr {
    raw_target(|mut stream| async move {
        while read_head(&mut stream).await {
            let parts: [&[u8]; 4] = [
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
                b"6\r\nstream\r\n",
                b"5\r\ning, \r\n",
                b"4\r\ndone\r\n0\r\n\r\n",
            ];
            for p in parts {
                if stream.write_all(p).await.is_err() {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }
    })
    .await
}

#[tokio::test]
async fn bodies_cross_the_proxy_whatever_their_framing() {
    let tg = group("tg", &[("one", backend("one").await)], Stickiness::None);
    let streaming = group("stream", &[("s", chunked_backend().await)], Stickiness::None);
    let proxy = start(
        lb(Duration::from_secs(5)),
        vec![
            rule(vec![Condition::Path(vec![Pattern::new("/stream", false)])], forward(&streaming)),
            rule(vec![], forward(&tg)),
        ],
    )
    .await;
    let a = proxy.local_addr;
    let body_of = |answer: &str| answer.split("\r\n\r\n").nth(1).unwrap_or_default().to_string();
    let mut report = Vec::new();
    let with_length = raw(a, b"POST /echo-body HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: 11\r\n\r\nhello world").await;
    report.push(format!("content-length: {}", body_of(&with_length)));
    let chunked = raw(a, b"POST /echo-body HTTP/1.1\r\nHost: x\r\nConnection: close\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n").await;
    report.push(format!("chunked: {}", body_of(&chunked)));
    let big = format!(
        "POST /echo-body HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: 300000\r\n\r\n{}",
        "z".repeat(300_000)
    );
    report.push(format!("300 KB: {}", body_of(&raw(a, big.as_bytes()).await)));
    // A chunked answer reaches an HTTP/1.1 client chunked, and the target connection serves
    // the next request.
    for i in 0..2 {
        let reply = get(a, "/stream", &[]).await;
        report.push(format!("streamed answer {i}: {} {:?}", reply.status, reply.body));
    }
    expect_test::expect![[r#"
        content-length: one got 11 bytes: hello world
        chunked: one got 11 bytes: hello world
        300 KB: one got 300000 bytes: zzzzzzzzzzzzzzzzzzzzzzzz
        streamed answer 0: 200 "streaming, done"
        streamed answer 1: 200 "streaming, done""#]]
    .assert_eq(&report.join("\n"));
}

/// A target that answers one request per connection and then closes it without saying so
/// (its keep-alive timeout is shorter than the load balancer's).
async fn closing_backend() -> SocketAddr {
    raw_target(|mut stream| async move {
        if read_head(&mut stream).await {
            let _ = stream.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok").await;
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
}

#[tokio::test]
async fn a_target_connection_closed_while_idle_is_not_reused() {
    let tg = group("tg", &[("one", closing_backend().await)], Stickiness::None);
    let proxy = start(lb(Duration::from_secs(5)), vec![rule(vec![], forward(&tg))]).await;
    let mut statuses = Vec::new();
    for _ in 0..4 {
        statuses.push(get(proxy.local_addr, "/", &[]).await.status);
        tokio::time::sleep(Duration::from_millis(40)).await;
    }
    // Back to back: the close may not have arrived when the next request goes out.
    for _ in 0..4 {
        statuses.push(get(proxy.local_addr, "/", &[]).await.status);
    }
    assert_eq!(statuses, vec![200; 8]);
}
