//! What the control plane keeps (in the store): load balancers, listeners, rules, target
//! groups with their registrations. Actions and conditions are kept in CloudFormation's shape
//! (the API's is the same), and turned into data-plane snapshots in `snapshot`.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use serde::{Deserialize, Serialize};
use serde_json::Value as Json;

pub const LOAD_BALANCERS: &str = "elb_load_balancers";
pub const LISTENERS: &str = "elb_listeners";
pub const RULES: &str = "elb_rules";
pub const TARGET_GROUPS: &str = "elb_target_groups";

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Application,
    Network,
    /// A Classic Load Balancer (`AWS::ElasticLoadBalancing::LoadBalancer`).
    Classic,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LoadBalancerRecord {
    /// The ARN (ELBv2) or the name (Classic): the key.
    pub arn: String,
    pub name: String,
    /// `app/<name>/<16 hex>` (the metric dimension).
    pub full_name: String,
    pub kind: Kind,
    pub dns_name: String,
    pub scheme: String,
    pub subnets: Vec<String>,
    pub zones: Vec<String>,
    pub security_groups: Vec<String>,
    pub attributes: BTreeMap<String, String>,
    /// The loopback address its listeners bind.
    pub ip: Ipv4Addr,
    pub created: String,
    /// `ipv4` or `dualstack`.
    #[serde(default = "ipv4")]
    pub ip_address_type: String,
    #[serde(default)]
    pub tags: Vec<Tag>,
    /// A Classic load balancer's own settings.
    #[serde(default)]
    pub classic: Option<ClassicSettings>,
}

fn ipv4() -> String {
    "ipv4".into()
}

impl LoadBalancerRecord {
    pub fn attribute(&self, key: &str) -> Option<&str> {
        self.attributes.get(key).map(String::as_str)
    }

    pub fn flag(&self, key: &str, default: bool) -> bool {
        self.attribute(key).map_or(default, |v| v.eq_ignore_ascii_case("true"))
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ListenerRecord {
    pub arn: String,
    pub lb_arn: String,
    pub port: u16,
    /// HTTP or HTTPS (TCP and SSL listeners of Classic load balancers are served as HTTP).
    pub protocol: String,
    pub certificates: Vec<String>,
    /// The default rule's actions.
    pub default_actions: Vec<Json>,
    /// The port really bound (differs from `port` when that one could not be bound).
    pub bound_port: u16,
    #[serde(default)]
    pub ssl_policy: Option<String>,
    #[serde(default)]
    pub tags: Vec<Tag>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RuleRecord {
    pub arn: String,
    pub listener_arn: String,
    pub priority: u32,
    pub conditions: Vec<Json>,
    pub actions: Vec<Json>,
    #[serde(default)]
    pub tags: Vec<Tag>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct HealthCheck {
    pub enabled: bool,
    /// HTTP, HTTPS or TCP (Classic).
    pub protocol: String,
    /// `None`: the traffic port.
    pub port: Option<u16>,
    pub path: String,
    pub interval: u64,
    pub timeout: u64,
    pub healthy: u32,
    pub unhealthy: u32,
    /// `200`, `200,202`, `200-299`.
    pub matcher: String,
}

impl Default for HealthCheck {
    fn default() -> HealthCheck {
        HealthCheck {
            enabled: true,
            protocol: "HTTP".into(),
            port: None,
            path: "/".into(),
            interval: 30,
            timeout: 5,
            healthy: 5,
            unhealthy: 2,
            matcher: "200".into(),
        }
    }
}

impl HealthCheck {
    /// Whether `status` is in the matcher's codes and ranges.
    pub fn matches(&self, status: u16) -> bool {
        self.matcher.split(',').map(str::trim).any(|part| match part.split_once('-') {
            Some((lo, hi)) => match (lo.trim().parse::<u16>(), hi.trim().parse::<u16>()) {
                (Ok(lo), Ok(hi)) => (lo..=hi).contains(&status),
                _ => false,
            },
            None => part.parse::<u16>() == Ok(status),
        })
    }
}

/// A registered target: an instance id or an IP, and the port (the group's when absent).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Registration {
    pub id: String,
    pub port: Option<u16>,
    pub zone: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TargetGroupRecord {
    /// The ARN (a Classic load balancer's own group: `classic/<name>`).
    pub arn: String,
    pub name: String,
    /// `targetgroup/<name>/<16 hex>`.
    pub full_name: String,
    pub protocol: String,
    pub port: u16,
    /// `instance` or `ip`.
    pub target_type: String,
    /// HTTP1, HTTP2 or GRPC.
    pub protocol_version: String,
    pub vpc_id: Option<String>,
    pub health_check: HealthCheck,
    pub attributes: BTreeMap<String, String>,
    pub targets: Vec<Registration>,
    #[serde(default)]
    pub tags: Vec<Tag>,
}

impl TargetGroupRecord {
    pub fn attribute(&self, key: &str) -> Option<&str> {
        self.attributes.get(key).map(String::as_str)
    }

    pub fn seconds(&self, key: &str, default: u64) -> u64 {
        self.attribute(key).and_then(|v| v.trim().parse().ok()).unwrap_or(default)
    }

    /// The id part of the ARN (16 hex), what stickiness cookies name.
    pub fn short_id(&self) -> &str {
        self.full_name.rsplit('/').next().unwrap_or(&self.full_name)
    }
}

/// A resource's tag.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tag {
    pub key: String,
    pub value: String,
}

/// What a Classic load balancer keeps beside its listeners and groups: its listeners as
/// Classic describes them, its one health check, its instances and its attributes.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ClassicSettings {
    pub listeners: Vec<ClassicListener>,
    pub health_check: ClassicHealthCheck,
    pub instances: Vec<String>,
    pub attributes: ClassicAttributes,
    pub sticky: bool,
}

/// One listener of a Classic load balancer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClassicListener {
    /// HTTP, HTTPS, TCP or SSL.
    pub protocol: String,
    pub load_balancer_port: u16,
    pub instance_protocol: String,
    pub instance_port: u16,
    pub ssl_certificate_id: Option<String>,
}

/// A Classic load balancer's health check (`Target` is `HTTP:80/path`, `TCP:80`, ...).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClassicHealthCheck {
    pub target: String,
    pub interval: u64,
    pub timeout: u64,
    pub healthy: u32,
    pub unhealthy: u32,
}

impl Default for ClassicHealthCheck {
    /// What a Classic load balancer checks until told otherwise.
    fn default() -> ClassicHealthCheck {
        ClassicHealthCheck {
            target: "TCP:80".into(),
            interval: 30,
            timeout: 5,
            healthy: 10,
            unhealthy: 2,
        }
    }
}

/// A Classic load balancer's attributes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClassicAttributes {
    pub cross_zone: bool,
    pub draining: bool,
    pub draining_timeout: u64,
    pub idle_timeout: u64,
}

impl Default for ClassicAttributes {
    /// The API's defaults (CloudFormation's are the same but for cross-zone).
    fn default() -> ClassicAttributes {
        ClassicAttributes {
            cross_zone: false,
            draining: false,
            draining_timeout: 300,
            idle_timeout: 60,
        }
    }
}

/// `[{Key, Value}]` (CloudFormation) into a map.
pub fn attributes(value: Option<&Json>) -> BTreeMap<String, String> {
    value
        .and_then(Json::as_array)
        .into_iter()
        .flatten()
        .filter_map(|kv| {
            let key = kv.get("Key")?.as_str()?.to_string();
            let value = match kv.get("Value")? {
                Json::String(s) => s.clone(),
                other => other.to_string(),
            };
            Some((key, value))
        })
        .collect()
}

pub use cfn_stacks::props::{flag, number, strings, text};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matcher_codes_and_ranges() {
        let hc = |m: &str| HealthCheck { matcher: m.into(), ..HealthCheck::default() };
        assert!(hc("200").matches(200) && !hc("200").matches(204));
        assert!(hc("200,202").matches(202) && !hc("200,202").matches(201));
        assert!(hc("200-299").matches(250) && !hc("200-299").matches(301));
        assert!(hc("200-399, 404").matches(404));
    }
}
