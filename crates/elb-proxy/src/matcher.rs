//! Rule conditions: ALB's wildcard patterns (`*` any run of characters, `?` exactly one) with
//! their case rules, source CIDRs, and the rule match itself.

use std::net::IpAddr;

use http::request::Parts;

use crate::config::{Condition, Listener, Peer, Rule};

/// A wildcard pattern, lowercased when the match is case-insensitive.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pattern {
    text: Vec<u8>,
    case_insensitive: bool,
}

impl Pattern {
    pub fn new(text: &str, case_insensitive: bool) -> Pattern {
        let text = if case_insensitive { text.to_ascii_lowercase() } else { text.to_string() };
        Pattern { text: text.into_bytes(), case_insensitive }
    }

    pub fn matches(&self, subject: &str) -> bool {
        if self.case_insensitive {
            wildcard(&self.text, subject.as_bytes(), true)
        } else {
            wildcard(&self.text, subject.as_bytes(), false)
        }
    }
}

/// Iterative wildcard match with backtracking on the last `*` (linear for ALB's patterns).
fn wildcard(pattern: &[u8], subject: &[u8], fold: bool) -> bool {
    let eq = |p: u8, s: u8| p == if fold { s.to_ascii_lowercase() } else { s };
    let (mut p, mut s) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while s < subject.len() {
        if p < pattern.len()
            && (pattern[p] == b'?' || (pattern[p] != b'*' && eq(pattern[p], subject[s])))
        {
            p += 1;
            s += 1;
        } else if p < pattern.len() && pattern[p] == b'*' {
            star = Some((p, s));
            p += 1;
        } else if let Some((sp, ss)) = star {
            p = sp + 1;
            s = ss + 1;
            star = Some((sp, ss + 1));
        } else {
            return false;
        }
    }
    while p < pattern.len() && pattern[p] == b'*' {
        p += 1;
    }
    p == pattern.len()
}

/// A source-ip condition's network.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SourceNet {
    addr: IpAddr,
    prefix: u8,
}

impl SourceNet {
    pub fn parse(s: &str) -> Option<SourceNet> {
        let (addr, prefix) = s.trim().split_once('/').unwrap_or((s.trim(), ""));
        let addr: IpAddr = addr.parse().ok()?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = if prefix.is_empty() { max } else { prefix.parse().ok()? };
        (prefix <= max).then_some(SourceNet { addr, prefix })
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = match (self.addr, ip) {
            (IpAddr::V4(_), IpAddr::V6(v6)) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
            _ => ip,
        };
        match (self.addr, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = if self.prefix == 0 { 0 } else { u32::MAX << (32 - self.prefix) };
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = if self.prefix == 0 { 0 } else { u128::MAX << (128 - self.prefix) };
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

/// The host a request is for: the first Host header (or the URI's authority), port stripped.
pub fn request_host(parts: &Parts) -> Option<&str> {
    let raw = parts
        .uri
        .authority()
        .map(|a| a.as_str())
        .or_else(|| parts.headers.get(http::header::HOST)?.to_str().ok())?;
    Some(strip_port(raw))
}

pub fn strip_port(host: &str) -> &str {
    if let Some(rest) = host.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    match host.rsplit_once(':') {
        Some((h, p)) if p.chars().all(|c| c.is_ascii_digit()) => h,
        _ => host,
    }
}

fn condition_matches(condition: &Condition, parts: &Parts, peer: Peer) -> bool {
    match condition {
        Condition::Host(patterns) => {
            request_host(parts).is_some_and(|h| patterns.iter().any(|p| p.matches(h)))
        }
        Condition::Path(patterns) => {
            let path = parts.uri.path();
            patterns.iter().any(|p| p.matches(path))
        }
        Condition::Header { name, values } => parts
            .headers
            .get_all(name)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .any(|v| values.iter().any(|p| p.matches(v))),
        Condition::Method(methods) => methods.contains(&parts.method),
        Condition::Query(pairs) => {
            let query = parts.uri.query().unwrap_or("");
            pairs.iter().any(|(key, value)| {
                query.split('&').filter(|kv| !kv.is_empty()).any(|kv| {
                    let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
                    let k = percent_decode(k);
                    let v = percent_decode(v);
                    key.as_ref().is_none_or(|kp| kp.matches(&k)) && value.matches(&v)
                })
            })
        }
        Condition::SourceIp(nets) => nets.iter().any(|n| n.contains(peer.ip())),
    }
}

/// The first rule whose conditions all hold (the default rule has none).
pub fn route<'l>(listener: &'l Listener, parts: &Parts, peer: Peer) -> Option<&'l Rule> {
    listener.rules.iter().find(|r| r.conditions.iter().all(|c| condition_matches(c, parts, peer)))
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3])
                    .ok()
                    .and_then(|h| u8::from_str_radix(h, 16).ok());
                match hex {
                    Some(b) => {
                        out.push(b);
                        i += 3;
                    }
                    None => {
                        out.push(b'%');
                        i += 1;
                    }
                }
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards_and_case() {
        let host = Pattern::new("*.Example.com", true);
        assert!(host.matches("a.example.com") && host.matches("A.B.EXAMPLE.COM"));
        assert!(!host.matches("example.com"));
        let path = Pattern::new("/api/*", false);
        assert!(path.matches("/api/") && path.matches("/api/v1/users"));
        assert!(!path.matches("/API/v1"), "paths are case-sensitive");
        let one = Pattern::new("/img?.png", false);
        assert!(one.matches("/img1.png") && !one.matches("/img.png") && !one.matches("/img12.png"));
        assert!(Pattern::new("*", false).matches(""));
        assert!(Pattern::new("a*b*c", false).matches("aXXbYYbZc"));
        assert!(!Pattern::new("a*b*c", false).matches("aXXbYY"));
    }

    #[test]
    fn source_networks() {
        let net = SourceNet::parse("10.0.0.0/8").unwrap();
        assert!(net.contains("10.1.2.3".parse().unwrap()));
        assert!(!net.contains("11.0.0.1".parse().unwrap()));
        assert!(net.contains("::ffff:10.0.0.1".parse().unwrap()), "v4-mapped clients");
        assert!(SourceNet::parse("127.0.0.1").unwrap().contains("127.0.0.1".parse().unwrap()));
        assert!(
            SourceNet::parse("2001:db8::/32").unwrap().contains("2001:db8::1".parse().unwrap())
        );
        assert_eq!(SourceNet::parse("10.0.0.0/33"), None);
    }

    #[test]
    fn hosts_without_ports() {
        assert_eq!(strip_port("example.com:8080"), "example.com");
        assert_eq!(strip_port("[::1]:80"), "::1");
        assert_eq!(strip_port("example.com"), "example.com");
        assert_eq!(percent_decode("a%20b+c%2"), "a b c%2");
    }
}
