//! The Elastic Load Balancing v2 Query API (version 2015-12-01): describing load balancers,
//! listeners, rules and target groups, target health, registering and deregistering targets,
//! and their attributes — what `aws elbv2` users run during the HA tutorials.

use elb::Elb;
use elb::model::{LoadBalancerRecord, Registration, TargetGroupRecord};
use serde_json::Value as Json;

use crate::error::ApiError;
use crate::query::QueryInput;
use crate::xml::XmlOut;

pub const XMLNS: &str = "http://elasticloadbalancing.amazonaws.com/doc/2015-12-01/";
pub const VERSION: &str = "2015-12-01";

const ACTIONS: &[&str] = &[
    "DescribeLoadBalancers",
    "DescribeListeners",
    "DescribeRules",
    "DescribeTargetGroups",
    "DescribeTargetHealth",
    "RegisterTargets",
    "DeregisterTargets",
    "DescribeTargetGroupAttributes",
    "ModifyTargetGroupAttributes",
    "DescribeLoadBalancerAttributes",
    "ModifyLoadBalancerAttributes",
];

/// Elastic Load Balancing (v2) in the endpoint's registry.
pub struct Api(pub std::sync::Arc<Elb>);

crate::registry::query_service!("elasticloadbalancing", |api, action, q, request_id| handle(
    &api.0, action, q, request_id
));

/// Every action it answers (COVERAGE.md).
pub fn actions() -> &'static [&'static str] {
    ACTIONS
}

pub fn handles(action: &str) -> bool {
    ACTIONS.contains(&action)
}

impl From<elb::ElbError> for ApiError {
    fn from(e: elb::ElbError) -> ApiError {
        ApiError::service(e.code(), e.to_string())
    }
}

/// A JSON value (CloudFormation's shape of actions and conditions) as Query XML: objects
/// become elements, arrays become `member` lists.
fn json_xml(x: &mut XmlOut, name: &str, value: &Json) {
    match value {
        Json::Object(map) => {
            x.open(name, None);
            for (k, v) in map {
                json_xml(x, k, v);
            }
            x.close();
        }
        Json::Array(items) => {
            x.open(name, None);
            for item in items {
                json_xml(x, "member", item);
            }
            x.close();
        }
        Json::String(s) => {
            x.text(name, s);
        }
        Json::Null => {}
        other => {
            x.text(name, &other.to_string());
        }
    }
}

/// A load balancer's VPC and the zone of each of its subnets, read before its XML is written.
struct Network {
    vpc: String,
    zones: Vec<(String, String)>,
}

fn network_of(elb: &Elb, lb: &LoadBalancerRecord) -> Result<Network, ApiError> {
    let ec2 = elb.ec2();
    let mut zones = Vec::new();
    let mut vpc = None;
    for s in &lb.subnets {
        let subnet = ec2.subnet(s)?;
        if vpc.is_none() {
            vpc = Some(subnet.as_ref().map(|r| r.vpc_id.clone()).unwrap_or_default());
        }
        zones.push((subnet.map(|r| r.zone).unwrap_or_default(), s.clone()));
    }
    Ok(Network { vpc: vpc.unwrap_or_default(), zones })
}

fn write_load_balancer(x: &mut XmlOut, elb: &Elb, lb: &LoadBalancerRecord, network: &Network) {
    x.text("LoadBalancerArn", &lb.arn)
        .text("DNSName", &lb.dns_name)
        .text("CanonicalHostedZoneId", cfn_stacks::generic::alb_hosted_zone(&elb.account().region))
        .text("CreatedTime", &lb.created)
        .text("LoadBalancerName", &lb.name)
        .text("Scheme", &lb.scheme);
    x.text("VpcId", &network.vpc);
    x.open("State", None).text("Code", "active").close();
    x.text("Type", if lb.kind == elb::model::Kind::Network { "network" } else { "application" });
    x.members("AvailabilityZones", &network.zones, |x, (zone, s)| {
        x.text("ZoneName", zone).text("SubnetId", s);
    });
    x.strings("SecurityGroups", &lb.security_groups);
    x.text("IpAddressType", "ipv4");
}

/// A target group with the load balancers it receives traffic from.
fn write_target_group(x: &mut XmlOut, tg: &TargetGroupRecord, load_balancers: &[String]) {
    let hc = &tg.health_check;
    x.text("TargetGroupArn", &tg.arn)
        .text("TargetGroupName", &tg.name)
        .text("Protocol", &tg.protocol)
        .text("Port", &tg.port.to_string());
    x.opt("VpcId", tg.vpc_id.as_deref());
    x.text("HealthCheckProtocol", &hc.protocol)
        .text("HealthCheckPort", &hc.port.map_or("traffic-port".to_string(), |p| p.to_string()))
        .bool("HealthCheckEnabled", hc.enabled)
        .text("HealthCheckIntervalSeconds", &hc.interval.to_string())
        .text("HealthCheckTimeoutSeconds", &hc.timeout.to_string())
        .text("HealthyThresholdCount", &hc.healthy.to_string())
        .text("UnhealthyThresholdCount", &hc.unhealthy.to_string())
        .text("HealthCheckPath", &hc.path);
    x.open("Matcher", None).text("HttpCode", &hc.matcher).close();
    x.strings("LoadBalancerArns", load_balancers);
    x.text("TargetType", &tg.target_type)
        .text("ProtocolVersion", &tg.protocol_version)
        .text("IpAddressType", "ipv4");
}

fn attributes_xml(x: &mut XmlOut, attributes: &[(String, String)]) {
    x.members("Attributes", attributes, |x, (k, v)| {
        x.text("Key", k).text("Value", v);
    });
}

/// A target group's attributes with AWS's defaults filled in.
fn target_group_attributes(tg: &TargetGroupRecord) -> Vec<(String, String)> {
    let defaults = [
        ("deregistration_delay.timeout_seconds", "300"),
        ("slow_start.duration_seconds", "0"),
        ("load_balancing.algorithm.type", "round_robin"),
        ("load_balancing.algorithm.anomaly_mitigation", "off"),
        ("load_balancing.cross_zone.enabled", "use_load_balancer_configuration"),
        ("stickiness.enabled", "false"),
        ("stickiness.type", "lb_cookie"),
        ("stickiness.lb_cookie.duration_seconds", "86400"),
        ("stickiness.app_cookie.cookie_name", ""),
        ("stickiness.app_cookie.duration_seconds", "86400"),
        ("target_group_health.unhealthy_state_routing.minimum_healthy_targets.count", "1"),
        ("target_group_health.unhealthy_state_routing.minimum_healthy_targets.percentage", "off"),
        ("target_group_health.dns_failover.minimum_healthy_targets.count", "1"),
        ("target_group_health.dns_failover.minimum_healthy_targets.percentage", "off"),
    ];
    let mut out: Vec<(String, String)> = defaults
        .iter()
        .map(|(k, v)| (k.to_string(), tg.attribute(k).unwrap_or(v).to_string()))
        .collect();
    for (k, v) in &tg.attributes {
        if !out.iter().any(|(o, _)| o == k) {
            out.push((k.clone(), v.clone()));
        }
    }
    out
}

fn load_balancer_attributes(lb: &LoadBalancerRecord) -> Vec<(String, String)> {
    let defaults = [
        ("idle_timeout.timeout_seconds", "60"),
        ("client_keep_alive.seconds", "3600"),
        ("routing.http2.enabled", "true"),
        ("routing.http.xff_header_processing.mode", "append"),
        ("routing.http.xff_client_port.enabled", "false"),
        ("routing.http.preserve_host_header.enabled", "false"),
        ("routing.http.desync_mitigation_mode", "defensive"),
        ("deletion_protection.enabled", "false"),
        ("access_logs.s3.enabled", "false"),
    ];
    let mut out: Vec<(String, String)> = defaults
        .iter()
        .map(|(k, v)| (k.to_string(), lb.attribute(k).unwrap_or(v).to_string()))
        .collect();
    for (k, v) in &lb.attributes {
        if !out.iter().any(|(o, _)| o == k) {
            out.push((k.clone(), v.clone()));
        }
    }
    out
}

fn group(elb: &Elb, arn: &str) -> Result<TargetGroupRecord, ApiError> {
    elb.target_group(arn)?.ok_or_else(|| {
        ApiError::new("TargetGroupNotFound", format!("Target groups '{arn}' not found"), 400)
    })
}

fn load_balancer(elb: &Elb, arn: &str) -> Result<LoadBalancerRecord, ApiError> {
    elb.load_balancer(arn)?.ok_or_else(|| {
        ApiError::new("LoadBalancerNotFound", format!("Load balancers '[{arn}]' not found"), 400)
    })
}

fn targets(q: &QueryInput) -> Vec<Registration> {
    q.structs("Targets")
        .into_iter()
        .filter_map(|t| {
            Some(Registration {
                id: t.get("Id")?.clone(),
                port: t.get("Port").and_then(|p| p.parse().ok()),
                zone: t.get("AvailabilityZone").cloned(),
            })
        })
        .collect()
}

pub fn handle(
    elb: &Elb,
    action: &str,
    q: &QueryInput,
    request_id: &str,
) -> Result<String, ApiError> {
    let mut x = XmlOut::new();
    x.open(&format!("{action}Response"), Some(XMLNS));
    x.open(&format!("{action}Result"), None);
    match action {
        "DescribeLoadBalancers" => {
            let arns = q.list("LoadBalancerArns");
            let names = q.list("Names");
            let all: Vec<LoadBalancerRecord> = elb
                .load_balancers()?
                .into_iter()
                .filter(|l| l.kind != elb::model::Kind::Classic)
                .collect();
            for n in &names {
                if !all.iter().any(|l| &l.name == n) {
                    return Err(ApiError::new(
                        "LoadBalancerNotFound",
                        format!("Load balancers '[{n}]' not found"),
                        400,
                    ));
                }
            }
            let chosen: Vec<&LoadBalancerRecord> = all
                .iter()
                .filter(|l| {
                    (arns.is_empty() || arns.contains(&l.arn))
                        && (names.is_empty() || names.contains(&l.name))
                })
                .collect();
            let mut rows = Vec::with_capacity(chosen.len());
            for lb in chosen {
                rows.push((lb, network_of(elb, lb)?));
            }
            x.members("LoadBalancers", &rows, |x, (lb, net)| write_load_balancer(x, elb, lb, net));
        }
        "DescribeTargetGroups" => {
            let arns = q.list("TargetGroupArns");
            let names = q.list("Names");
            let lb = q.get("LoadBalancerArn");
            let mut chosen = Vec::new();
            for t in elb.target_groups()? {
                if t.arn.starts_with("classic/")
                    || !(arns.is_empty() || arns.contains(&t.arn))
                    || !(names.is_empty() || names.contains(&t.name))
                {
                    continue;
                }
                let users = elb.load_balancers_of(&t.arn)?;
                if lb.is_none_or(|l| users.iter().any(|a| a == l)) {
                    chosen.push((t, users));
                }
            }
            for a in &arns {
                if !chosen.iter().any(|(t, _)| &t.arn == a) {
                    return Err(ApiError::new(
                        "TargetGroupNotFound",
                        format!("One or more target groups not found: {a}"),
                        400,
                    ));
                }
            }
            x.members("TargetGroups", &chosen, |x, (tg, users)| write_target_group(x, tg, users));
        }
        "DescribeTargetHealth" => {
            let arn = q.required("TargetGroupArn").map_err(ApiError::validation)?;
            let tg = group(elb, arn)?;
            let asked = targets(q);
            let mut health = elb.target_health(arn)?;
            health.retain(|h| {
                asked.is_empty()
                    || asked.iter().any(|a| a.id == h.id && a.port.is_none_or(|p| p == h.port))
            });
            // Targets asked about that are not registered: unused, Target.NotRegistered.
            for a in &asked {
                if !health.iter().any(|h| h.id == a.id) {
                    health.push(elb::TargetHealth {
                        id: a.id.clone(),
                        port: a.port.unwrap_or(tg.port),
                        zone: None,
                        health: elb::Health::not_registered(),
                    });
                }
            }
            let hc_port = tg.health_check.port;
            x.members("TargetHealthDescriptions", &health, |x, h| {
                x.open("Target", None).text("Id", &h.id).text("Port", &h.port.to_string());
                x.opt("AvailabilityZone", h.zone.as_deref());
                x.close();
                x.text("HealthCheckPort", &hc_port.unwrap_or(h.port).to_string());
                x.open("TargetHealth", None).text("State", h.health.state.as_str());
                x.opt("Reason", h.health.reason.as_deref())
                    .opt("Description", h.health.description.as_deref());
                x.close();
            });
        }
        "RegisterTargets" | "DeregisterTargets" => {
            let arn = q.required("TargetGroupArn").map_err(ApiError::validation)?;
            group(elb, arn)?;
            let list = targets(q);
            if list.is_empty() {
                return Err(ApiError::validation(
                    "1 validation error detected: Value null at 'targets' failed to satisfy constraint: Member must not be null",
                ));
            }
            if action == "RegisterTargets" {
                elb.register_targets(arn, &list)?;
            } else {
                elb.deregister_targets(arn, &list)?;
            }
        }
        "DescribeListeners" => {
            let lb = q.get("LoadBalancerArn");
            let arns = q.list("ListenerArns");
            if let Some(lb) = lb {
                load_balancer(elb, lb)?;
            }
            let chosen: Vec<_> = elb
                .listeners()?
                .into_iter()
                .filter(|l| {
                    lb.is_none_or(|a| l.lb_arn == a) && (arns.is_empty() || arns.contains(&l.arn))
                })
                .filter(|l| !l.arn.contains("/listener/") || l.arn.starts_with("arn:"))
                .collect();
            x.members("Listeners", &chosen, |x, l| {
                x.text("ListenerArn", &l.arn)
                    .text("LoadBalancerArn", &l.lb_arn)
                    .text("Port", &l.port.to_string())
                    .text("Protocol", &l.protocol);
                x.members("Certificates", &l.certificates, |x, c| {
                    x.text("CertificateArn", c);
                });
                json_xml(x, "DefaultActions", &Json::Array(l.default_actions.clone()));
            });
        }
        "DescribeRules" => {
            let listener = q.get("ListenerArn");
            let arns = q.list("RuleArns");
            let mut rules: Vec<_> = elb
                .rules()?
                .into_iter()
                .filter(|r| {
                    listener.is_none_or(|l| r.listener_arn == l)
                        && (arns.is_empty() || arns.contains(&r.arn))
                })
                .collect();
            rules.sort_by_key(|r| r.priority);
            let default = match listener {
                Some(l) => elb.listener(l)?,
                None => None,
            };
            x.open("Rules", None);
            for r in &rules {
                x.open("member", None)
                    .text("RuleArn", &r.arn)
                    .text("Priority", &r.priority.to_string());
                json_xml(&mut x, "Conditions", &Json::Array(r.conditions.clone()));
                json_xml(&mut x, "Actions", &Json::Array(r.actions.clone()));
                x.bool("IsDefault", false).close();
            }
            if let Some(l) = default {
                x.open("member", None)
                    .text(
                        "RuleArn",
                        &format!("{}/default", l.arn.replace(":listener/", ":listener-rule/")),
                    )
                    .text("Priority", "default");
                x.open("Conditions", None).close();
                json_xml(&mut x, "Actions", &Json::Array(l.default_actions.clone()));
                x.bool("IsDefault", true).close();
            }
            x.close();
        }
        "DescribeTargetGroupAttributes" => {
            let tg = group(elb, q.required("TargetGroupArn").map_err(ApiError::validation)?)?;
            attributes_xml(&mut x, &target_group_attributes(&tg));
        }
        "ModifyTargetGroupAttributes" => {
            let mut tg = group(elb, q.required("TargetGroupArn").map_err(ApiError::validation)?)?;
            for a in q.structs("Attributes") {
                if let (Some(k), Some(v)) = (a.get("Key"), a.get("Value")) {
                    tg.attributes.insert(k.clone(), v.clone());
                }
            }
            let tg = elb.put_target_group(tg)?;
            attributes_xml(&mut x, &target_group_attributes(&tg));
        }
        "DescribeLoadBalancerAttributes" => {
            let lb =
                load_balancer(elb, q.required("LoadBalancerArn").map_err(ApiError::validation)?)?;
            attributes_xml(&mut x, &load_balancer_attributes(&lb));
        }
        "ModifyLoadBalancerAttributes" => {
            let mut lb =
                load_balancer(elb, q.required("LoadBalancerArn").map_err(ApiError::validation)?)?;
            for a in q.structs("Attributes") {
                if let (Some(k), Some(v)) = (a.get("Key"), a.get("Value")) {
                    lb.attributes.insert(k.clone(), v.clone());
                }
            }
            elb.update_load_balancer(&lb)?;
            attributes_xml(&mut x, &load_balancer_attributes(&lb));
        }
        other => return Err(ApiError::invalid_action(other)),
    }
    x.close();
    x.open("ResponseMetadata", None).text("RequestId", request_id).close();
    Ok(x.finish())
}
