//! Classic load balancers on the same engine: a load balancer record with Classic's settings,
//! one target group per instance port (its health check and instances shared), one listener
//! per load balancer port. CloudFormation's `AWS::ElasticLoadBalancing::LoadBalancer` and the
//! Classic API (2012-06-01) both come here.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use serde_json::json;

use super::load_balancers::local_dns;
use super::tags::merge_tags;
use super::{Elb, ElbError};
use crate::health::State;
use crate::model::*;
use crate::requests::{CreateClassicLoadBalancer, ModifyClassicAttributes};

/// An instance's health as Classic reports it (DescribeInstanceHealth).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InstanceHealth {
    pub instance_id: String,
    /// `InService` or `OutOfService`.
    pub state: &'static str,
    /// `ELB`, `Instance` or `N/A`.
    pub reason_code: &'static str,
    pub description: &'static str,
}

fn not_found(name: &str) -> ElbError {
    ElbError::api(
        "LoadBalancerNotFound",
        format!("There is no ACTIVE Load Balancer named '{name}'"),
    )
}

/// `HTTP:80/path`, `TCP:80`, ... into ELB's health check (Classic matches `200` only).
fn health_check(hc: &ClassicHealthCheck) -> Result<HealthCheck, ElbError> {
    let invalid = || {
        ElbError::api(
            "ValidationError",
            format!(
                "Health check target '{}' must be PROTOCOL:PORT (TCP, SSL) or PROTOCOL:PORT/PATH (HTTP, HTTPS)",
                hc.target
            ),
        )
    };
    let (proto, rest) = hc.target.split_once(':').ok_or_else(invalid)?;
    let proto = proto.to_ascii_uppercase();
    let (port, path) = match rest.find('/') {
        Some(i) => (&rest[..i], rest[i..].to_string()),
        None => (rest, "/".to_string()),
    };
    let port: u16 = port.parse().ok().filter(|p| *p > 0).ok_or_else(invalid)?;
    if !["HTTP", "HTTPS", "TCP", "SSL"].contains(&proto.as_str()) {
        return Err(invalid());
    }
    if hc.interval <= hc.timeout {
        return Err(ElbError::api(
            "ValidationError",
            "Interval must be greater than Timeout in the health check",
        ));
    }
    if !(2..=10).contains(&hc.healthy) || !(2..=10).contains(&hc.unhealthy) {
        return Err(ElbError::api(
            "ValidationError",
            "HealthyThreshold and UnhealthyThreshold must be between 2 and 10",
        ));
    }
    Ok(HealthCheck {
        enabled: true,
        protocol: proto,
        port: Some(port),
        path,
        interval: hc.interval,
        timeout: hc.timeout,
        healthy: hc.healthy,
        unhealthy: hc.unhealthy,
        matcher: "200".into(),
    })
}

fn check_listener(l: &ClassicListener) -> Result<(), ElbError> {
    for p in [&l.protocol, &l.instance_protocol] {
        if !["HTTP", "HTTPS", "TCP", "SSL"].contains(&p.to_ascii_uppercase().as_str()) {
            return Err(ElbError::api(
                "UnsupportedProtocol",
                format!("Protocol '{p}' is not supported; use HTTP, HTTPS, TCP or SSL"),
            ));
        }
    }
    if l.load_balancer_port == 0 || l.instance_port == 0 {
        return Err(ElbError::api("ValidationError", "Ports must be between 1 and 65535"));
    }
    let secure = matches!(l.protocol.to_ascii_uppercase().as_str(), "HTTPS" | "SSL");
    if secure && l.ssl_certificate_id.is_none() {
        return Err(ElbError::api(
            "CertificateNotFound",
            "An SSLCertificateId is required for HTTPS and SSL listeners",
        ));
    }
    Ok(())
}

impl Elb {
    /// A Classic load balancer that must exist.
    pub fn classic_load_balancer(&self, name: &str) -> Result<LoadBalancerRecord, ElbError> {
        self.load_balancers()?
            .into_iter()
            .find(|l| l.kind == Kind::Classic && l.name == name)
            .ok_or_else(|| not_found(name))
    }

    /// The Classic load balancers (by name).
    pub fn classic_load_balancers(&self) -> Result<Vec<LoadBalancerRecord>, ElbError> {
        let mut out: Vec<_> =
            self.load_balancers()?.into_iter().filter(|l| l.kind == Kind::Classic).collect();
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    fn classic_record(
        &self,
        req: CreateClassicLoadBalancer,
    ) -> Result<LoadBalancerRecord, ElbError> {
        super::load_balancers::check_name("load balancer", &req.name)?;
        if req.listeners.is_empty() {
            return Err(ElbError::api(
                "ValidationError",
                "At least one listener must be specified",
            ));
        }
        for l in &req.listeners {
            check_listener(l)?;
        }
        let mut ports = std::collections::HashSet::new();
        if req.listeners.iter().any(|l| !ports.insert(l.load_balancer_port)) {
            return Err(ElbError::api(
                "DuplicateListener",
                "A listener already exists for this load balancer port",
            ));
        }
        let health = req.health_check.unwrap_or_default();
        health_check(&health)?;
        let zones = if req.subnets.is_empty() {
            if req.zones.is_empty() {
                return Err(ElbError::api(
                    "ValidationError",
                    "Either AvailabilityZones or Subnets must be specified",
                ));
            }
            for z in &req.zones {
                if !z.starts_with(&self.account.region) || z.len() != self.account.region.len() + 1
                {
                    return Err(ElbError::api(
                        "ValidationError",
                        format!("Availability zone '{z}' is not valid in this region"),
                    ));
                }
            }
            req.zones
        } else {
            self.subnet_zones(Kind::Classic, &req.subnets).map_err(|e| match e {
                ElbError::Api { code: "SubnetNotFound", message } => {
                    ElbError::api("SubnetNotFound", message)
                }
                other => other,
            })?
        };
        self.check_security_groups(&req.security_groups)?;
        super::tags::check_tags(&req.tags)?;
        let scheme = req.scheme.unwrap_or_else(|| "internet-facing".into());
        let dns_name = local_dns(&req.dns_name.unwrap_or_else(|| {
            format!(
                "{}{}-{}.{}.elb.amazonaws.com",
                if scheme == "internal" { "internal-" } else { "" },
                req.name,
                aws_ids::digits(10),
                self.account.region
            )
        }));
        let mut attributes = BTreeMap::new();
        attributes
            .insert("idle_timeout.timeout_seconds".into(), req.attributes.idle_timeout.to_string());
        Ok(LoadBalancerRecord {
            arn: req.name.clone(),
            name: req.name.clone(),
            full_name: req.name,
            kind: Kind::Classic,
            dns_name,
            scheme,
            subnets: req.subnets,
            zones,
            security_groups: req.security_groups,
            attributes,
            ip: Ipv4Addr::LOCALHOST,
            created: clock::iso8601(self.clock.now()),
            ip_address_type: "ipv4".into(),
            tags: req.tags,
            classic: Some(ClassicSettings {
                listeners: req.listeners,
                health_check: health,
                instances: req.instances,
                attributes: req.attributes,
                sticky: req.sticky,
            }),
        })
    }

    /// CreateLoadBalancer (Classic): the record, then its groups and listeners.
    pub async fn create_classic_load_balancer(
        &self,
        req: CreateClassicLoadBalancer,
    ) -> Result<LoadBalancerRecord, ElbError> {
        for id in &req.instances {
            self.check_instance(id)?;
        }
        let record = self.classic_record(req)?;
        let record = self.insert_load_balancer(record)?;
        self.apply_classic(&record).await?;
        Ok(record)
    }

    /// CloudFormation's update: the same record (address, DNS name, creation time) with new
    /// settings; groups and listeners are made again.
    pub async fn update_classic_load_balancer(
        &self,
        req: CreateClassicLoadBalancer,
    ) -> Result<LoadBalancerRecord, ElbError> {
        let existing = self.classic_load_balancer(&req.name)?;
        for id in &req.instances {
            self.check_instance(id)?;
        }
        let mut record = self.classic_record(req)?;
        record.ip = existing.ip;
        record.created = existing.created;
        record.dns_name = existing.dns_name;
        self.remove_classic_parts(&record.name)?;
        self.update_load_balancer(&record)?;
        self.apply_classic(&record).await?;
        Ok(record)
    }

    /// DeleteLoadBalancer (Classic): a load balancer that is not there is already deleted.
    pub fn delete_classic_load_balancer(&self, name: &str) -> Result<(), ElbError> {
        if self.classic_load_balancer(name).is_err() {
            return Ok(());
        }
        self.remove_classic_parts(name)?;
        self.delete_load_balancer(name)
    }

    /// A Classic load balancer's listeners and groups (the record stays).
    fn remove_classic_parts(&self, name: &str) -> Result<(), ElbError> {
        for l in self.listeners()?.into_iter().filter(|l| l.lb_arn == name) {
            self.delete_listener(&l.arn)?;
        }
        let prefix = format!("classic/{name}/");
        for g in self.target_groups()?.into_iter().filter(|g| g.arn.starts_with(&prefix)) {
            self.delete_target_group(&g.arn)?;
        }
        Ok(())
    }

    fn settings(record: &LoadBalancerRecord) -> ClassicSettings {
        record.classic.clone().unwrap_or_default()
    }

    /// The group of one instance port: Classic's health check, draining and stickiness.
    fn classic_group_record(
        record: &LoadBalancerRecord,
        instance_port: u16,
    ) -> Result<TargetGroupRecord, ElbError> {
        let settings = Self::settings(record);
        let a = &settings.attributes;
        let mut attributes = BTreeMap::from([(
            "deregistration_delay.timeout_seconds".to_string(),
            if a.draining { a.draining_timeout } else { 0 }.to_string(),
        )]);
        if settings.sticky {
            attributes.insert("stickiness.enabled".into(), "true".into());
        }
        let name = &record.name;
        Ok(TargetGroupRecord {
            arn: crate::classic_group(name, instance_port),
            name: format!("{name}-{instance_port}"),
            full_name: format!("targetgroup/{name}-{instance_port}/classic"),
            protocol: "HTTP".into(),
            port: instance_port,
            target_type: "instance".into(),
            protocol_version: "HTTP1".into(),
            vpc_id: None,
            health_check: health_check(&settings.health_check)?,
            attributes,
            targets: Vec::new(),
            tags: Vec::new(),
        })
    }

    /// Makes what the settings say exist: a group per instance port (with the instances), a
    /// listener per load balancer port.
    async fn apply_classic(&self, record: &LoadBalancerRecord) -> Result<(), ElbError> {
        let settings = Self::settings(record);
        let instances: Vec<Registration> = settings
            .instances
            .iter()
            .map(|id| Registration { id: id.clone(), port: None, zone: None })
            .collect();
        for l in &settings.listeners {
            let tg_arn = crate::classic_group(&record.name, l.instance_port);
            if self.target_group(&tg_arn)?.is_none() {
                self.put_target_group(Self::classic_group_record(record, l.instance_port)?)?;
                if !instances.is_empty() {
                    self.register_targets(&tg_arn, &instances)?;
                }
            }
            let arn = format!("{}/listener/{}", record.name, l.load_balancer_port);
            if self.listener(&arn)?.is_some() {
                continue;
            }
            let secure = matches!(l.protocol.to_ascii_uppercase().as_str(), "HTTPS" | "SSL");
            self.add_listener(ListenerRecord {
                arn,
                lb_arn: record.arn.clone(),
                port: l.load_balancer_port,
                protocol: if secure { "HTTPS".into() } else { "HTTP".into() },
                certificates: l.ssl_certificate_id.iter().cloned().collect(),
                default_actions: vec![json!({"Type": "forward", "TargetGroupArn": tg_arn})],
                bound_port: 0,
                ssl_policy: None,
                tags: Vec::new(),
            })
            .await?;
        }
        Ok(())
    }

    fn check_instance(&self, id: &str) -> Result<(), ElbError> {
        match self.ec2.instance(id)? {
            Some(_) => Ok(()),
            None => {
                Err(ElbError::api("InvalidInstance", format!("Could not find EC2 instance {id}.")))
            }
        }
    }

    fn classic_groups(&self, name: &str) -> Result<Vec<TargetGroupRecord>, ElbError> {
        let prefix = format!("classic/{name}/");
        Ok(self.target_groups()?.into_iter().filter(|g| g.arn.starts_with(&prefix)).collect())
    }

    /// RegisterInstancesWithLoadBalancer: the instances registered afterwards.
    pub fn register_classic_instances(
        &self,
        name: &str,
        ids: &[String],
    ) -> Result<Vec<String>, ElbError> {
        let mut record = self.classic_load_balancer(name)?;
        for id in ids {
            self.check_instance(id)?;
        }
        let mut settings = Self::settings(&record);
        let fresh: Vec<String> =
            ids.iter().filter(|id| !settings.instances.contains(id)).cloned().collect();
        settings.instances.extend(fresh.iter().cloned());
        record.classic = Some(settings.clone());
        self.store.put(LOAD_BALANCERS, &record.arn, &record)?;
        let regs: Vec<Registration> = fresh
            .iter()
            .map(|id| Registration { id: id.clone(), port: None, zone: None })
            .collect();
        if !regs.is_empty() {
            for g in self.classic_groups(name)? {
                self.register_targets(&g.arn, &regs)?;
            }
        }
        Ok(settings.instances)
    }

    /// DeregisterInstancesFromLoadBalancer: the instances still registered.
    pub fn deregister_classic_instances(
        &self,
        name: &str,
        ids: &[String],
    ) -> Result<Vec<String>, ElbError> {
        let mut record = self.classic_load_balancer(name)?;
        let mut settings = Self::settings(&record);
        if let Some(id) = ids.iter().find(|id| !settings.instances.contains(id)) {
            return Err(ElbError::api(
                "InvalidInstance",
                format!("The instance {id} is not registered with load balancer {name}."),
            ));
        }
        settings.instances.retain(|i| !ids.contains(i));
        record.classic = Some(settings.clone());
        self.store.put(LOAD_BALANCERS, &record.arn, &record)?;
        for g in self.classic_groups(name)? {
            let regs: Vec<Registration> =
                g.targets.iter().filter(|t| ids.contains(&t.id)).cloned().collect();
            if !regs.is_empty() {
                self.deregister_targets(&g.arn, &regs)?;
            }
        }
        Ok(settings.instances)
    }

    /// DescribeInstanceHealth: each instance asked (every registered one when none is),
    /// InService when every group finds it healthy.
    pub fn classic_instance_health(
        &self,
        name: &str,
        ids: &[String],
    ) -> Result<Vec<InstanceHealth>, ElbError> {
        let record = self.classic_load_balancer(name)?;
        let settings = Self::settings(&record);
        let asked: Vec<String> =
            if ids.is_empty() { settings.instances.clone() } else { ids.to_vec() };
        let mut states: std::collections::HashMap<String, Vec<crate::Health>> = Default::default();
        for g in self.classic_groups(name)? {
            for h in self.target_health(&g.arn)? {
                states.entry(h.id).or_default().push(h.health);
            }
        }
        let mut out = Vec::with_capacity(asked.len());
        for id in asked {
            if !settings.instances.contains(&id) {
                self.check_instance(&id)?;
                out.push(InstanceHealth {
                    instance_id: id,
                    state: "OutOfService",
                    reason_code: "ELB",
                    description: "Instance is not currently registered with the LoadBalancer.",
                });
                continue;
            }
            let healths = states.get(&id).cloned().unwrap_or_default();
            let stopped =
                healths.iter().any(|h| h.reason.as_deref() == Some("Target.InvalidState"));
            let (state, reason_code, description) = if stopped {
                ("OutOfService", "Instance", "Instance is in stopped state.")
            } else if healths.iter().any(|h| h.state == State::Unhealthy) {
                (
                    "OutOfService",
                    "Instance",
                    "Instance has failed at least the UnhealthyThreshold number of health checks consecutively.",
                )
            } else if !healths.is_empty() && healths.iter().all(|h| h.state == State::Healthy) {
                ("InService", "N/A", "N/A")
            } else {
                ("OutOfService", "ELB", "Instance registration is still in progress.")
            };
            out.push(InstanceHealth { instance_id: id, state, reason_code, description });
        }
        Ok(out)
    }

    /// ConfigureHealthCheck: every group of the load balancer checks the new way.
    pub fn configure_classic_health_check(
        &self,
        name: &str,
        hc: ClassicHealthCheck,
    ) -> Result<ClassicHealthCheck, ElbError> {
        let mut record = self.classic_load_balancer(name)?;
        let check = health_check(&hc)?;
        let mut settings = Self::settings(&record);
        settings.health_check = hc.clone();
        record.classic = Some(settings);
        self.store.put(LOAD_BALANCERS, &record.arn, &record)?;
        for mut g in self.classic_groups(name)? {
            g.health_check = check.clone();
            self.put_target_group(g)?;
        }
        Ok(hc)
    }

    /// CreateLoadBalancerListeners: a port already listened on with other settings is a
    /// DuplicateListener; the same listener again changes nothing.
    pub async fn create_classic_listeners(
        &self,
        name: &str,
        listeners: Vec<ClassicListener>,
    ) -> Result<(), ElbError> {
        let mut record = self.classic_load_balancer(name)?;
        let mut settings = Self::settings(&record);
        for l in &listeners {
            check_listener(l)?;
            if let Some(existing) =
                settings.listeners.iter().find(|e| e.load_balancer_port == l.load_balancer_port)
                && existing != l
            {
                {
                    return Err(ElbError::api(
                        "DuplicateListener",
                        format!(
                            "A listener already exists for {name} with LoadBalancerPort {}, but with a different InstancePort, Protocol, or SSLCertificateId",
                            l.load_balancer_port
                        ),
                    ));
                }
            }
        }
        for l in listeners {
            if !settings.listeners.contains(&l) {
                settings.listeners.push(l);
            }
        }
        record.classic = Some(settings);
        self.store.put(LOAD_BALANCERS, &record.arn, &record)?;
        self.apply_classic(&record).await
    }

    /// DeleteLoadBalancerListeners: groups no listener uses any more go too.
    pub fn delete_classic_listeners(&self, name: &str, ports: &[u16]) -> Result<(), ElbError> {
        let mut record = self.classic_load_balancer(name)?;
        let mut settings = Self::settings(&record);
        settings.listeners.retain(|l| !ports.contains(&l.load_balancer_port));
        record.classic = Some(settings.clone());
        self.store.put(LOAD_BALANCERS, &record.arn, &record)?;
        for p in ports {
            let arn = format!("{name}/listener/{p}");
            if self.listener(&arn)?.is_some() {
                self.delete_listener(&arn)?;
            }
        }
        for g in self.classic_groups(name)? {
            if !settings.listeners.iter().any(|l| g.port == l.instance_port) {
                self.delete_target_group(&g.arn)?;
            }
        }
        Ok(())
    }

    /// ModifyLoadBalancerAttributes (Classic): draining and stickiness reach the groups, the
    /// idle timeout the listeners.
    pub fn modify_classic_attributes(
        &self,
        name: &str,
        change: ModifyClassicAttributes,
    ) -> Result<ClassicAttributes, ElbError> {
        let mut record = self.classic_load_balancer(name)?;
        let mut settings = Self::settings(&record);
        let a = &mut settings.attributes;
        if let Some(v) = change.cross_zone {
            a.cross_zone = v;
        }
        if let Some(v) = change.draining {
            a.draining = v;
        }
        if let Some(v) = change.draining_timeout {
            a.draining_timeout = v;
        }
        if let Some(v) = change.idle_timeout {
            if !(1..=4000).contains(&v) {
                return Err(ElbError::api(
                    "ValidationError",
                    "IdleTimeout must be between 1 and 4000 seconds",
                ));
            }
            a.idle_timeout = v;
        }
        let attributes = a.clone();
        record
            .attributes
            .insert("idle_timeout.timeout_seconds".into(), attributes.idle_timeout.to_string());
        record.classic = Some(settings);
        self.update_load_balancer(&record)?;
        let delay = if attributes.draining { attributes.draining_timeout } else { 0 };
        for mut g in self.classic_groups(name)? {
            g.attributes.insert("deregistration_delay.timeout_seconds".into(), delay.to_string());
            self.put_target_group(g)?;
        }
        Ok(attributes)
    }

    /// AddTags (Classic, by name).
    pub fn add_classic_tags(&self, names: &[String], tags: &[Tag]) -> Result<(), ElbError> {
        let mut records = Vec::new();
        for n in names {
            let mut r = self.classic_load_balancer(n)?;
            merge_tags(&mut r.tags, tags)?;
            records.push(r);
        }
        for r in &records {
            self.store.put(LOAD_BALANCERS, &r.arn, r)?;
        }
        Ok(())
    }

    /// RemoveTags (Classic, by name).
    pub fn remove_classic_tags(&self, names: &[String], keys: &[String]) -> Result<(), ElbError> {
        let mut records = Vec::new();
        for n in names {
            let mut r = self.classic_load_balancer(n)?;
            r.tags.retain(|t| !keys.contains(&t.key));
            records.push(r);
        }
        for r in &records {
            self.store.put(LOAD_BALANCERS, &r.arn, r)?;
        }
        Ok(())
    }
}
