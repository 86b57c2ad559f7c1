//! The operations' typed requests, one per operation, shared by the API (built from Query
//! parameters in `api`) and the CloudFormation providers (built from resolved properties in
//! `providers`): both go through the same `Elb` methods, so a resource made either way is the
//! same record.
//!
//! Actions and conditions stay in CloudFormation's JSON shape (the API's is the same); the
//! service normalizes them (`normalize_actions`) so that either source stores the same values.

use std::collections::BTreeMap;

use serde_json::Value as Json;

pub use crate::model::{ClassicAttributes, ClassicHealthCheck, ClassicListener};
use crate::model::{Kind, Tag};

/// CreateLoadBalancer (ELBv2) and `AWS::ElasticLoadBalancingV2::LoadBalancer`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct CreateLoadBalancer {
    pub name: String,
    /// CloudFormation's physical id; generated when absent.
    pub arn: Option<String>,
    /// CloudFormation's DNS name attribute (AWS's shape); generated when absent.
    pub dns_name: Option<String>,
    /// Application (the default) or Network.
    pub kind: Option<Kind>,
    /// `internet-facing` (the default) or `internal`.
    pub scheme: Option<String>,
    /// Subnets, and the `SubnetId`s of `SubnetMappings`.
    pub subnets: Vec<String>,
    pub security_groups: Vec<String>,
    /// `ipv4` (the default) or `dualstack`.
    pub ip_address_type: Option<String>,
    pub attributes: BTreeMap<String, String>,
    pub tags: Vec<Tag>,
}

/// A target group's health check as asked: every member optional, AWS's defaults filling in.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct HealthCheckSettings {
    pub enabled: Option<bool>,
    pub protocol: Option<String>,
    /// A port number or `traffic-port`.
    pub port: Option<String>,
    pub path: Option<String>,
    pub interval: Option<u64>,
    pub timeout: Option<u64>,
    pub healthy: Option<u32>,
    pub unhealthy: Option<u32>,
    /// `Matcher.HttpCode`.
    pub matcher: Option<String>,
}

/// CreateTargetGroup and `AWS::ElasticLoadBalancingV2::TargetGroup`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct CreateTargetGroup {
    pub name: String,
    /// CloudFormation's physical id; generated when absent.
    pub arn: Option<String>,
    pub protocol: Option<String>,
    pub port: Option<u16>,
    pub vpc_id: Option<String>,
    /// `instance` (the default), `ip` or `lambda`.
    pub target_type: Option<String>,
    /// HTTP1 (the default), HTTP2 or GRPC.
    pub protocol_version: Option<String>,
    pub health_check: HealthCheckSettings,
    pub attributes: BTreeMap<String, String>,
    pub tags: Vec<Tag>,
}

/// ModifyTargetGroup: the health check members given change, the others stay.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ModifyTargetGroup {
    pub arn: String,
    pub health_check: HealthCheckSettings,
}

/// CreateListener and `AWS::ElasticLoadBalancingV2::Listener`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct CreateListener {
    /// CloudFormation's physical id; generated when absent.
    pub arn: Option<String>,
    pub load_balancer_arn: String,
    pub protocol: Option<String>,
    pub port: Option<u16>,
    pub certificates: Vec<String>,
    pub ssl_policy: Option<String>,
    pub default_actions: Vec<Json>,
    pub tags: Vec<Tag>,
}

/// ModifyListener: what is given changes.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ModifyListener {
    pub arn: String,
    pub protocol: Option<String>,
    pub port: Option<u16>,
    pub certificates: Option<Vec<String>>,
    pub ssl_policy: Option<String>,
    pub default_actions: Option<Vec<Json>>,
}

/// CreateRule and `AWS::ElasticLoadBalancingV2::ListenerRule`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct CreateRule {
    /// CloudFormation's physical id; generated when absent.
    pub arn: Option<String>,
    pub listener_arn: String,
    pub priority: u32,
    pub conditions: Vec<Json>,
    pub actions: Vec<Json>,
    pub tags: Vec<Tag>,
}

/// ModifyRule: what is given changes.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ModifyRule {
    pub arn: String,
    pub conditions: Option<Vec<Json>>,
    pub actions: Option<Vec<Json>>,
}

/// CreateLoadBalancer (Classic) and `AWS::ElasticLoadBalancing::LoadBalancer`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct CreateClassicLoadBalancer {
    pub name: String,
    /// CloudFormation's DNS name attribute (AWS's shape); generated when absent.
    pub dns_name: Option<String>,
    pub listeners: Vec<ClassicListener>,
    pub zones: Vec<String>,
    pub subnets: Vec<String>,
    pub security_groups: Vec<String>,
    pub scheme: Option<String>,
    pub health_check: Option<ClassicHealthCheck>,
    pub instances: Vec<String>,
    /// Classic's attributes (`CrossZoneLoadBalancing`, `ConnectionDraining`, ...).
    pub attributes: ClassicAttributes,
    /// Stickiness policies are recorded as on.
    pub sticky: bool,
    pub tags: Vec<Tag>,
}

/// ModifyLoadBalancerAttributes (Classic): what is given changes.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ModifyClassicAttributes {
    pub cross_zone: Option<bool>,
    pub draining: Option<bool>,
    pub draining_timeout: Option<u64>,
    pub idle_timeout: Option<u64>,
}

/// Actions as stored: numbers (`Order`, `Weight`, `DurationSeconds`) as JSON numbers,
/// `Enabled` as a JSON boolean and keys in order, whether they came as template values or
/// Query strings.
pub fn normalize_actions(actions: &[Json]) -> Vec<Json> {
    actions.iter().map(normalize).collect()
}

/// Conditions as stored: keys in order.
pub fn normalize_conditions(conditions: &[Json]) -> Vec<Json> {
    conditions.iter().map(normalize).collect()
}

fn normalize(value: &Json) -> Json {
    match value {
        Json::Object(map) => {
            let mut entries: Vec<(&String, &Json)> = map.iter().collect();
            entries.sort_by(|a, b| a.0.cmp(b.0));
            Json::Object(
                entries
                    .into_iter()
                    .map(|(k, v)| {
                        let v = match (k.as_str(), v) {
                            ("Order" | "Weight" | "DurationSeconds", Json::String(s)) => {
                                s.trim().parse::<u64>().map_or_else(|_| v.clone(), Json::from)
                            }
                            ("Enabled", Json::String(s)) => {
                                Json::Bool(s.eq_ignore_ascii_case("true"))
                            }
                            _ => normalize(v),
                        };
                        (k.clone(), v)
                    })
                    .collect(),
            )
        }
        Json::Array(items) => Json::Array(items.iter().map(normalize).collect()),
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn actions_from_a_template_and_from_query_strings_are_stored_alike() {
        let from_query = json!([{"Type": "forward", "Order": "1", "ForwardConfig": {
            "TargetGroups": [{"TargetGroupArn": "a", "Weight": "3"}],
            "TargetGroupStickinessConfig": {"Enabled": "true", "DurationSeconds": "60"}}}]);
        let from_template = json!([{"Type": "forward", "Order": 1, "ForwardConfig": {
            "TargetGroups": [{"TargetGroupArn": "a", "Weight": 3}],
            "TargetGroupStickinessConfig": {"Enabled": true, "DurationSeconds": 60}}}]);
        let q = normalize_actions(from_query.as_array().unwrap());
        let t = normalize_actions(from_template.as_array().unwrap());
        assert_eq!(q, t);
        assert_eq!(Json::Array(q), from_template);
    }
}
