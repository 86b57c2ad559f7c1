//! Access log lines in the Application Load Balancer's format: space-separated fields in
//! AWS's order, the free-text ones quoted, `-` where a field does not apply and `-1` for the
//! timings of a request that never reached a target.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// What the proxy learned about one request while answering it.
#[derive(Clone, Debug, Default)]
pub struct Trail {
    /// The rule that matched (0 = the default rule); None when no rule was evaluated.
    pub priority: Option<u32>,
    /// `forward`, `fixed-response` or `redirect`.
    pub action: Option<&'static str>,
    pub target: Option<SocketAddr>,
    pub target_group_arn: Option<String>,
    pub target_status: Option<u16>,
    /// From receiving the request to sending it to the target.
    pub request_processing: Option<Duration>,
    /// From sending it to the target to the response headers.
    pub target_processing: Option<Duration>,
    pub trace_id: Option<String>,
    pub redirect_url: Option<String>,
    pub error_reason: Option<&'static str>,
}

/// One access log entry.
#[derive(Clone, Debug)]
pub struct Entry<'a> {
    /// `http`, `https` or `h2`.
    pub kind: &'a str,
    /// When the load balancer answered.
    pub time: SystemTime,
    /// `app/NAME/ID`.
    pub elb: &'a str,
    pub client: SocketAddr,
    pub elb_status: u16,
    pub received_bytes: u64,
    pub sent_bytes: u64,
    /// `METHOD SCHEME://HOST:PORT/PATH?QUERY HTTP/VERSION`.
    pub request: &'a str,
    pub user_agent: &'a str,
    /// On HTTPS listeners: the cipher suite (OpenSSL's name) and `TLSv1.2`/`TLSv1.3`.
    pub ssl_cipher: Option<&'a str>,
    pub ssl_protocol: Option<&'a str>,
    /// The SNI name the client sent.
    pub domain_name: Option<&'a str>,
    /// When the request arrived.
    pub created: SystemTime,
    pub trail: &'a Trail,
}

fn seconds(d: Option<Duration>) -> String {
    d.map_or("-1".into(), |d| format!("{:.3}", d.as_secs_f64()))
}

fn quoted(s: Option<&str>) -> String {
    match s {
        None | Some("") => "\"-\"".into(),
        Some(s) => format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\"")),
    }
}

/// `2026-11-22T10:00:00.123456Z`.
pub fn iso_micros(t: SystemTime) -> String {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs();
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (year, month, day) = crate::proxy::civil(days);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:06}Z",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60,
        d.subsec_micros()
    )
}

/// The line, without its newline.
pub fn format(e: &Entry<'_>) -> String {
    let t = e.trail;
    let dispatched = t.target.is_some();
    let mut line = String::with_capacity(512);
    let _ = write!(
        line,
        "{} {} {} {} {} {} {} {} {} {} {} {} {} {} {} {} {} {} {} \"-\" {} {} {} {} {} {} {} \"-\" \"-\" -",
        e.kind,
        iso_micros(e.time),
        e.elb,
        e.client,
        t.target.map_or("-".into(), |a| a.to_string()),
        seconds(if dispatched { t.request_processing } else { None }),
        seconds(if dispatched { t.target_processing } else { None }),
        if dispatched { "0.000" } else { "-1" },
        e.elb_status,
        t.target_status.map_or("-".into(), |s| s.to_string()),
        e.received_bytes,
        e.sent_bytes,
        quoted(Some(e.request)),
        quoted(Some(e.user_agent)),
        e.ssl_cipher.unwrap_or("-"),
        e.ssl_protocol.unwrap_or("-"),
        t.target_group_arn.as_deref().unwrap_or("-"),
        quoted(t.trace_id.as_deref()),
        quoted(e.domain_name),
        t.priority.map_or("-1".into(), |p| p.to_string()),
        iso_micros(e.created),
        quoted(t.action),
        quoted(t.redirect_url.as_deref()),
        quoted(t.error_reason),
        quoted(t.target.map(|a| a.to_string()).as_deref()),
        quoted(t.target_status.map(|s| s.to_string()).as_deref()),
    );
    line
}

#[cfg(test)]
mod tests {
    use super::*;
    use expect_test::expect;

    fn at(secs: u64, micros: u32) -> SystemTime {
        UNIX_EPOCH + Duration::new(secs, micros * 1000)
    }

    #[test]
    fn a_forwarded_request() {
        let trail = Trail {
            priority: Some(0),
            action: Some("forward"),
            target: Some("127.0.0.1:41000".parse().unwrap()),
            target_group_arn: Some(
                "arn:aws:elasticloadbalancing:us-east-1:000000000000:targetgroup/web/73e2d6bc24d8a067"
                    .into(),
            ),
            target_status: Some(200),
            request_processing: Some(Duration::from_micros(120)),
            target_processing: Some(Duration::from_micros(1_450)),
            trace_id: Some("Root=1-58337262-36d228ad5d99923122bbe354".into()),
            ..Trail::default()
        };
        let e = Entry {
            kind: "http",
            time: at(1_700_000_000, 186_641),
            elb: "app/web/50dc6c495c0c9188",
            client: "127.0.0.1:52817".parse().unwrap(),
            elb_status: 200,
            received_bytes: 34,
            sent_bytes: 366,
            request: "GET http://web.localhost:80/ HTTP/1.1",
            user_agent: "curl/8.0.1",
            ssl_cipher: None,
            ssl_protocol: None,
            domain_name: None,
            created: at(1_700_000_000, 184_000),
            trail: &trail,
        };
        expect![[r#"http 2023-11-14T22:13:20.186641Z app/web/50dc6c495c0c9188 127.0.0.1:52817 127.0.0.1:41000 0.000 0.001 0.000 200 200 34 366 "GET http://web.localhost:80/ HTTP/1.1" "curl/8.0.1" - - arn:aws:elasticloadbalancing:us-east-1:000000000000:targetgroup/web/73e2d6bc24d8a067 "Root=1-58337262-36d228ad5d99923122bbe354" "-" "-" 0 2023-11-14T22:13:20.184000Z "forward" "-" "-" "127.0.0.1:41000" "200" "-" "-" -"#]]
        .assert_eq(&format(&e));
    }

    #[test]
    fn an_answer_of_the_load_balancer_itself() {
        let trail = Trail {
            priority: Some(10),
            action: Some("redirect"),
            redirect_url: Some("https://web.localhost:443/login".into()),
            ..Trail::default()
        };
        let e = Entry {
            kind: "http",
            time: at(1_700_000_000, 0),
            elb: "app/web/50dc6c495c0c9188",
            client: "127.0.0.1:52817".parse().unwrap(),
            elb_status: 301,
            received_bytes: 40,
            sent_bytes: 120,
            request: "GET http://web.localhost:80/login HTTP/1.1",
            user_agent: "say \"hi\"",
            ssl_cipher: None,
            ssl_protocol: None,
            domain_name: None,
            created: at(1_700_000_000, 0),
            trail: &trail,
        };
        expect![[r#"http 2023-11-14T22:13:20.000000Z app/web/50dc6c495c0c9188 127.0.0.1:52817 - -1 -1 -1 301 - 40 120 "GET http://web.localhost:80/login HTTP/1.1" "say \"hi\"" - - - "-" "-" "-" 10 2023-11-14T22:13:20.000000Z "redirect" "https://web.localhost:443/login" "-" "-" "-" "-" "-" -"#]]
        .assert_eq(&format(&e));
    }

    #[test]
    fn a_request_over_tls() {
        let trail = Trail { priority: Some(0), action: Some("fixed-response"), ..Trail::default() };
        let e = Entry {
            kind: "h2",
            time: at(1_700_000_000, 0),
            elb: "app/web/50dc6c495c0c9188",
            client: "127.0.0.1:52817".parse().unwrap(),
            elb_status: 200,
            received_bytes: 30,
            sent_bytes: 60,
            request: "GET https://www.example.localhost:443/ HTTP/2.0",
            user_agent: "curl/8.0.1",
            ssl_cipher: Some("TLS_AES_128_GCM_SHA256"),
            ssl_protocol: Some("TLSv1.3"),
            domain_name: Some("www.example.localhost"),
            created: at(1_700_000_000, 0),
            trail: &trail,
        };
        expect![[r#"h2 2023-11-14T22:13:20.000000Z app/web/50dc6c495c0c9188 127.0.0.1:52817 - -1 -1 -1 200 - 30 60 "GET https://www.example.localhost:443/ HTTP/2.0" "curl/8.0.1" TLS_AES_128_GCM_SHA256 TLSv1.3 - "-" "www.example.localhost" "-" 0 2023-11-14T22:13:20.000000Z "fixed-response" "-" "-" "-" "-" "-" "-" -"#]].assert_eq(&format(&e));
    }
}
