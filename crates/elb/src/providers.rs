//! Elastic Load Balancing resource types as CloudFormation creates them, on the control
//! plane's operations (the same ones the API uses).

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::sync::Arc;

use async_trait::async_trait;
use cfn_stacks::generic::{arn_name_and_id, model};
use cfn_stacks::model::ResourceRecord;
use cfn_stacks::{Provided, ProviderError, ResourceProvider, ResourceRequest};
use serde_json::{Value as Json, json};

use crate::model::*;
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

/// The local DNS name: AWS's shape with `.elb.localhost` for `.elb.amazonaws.com`.
fn local_dns(aws: &str) -> String {
    aws.replace(".elb.amazonaws.com", ".elb.localhost")
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

impl ElbProvider {
    fn zones_of(&self, subnets: &[String]) -> Result<Vec<String>, ProviderError> {
        let mut zones = Vec::new();
        for s in subnets {
            if let Some(z) = self.elb_ec2_zone(s)?
                && !zones.contains(&z)
            {
                zones.push(z);
            }
        }
        Ok(zones)
    }

    fn elb_ec2_zone(&self, subnet: &str) -> Result<Option<String>, ProviderError> {
        let subnet = self.elb.ec2().subnet(subnet).map_err(|e| err(e.into()))?;
        Ok(subnet.map(|s| s.zone))
    }

    fn load_balancer_v2(
        &self,
        req: &ResourceRequest<'_>,
        current: Option<&ResourceRecord>,
    ) -> Result<Provided, ProviderError> {
        let props = req.properties;
        let mut provided = model(req, current);
        provided.modelled = false;
        let arn = provided.physical_id.clone();
        let kind = match text(props, "Type").as_deref() {
            Some("network") => Kind::Network,
            _ => Kind::Application,
        };
        let mut subnets = strings(props, "Subnets");
        subnets.extend(
            props
                .get("SubnetMappings")
                .and_then(Json::as_array)
                .into_iter()
                .flatten()
                .filter_map(|m| text(m, "SubnetId")),
        );
        let zones = self.zones_of(&subnets)?;
        let mut known = true;
        for s in &subnets {
            known &= self.elb_ec2_zone(s)?.is_some();
        }
        if kind == Kind::Application && known && !subnets.is_empty() && zones.len() < 2 {
            return Err(err(ElbError::api(
                "ValidationError",
                "At least two subnets in two different Availability Zones must be specified",
            )));
        }
        let (name, id) = arn_name_and_id(&arn, "loadbalancer/app/");
        let dns_name =
            match current.and_then(|c| c.attributes.get("DNSName")).and_then(Json::as_str) {
                Some(kept) => kept.to_string(),
                None => local_dns(
                    provided.attributes.get("DNSName").and_then(Json::as_str).unwrap_or_default(),
                ),
            };
        provided.attributes.insert("DNSName".into(), json!(dns_name));
        let mut record = LoadBalancerRecord {
            arn: arn.clone(),
            name,
            full_name: format!("app/{}/{id}", arn_name_and_id(&arn, "loadbalancer/app/").0),
            kind,
            dns_name,
            scheme: text(props, "Scheme").unwrap_or_else(|| "internet-facing".into()),
            subnets,
            zones,
            security_groups: strings(props, "SecurityGroups"),
            attributes: kv(props, "LoadBalancerAttributes"),
            ip: Ipv4Addr::LOCALHOST,
            created: clock::iso8601(self.elb.clock().now()),
        };
        match self.elb.load_balancer(&arn).map_err(err)? {
            Some(existing) => {
                record.ip = existing.ip;
                record.created = existing.created;
                self.elb.update_load_balancer(&record).map_err(err)?;
            }
            None => {
                self.elb.create_load_balancer(record).map_err(err)?;
            }
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
        let certificates = certificate_arns(props);
        let record = ListenerRecord {
            arn: provided.physical_id.clone(),
            lb_arn: text(props, "LoadBalancerArn").unwrap_or_default(),
            port: number(props, "Port").unwrap_or(80) as u16,
            protocol: text(props, "Protocol").unwrap_or_else(|| "HTTP".into()),
            certificates,
            default_actions: props
                .get("DefaultActions")
                .and_then(Json::as_array)
                .cloned()
                .unwrap_or_default(),
            bound_port: 0,
        };
        let record = if current.is_some() {
            self.elb.update_listener(record).await
        } else {
            self.elb.create_listener(record).await
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
        let record = RuleRecord {
            arn: provided.physical_id.clone(),
            listener_arn: text(props, "ListenerArn").unwrap_or_default(),
            priority: number(props, "Priority").unwrap_or(0) as u32,
            conditions: props
                .get("Conditions")
                .and_then(Json::as_array)
                .cloned()
                .unwrap_or_default(),
            actions: props.get("Actions").and_then(Json::as_array).cloned().unwrap_or_default(),
        };
        self.elb.put_rule(record).map_err(err)?;
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
        let (name, id) = arn_name_and_id(&arn, "targetgroup/");
        let protocol = text(props, "Protocol").unwrap_or_else(|| "HTTP".into());
        let default = HealthCheck::default();
        let interval = number(props, "HealthCheckIntervalSeconds").unwrap_or(default.interval);
        let health_check = HealthCheck {
            // Left out, health checks are on.
            enabled: text(props, "HealthCheckEnabled")
                .is_none_or(|_| flag(props, "HealthCheckEnabled")),
            protocol: text(props, "HealthCheckProtocol").unwrap_or_else(|| protocol.clone()),
            port: text(props, "HealthCheckPort").and_then(|p| p.parse().ok()),
            path: text(props, "HealthCheckPath").unwrap_or(default.path),
            interval,
            // Left out, the timeout defaults to 5 s, kept below a shorter interval.
            timeout: number(props, "HealthCheckTimeoutSeconds")
                .unwrap_or_else(|| default.timeout.min(interval.saturating_sub(1)).max(2)),
            healthy: number(props, "HealthyThresholdCount").unwrap_or(5) as u32,
            unhealthy: number(props, "UnhealthyThresholdCount").unwrap_or(2) as u32,
            matcher: props
                .get("Matcher")
                .and_then(|m| text(m, "HttpCode"))
                .unwrap_or(default.matcher),
        };
        let record = TargetGroupRecord {
            arn: arn.clone(),
            name,
            full_name: format!("targetgroup/{}/{id}", arn_name_and_id(&arn, "targetgroup/").0),
            protocol,
            port: number(props, "Port").unwrap_or(80) as u16,
            target_type: text(props, "TargetType").unwrap_or_else(|| "instance".into()),
            protocol_version: text(props, "ProtocolVersion").unwrap_or_else(|| "HTTP1".into()),
            vpc_id: text(props, "VpcId"),
            health_check,
            attributes: kv(props, "TargetGroupAttributes"),
            targets: Vec::new(),
        };
        let wanted = registrations(props);
        let before = current.map(|c| registrations(&c.properties)).unwrap_or_default();
        let record = self.elb.put_target_group(record).map_err(err)?;
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
        if let Some(mut listener) = self.elb.listener(&arn).map_err(err)? {
            for c in certificate_arns(props) {
                if !listener.certificates.contains(&c) {
                    listener.certificates.push(c);
                }
            }
            self.elb.update_listener(listener).await.map_err(err)?;
        }
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
        let dns_name =
            match current.and_then(|c| c.attributes.get("DNSName")).and_then(Json::as_str) {
                Some(kept) => kept.to_string(),
                None => local_dns(
                    provided.attributes.get("DNSName").and_then(Json::as_str).unwrap_or_default(),
                ),
            };
        provided.attributes.insert("DNSName".into(), json!(dns_name));
        provided.attributes.insert("CanonicalHostedZoneName".into(), json!(dns_name));
        let existing =
            self.elb.load_balancer(&name).map_err(err)?.filter(|l| l.kind == Kind::Classic);
        if existing.is_some() {
            self.remove_classic(&name).map_err(err)?;
        }
        let mut attributes = BTreeMap::new();
        if let Some(idle) = props.get("ConnectionSettings").and_then(|c| number(c, "IdleTimeout")) {
            attributes.insert("idle_timeout.timeout_seconds".into(), idle.to_string());
        }
        let subnets = strings(props, "Subnets");
        let mut zones = strings(props, "AvailabilityZones");
        if zones.is_empty() {
            zones = self.zones_of(&subnets)?;
        }
        let record = LoadBalancerRecord {
            arn: name.clone(),
            name: name.clone(),
            full_name: name.clone(),
            kind: Kind::Classic,
            dns_name,
            scheme: text(props, "Scheme").unwrap_or_else(|| "internet-facing".into()),
            subnets,
            zones,
            security_groups: strings(props, "SecurityGroups"),
            attributes,
            ip: existing.as_ref().map_or(Ipv4Addr::LOCALHOST, |e| e.ip),
            created: existing
                .as_ref()
                .map_or_else(|| clock::iso8601(self.elb.clock().now()), |e| e.created.clone()),
        };
        let record = match existing {
            Some(_) => {
                self.elb.update_load_balancer(&record).map_err(err)?;
                record
            }
            None => self.elb.create_load_balancer(record).map_err(err)?,
        };
        // Health check "HTTP:80/path", "TCP:80", ...
        let hc_props = props.get("HealthCheck").cloned().unwrap_or(json!({}));
        let target = text(&hc_props, "Target").unwrap_or_else(|| "TCP:80".into());
        let (proto, rest) = target.split_once(':').unwrap_or(("TCP", "80"));
        let (port_text, path) = match rest.find('/') {
            Some(i) => (&rest[..i], rest[i..].to_string()),
            None => (rest, "/".to_string()),
        };
        let health_check = HealthCheck {
            enabled: true,
            protocol: proto.to_ascii_uppercase(),
            port: port_text.parse().ok(),
            path,
            interval: number(&hc_props, "Interval").unwrap_or(30).max(2),
            timeout: number(&hc_props, "Timeout").unwrap_or(5),
            healthy: number(&hc_props, "HealthyThreshold").unwrap_or(10) as u32,
            unhealthy: number(&hc_props, "UnhealthyThreshold").unwrap_or(2) as u32,
            matcher: "200".into(),
        };
        let draining = props.get("ConnectionDrainingPolicy");
        let delay = match draining {
            Some(d) if flag(d, "Enabled") => number(d, "Timeout").unwrap_or(300),
            _ => 0,
        };
        let mut group_attributes = BTreeMap::from([(
            "deregistration_delay.timeout_seconds".to_string(),
            delay.to_string(),
        )]);
        if props.get("LBCookieStickinessPolicy").is_some()
            || props.get("AppCookieStickinessPolicy").is_some()
        {
            group_attributes.insert("stickiness.enabled".into(), "true".into());
        }
        let instances: Vec<Registration> = strings(props, "Instances")
            .into_iter()
            .map(|id| Registration { id, port: None, zone: None })
            .collect();
        for l in props.get("Listeners").and_then(Json::as_array).into_iter().flatten() {
            let lb_port = number(l, "LoadBalancerPort").unwrap_or(80) as u16;
            let instance_port = number(l, "InstancePort").unwrap_or(u64::from(lb_port)) as u16;
            let tg_arn = crate::classic_group(&name, instance_port);
            if self.elb.target_group(&tg_arn).map_err(err)?.is_none() {
                let group = TargetGroupRecord {
                    arn: tg_arn.clone(),
                    name: format!("{name}-{instance_port}"),
                    full_name: format!("targetgroup/{name}-{instance_port}/classic"),
                    protocol: "HTTP".into(),
                    port: instance_port,
                    target_type: "instance".into(),
                    protocol_version: "HTTP1".into(),
                    vpc_id: None,
                    health_check: health_check.clone(),
                    attributes: group_attributes.clone(),
                    targets: Vec::new(),
                };
                self.elb.put_target_group(group).map_err(err)?;
                if !instances.is_empty() {
                    self.elb.register_targets(&tg_arn, &instances).map_err(err)?;
                }
            }
            let protocol =
                text(l, "Protocol").unwrap_or_else(|| "HTTP".into()).to_ascii_uppercase();
            let listener = ListenerRecord {
                arn: format!("{name}/listener/{lb_port}"),
                lb_arn: record.arn.clone(),
                port: lb_port,
                protocol: if protocol == "HTTPS" || protocol == "SSL" {
                    "HTTPS".into()
                } else {
                    "HTTP".into()
                },
                certificates: text(l, "SSLCertificateId").into_iter().collect(),
                default_actions: vec![json!({"Type": "forward", "TargetGroupArn": tg_arn})],
                bound_port: 0,
            };
            self.elb.create_listener(listener).await.map_err(err)?;
        }
        Ok(provided)
    }

    /// A Classic load balancer's listeners and groups (the record stays).
    fn remove_classic(&self, name: &str) -> Result<(), ElbError> {
        for l in self.elb.listeners()?.into_iter().filter(|l| l.lb_arn == name) {
            self.elb.delete_listener(&l.arn)?;
        }
        for g in self
            .elb
            .target_groups()?
            .into_iter()
            .filter(|g| g.arn.starts_with(&format!("classic/{name}/")))
        {
            self.elb.delete_target_group(&g.arn)?;
        }
        Ok(())
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
            "AWS::ElasticLoadBalancingV2::LoadBalancer" => self.elb.delete_load_balancer(id),
            "AWS::ElasticLoadBalancingV2::Listener" => self.elb.delete_listener(id),
            "AWS::ElasticLoadBalancingV2::ListenerRule" => self.elb.delete_rule(id),
            "AWS::ElasticLoadBalancingV2::TargetGroup" => self.elb.delete_target_group(id),
            "AWS::ElasticLoadBalancing::LoadBalancer" => {
                self.remove_classic(id).and_then(|_| self.elb.delete_load_balancer(id))
            }
            _ => Ok(()),
        };
        result.map_err(err)
    }
}
