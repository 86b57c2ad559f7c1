//! The Elastic Load Balancing v2 Query API (version 2015-12-01): load balancers, target
//! groups, listeners (certificates included), rules, tags, target registration and health,
//! attributes — what `aws elbv2` users run during the HA tutorials. Each write turns its Query
//! parameters into the operation's typed request (`elb::requests`), the one CloudFormation's
//! provider builds from properties, and calls the same `Elb` method.

use std::collections::{BTreeMap, HashMap, HashSet};

use elb::Elb;
use elb::model::{
    Kind, ListenerRecord, LoadBalancerRecord, Registration, RuleRecord, Tag, TargetGroupRecord,
};
use elb::requests::*;
use serde_json::Value as Json;

use crate::error::ApiError;
use crate::query::QueryInput;
use crate::xml::XmlOut;

pub const XMLNS: &str = "http://elasticloadbalancing.amazonaws.com/doc/2015-12-01/";
pub const VERSION: &str = "2015-12-01";

const ACTIONS: &[&str] = &[
    "CreateLoadBalancer",
    "DeleteLoadBalancer",
    "SetSubnets",
    "SetSecurityGroups",
    "CreateTargetGroup",
    "ModifyTargetGroup",
    "DeleteTargetGroup",
    "CreateListener",
    "ModifyListener",
    "DeleteListener",
    "AddListenerCertificates",
    "RemoveListenerCertificates",
    "DescribeListenerCertificates",
    "CreateRule",
    "ModifyRule",
    "DeleteRule",
    "SetRulePriorities",
    "AddTags",
    "RemoveTags",
    "DescribeTags",
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
)
.await);

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
    x.text("IpAddressType", &lb.ip_address_type);
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
    let code = if tg.protocol_version == "GRPC" { "GrpcCode" } else { "HttpCode" };
    x.open("Matcher", None).text(code, &hc.matcher).close();
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

fn required<'a>(q: &'a QueryInput, key: &str) -> Result<&'a str, ApiError> {
    q.required(key).map_err(ApiError::validation)
}

/// A number parameter: absent is `None`, not a number is AWS's ValidationError.
fn number<T: std::str::FromStr>(q: &QueryInput, key: &str) -> Result<Option<T>, ApiError> {
    q.get(key)
        .map(|v| {
            v.trim().parse().map_err(|_| {
                ApiError::validation(format!(
                    "1 validation error detected: Value '{v}' at '{key}' failed to satisfy constraint: Member must be a number"
                ))
            })
        })
        .transpose()
}

fn boolean(q: &QueryInput, key: &str) -> Option<bool> {
    q.get(key).map(|v| v.eq_ignore_ascii_case("true"))
}

fn tags(q: &QueryInput) -> Vec<Tag> {
    q.structs("Tags")
        .into_iter()
        .filter_map(|t| {
            Some(Tag {
                key: t.get("Key")?.clone(),
                value: t.get("Value").cloned().unwrap_or_default(),
            })
        })
        .collect()
}

fn key_values(q: &QueryInput, key: &str) -> BTreeMap<String, String> {
    q.structs(key)
        .into_iter()
        .filter_map(|a| Some((a.get("Key")?.clone(), a.get("Value").cloned().unwrap_or_default())))
        .collect()
}

fn certificates(q: &QueryInput) -> Vec<String> {
    q.structs("Certificates").into_iter().filter_map(|c| c.get("CertificateArn").cloned()).collect()
}

fn health_check_settings(q: &QueryInput) -> Result<HealthCheckSettings, ApiError> {
    Ok(HealthCheckSettings {
        enabled: boolean(q, "HealthCheckEnabled"),
        protocol: q.get("HealthCheckProtocol").map(str::to_string),
        port: q.get("HealthCheckPort").map(str::to_string),
        path: q.get("HealthCheckPath").map(str::to_string),
        interval: number(q, "HealthCheckIntervalSeconds")?,
        timeout: number(q, "HealthCheckTimeoutSeconds")?,
        healthy: number(q, "HealthyThresholdCount")?,
        unhealthy: number(q, "UnhealthyThresholdCount")?,
        matcher: q
            .get("Matcher.HttpCode")
            .or_else(|| q.get("Matcher.GrpcCode"))
            .map(str::to_string),
    })
}

/// One page of `items` as ELBv2 pages (`Marker`, `PageSize` 1-400): the marker names the
/// first item of the next page.
fn page<T>(
    q: &QueryInput,
    items: Vec<T>,
    key: impl Fn(&T) -> &str,
) -> Result<(Vec<T>, Option<String>), ApiError> {
    use base64::Engine;
    let size: usize = number(q, "PageSize")?.unwrap_or(400);
    if !(1..=400).contains(&size) {
        return Err(ApiError::validation(format!(
            "1 validation error detected: Value '{size}' at 'pageSize' failed to satisfy constraint: Member must have value between 1 and 400"
        )));
    }
    let start = match q.get("Marker") {
        None => 0,
        Some(m) => {
            let wanted = base64::engine::general_purpose::STANDARD
                .decode(m)
                .ok()
                .and_then(|b| String::from_utf8(b).ok())
                .ok_or_else(|| ApiError::validation("The marker is not valid"))?;
            items
                .iter()
                .position(|i| key(i) == wanted)
                .ok_or_else(|| ApiError::validation("The marker is not valid"))?
        }
    };
    let mut rest: Vec<T> = items.into_iter().skip(start).collect();
    let next = if rest.len() > size {
        let tail = rest.split_off(size);
        tail.first().map(|t| base64::engine::general_purpose::STANDARD.encode(key(t)))
    } else {
        None
    };
    Ok((rest, next))
}

/// A forward to one group is described with its `ForwardConfig` too, as ELB does.
fn described_actions(actions: &[Json]) -> Json {
    Json::Array(
        actions
            .iter()
            .map(|a| {
                let mut a = a.clone();
                if a.get("Type").and_then(Json::as_str) == Some("forward")
                    && a.get("ForwardConfig").is_none()
                    && let Some(arn) = a.get("TargetGroupArn").cloned()
                    && let Some(map) = a.as_object_mut()
                {
                    map.insert(
                        "ForwardConfig".into(),
                        serde_json::json!({
                            "TargetGroups": [{"TargetGroupArn": arn, "Weight": 1}],
                            "TargetGroupStickinessConfig": {"Enabled": false}
                        }),
                    );
                }
                a
            })
            .collect(),
    )
}

fn write_listener(x: &mut XmlOut, l: &ListenerRecord) {
    x.text("ListenerArn", &l.arn)
        .text("LoadBalancerArn", &l.lb_arn)
        .text("Port", &l.port.to_string())
        .text("Protocol", &l.protocol);
    if !l.certificates.is_empty() {
        x.members("Certificates", &l.certificates[..1], |x, c| {
            x.text("CertificateArn", c);
        });
    }
    x.opt("SslPolicy", l.ssl_policy.as_deref());
    json_xml(x, "DefaultActions", &described_actions(&l.default_actions));
}

fn write_rule(x: &mut XmlOut, r: &RuleRecord) {
    x.text("RuleArn", &r.arn).text("Priority", &r.priority.to_string());
    json_xml(x, "Conditions", &Json::Array(r.conditions.clone()));
    json_xml(x, "Actions", &described_actions(&r.actions));
    x.bool("IsDefault", false);
}

fn write_load_balancers(
    x: &mut XmlOut,
    elb: &Elb,
    lbs: &[LoadBalancerRecord],
) -> Result<(), ApiError> {
    let mut rows = Vec::with_capacity(lbs.len());
    for lb in lbs {
        rows.push((lb, network_of(elb, lb)?));
    }
    x.members("LoadBalancers", &rows, |x, (lb, net)| write_load_balancer(x, elb, lb, net));
    Ok(())
}

fn write_target_groups(
    x: &mut XmlOut,
    elb: &Elb,
    groups: &[TargetGroupRecord],
) -> Result<(), ApiError> {
    let mut rows = Vec::with_capacity(groups.len());
    for g in groups {
        rows.push((g, elb.load_balancers_of(&g.arn)?));
    }
    x.members("TargetGroups", &rows, |x, (tg, users)| write_target_group(x, tg, users));
    Ok(())
}

fn next_marker(x: &mut XmlOut, next: Option<String>) {
    x.opt("NextMarker", next.as_deref());
}

/// DescribeTargetHealth: linear in the targets (those asked are looked up by id).
fn target_health_xml(x: &mut XmlOut, elb: &Elb, q: &QueryInput) -> Result<(), ApiError> {
    let arn = required(q, "TargetGroupArn")?;
    let tg = group(elb, arn)?;
    let asked = targets(q);
    let mut health = elb.target_health(arn)?;
    if !asked.is_empty() {
        let mut ports: HashMap<&str, Vec<Option<u16>>> = HashMap::new();
        for a in &asked {
            ports.entry(a.id.as_str()).or_default().push(a.port);
        }
        health.retain(|h| {
            ports
                .get(h.id.as_str())
                .is_some_and(|ps| ps.iter().any(|p| p.is_none_or(|p| p == h.port)))
        });
        // Targets asked about that are not registered: unused, Target.NotRegistered.
        let registered: HashSet<String> = health.iter().map(|h| h.id.clone()).collect();
        for a in &asked {
            if !registered.contains(&a.id) {
                health.push(elb::TargetHealth {
                    id: a.id.clone(),
                    port: a.port.unwrap_or(tg.port),
                    zone: None,
                    health: elb::Health::not_registered(),
                });
            }
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
    Ok(())
}

fn subnets_of(q: &QueryInput) -> Vec<String> {
    let mut subnets = q.list("Subnets");
    subnets
        .extend(q.structs("SubnetMappings").into_iter().filter_map(|m| m.get("SubnetId").cloned()));
    subnets
}

pub async fn handle(
    elb: &Elb,
    action: &str,
    q: &QueryInput,
    request_id: &str,
) -> Result<String, ApiError> {
    let mut x = XmlOut::new();
    x.open(&format!("{action}Response"), Some(XMLNS));
    x.open(&format!("{action}Result"), None);
    match action {
        "CreateLoadBalancer" => {
            let kind = match q.get("Type") {
                None | Some("application") => Kind::Application,
                Some("network") => Kind::Network,
                Some(other) => {
                    return Err(ApiError::validation(format!(
                        "Load balancer type '{other}' is not supported here; use application or network"
                    )));
                }
            };
            let lb = elb.create_load_balancer(CreateLoadBalancer {
                name: required(q, "Name")?.to_string(),
                arn: None,
                dns_name: None,
                kind: Some(kind),
                scheme: q.get("Scheme").map(str::to_string),
                subnets: subnets_of(q),
                security_groups: q.list("SecurityGroups"),
                ip_address_type: q.get("IpAddressType").map(str::to_string),
                attributes: BTreeMap::new(),
                tags: tags(q),
            })?;
            write_load_balancers(&mut x, elb, std::slice::from_ref(&lb))?;
        }
        "DeleteLoadBalancer" => elb.remove_load_balancer(required(q, "LoadBalancerArn")?)?,
        "SetSubnets" => {
            let lb = elb.set_subnets(required(q, "LoadBalancerArn")?, subnets_of(q))?;
            let net = network_of(elb, &lb)?;
            x.members("AvailabilityZones", &net.zones, |x, (zone, s)| {
                x.text("ZoneName", zone).text("SubnetId", s);
            });
            x.text("IpAddressType", &lb.ip_address_type);
        }
        "SetSecurityGroups" => {
            let lb =
                elb.set_security_groups(required(q, "LoadBalancerArn")?, q.list("SecurityGroups"))?;
            x.strings("SecurityGroupIds", &lb.security_groups);
        }
        "CreateTargetGroup" => {
            let tg = elb.create_target_group(CreateTargetGroup {
                name: required(q, "Name")?.to_string(),
                arn: None,
                protocol: q.get("Protocol").map(str::to_string),
                port: number(q, "Port")?,
                vpc_id: q.get("VpcId").map(str::to_string),
                target_type: q.get("TargetType").map(str::to_string),
                protocol_version: q.get("ProtocolVersion").map(str::to_string),
                health_check: health_check_settings(q)?,
                attributes: BTreeMap::new(),
                tags: tags(q),
            })?;
            write_target_groups(&mut x, elb, std::slice::from_ref(&tg))?;
        }
        "ModifyTargetGroup" => {
            let tg = elb.modify_target_group(ModifyTargetGroup {
                arn: required(q, "TargetGroupArn")?.to_string(),
                health_check: health_check_settings(q)?,
            })?;
            write_target_groups(&mut x, elb, std::slice::from_ref(&tg))?;
        }
        "DeleteTargetGroup" => elb.remove_target_group(required(q, "TargetGroupArn")?)?,
        "CreateListener" => {
            let l = elb
                .create_listener(CreateListener {
                    arn: None,
                    load_balancer_arn: required(q, "LoadBalancerArn")?.to_string(),
                    protocol: q.get("Protocol").map(str::to_string),
                    port: number(q, "Port")?,
                    certificates: certificates(q),
                    ssl_policy: q.get("SslPolicy").map(str::to_string),
                    default_actions: q.tree_list("DefaultActions"),
                    tags: tags(q),
                })
                .await?;
            x.members("Listeners", std::slice::from_ref(&l), write_listener);
        }
        "ModifyListener" => {
            let l = elb
                .modify_listener(ModifyListener {
                    arn: required(q, "ListenerArn")?.to_string(),
                    protocol: q.get("Protocol").map(str::to_string),
                    port: number(q, "Port")?,
                    certificates: q.has("Certificates").then(|| certificates(q)),
                    ssl_policy: q.get("SslPolicy").map(str::to_string),
                    default_actions: q.has("DefaultActions").then(|| q.tree_list("DefaultActions")),
                })
                .await?;
            x.members("Listeners", std::slice::from_ref(&l), write_listener);
        }
        "DeleteListener" => elb.remove_listener(required(q, "ListenerArn")?)?,
        "AddListenerCertificates" => {
            let arn = required(q, "ListenerArn")?;
            let added = certificates(q);
            elb.add_listener_certificates(arn, &added).await?;
            x.members("Certificates", &added, |x, c| {
                x.text("CertificateArn", c);
            });
        }
        "RemoveListenerCertificates" => {
            elb.remove_listener_certificates(required(q, "ListenerArn")?, &certificates(q)).await?;
        }
        "DescribeListenerCertificates" => {
            let arn = required(q, "ListenerArn")?;
            let l = elb.listener(arn)?.ok_or_else(|| {
                ApiError::new("ListenerNotFound", "One or more listeners not found", 400)
            })?;
            let rows: Vec<(String, bool)> =
                l.certificates.iter().enumerate().map(|(i, c)| (c.clone(), i == 0)).collect();
            let (rows, next) = page(q, rows, |(c, _)| c.as_str())?;
            x.members("Certificates", &rows, |x, (c, default)| {
                x.text("CertificateArn", c).bool("IsDefault", *default);
            });
            next_marker(&mut x, next);
        }
        "CreateRule" => {
            let priority: u32 = number(q, "Priority")?.ok_or_else(|| {
                ApiError::validation(q.required("Priority").err().unwrap_or_default())
            })?;
            let r = elb.create_rule(CreateRule {
                arn: None,
                listener_arn: required(q, "ListenerArn")?.to_string(),
                priority,
                conditions: q.tree_list("Conditions"),
                actions: q.tree_list("Actions"),
                tags: tags(q),
            })?;
            x.members("Rules", std::slice::from_ref(&r), write_rule);
        }
        "ModifyRule" => {
            let r = elb.modify_rule(ModifyRule {
                arn: required(q, "RuleArn")?.to_string(),
                conditions: q.has("Conditions").then(|| q.tree_list("Conditions")),
                actions: q.has("Actions").then(|| q.tree_list("Actions")),
            })?;
            x.members("Rules", std::slice::from_ref(&r), write_rule);
        }
        "DeleteRule" => elb.remove_rule(required(q, "RuleArn")?)?,
        "SetRulePriorities" => {
            let mut asked = Vec::new();
            for p in q.structs("RulePriorities") {
                let (Some(arn), Some(priority)) =
                    (p.get("RuleArn"), p.get("Priority").and_then(|v| v.parse().ok()))
                else {
                    return Err(ApiError::validation(
                        "Each rule priority needs a RuleArn and a numeric Priority",
                    ));
                };
                asked.push((arn.clone(), priority));
            }
            let rules = elb.set_rule_priorities(&asked)?;
            x.members("Rules", &rules, write_rule);
        }
        "AddTags" => elb.add_tags(&q.list("ResourceArns"), &tags(q))?,
        "RemoveTags" => elb.remove_tags(&q.list("ResourceArns"), &q.list("TagKeys"))?,
        "DescribeTags" => {
            let described = elb.describe_tags(&q.list("ResourceArns"))?;
            x.members("TagDescriptions", &described, |x, (arn, tags)| {
                x.text("ResourceArn", arn);
                x.members("Tags", tags, |x, t| {
                    x.text("Key", &t.key).text("Value", &t.value);
                });
            });
        }
        "DescribeLoadBalancers" => {
            let arns = q.list("LoadBalancerArns");
            let names = q.list("Names");
            let all: Vec<LoadBalancerRecord> = elb
                .load_balancers()?
                .into_iter()
                .filter(|l| l.kind != elb::model::Kind::Classic)
                .collect();
            for n in names.iter().chain(&arns) {
                if !all.iter().any(|l| &l.name == n || &l.arn == n) {
                    return Err(ApiError::new(
                        "LoadBalancerNotFound",
                        format!("Load balancers '[{n}]' not found"),
                        400,
                    ));
                }
            }
            let chosen: Vec<LoadBalancerRecord> = all
                .into_iter()
                .filter(|l| {
                    (arns.is_empty() || arns.contains(&l.arn))
                        && (names.is_empty() || names.contains(&l.name))
                })
                .collect();
            let (chosen, next) = page(q, chosen, |l| l.arn.as_str())?;
            write_load_balancers(&mut x, elb, &chosen)?;
            next_marker(&mut x, next);
        }
        "DescribeTargetGroups" => {
            let arns = q.list("TargetGroupArns");
            let names = q.list("Names");
            let lb = q.get("LoadBalancerArn");
            if let Some(lb) = lb {
                load_balancer(elb, lb)?;
            }
            let mut chosen = Vec::new();
            for t in elb.target_groups()? {
                if t.arn.starts_with("classic/")
                    || !(arns.is_empty() || arns.contains(&t.arn))
                    || !(names.is_empty() || names.contains(&t.name))
                {
                    continue;
                }
                if let Some(l) = lb
                    && !elb.load_balancers_of(&t.arn)?.iter().any(|a| a == l)
                {
                    continue;
                }
                chosen.push(t);
            }
            for a in &arns {
                if !chosen.iter().any(|t| &t.arn == a) {
                    return Err(ApiError::new(
                        "TargetGroupNotFound",
                        format!("One or more target groups not found: {a}"),
                        400,
                    ));
                }
            }
            for n in &names {
                if !chosen.iter().any(|t| &t.name == n) {
                    return Err(ApiError::new(
                        "TargetGroupNotFound",
                        format!("One or more target groups not found: {n}"),
                        400,
                    ));
                }
            }
            let (chosen, next) = page(q, chosen, |t| t.arn.as_str())?;
            write_target_groups(&mut x, elb, &chosen)?;
            next_marker(&mut x, next);
        }
        "DescribeTargetHealth" => target_health_xml(&mut x, elb, q)?,
        "RegisterTargets" | "DeregisterTargets" => {
            let arn = required(q, "TargetGroupArn")?;
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
            if lb.is_none() && arns.is_empty() {
                return Err(ApiError::validation(
                    "You must specify either listener ARNs or a load balancer ARN",
                ));
            }
            if let Some(lb) = lb {
                load_balancer(elb, lb)?;
            }
            let mut chosen: Vec<ListenerRecord> = elb
                .listeners()?
                .into_iter()
                .filter(|l| {
                    lb.is_none_or(|a| l.lb_arn == a) && (arns.is_empty() || arns.contains(&l.arn))
                })
                .filter(|l| l.arn.starts_with("arn:"))
                .collect();
            if arns.iter().any(|a| !chosen.iter().any(|l| &l.arn == a)) {
                return Err(ApiError::new(
                    "ListenerNotFound",
                    "One or more listeners not found",
                    400,
                ));
            }
            chosen.sort_by(|a, b| (&a.lb_arn, a.port).cmp(&(&b.lb_arn, b.port)));
            let (chosen, next) = page(q, chosen, |l| l.arn.as_str())?;
            x.members("Listeners", &chosen, write_listener);
            next_marker(&mut x, next);
        }
        "DescribeRules" => {
            let listener = q.get("ListenerArn");
            let arns = q.list("RuleArns");
            if listener.is_none() && arns.is_empty() {
                return Err(ApiError::validation(
                    "You must specify either listener rule ARNs or a listener ARN",
                ));
            }
            let default = match listener {
                Some(l) => Some(elb.listener(l)?.ok_or_else(|| {
                    ApiError::new("ListenerNotFound", "One or more listeners not found", 400)
                })?),
                None => None,
            };
            let mut rules: Vec<_> = elb
                .rules()?
                .into_iter()
                .filter(|r| {
                    listener.is_none_or(|l| r.listener_arn == l)
                        && (arns.is_empty() || arns.contains(&r.arn))
                })
                .collect();
            if arns.iter().any(|a| !rules.iter().any(|r| &r.arn == a)) {
                return Err(ApiError::new("RuleNotFound", "One or more rules not found", 400));
            }
            rules.sort_by_key(|r| r.priority);
            // The default rule comes last, as ELB lists it.
            let mut rows: Vec<(String, Option<RuleRecord>)> =
                rules.into_iter().map(|r| (r.arn.clone(), Some(r))).collect();
            if let Some(l) = &default {
                rows.push((
                    format!("{}/default", l.arn.replace(":listener/", ":listener-rule/")),
                    None,
                ));
            }
            let (rows, next) = page(q, rows, |(arn, _)| arn.as_str())?;
            x.open("Rules", None);
            for (arn, rule) in &rows {
                x.open("member", None);
                match (rule, &default) {
                    (Some(r), _) => write_rule(&mut x, r),
                    (None, Some(l)) => {
                        x.text("RuleArn", arn).text("Priority", "default");
                        x.open("Conditions", None).close();
                        json_xml(&mut x, "Actions", &described_actions(&l.default_actions));
                        x.bool("IsDefault", true);
                    }
                    (None, None) => {}
                }
                x.close();
            }
            x.close();
            next_marker(&mut x, next);
        }
        "DescribeTargetGroupAttributes" => {
            let tg = group(elb, required(q, "TargetGroupArn")?)?;
            attributes_xml(&mut x, &target_group_attributes(&tg));
        }
        "ModifyTargetGroupAttributes" => {
            let arn = required(q, "TargetGroupArn")?;
            group(elb, arn)?;
            let tg = elb.modify_target_group_attributes(arn, key_values(q, "Attributes"), false)?;
            attributes_xml(&mut x, &target_group_attributes(&tg));
        }
        "DescribeLoadBalancerAttributes" => {
            let lb = load_balancer(elb, required(q, "LoadBalancerArn")?)?;
            attributes_xml(&mut x, &load_balancer_attributes(&lb));
        }
        "ModifyLoadBalancerAttributes" => {
            let arn = required(q, "LoadBalancerArn")?;
            load_balancer(elb, arn)?;
            let lb =
                elb.modify_load_balancer_attributes(arn, key_values(q, "Attributes"), false)?;
            attributes_xml(&mut x, &load_balancer_attributes(&lb));
        }
        other => return Err(ApiError::invalid_action(other)),
    }
    x.close();
    x.open("ResponseMetadata", None).text("RequestId", request_id).close();
    Ok(x.finish())
}
