//! Stickiness durations are AWS durations: on a time-scaled region the data plane (which runs
//! on real time) gets them scaled, so a 60-second `lb_cookie` stickiness lasts one real second
//! at `--time-scale 60`.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use base64::Engine as _;
use common::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A target answering every request with 200 and closing the connection.
async fn target() -> u16 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        loop {
            let Ok((mut s, _)) = listener.accept().await else { return };
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 1024];
                while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                    match s.read(&mut chunk).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                }
                let _ = s
                    .write_all(
                        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok",
                    )
                    .await;
            });
        }
    });
    port
}

/// Sends `GET /` (with an `AWSALB` cookie when given) and returns the `AWSALB` value the
/// answer sets.
async fn get(addr: SocketAddr, cookie: Option<&str>) -> String {
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let cookie = cookie.map(|c| format!("Cookie: AWSALB={c}\r\n")).unwrap_or_default();
    let request = format!("GET / HTTP/1.1\r\nHost: web\r\n{cookie}Connection: close\r\n\r\n");
    s.write_all(request.as_bytes()).await.unwrap();
    let mut answer = String::new();
    s.read_to_string(&mut answer).await.unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    answer
        .lines()
        .filter_map(|l| l.split_once(':'))
        .filter(|(name, _)| name.eq_ignore_ascii_case("set-cookie"))
        .find_map(|(_, v)| v.trim().strip_prefix("AWSALB="))
        .and_then(|v| v.split(';').next())
        .unwrap_or_else(|| panic!("no AWSALB cookie: {answer}"))
        .to_string()
}

/// The same cookie, issued `age` earlier.
fn aged(value: &str, age: Duration) -> String {
    let (group, target, issued) = elb_proxy::balance::decode_cookie(value).unwrap();
    let issued = issued - age.as_millis() as u64;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("{group}|{target}|{issued}"))
}

#[tokio::test]
async fn lb_cookie_stickiness_lasts_its_aws_duration_scaled() {
    let h = harness(clock::Clock::new(60.0));
    let tg = target_group(
        false,
        &[
            ("stickiness.enabled", "true"),
            ("stickiness.type", "lb_cookie"),
            ("stickiness.lb_cookie.duration_seconds", "60"),
        ],
    );
    h.elb.put_target_group(tg).unwrap();
    h.elb.register_targets(TG, &[registration(target().await)]).unwrap();
    h.elb.insert_load_balancer(load_balancer()).unwrap();
    h.elb.add_listener(listener()).await.unwrap();
    let addr = h.elb.endpoints().unwrap()[0].addr;
    let non_sticky = || h.elb.counters(LB).unwrap().non_sticky.get();

    let cookie = get(addr, None).await;
    assert_eq!(non_sticky(), 1, "a first request is not sticky");
    get(addr, Some(&aged(&cookie, Duration::from_millis(500)))).await;
    assert_eq!(non_sticky(), 1, "half a real second is half a minute: still sticky");
    get(addr, Some(&aged(&cookie, Duration::from_secs(3)))).await;
    assert_eq!(non_sticky(), 2, "three real seconds are three minutes: stale, not sticky");
    h.elb.shutdown();
}
