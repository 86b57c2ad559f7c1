//! Who may talk to the region. The endpoint listens on loopback, but any web page the user
//! opens can send requests there: an `<img>` tag makes a GET, a form makes a POST, and DNS
//! rebinding makes a foreign name resolve to 127.0.0.1. So:
//!
//! - a request whose `Host` is not a loopback name or address is refused (DNS rebinding);
//! - a request that may change state is refused when a browser says it comes from another
//!   origin (`Origin`, `Sec-Fetch-Site`), unless it is SigV4-signed (a page cannot sign, nor
//!   send an `Authorization` header cross-origin without a preflight this endpoint never
//!   grants);
//! - a GET changes nothing unless it is signed: a Query action on GET is answered only when
//!   it reads (`Describe*`, `List*`, `Get*`, ...), or when it is one of the links SNS sends
//!   subscribers (ConfirmSubscription with its token, Unsubscribe with its subscription ARN),
//!   whose secret is the authorization, as in AWS.
//!
//! The aws CLI, SDKs and Cumulo's own commands send no `Origin` and use POST (or sign), so
//! they are not affected.

use axum::http::{HeaderMap, Method, Uri, header};

/// Why a request is refused, or `None` when it may go on.
pub fn refusal(method: &Method, uri: &Uri, headers: &HeaderMap) -> Option<String> {
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok()).unwrap_or("");
    if !is_loopback_host(host) {
        return Some(format!(
            "The Host {host:?} is not this region's: only loopback names and addresses (localhost, 127.0.0.1, [::1]) reach it"
        ));
    }
    if !changes_state(method, uri) || signed(uri, headers) {
        return None;
    }
    if let Some(origin) = headers.get(header::ORIGIN).and_then(|o| o.to_str().ok()) {
        let same = origin
            .strip_prefix("http://")
            .or_else(|| origin.strip_prefix("https://"))
            .is_some_and(|o| o.eq_ignore_ascii_case(host));
        if !same {
            return Some(format!(
                "A request from {origin} may not change this region: only same-origin or signed requests may"
            ));
        }
    }
    if let Some(site) = headers.get("sec-fetch-site").and_then(|s| s.to_str().ok())
        && !matches!(site, "same-origin" | "none")
    {
        return Some(format!(
            "A {site} request may not change this region: only same-origin or signed requests may"
        ));
    }
    if *method == Method::GET || *method == Method::HEAD {
        return Some(
            "An unsigned GET may only read: send actions that change state by POST, or sign them"
                .to_string(),
        );
    }
    None
}

/// `localhost`, `*.localhost`, `127.0.0.0/8` or `[::1]`, with or without a port.
fn is_loopback_host(host: &str) -> bool {
    let name = if let Some(rest) = host.strip_prefix('[') {
        rest.split(']').next().unwrap_or("")
    } else {
        host.rsplit_once(':').map_or(host, |(name, port)| {
            if port.chars().all(|c| c.is_ascii_digit()) { name } else { host }
        })
    };
    let name = name.trim_end_matches('.').to_ascii_lowercase();
    if name == "localhost" || name.ends_with(".localhost") {
        return true;
    }
    name.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// Whether a request may change state: every POST, PUT, PATCH and DELETE, the local chaos
/// endpoints, and a Query GET whose action does not only read.
fn changes_state(method: &Method, uri: &Uri) -> bool {
    if !(*method == Method::GET || *method == Method::HEAD) {
        return true;
    }
    if uri.path().starts_with("/_cumulo/chaos") {
        return true;
    }
    let action = uri.query().and_then(|q| {
        form_urlencoded::parse(q.as_bytes()).find(|(k, _)| k == "Action").map(|(_, v)| v)
    });
    action.is_some_and(|a| !reads(&a) && !capability_link(&a, uri))
}

/// The links SNS puts in its messages, which AWS answers unsigned because what they carry is
/// the authorization: a SubscribeURL (`ConfirmSubscription` with the subscription's secret
/// `Token`) and an UnsubscribeURL (`Unsubscribe` naming a subscription ARN, whose last part is
/// a random UUID only the subscriber was sent). A page cannot guess either.
fn capability_link(action: &str, uri: &Uri) -> bool {
    let has = |name: &str| {
        uri.query().is_some_and(|q| {
            form_urlencoded::parse(q.as_bytes()).any(|(k, v)| k == name && !v.is_empty())
        })
    };
    match action {
        "ConfirmSubscription" => has("Token") && has("TopicArn"),
        "Unsubscribe" => has("SubscriptionArn"),
        _ => false,
    }
}

/// Actions that only read (AWS's naming).
fn reads(action: &str) -> bool {
    ["Describe", "List", "Get", "Validate", "Estimate", "Detect"]
        .iter()
        .any(|prefix| action.starts_with(prefix))
}

/// A SigV4-signed request: an `Authorization: AWS4-HMAC-SHA256 ...` header or a presigned URL.
/// (The signature itself is checked when credentials are configured; without them any
/// well-formed signature is accepted, as LocalStack does.)
fn signed(uri: &Uri, headers: &HeaderMap) -> bool {
    let header = headers
        .get(header::AUTHORIZATION)
        .and_then(|a| a.to_str().ok())
        .is_some_and(|a| a.starts_with("AWS4-HMAC-SHA256 "));
    let presigned = uri
        .query()
        .is_some_and(|q| form_urlencoded::parse(q.as_bytes()).any(|(k, _)| k == "X-Amz-Signature"));
    header || presigned
}

#[cfg(test)]
mod tests {
    use super::*;
    use expect_test::expect;

    /// Each case: `METHOD URI | header: value | ...`; the answer is `ok` or the refusal.
    fn check(cases: &str, expect: expect_test::Expect) {
        let mut out = String::new();
        for case in cases.lines().map(str::trim).filter(|l| !l.is_empty()) {
            let mut parts = case.split(" | ");
            let (method, uri) = parts.next().unwrap().split_once(' ').unwrap();
            let mut headers = HeaderMap::new();
            headers.insert(header::HOST, "127.0.0.1:4566".parse().unwrap());
            for h in parts {
                let (name, value) = h.split_once(": ").unwrap();
                let name: axum::http::HeaderName = name.parse().unwrap();
                headers.insert(name, value.parse().unwrap());
            }
            let method: Method = method.parse().unwrap();
            let uri: Uri = uri.parse().unwrap();
            let answer = refusal(&method, &uri, &headers).unwrap_or_else(|| "ok".into());
            out.push_str(&format!("{case}\n  => {answer}\n"));
        }
        expect.assert_eq(&out);
    }

    #[test]
    fn requests_from_the_tools_pass_and_requests_from_web_pages_do_not() {
        check(
            r#"
            POST /
            POST / | authorization: AWS4-HMAC-SHA256 Credential=test/20261201/us-east-1/ec2/aws4_request, SignedHeaders=host, Signature=00
            GET /?Action=DescribeStacks
            GET /?Action=DescribeStacks | origin: http://evil.example
            GET /?Action=StopInstances&InstanceId.1=i-0123456789abcdef0
            GET /?Action=StopInstances&X-Amz-Signature=00
            GET /?Action=ConfirmSubscription&TopicArn=arn:aws:sns:us-east-1:000000000000:t&Token=abc
            GET /?Action=ConfirmSubscription&TopicArn=arn:aws:sns:us-east-1:000000000000:t
            GET /?Action=Unsubscribe&SubscriptionArn=arn:aws:sns:us-east-1:000000000000:t:0f0e
            GET /?Action=Unsubscribe
            POST / | origin: http://evil.example
            POST / | origin: null
            POST / | origin: http://127.0.0.1:4566
            POST / | sec-fetch-site: cross-site
            POST /_cumulo/chaos/kill-instance/i-0123 | origin: http://evil.example
            POST /_cumulo/chaos/kill-instance/i-0123
            GET /_cumulo/chaos/kill-instance/i-0123
            PUT /cumulo/waitcondition/stack/handle
            GET /_cumulo/instances
            GET / | host: evil.example
            POST / | host: 127.0.0.1.nip.io:4566 | authorization: AWS4-HMAC-SHA256 x
            GET / | host: localhost:4566
            GET / | host: web-1.us-east-1.elb.localhost
            GET / | host: [::1]:4566
            GET / | host: 127.1.2.3
            "#,
            expect![[r#"
                POST /
                  => ok
                POST / | authorization: AWS4-HMAC-SHA256 Credential=test/20261201/us-east-1/ec2/aws4_request, SignedHeaders=host, Signature=00
                  => ok
                GET /?Action=DescribeStacks
                  => ok
                GET /?Action=DescribeStacks | origin: http://evil.example
                  => ok
                GET /?Action=StopInstances&InstanceId.1=i-0123456789abcdef0
                  => An unsigned GET may only read: send actions that change state by POST, or sign them
                GET /?Action=StopInstances&X-Amz-Signature=00
                  => ok
                GET /?Action=ConfirmSubscription&TopicArn=arn:aws:sns:us-east-1:000000000000:t&Token=abc
                  => ok
                GET /?Action=ConfirmSubscription&TopicArn=arn:aws:sns:us-east-1:000000000000:t
                  => An unsigned GET may only read: send actions that change state by POST, or sign them
                GET /?Action=Unsubscribe&SubscriptionArn=arn:aws:sns:us-east-1:000000000000:t:0f0e
                  => ok
                GET /?Action=Unsubscribe
                  => An unsigned GET may only read: send actions that change state by POST, or sign them
                POST / | origin: http://evil.example
                  => A request from http://evil.example may not change this region: only same-origin or signed requests may
                POST / | origin: null
                  => A request from null may not change this region: only same-origin or signed requests may
                POST / | origin: http://127.0.0.1:4566
                  => ok
                POST / | sec-fetch-site: cross-site
                  => A cross-site request may not change this region: only same-origin or signed requests may
                POST /_cumulo/chaos/kill-instance/i-0123 | origin: http://evil.example
                  => A request from http://evil.example may not change this region: only same-origin or signed requests may
                POST /_cumulo/chaos/kill-instance/i-0123
                  => ok
                GET /_cumulo/chaos/kill-instance/i-0123
                  => An unsigned GET may only read: send actions that change state by POST, or sign them
                PUT /cumulo/waitcondition/stack/handle
                  => ok
                GET /_cumulo/instances
                  => ok
                GET / | host: evil.example
                  => The Host "evil.example" is not this region's: only loopback names and addresses (localhost, 127.0.0.1, [::1]) reach it
                POST / | host: 127.0.0.1.nip.io:4566 | authorization: AWS4-HMAC-SHA256 x
                  => The Host "127.0.0.1.nip.io:4566" is not this region's: only loopback names and addresses (localhost, 127.0.0.1, [::1]) reach it
                GET / | host: localhost:4566
                  => ok
                GET / | host: web-1.us-east-1.elb.localhost
                  => ok
                GET / | host: [::1]:4566
                  => ok
                GET / | host: 127.1.2.3
                  => ok
            "#]],
        );
    }
}
