//! Elastic Load Balancing locally: the control plane of Application (and Classic) Load
//! Balancers. It keeps the records, binds each load balancer's listeners on a loopback address
//! of its own, health-checks targets on the clock, and publishes snapshots that the data plane
//! (`elb-proxy`) reads.
//!
//! Architecture Invariant: the data plane never calls back into this crate and never reads the
//! store; everything it needs is in the published snapshots.

pub mod access_logs;
pub mod ca;
pub mod health;
pub mod metrics;
pub mod model;
pub mod providers;
pub mod requests;
pub mod service;
pub mod snapshot;

pub use ca::Ca;
pub use health::{Health, State};
pub use providers::{ElbProvider, TYPES};
pub use service::{
    Elb, ElbError, Endpoint, HealthChange, InstanceHealth, Prober, TargetHealth, http_prober,
};

/// Cumulo's own load balancer attribute (off by default, as AWS has no such thing): retry an
/// idempotent request on another target when the connection failed before any response byte.
pub const RETRY_ATTRIBUTE: &str = "cumulo.routing.retry_idempotent.enabled";

/// Cumulo's own target group attributes for passive outlier ejection (off by default): after
/// `consecutive_errors` connection failures in a row (default 1), a target gets no new
/// requests for `base_ejection_seconds` (default 30; the n-th ejection lasts n times as long,
/// up to ten times), unless every target is ejected. Health checks go on as before.
pub const OUTLIER_ATTRIBUTE: &str = "cumulo.outlier_ejection.enabled";
pub const OUTLIER_ERRORS_ATTRIBUTE: &str = "cumulo.outlier_ejection.consecutive_errors";
pub const OUTLIER_EJECTION_ATTRIBUTE: &str = "cumulo.outlier_ejection.base_ejection_seconds";

/// The key of a Classic load balancer's target group for one instance port.
pub fn classic_group(name: &str, instance_port: u16) -> String {
    format!("classic/{name}/{instance_port}")
}

/// An output value with load balancer DNS names made into addresses that answer: in a URL,
/// `NAME-123.us-east-1.elb.localhost[:port]` becomes the listener's loopback `IP:port` (the
/// port it really got). `*.localhost` names do not resolve everywhere (glibc), the address
/// does. Values without such a URL are returned as they are.
pub fn working_url(value: &str, endpoints: &[Endpoint]) -> String {
    let mut out = value.to_string();
    for e in endpoints {
        let mut search_from = 0;
        while let Some(found) = out[search_from..].find(&e.dns_name) {
            let start = search_from + found;
            let end = start + e.dns_name.len();
            let before = &out[..start];
            let Some(scheme) = before
                .strip_suffix("://")
                .map(|b| b.rsplit(|c: char| !c.is_ascii_alphabetic()).next().unwrap_or(b))
            else {
                search_from = end;
                continue;
            };
            let https = scheme.eq_ignore_ascii_case("https");
            let rest = &out[end..];
            let (port, port_len) = match rest.strip_prefix(':') {
                Some(p) => {
                    let digits: String = p.chars().take_while(char::is_ascii_digit).collect();
                    (digits.parse::<u16>().ok(), digits.len() + 1)
                }
                None => (Some(if https { 443 } else { 80 }), 0),
            };
            let Some(endpoint) =
                endpoints.iter().find(|x| x.dns_name == e.dns_name && Some(x.port) == port)
            else {
                search_from = end;
                continue;
            };
            let default = if https { 443 } else { 80 };
            let host = if endpoint.addr.port() == default {
                endpoint.addr.ip().to_string()
            } else {
                endpoint.addr.to_string()
            };
            out.replace_range(start..end + port_len, &host);
            search_from = start + host.len();
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_with_load_balancer_names_become_addresses_that_answer() {
        let e = |port: u16, addr: &str| Endpoint {
            load_balancer: "web".into(),
            dns_name: "web-123.us-east-1.elb.localhost".into(),
            port,
            https: port == 443,
            addr: addr.parse().unwrap(),
        };
        let endpoints =
            [e(80, "127.0.1.1:8080"), e(8080, "127.0.1.1:8080"), e(443, "127.0.1.1:443")];
        let check = |value: &str| working_url(value, &endpoints);
        assert_eq!(check("http://web-123.us-east-1.elb.localhost"), "http://127.0.1.1:8080");
        assert_eq!(
            check("http://web-123.us-east-1.elb.localhost:8080/path"),
            "http://127.0.1.1:8080/path"
        );
        assert_eq!(check("https://web-123.us-east-1.elb.localhost/"), "https://127.0.1.1/");
        assert_eq!(
            check("web-123.us-east-1.elb.localhost"),
            "web-123.us-east-1.elb.localhost",
            "a bare name stays"
        );
        assert_eq!(
            check("http://web-123.us-east-1.elb.localhost:9999/"),
            "http://web-123.us-east-1.elb.localhost:9999/",
            "no such listener"
        );
        assert_eq!(check("http://other.example.com/"), "http://other.example.com/");
    }
}
