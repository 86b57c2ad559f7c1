//! The Classic Elastic Load Balancing Query API (version 2012-06-01, the signing name ELBv2
//! shares): load balancers by name, their listeners, instances and their health, the health
//! check, attributes and tags — `aws elb ...`. Each call turns its parameters into the typed
//! request of `elb::requests` that CloudFormation's `AWS::ElasticLoadBalancing::LoadBalancer`
//! also builds, on the same engine (a target group per instance port).

use elb::Elb;
use elb::model::{ClassicSettings, LoadBalancerRecord, Tag};
use elb::requests::*;

use crate::error::ApiError;
use crate::query::QueryInput;
use crate::xml::XmlOut;

pub const XMLNS: &str = "http://elasticloadbalancing.amazonaws.com/doc/2012-06-01/";
pub const VERSION: &str = "2012-06-01";

const ACTIONS: &[&str] = &[
    "CreateLoadBalancer",
    "DeleteLoadBalancer",
    "DescribeLoadBalancers",
    "RegisterInstancesWithLoadBalancer",
    "DeregisterInstancesFromLoadBalancer",
    "DescribeInstanceHealth",
    "ConfigureHealthCheck",
    "CreateLoadBalancerListeners",
    "DeleteLoadBalancerListeners",
    "AddTags",
    "RemoveTags",
    "DescribeTags",
    "DescribeLoadBalancerAttributes",
    "ModifyLoadBalancerAttributes",
];

/// Classic Elastic Load Balancing in the endpoint's registry.
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

/// ELB's errors with Classic's statuses (InvalidConfigurationRequest is a 409 here).
fn error(e: elb::ElbError) -> ApiError {
    let code = e.code();
    let status = match code {
        "InternalFailure" => 500,
        "InvalidConfigurationRequest" => 409,
        _ => 400,
    };
    ApiError::new(code, e.to_string(), status)
}

fn required<'a>(q: &'a QueryInput, key: &str) -> Result<&'a str, ApiError> {
    q.required(key).map_err(ApiError::validation)
}

fn number<T: std::str::FromStr>(q: &QueryInput, key: &str) -> Result<Option<T>, ApiError> {
    q.get(key)
        .map(|v| {
            v.trim().parse().map_err(|_| {
                ApiError::validation(format!("Value '{v}' at '{key}' must be a number"))
            })
        })
        .transpose()
}

fn listeners(q: &QueryInput) -> Result<Vec<ClassicListener>, ApiError> {
    q.structs("Listeners")
        .into_iter()
        .map(|l| {
            let port = |k: &str| -> Result<u16, ApiError> {
                l.get(k).and_then(|p| p.parse().ok()).ok_or_else(|| {
                    ApiError::validation(format!("Each listener needs a numeric {k}"))
                })
            };
            let protocol = l
                .get("Protocol")
                .ok_or_else(|| ApiError::validation("Each listener needs a Protocol"))?
                .to_ascii_uppercase();
            Ok(ClassicListener {
                instance_protocol: l
                    .get("InstanceProtocol")
                    .map_or_else(|| protocol.clone(), |p| p.to_ascii_uppercase()),
                protocol,
                load_balancer_port: port("LoadBalancerPort")?,
                instance_port: port("InstancePort")?,
                ssl_certificate_id: l.get("SSLCertificateId").cloned(),
            })
        })
        .collect()
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

fn instance_ids(q: &QueryInput) -> Vec<String> {
    q.structs("Instances").into_iter().filter_map(|i| i.get("InstanceId").cloned()).collect()
}

fn write_instances(x: &mut XmlOut, ids: &[String]) {
    x.members("Instances", ids, |x, id| {
        x.text("InstanceId", id);
    });
}

fn write_health_check(x: &mut XmlOut, hc: &ClassicHealthCheck) {
    x.open("HealthCheck", None)
        .text("Target", &hc.target)
        .text("Interval", &hc.interval.to_string())
        .text("Timeout", &hc.timeout.to_string())
        .text("UnhealthyThreshold", &hc.unhealthy.to_string())
        .text("HealthyThreshold", &hc.healthy.to_string())
        .close();
}

fn write_attributes(x: &mut XmlOut, a: &ClassicAttributes) {
    x.open("LoadBalancerAttributes", None);
    x.open("CrossZoneLoadBalancing", None).bool("Enabled", a.cross_zone).close();
    x.open("AccessLog", None).bool("Enabled", false).close();
    x.open("ConnectionDraining", None)
        .bool("Enabled", a.draining)
        .text("Timeout", &a.draining_timeout.to_string())
        .close();
    x.open("ConnectionSettings", None).text("IdleTimeout", &a.idle_timeout.to_string()).close();
    x.close();
}

fn write_description(x: &mut XmlOut, elb: &Elb, lb: &LoadBalancerRecord, vpc: Option<&str>) {
    let settings: ClassicSettings = lb.classic.clone().unwrap_or_default();
    x.text("LoadBalancerName", &lb.name)
        .text("DNSName", &lb.dns_name)
        .text("CanonicalHostedZoneName", &lb.dns_name)
        .text(
            "CanonicalHostedZoneNameID",
            cfn_stacks::generic::alb_hosted_zone(&elb.account().region),
        );
    x.members("ListenerDescriptions", &settings.listeners, |x, l| {
        x.open("Listener", None)
            .text("Protocol", &l.protocol)
            .text("LoadBalancerPort", &l.load_balancer_port.to_string())
            .text("InstanceProtocol", &l.instance_protocol)
            .text("InstancePort", &l.instance_port.to_string());
        x.opt("SSLCertificateId", l.ssl_certificate_id.as_deref());
        x.close();
        x.open("PolicyNames", None).close();
    });
    x.open("Policies", None);
    x.open("AppCookieStickinessPolicies", None).close();
    x.open("LBCookieStickinessPolicies", None).close();
    x.open("OtherPolicies", None).close();
    x.close();
    x.open("BackendServerDescriptions", None).close();
    x.strings("AvailabilityZones", &lb.zones);
    x.strings("Subnets", &lb.subnets);
    x.opt("VPCId", vpc);
    write_instances(x, &settings.instances);
    write_health_check(x, &settings.health_check);
    x.open("SourceSecurityGroup", None)
        .text("OwnerAlias", "amazon-elb")
        .text("GroupName", "amazon-elb-sg")
        .close();
    x.strings("SecurityGroups", &lb.security_groups);
    x.text("CreatedTime", &lb.created).text("Scheme", &lb.scheme);
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
            let lb = elb
                .create_classic_load_balancer(CreateClassicLoadBalancer {
                    name: required(q, "LoadBalancerName")?.to_string(),
                    dns_name: None,
                    listeners: listeners(q)?,
                    zones: q.list("AvailabilityZones"),
                    subnets: q.list("Subnets"),
                    security_groups: q.list("SecurityGroups"),
                    scheme: q.get("Scheme").map(str::to_string),
                    health_check: None,
                    instances: Vec::new(),
                    attributes: ClassicAttributes::default(),
                    sticky: false,
                    tags: tags(q),
                })
                .await
                .map_err(error)?;
            x.text("DNSName", &lb.dns_name);
        }
        "DeleteLoadBalancer" => {
            elb.delete_classic_load_balancer(required(q, "LoadBalancerName")?).map_err(error)?
        }
        "DescribeLoadBalancers" => {
            let names = q.list("LoadBalancerNames");
            let all = elb.classic_load_balancers().map_err(error)?;
            for n in &names {
                if !all.iter().any(|l| &l.name == n) {
                    return Err(ApiError::new(
                        "LoadBalancerNotFound",
                        format!("There is no ACTIVE Load Balancer named '{n}'"),
                        400,
                    ));
                }
            }
            let chosen: Vec<LoadBalancerRecord> =
                all.into_iter().filter(|l| names.is_empty() || names.contains(&l.name)).collect();
            let size: usize = number(q, "PageSize")?.unwrap_or(400);
            if !(1..=400).contains(&size) {
                return Err(ApiError::validation("PageSize must be between 1 and 400"));
            }
            let start = match q.get("Marker") {
                None => 0,
                Some(m) => chosen
                    .iter()
                    .position(|l| l.name == m)
                    .ok_or_else(|| ApiError::validation("The marker is not valid"))?,
            };
            let mut rows = Vec::new();
            for lb in chosen.iter().skip(start).take(size) {
                let vpc = match lb.subnets.first() {
                    Some(s) => elb.ec2().subnet(s).map_err(|e| error(e.into()))?.map(|s| s.vpc_id),
                    None => None,
                };
                rows.push((lb, vpc));
            }
            x.members("LoadBalancerDescriptions", &rows, |x, (lb, vpc)| {
                write_description(x, elb, lb, vpc.as_deref())
            });
            x.opt("NextMarker", chosen.get(start + size).map(|l| l.name.as_str()));
        }
        "RegisterInstancesWithLoadBalancer" => {
            let ids = elb
                .register_classic_instances(required(q, "LoadBalancerName")?, &instance_ids(q))
                .map_err(error)?;
            write_instances(&mut x, &ids);
        }
        "DeregisterInstancesFromLoadBalancer" => {
            let ids = elb
                .deregister_classic_instances(required(q, "LoadBalancerName")?, &instance_ids(q))
                .map_err(error)?;
            write_instances(&mut x, &ids);
        }
        "DescribeInstanceHealth" => {
            let states = elb
                .classic_instance_health(required(q, "LoadBalancerName")?, &instance_ids(q))
                .map_err(error)?;
            x.members("InstanceStates", &states, |x, s| {
                x.text("InstanceId", &s.instance_id)
                    .text("State", s.state)
                    .text("ReasonCode", s.reason_code)
                    .text("Description", s.description);
            });
        }
        "ConfigureHealthCheck" => {
            let name = required(q, "LoadBalancerName")?;
            let hc = ClassicHealthCheck {
                target: required(q, "HealthCheck.Target")?.to_string(),
                interval: number(q, "HealthCheck.Interval")?
                    .ok_or_else(|| ApiError::validation("HealthCheck.Interval is required"))?,
                timeout: number(q, "HealthCheck.Timeout")?
                    .ok_or_else(|| ApiError::validation("HealthCheck.Timeout is required"))?,
                healthy: number(q, "HealthCheck.HealthyThreshold")?.ok_or_else(|| {
                    ApiError::validation("HealthCheck.HealthyThreshold is required")
                })?,
                unhealthy: number(q, "HealthCheck.UnhealthyThreshold")?.ok_or_else(|| {
                    ApiError::validation("HealthCheck.UnhealthyThreshold is required")
                })?,
            };
            let hc = elb.configure_classic_health_check(name, hc).map_err(error)?;
            write_health_check(&mut x, &hc);
        }
        "CreateLoadBalancerListeners" => {
            elb.create_classic_listeners(required(q, "LoadBalancerName")?, listeners(q)?)
                .await
                .map_err(error)?;
        }
        "DeleteLoadBalancerListeners" => {
            let ports: Vec<u16> =
                q.list("LoadBalancerPorts").iter().filter_map(|p| p.parse().ok()).collect();
            elb.delete_classic_listeners(required(q, "LoadBalancerName")?, &ports)
                .map_err(error)?;
        }
        "AddTags" => elb.add_classic_tags(&q.list("LoadBalancerNames"), &tags(q)).map_err(error)?,
        "RemoveTags" => {
            let keys: Vec<String> =
                q.structs("Tags").into_iter().filter_map(|t| t.get("Key").cloned()).collect();
            elb.remove_classic_tags(&q.list("LoadBalancerNames"), &keys).map_err(error)?
        }
        "DescribeTags" => {
            let mut rows = Vec::new();
            for n in q.list("LoadBalancerNames") {
                rows.push(elb.classic_load_balancer(&n).map_err(error)?);
            }
            x.members("TagDescriptions", &rows, |x, lb| {
                x.text("LoadBalancerName", &lb.name);
                x.members("Tags", &lb.tags, |x, t| {
                    x.text("Key", &t.key).text("Value", &t.value);
                });
            });
        }
        "DescribeLoadBalancerAttributes" => {
            let lb = elb.classic_load_balancer(required(q, "LoadBalancerName")?).map_err(error)?;
            write_attributes(&mut x, &lb.classic.unwrap_or_default().attributes);
        }
        "ModifyLoadBalancerAttributes" => {
            let name = required(q, "LoadBalancerName")?;
            let flag = |k: &str| q.get(k).map(|v| v.eq_ignore_ascii_case("true"));
            let change = ModifyClassicAttributes {
                cross_zone: flag("LoadBalancerAttributes.CrossZoneLoadBalancing.Enabled"),
                draining: flag("LoadBalancerAttributes.ConnectionDraining.Enabled"),
                draining_timeout: number(q, "LoadBalancerAttributes.ConnectionDraining.Timeout")?,
                idle_timeout: number(q, "LoadBalancerAttributes.ConnectionSettings.IdleTimeout")?,
            };
            let a = elb.modify_classic_attributes(name, change).map_err(error)?;
            x.text("LoadBalancerName", name);
            write_attributes(&mut x, &a);
        }
        other => return Err(ApiError::invalid_action(other)),
    }
    x.close();
    x.open("ResponseMetadata", None).text("RequestId", request_id).close();
    Ok(x.finish())
}
