//! Elastic Load Balancing resource types as CloudFormation creates them: each turns its
//! properties into the operation's typed request (`crate::requests`) and calls the same `Elb`
//! method the API calls.

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use cfn_stacks::generic::{arn_name_and_id, model};
use cfn_stacks::model::ResourceRecord;
use cfn_stacks::{Provided, ProviderError, ResourceProvider, ResourceRequest};
use serde_json::{Value as Json, json};

use crate::model::*;
use crate::requests::*;
use crate::service::{Elb, ElbError};

pub const TYPES: &[&str] = &[
    "AWS::ElasticLoadBalancingV2::LoadBalancer",
    "AWS::ElasticLoadBalancingV2::Listener",
    "AWS::ElasticLoadBalancingV2::ListenerRule",
    "AWS::ElasticLoadBalancingV2::ListenerCertificate",
    "AWS::ElasticLoadBalancingV2::TargetGroup",
    "AWS::ElasticLoadBalancing::LoadBalancer",
];

pub struct ElbProvider {
    pub elb: Arc<Elb>,
}

fn err(e: ElbError) -> ProviderError {
    ProviderError::service("ElasticLoadBalancingV2", e.code(), e)
}

/// The `CertificateArn`s of a `Certificates` list.
fn certificate_arns(props: &Json) -> Vec<String> {
    props
        .get("Certificates")
        .and_then(Json::as_array)
        .into_iter()
        .flatten()
        .filter_map(|c| text(c, "CertificateArn"))
        .collect()
}

/// `{Key, Value}` pairs from the properties, stringified.
fn kv(props: &Json, key: &str) -> BTreeMap<String, String> {
    attributes(props.get(key))
}

fn registrations(props: &Json) -> Vec<Registration> {
    props
        .get("Targets")
        .and_then(Json::as_array)
        .into_iter()
        .flatten()
        .filter_map(|t| {
            Some(Registration {
                id: text(t, "Id")?,
                port: number(t, "Port").map(|p| p as u16),
                zone: text(t, "AvailabilityZone"),
            })
        })
        .collect()
}

fn tags(props: &Json) -> Vec<Tag> {
    kv(props, "Tags").into_iter().map(|(key, value)| Tag { key, value }).collect()
}

fn port(props: &Json, key: &str) -> Option<u16> {
    number(props, key).and_then(|p| u16::try_from(p).ok())
}

fn json_list(props: &Json, key: &str) -> Vec<Json> {
    props.get(key).and_then(Json::as_array).cloned().unwrap_or_default()
}

/// The request a `AWS::ElasticLoadBalancingV2::TargetGroup`'s properties make.
pub fn create_target_group_request(arn: &str, props: &Json) -> CreateTargetGroup {
    let (name, _) = arn_name_and_id(arn, "targetgroup/");
    CreateTargetGroup {
        name,
        arn: Some(arn.to_string()),
        protocol: text(props, "Protocol"),
        port: port(props, "Port"),
        vpc_id: text(props, "VpcId"),
        target_type: text(props, "TargetType"),
        protocol_version: text(props, "ProtocolVersion"),
        health_check: health_check_settings(props),
        attributes: kv(props, "TargetGroupAttributes"),
        tags: tags(props),
    }
}

fn health_check_settings(props: &Json) -> HealthCheckSettings {
    HealthCheckSettings {
        enabled: cfn_stacks::props::boolean(props, "HealthCheckEnabled"),
        protocol: text(props, "HealthCheckProtocol"),
        port: text(props, "HealthCheckPort"),
        path: text(props, "HealthCheckPath"),
        interval: number(props, "HealthCheckIntervalSeconds"),
        timeout: number(props, "HealthCheckTimeoutSeconds"),
        healthy: number(props, "HealthyThresholdCount").map(|n| n as u32),
        unhealthy: number(props, "UnhealthyThresholdCount").map(|n| n as u32),
        matcher: props
            .get("Matcher")
            .and_then(|m| text(m, "HttpCode").or_else(|| text(m, "GrpcCode"))),
    }
}

/// The request a `AWS::ElasticLoadBalancing::LoadBalancer`'s properties make.
pub fn create_classic_request(
    name: &str,
    dns_name: Option<String>,
    props: &Json,
) -> CreateClassicLoadBalancer {
    let listeners = props
        .get("Listeners")
        .and_then(Json::as_array)
        .into_iter()
        .flatten()
        .map(|l| {
            let lb_port = port(l, "LoadBalancerPort").unwrap_or(80);
            let protocol =
                text(l, "Protocol").unwrap_or_else(|| "HTTP".into()).to_ascii_uppercase();
            ClassicListener {
                instance_protocol: text(l, "InstanceProtocol")
                    .map_or_else(|| protocol.clone(), |p| p.to_ascii_uppercase()),
                protocol,
                load_balancer_port: lb_port,
                instance_port: port(l, "InstancePort").unwrap_or(lb_port),
                ssl_certificate_id: text(l, "SSLCertificateId"),
            }
        })
        .collect();
    let health_check = props.get("HealthCheck").map(|hc| {
        let d = ClassicHealthCheck::default();
        ClassicHealthCheck {
            target: text(hc, "Target").unwrap_or(d.target),
            interval: number(hc, "Interval").unwrap_or(d.interval),
            timeout: number(hc, "Timeout").unwrap_or(d.timeout),
            healthy: number(hc, "HealthyThreshold").map_or(d.healthy, |n| n as u32),
            unhealthy: number(hc, "UnhealthyThreshold").map_or(d.unhealthy, |n| n as u32),
        }
    });
    let defaults = ClassicAttributes::default();
    let draining = props.get("ConnectionDrainingPolicy");
    CreateClassicLoadBalancer {
        name: name.to_string(),
        dns_name,
        listeners,
        zones: strings(props, "AvailabilityZones"),
        subnets: strings(props, "Subnets"),
        security_groups: strings(props, "SecurityGroups"),
        scheme: text(props, "Scheme"),
        health_check,
        instances: strings(props, "Instances"),
        attributes: ClassicAttributes {
            cross_zone: flag(props, "CrossZone"),
            draining: draining.is_some_and(|d| flag(d, "Enabled")),
            draining_timeout: draining
                .and_then(|d| number(d, "Timeout"))
                .unwrap_or(defaults.draining_timeout),
            idle_timeout: props
                .get("ConnectionSettings")
                .and_then(|c| number(c, "IdleTimeout"))
                .unwrap_or(defaults.idle_timeout),
        },
        sticky: props.get("LBCookieStickinessPolicy").is_some()
            || props.get("AppCookieStickinessPolicy").is_some(),
        tags: tags(props),
    }
}

impl ElbProvider {
    fn load_balancer_v2(
        &self,
        req: &ResourceRequest<'_>,
        current: Option<&ResourceRecord>,
    ) -> Result<Provided, ProviderError> {
        let props = req.properties;
        let mut provided = model(req, current);
        provided.modelled = false;
        let arn = provided.physical_id.clone();
        let mut subnets = strings(props, "Subnets");
        subnets.extend(
            props
                .get("SubnetMappings")
                .and_then(Json::as_array)
                .into_iter()
                .flatten()
                .filter_map(|m| text(m, "SubnetId")),
        );
        let security_groups = strings(props, "SecurityGroups");
        let attributes = kv(props, "LoadBalancerAttributes");
        let record = match self.elb.load_balancer(&arn).map_err(err)?.filter(|l| l.arn == arn) {
            Some(_) => {
                self.elb.set_subnets(&arn, subnets).map_err(err)?;
                self.elb.set_security_groups(&arn, security_groups).map_err(err)?;
                self.elb.modify_load_balancer_attributes(&arn, attributes, true).map_err(err)?
            }
            None => {
                let (name, _) = arn_name_and_id(&arn, "loadbalancer/app/");
                let request = CreateLoadBalancer {
                    name,
                    arn: Some(arn.clone()),
                    dns_name: provided
                        .attributes
                        .get("DNSName")
                        .and_then(Json::as_str)
                        .map(str::to_string),
                    kind: Some(match text(props, "Type").as_deref() {
                        Some("network") => Kind::Network,
                        _ => Kind::Application,
                    }),
                    scheme: text(props, "Scheme"),
                    subnets,
                    security_groups,
                    ip_address_type: text(props, "IpAddressType"),
                    attributes,
                    tags: tags(props),
                };
                self.elb.create_load_balancer(request).map_err(err)?
            }
        };
        provided.attributes.insert("DNSName".into(), json!(record.dns_name));
        // The names CloudWatch's dimensions use (`app/NAME/ID`), as the record has them.
        provided.attributes.insert("LoadBalancerFullName".into(), json!(record.full_name));
        provided.attributes.insert("LoadBalancerName".into(), json!(record.name));
        if !record.security_groups.is_empty() {
            provided.attributes.insert("SecurityGroups".into(), json!(record.security_groups));
        }
        Ok(provided)
    }

    async fn listener(
        &self,
        req: &ResourceRequest<'_>,
        current: Option<&ResourceRecord>,
    ) -> Result<Provided, ProviderError> {
        let props = req.properties;
        let mut provided = model(req, current);
        provided.modelled = false;
        let arn = provided.physical_id.clone();
        let record = if current.is_some() && self.elb.listener(&arn).map_err(err)?.is_some() {
            self.elb
                .modify_listener(ModifyListener {
                    arn,
                    protocol: Some(text(props, "Protocol").unwrap_or_else(|| "HTTP".into())),
                    port: port(props, "Port"),
                    certificates: Some(certificate_arns(props)),
                    ssl_policy: text(props, "SslPolicy"),
                    default_actions: Some(json_list(props, "DefaultActions")),
                })
                .await
        } else {
            self.elb
                .create_listener(CreateListener {
                    arn: Some(arn),
                    load_balancer_arn: text(props, "LoadBalancerArn").unwrap_or_default(),
                    protocol: text(props, "Protocol"),
                    port: port(props, "Port"),
                    certificates: certificate_arns(props),
                    ssl_policy: text(props, "SslPolicy"),
                    default_actions: json_list(props, "DefaultActions"),
                    tags: Vec::new(),
                })
                .await
        }
        .map_err(err)?;
        provided.attributes.insert("ListenerArn".into(), json!(record.arn));
        Ok(provided)
    }

    fn rule(
        &self,
        req: &ResourceRequest<'_>,
        current: Option<&ResourceRecord>,
    ) -> Result<Provided, ProviderError> {
        let props = req.properties;
        let mut provided = model(req, current);
        provided.modelled = false;
        let arn = provided.physical_id.clone();
        let priority = number(props, "Priority").unwrap_or(0) as u32;
        match self.elb.rule(&arn).map_err(err)? {
            Some(existing) if current.is_some() => {
                if existing.priority != priority {
                    self.elb.set_rule_priorities(&[(arn.clone(), priority)]).map_err(err)?;
                }
                self.elb
                    .modify_rule(ModifyRule {
                        arn,
                        conditions: Some(json_list(props, "Conditions")),
                        actions: Some(json_list(props, "Actions")),
                    })
                    .map_err(err)?;
            }
            _ => {
                self.elb
                    .create_rule(CreateRule {
                        arn: Some(arn),
                        listener_arn: text(props, "ListenerArn").unwrap_or_default(),
                        priority,
                        conditions: json_list(props, "Conditions"),
                        actions: json_list(props, "Actions"),
                        tags: Vec::new(),
                    })
                    .map_err(err)?;
            }
        }
        Ok(provided)
    }

    fn target_group(
        &self,
        req: &ResourceRequest<'_>,
        current: Option<&ResourceRecord>,
    ) -> Result<Provided, ProviderError> {
        let props = req.properties;
        let mut provided = model(req, current);
        provided.modelled = false;
        let arn = provided.physical_id.clone();
        let record = match self.elb.target_group(&arn).map_err(err)? {
            Some(_) => {
                self.elb
                    .modify_target_group(ModifyTargetGroup {
                        arn: arn.clone(),
                        health_check: health_check_settings(props),
                    })
                    .map_err(err)?;
                self.elb
                    .modify_target_group_attributes(&arn, kv(props, "TargetGroupAttributes"), true)
                    .map_err(err)?
            }
            None => self
                .elb
                .create_target_group(create_target_group_request(&arn, props))
                .map_err(err)?,
        };
        let wanted = registrations(props);
        let before = current.map(|c| registrations(&c.properties)).unwrap_or_default();
        let key = |r: &Registration| (r.id.clone(), r.port.unwrap_or(record.port));
        let added: Vec<Registration> =
            wanted.iter().filter(|w| !before.iter().any(|b| key(b) == key(w))).cloned().collect();
        let removed: Vec<Registration> =
            before.iter().filter(|b| !wanted.iter().any(|w| key(b) == key(w))).cloned().collect();
        if !removed.is_empty() {
            let registered: Vec<Registration> = removed
                .into_iter()
                .filter(|r| record.targets.iter().any(|t| key(t) == key(r)))
                .collect();
            self.elb.deregister_targets(&arn, &registered).map_err(err)?;
        }
        if !added.is_empty() {
            self.elb.register_targets(&arn, &added).map_err(err)?;
        }
        provided.attributes.insert("TargetGroupFullName".into(), json!(record.full_name));
        provided.attributes.insert("TargetGroupName".into(), json!(record.name));
        provided.attributes.insert(
            "LoadBalancerArns".into(),
            json!(self.elb.load_balancers_of(&arn).map_err(err)?),
        );
        Ok(provided)
    }

    async fn listener_certificate(
        &self,
        req: &ResourceRequest<'_>,
        current: Option<&ResourceRecord>,
    ) -> Result<Provided, ProviderError> {
        let props = req.properties;
        let mut provided = model(req, current);
        provided.modelled = false;
        let arn = text(props, "ListenerArn").unwrap_or_default();
        self.elb.add_listener_certificates(&arn, &certificate_arns(props)).await.map_err(err)?;
        Ok(provided)
    }

    /// A Classic Load Balancer: one target group per instance port (health check and
    /// instances shared), one listener per load balancer port.
    async fn classic(
        &self,
        req: &ResourceRequest<'_>,
        current: Option<&ResourceRecord>,
    ) -> Result<Provided, ProviderError> {
        let props = req.properties;
        let mut provided = model(req, current);
        provided.modelled = false;
        let name = provided.physical_id.clone();
        let aws_dns = provided.attributes.get("DNSName").and_then(Json::as_str).map(str::to_string);
        let request = create_classic_request(&name, aws_dns, props);
        let exists = self.elb.classic_load_balancer(&name).is_ok();
        let record = if exists {
            self.elb.update_classic_load_balancer(request).await
        } else {
            self.elb.create_classic_load_balancer(request).await
        }
        .map_err(err)?;
        provided.attributes.insert("DNSName".into(), json!(record.dns_name));
        provided.attributes.insert("CanonicalHostedZoneName".into(), json!(record.dns_name));
        Ok(provided)
    }
}

#[async_trait]
impl ResourceProvider for ElbProvider {
    async fn create(&self, req: &ResourceRequest<'_>) -> Result<Provided, ProviderError> {
        match req.type_name {
            "AWS::ElasticLoadBalancingV2::LoadBalancer" => self.load_balancer_v2(req, None),
            "AWS::ElasticLoadBalancingV2::Listener" => self.listener(req, None).await,
            "AWS::ElasticLoadBalancingV2::ListenerRule" => self.rule(req, None),
            "AWS::ElasticLoadBalancingV2::TargetGroup" => self.target_group(req, None),
            "AWS::ElasticLoadBalancingV2::ListenerCertificate" => {
                self.listener_certificate(req, None).await
            }
            "AWS::ElasticLoadBalancing::LoadBalancer" => self.classic(req, None).await,
            other => {
                Err(ProviderError::new(format!("{other} is not an Elastic Load Balancing type")))
            }
        }
    }

    async fn update(
        &self,
        req: &ResourceRequest<'_>,
        current: &ResourceRecord,
    ) -> Result<Provided, ProviderError> {
        match req.type_name {
            "AWS::ElasticLoadBalancingV2::LoadBalancer" => {
                self.load_balancer_v2(req, Some(current))
            }
            "AWS::ElasticLoadBalancingV2::Listener" => self.listener(req, Some(current)).await,
            "AWS::ElasticLoadBalancingV2::ListenerRule" => self.rule(req, Some(current)),
            "AWS::ElasticLoadBalancingV2::TargetGroup" => self.target_group(req, Some(current)),
            "AWS::ElasticLoadBalancingV2::ListenerCertificate" => {
                self.listener_certificate(req, Some(current)).await
            }
            "AWS::ElasticLoadBalancing::LoadBalancer" => self.classic(req, Some(current)).await,
            other => {
                Err(ProviderError::new(format!("{other} is not an Elastic Load Balancing type")))
            }
        }
    }

    async fn delete(
        &self,
        _req: &ResourceRequest<'_>,
        current: &ResourceRecord,
    ) -> Result<(), ProviderError> {
        let Some(id) = current.physical_id.as_deref() else { return Ok(()) };
        let result = match current.type_name.as_str() {
            "AWS::ElasticLoadBalancingV2::LoadBalancer" => self.elb.remove_load_balancer(id),
            "AWS::ElasticLoadBalancingV2::Listener" => self.elb.delete_listener(id),
            "AWS::ElasticLoadBalancingV2::ListenerRule" => self.elb.delete_rule(id),
            "AWS::ElasticLoadBalancingV2::TargetGroup" => self.elb.delete_target_group(id),
            "AWS::ElasticLoadBalancing::LoadBalancer" => self.elb.delete_classic_load_balancer(id),
            _ => Ok(()),
        };
        result.map_err(err)
    }
}
