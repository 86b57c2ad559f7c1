//! Target groups and registration: the data plane's view of a group (algorithm, stickiness
//! and outlier ejection in real time), registering targets, and reading their health.

use std::collections::{BTreeMap, HashSet};
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use elb_proxy::{Algorithm, Stickiness, Target, TargetGroup};

use super::load_balancers::check_name;
use super::publish::publish_group;
use super::{Elb, ElbError, Group, TargetHealth, Tgt};
use crate::health::{Health, State};
use crate::model::*;
use crate::requests::{CreateTargetGroup, HealthCheckSettings, ModifyTargetGroup};

/// A health check from what was asked over `base` (AWS's defaults, or the group's current
/// check), with ELB's ranges. Left out on creation, the timeout is 5 s, kept below a shorter
/// interval.
pub(crate) fn resolve_health_check(
    asked: &HealthCheckSettings,
    base: HealthCheck,
    creating: bool,
) -> Result<HealthCheck, ElbError> {
    let range = |what: &str, v: u64, lo: u64, hi: u64| {
        if (lo..=hi).contains(&v) {
            Ok(())
        } else {
            Err(ElbError::api(
                "ValidationError",
                format!("{what} must be between {lo} and {hi}, but was {v}"),
            ))
        }
    };
    let interval = asked.interval.unwrap_or(base.interval);
    range("Health check interval", interval, 5, 300)?;
    let timeout = match asked.timeout {
        Some(t) => t,
        None if creating => base.timeout.min(interval.saturating_sub(1)).max(2),
        None => base.timeout,
    };
    range("Health check timeout", timeout, 2, 120)?;
    let healthy = asked.healthy.unwrap_or(base.healthy);
    range("Healthy threshold count", u64::from(healthy), 2, 10)?;
    let unhealthy = asked.unhealthy.unwrap_or(base.unhealthy);
    range("Unhealthy threshold count", u64::from(unhealthy), 2, 10)?;
    let port = match asked.port.as_deref() {
        None => base.port,
        Some("traffic-port") => None,
        Some(p) => match p.parse::<u16>() {
            Ok(n) if n > 0 => Some(n),
            _ => {
                return Err(ElbError::api(
                    "ValidationError",
                    format!(
                        "Health check port '{p}' must be 'traffic-port' or a port from 1 to 65535"
                    ),
                ));
            }
        },
    };
    let path = asked.path.clone().unwrap_or(base.path);
    if !path.starts_with('/') || path.len() > 1024 {
        return Err(ElbError::api(
            "ValidationError",
            format!(
                "Health check path '{path}' must begin with '/' and be at most 1024 characters"
            ),
        ));
    }
    Ok(HealthCheck {
        enabled: asked.enabled.unwrap_or(base.enabled),
        protocol: asked.protocol.as_ref().map_or(base.protocol, |p| p.to_ascii_uppercase()),
        port,
        path,
        interval,
        timeout,
        healthy,
        unhealthy,
        matcher: asked.matcher.clone().unwrap_or(base.matcher),
    })
}

impl Elb {
    pub(super) fn group_plane(&self, record: &TargetGroupRecord) -> TargetGroup {
        let algorithm = match record.attribute("load_balancing.algorithm.type") {
            Some("least_outstanding_requests") => Algorithm::LeastOutstanding,
            Some("weighted_random") => Algorithm::WeightedRandom,
            _ => Algorithm::RoundRobin,
        };
        let enabled = record.attribute("stickiness.enabled") == Some("true");
        let stickiness = match (enabled, record.attribute("stickiness.type")) {
            (false, _) => Stickiness::None,
            (true, Some("app_cookie")) => Stickiness::AppCookie {
                name: record
                    .attribute("stickiness.app_cookie.cookie_name")
                    .unwrap_or_default()
                    .to_string(),
                duration: self.clock.real_duration(Duration::from_secs(
                    record.seconds("stickiness.app_cookie.duration_seconds", 86_400),
                )),
            },
            (true, _) => Stickiness::LbCookie(self.clock.real_duration(Duration::from_secs(
                record.seconds("stickiness.lb_cookie.duration_seconds", 86_400),
            ))),
        };
        let plane = TargetGroup::new(
            &record.full_name,
            record.short_id(),
            algorithm,
            stickiness,
            record.protocol_version == "HTTP2",
        );
        if record.attribute(crate::OUTLIER_ATTRIBUTE) == Some("true") {
            let errors = record.seconds(crate::OUTLIER_ERRORS_ATTRIBUTE, 1).clamp(1, 1000);
            let base = record.seconds(crate::OUTLIER_EJECTION_ATTRIBUTE, 30).max(1);
            let real = self.clock.real_duration(Duration::from_secs(base));
            plane.outlier_errors.store(errors as u32, std::sync::atomic::Ordering::Relaxed);
            plane
                .outlier_base_ms
                .store(real.as_millis().max(1) as u64, std::sync::atomic::Ordering::Relaxed);
        }
        plane
    }

    /// CreateTargetGroup, for the API and CloudFormation alike: AWS's defaults for what is
    /// left out, the ARN made unless CloudFormation gave it.
    pub fn create_target_group(
        &self,
        req: CreateTargetGroup,
    ) -> Result<TargetGroupRecord, ElbError> {
        check_name("target group", &req.name)?;
        if self
            .target_groups()?
            .iter()
            .any(|t| t.name == req.name && !t.arn.starts_with("classic/"))
        {
            return Err(ElbError::api(
                "DuplicateTargetGroupName",
                format!(
                    "A target group with the same name '{}' exists, but with different settings",
                    req.name
                ),
            ));
        }
        let target_type = req.target_type.unwrap_or_else(|| "instance".into());
        if !["instance", "ip", "lambda", "alb"].contains(&target_type.as_str()) {
            return Err(ElbError::api(
                "ValidationError",
                format!("Target type '{target_type}' must be one of [instance, ip, lambda, alb]"),
            ));
        }
        let protocol = req.protocol.unwrap_or_else(|| "HTTP".into()).to_ascii_uppercase();
        if !["HTTP", "HTTPS", "TCP", "TLS", "UDP", "TCP_UDP", "GENEVE"].contains(&protocol.as_str())
        {
            return Err(ElbError::api(
                "ValidationError",
                format!(
                    "Protocol '{protocol}' must be one of [HTTP, HTTPS, TCP, TLS, UDP, TCP_UDP, GENEVE]"
                ),
            ));
        }
        let protocol_version = req.protocol_version.unwrap_or_else(|| "HTTP1".into());
        if !["HTTP1", "HTTP2", "GRPC"].contains(&protocol_version.as_str()) {
            return Err(ElbError::api(
                "ValidationError",
                format!(
                    "Protocol version '{protocol_version}' must be one of [HTTP1, HTTP2, GRPC]"
                ),
            ));
        }
        let mut base = HealthCheck { protocol: protocol.clone(), ..HealthCheck::default() };
        if protocol_version == "GRPC" {
            base.path = "/AWS.ALB/healthcheck".into();
            base.matcher = "12".into();
        }
        let health_check = resolve_health_check(&req.health_check, base, true)?;
        let arn = req.arn.unwrap_or_else(|| {
            self.account.arn(
                "elasticloadbalancing",
                &format!("targetgroup/{}/{}", req.name, aws_ids::hex(16)),
            )
        });
        let full_name = arn.split_once(":targetgroup/").map_or_else(
            || format!("targetgroup/{}/0000000000000000", req.name),
            |(_, t)| format!("targetgroup/{t}"),
        );
        let record = TargetGroupRecord {
            arn,
            name: req.name,
            full_name,
            protocol,
            port: req.port.unwrap_or(80),
            target_type,
            protocol_version,
            vpc_id: req.vpc_id,
            health_check,
            attributes: req.attributes,
            targets: Vec::new(),
            tags: req.tags,
        };
        self.put_target_group(record)
    }

    /// ModifyTargetGroup: the health check members given change.
    pub fn modify_target_group(
        &self,
        req: ModifyTargetGroup,
    ) -> Result<TargetGroupRecord, ElbError> {
        let mut record = self.existing_group(&req.arn)?;
        record.health_check =
            resolve_health_check(&req.health_check, record.health_check.clone(), false)?;
        self.put_target_group(record)
    }

    /// ModifyTargetGroupAttributes (`replace`: CloudFormation's whole set).
    pub fn modify_target_group_attributes(
        &self,
        arn: &str,
        attributes: BTreeMap<String, String>,
        replace: bool,
    ) -> Result<TargetGroupRecord, ElbError> {
        let mut record = self.existing_group(arn)?;
        if replace {
            record.attributes = attributes;
        } else {
            record.attributes.extend(attributes);
        }
        self.put_target_group(record)
    }

    /// DeleteTargetGroup: refused while a listener or rule forwards to it; a group that is not
    /// there is already deleted.
    pub fn remove_target_group(&self, arn: &str) -> Result<(), ElbError> {
        if self.target_group(arn)?.is_none() {
            return Ok(());
        }
        self.delete_target_group(arn)
    }

    /// Creates or updates a target group (registrations are kept on update).
    pub fn put_target_group(
        &self,
        mut record: TargetGroupRecord,
    ) -> Result<TargetGroupRecord, ElbError> {
        let hc = &record.health_check;
        if hc.timeout >= hc.interval && hc.protocol != "TCP" {
            return Err(ElbError::api(
                "ValidationError",
                "Health check timeout must be smaller than the interval",
            ));
        }
        let old = self.target_group(&record.arn)?;
        if let Some(old) = &old {
            record.targets = old.targets.clone();
        }
        self.store.put(TARGET_GROUPS, &record.arn, &record)?;
        let plane = Arc::new(self.group_plane(&record));
        {
            let mut inner = self.inner.lock();
            match inner.groups.get_mut(&record.arn) {
                Some(group) => {
                    // Same targets (by identity) under the new settings; checks restart.
                    plane.publish((**group.plane.targets.load()).clone());
                    group.plane = plane;
                    for t in &mut group.targets {
                        t.prober = None;
                    }
                }
                None => {
                    inner.groups.insert(
                        record.arn.clone(),
                        Group { plane, targets: Vec::new(), in_use: false },
                    );
                }
            }
        }
        let registered = record.targets.clone();
        if old.is_none() && !registered.is_empty() {
            self.attach(&record, &registered)?;
        }
        self.republish()?;
        self.restart_probers(&record.arn)?;
        Ok(record)
    }

    pub fn delete_target_group(&self, arn: &str) -> Result<(), ElbError> {
        let in_use = self.load_balancers_of(arn)?;
        if !in_use.is_empty() {
            return Err(ElbError::api(
                "ResourceInUse",
                format!("Target group '{arn}' is currently in use by a listener or a rule"),
            ));
        }
        self.store.delete(TARGET_GROUPS, arn)?;
        self.inner.lock().groups.remove(arn);
        Ok(())
    }

    /// The port a registration uses, and where requests for it really go.
    fn resolve(
        &self,
        record: &TargetGroupRecord,
        reg: &Registration,
    ) -> Result<(u16, SocketAddr, Option<String>), ElbError> {
        let port = reg.port.unwrap_or(record.port);
        Ok(if record.target_type == "instance" {
            let instance = self.ec2.instance(&reg.id)?;
            let addr = instance
                .as_ref()
                .and_then(|i| i.host_port(port))
                .map_or(SocketAddr::from((Ipv4Addr::LOCALHOST, 9)), |p| {
                    SocketAddr::from((Ipv4Addr::LOCALHOST, p))
                });
            (port, addr, instance.map(|i| i.zone).or_else(|| reg.zone.clone()))
        } else {
            let ip: std::net::IpAddr = reg.id.parse().unwrap_or(Ipv4Addr::LOCALHOST.into());
            (port, SocketAddr::new(ip, port), reg.zone.clone())
        })
    }

    /// Registers targets (what RegisterTargets and the template's `Targets` do).
    pub fn register_targets(&self, tg_arn: &str, targets: &[Registration]) -> Result<(), ElbError> {
        let mut record = self.existing_group(tg_arn)?;
        for t in targets {
            if record.target_type == "instance" && self.ec2.instance(&t.id)?.is_none() {
                return Err(ElbError::api(
                    "InvalidTarget",
                    format!(
                        "The following targets are not in a running state and cannot be registered: '{}'",
                        t.id
                    ),
                ));
            }
            if record.target_type == "ip" && t.id.parse::<std::net::IpAddr>().is_err() {
                return Err(ElbError::api(
                    "InvalidTarget",
                    format!("The IP address '{}' is not a valid IPv4 address", t.id),
                ));
            }
        }
        // Linear in the registrations: a set of what is there already.
        let mut known: HashSet<(String, u16)> =
            record.targets.iter().map(|r| (r.id.clone(), r.port.unwrap_or(record.port))).collect();
        let mut fresh = Vec::new();
        for t in targets {
            let port = t.port.unwrap_or(record.port);
            if known.insert((t.id.clone(), port)) {
                record.targets.push(t.clone());
                fresh.push(t.clone());
            }
        }
        self.store.put(TARGET_GROUPS, &record.arn, &record)?;
        self.attach(&record, &fresh)
    }

    /// Adds runtime targets (initial health) for stored registrations, re-registering
    /// draining ones.
    pub(super) fn attach(
        &self,
        record: &TargetGroupRecord,
        regs: &[Registration],
    ) -> Result<(), ElbError> {
        let mut resolved = Vec::with_capacity(regs.len());
        for r in regs {
            resolved.push((r.clone(), self.resolve(record, r)?));
        }
        {
            let mut inner = self.inner.lock();
            let Some(group) = inner.groups.get_mut(&record.arn) else { return Ok(()) };
            // Runtime targets for the same registrations (draining ones) are replaced.
            let replaced: HashSet<(&str, u16)> =
                resolved.iter().map(|(reg, (port, _, _))| (reg.id.as_str(), *port)).collect();
            group.targets.retain(|t| !replaced.contains(&(t.id.as_str(), t.port)));
            for (reg, (port, addr, zone)) in resolved {
                let health =
                    if group.in_use { Health::registering() } else { Health::not_in_use() };
                group.targets.push(Tgt {
                    id: reg.id.clone(),
                    port,
                    plane: Arc::new(Target::new(
                        &reg.id,
                        port,
                        addr,
                        zone.as_deref().unwrap_or(""),
                    )),
                    zone,
                    health,
                    prober: None,
                    drain: None,
                    ramp: None,
                });
            }
            publish_group(group);
        }
        self.restart_probers(&record.arn)
    }

    /// The health of every target of a group (draining ones included).
    pub fn target_health(&self, tg_arn: &str) -> Result<Vec<TargetHealth>, ElbError> {
        self.existing_group(tg_arn)?;
        let inner = self.inner.lock();
        let group = inner.groups.get(tg_arn);
        Ok(group
            .map(|g| {
                g.targets
                    .iter()
                    .map(|t| TargetHealth {
                        id: t.id.clone(),
                        port: t.port,
                        zone: t.zone.clone(),
                        health: t.health.clone(),
                    })
                    .collect()
            })
            .unwrap_or_default())
    }

    /// The worst health an instance has in the groups it is registered in (ELB health checks
    /// of Auto Scaling groups): `None` when it is in none or still initial.
    pub fn instance_health(&self, id: &str) -> Option<State> {
        let inner = self.inner.lock();
        let states: Vec<State> = inner
            .groups
            .values()
            .flat_map(|g| g.targets.iter())
            .filter(|t| t.id == id)
            .map(|t| t.health.state)
            .collect();
        if states.contains(&State::Unhealthy) {
            Some(State::Unhealthy)
        } else if states.contains(&State::Healthy) {
            Some(State::Healthy)
        } else {
            states.first().copied()
        }
    }

    /// (healthy, unhealthy) targets of a group.
    pub fn host_counts(&self, tg_arn: &str) -> (usize, usize) {
        let inner = self.inner.lock();
        inner.groups.get(tg_arn).map_or((0, 0), |g| {
            let healthy = g.targets.iter().filter(|t| t.health.state == State::Healthy).count();
            let unhealthy = g.targets.iter().filter(|t| t.health.state == State::Unhealthy).count();
            (healthy, unhealthy)
        })
    }

    /// The targets (`id:port`) a group's new requests may go to now, and whether that is
    /// because every target is unhealthy (fail-open).
    pub fn routable(&self, tg_arn: &str) -> (Vec<String>, bool) {
        let inner = self.inner.lock();
        inner.groups.get(tg_arn).map_or((Vec::new(), false), |g| {
            let set = g.plane.targets.load();
            (set.routable.iter().map(|t| t.key()).collect(), set.fail_open)
        })
    }
}
