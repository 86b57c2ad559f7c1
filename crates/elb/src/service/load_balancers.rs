//! Load balancers: their records, their loopback addresses, and the data plane's view of
//! each (settings, counters, access log writer).

use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;
use std::sync::Arc;

use elb_proxy::metrics::Counters;

use super::{Elb, ElbError};
use crate::access_logs;
use crate::model::*;
use crate::requests::CreateLoadBalancer;
use crate::snapshot;

/// The local DNS name: AWS's shape with `.elb.localhost` for `.elb.amazonaws.com`.
pub(crate) fn local_dns(aws: &str) -> String {
    aws.replace(".elb.amazonaws.com", ".elb.localhost")
}

/// ELB's rule for names: 1 to 32 letters, digits and hyphens, no hyphen first or last.
pub(crate) fn check_name(what: &str, name: &str) -> Result<(), ElbError> {
    let ok = !name.is_empty()
        && name.len() <= 32
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        && !name.starts_with('-')
        && !name.ends_with('-');
    if ok {
        Ok(())
    } else {
        Err(ElbError::api(
            "ValidationError",
            format!(
                "The {what} name '{name}' is not valid: it must have 1 to 32 letters, digits and hyphens, and must not begin or end with a hyphen"
            ),
        ))
    }
}

impl Elb {
    /// A loopback address no other load balancer uses (127.0.1.1, 127.0.1.2, ...).
    fn free_ip(&self) -> Result<Ipv4Addr, ElbError> {
        let used: BTreeSet<Ipv4Addr> = self.load_balancers()?.into_iter().map(|l| l.ip).collect();
        Ok((1u32..0xFFFE)
            .map(|n| Ipv4Addr::from(u32::from(Ipv4Addr::new(127, 0, 1, 0)) + n))
            .find(|ip| ip.octets()[3] != 0 && ip.octets()[3] != 255 && !used.contains(ip))
            .unwrap_or(Ipv4Addr::LOCALHOST))
    }

    /// CreateLoadBalancer (ELBv2), for the API and CloudFormation alike: the name checked,
    /// the subnets and security groups looked up (an Application Load Balancer needs two
    /// zones), the ARN and DNS name made unless CloudFormation gave them.
    pub fn create_load_balancer(
        &self,
        req: CreateLoadBalancer,
    ) -> Result<LoadBalancerRecord, ElbError> {
        check_name("load balancer", &req.name)?;
        if req.name.starts_with("internal-") {
            return Err(ElbError::api(
                "ValidationError",
                format!("Load balancer name '{}' cannot begin with 'internal-'", req.name),
            ));
        }
        let kind = req.kind.unwrap_or(Kind::Application);
        let scheme = req.scheme.unwrap_or_else(|| "internet-facing".into());
        if scheme != "internet-facing" && scheme != "internal" {
            return Err(ElbError::api(
                "ValidationError",
                format!("Scheme '{scheme}' must be one of [internet-facing, internal]"),
            ));
        }
        let ip_address_type = req.ip_address_type.unwrap_or_else(|| "ipv4".into());
        if !["ipv4", "dualstack", "dualstack-without-public-ipv4"]
            .contains(&ip_address_type.as_str())
        {
            return Err(ElbError::api(
                "ValidationError",
                format!("IP address type '{ip_address_type}' is not valid"),
            ));
        }
        let zones = self.subnet_zones(kind, &req.subnets)?;
        self.check_security_groups(&req.security_groups)?;
        let kind_path = if kind == Kind::Network { "net" } else { "app" };
        let arn = req.arn.unwrap_or_else(|| {
            self.account.arn(
                "elasticloadbalancing",
                &format!("loadbalancer/{kind_path}/{}/{}", req.name, aws_ids::hex(16)),
            )
        });
        let full_name = arn.split_once(":loadbalancer/").map_or_else(
            || format!("{kind_path}/{}/{}", req.name, aws_ids::hex(16)),
            |(_, tail)| tail.to_string(),
        );
        let dns_name = local_dns(&req.dns_name.unwrap_or_else(|| {
            format!(
                "{}{}-{}.{}.elb.amazonaws.com",
                if scheme == "internal" { "internal-" } else { "" },
                req.name,
                aws_ids::digits(10),
                self.account.region
            )
        }));
        let record = LoadBalancerRecord {
            arn,
            name: req.name,
            full_name,
            kind,
            dns_name,
            scheme,
            subnets: req.subnets,
            zones,
            security_groups: req.security_groups,
            attributes: req.attributes,
            ip: Ipv4Addr::LOCALHOST,
            created: clock::iso8601(self.clock.now()),
            ip_address_type,
            tags: req.tags,
            classic: None,
        };
        self.insert_load_balancer(record)
    }

    /// The zones of a load balancer's subnets, each subnet looked up, at most one per zone;
    /// an Application Load Balancer needs two zones.
    pub(super) fn subnet_zones(
        &self,
        kind: Kind,
        subnets: &[String],
    ) -> Result<Vec<String>, ElbError> {
        let mut zones = Vec::new();
        for s in subnets {
            let Some(subnet) = self.ec2.subnet(s)? else {
                return Err(ElbError::api(
                    "SubnetNotFound",
                    format!("The subnet ID '{s}' is not valid"),
                ));
            };
            if zones.contains(&subnet.zone) {
                return Err(ElbError::api(
                    "InvalidConfigurationRequest",
                    "You cannot specify multiple subnets in the same Availability Zone",
                ));
            }
            zones.push(subnet.zone);
        }
        if kind == Kind::Application && zones.len() < 2 {
            return Err(ElbError::api(
                "ValidationError",
                "At least two subnets in two different Availability Zones must be specified",
            ));
        }
        Ok(zones)
    }

    pub(super) fn check_security_groups(&self, groups: &[String]) -> Result<(), ElbError> {
        for g in groups {
            if self.ec2.security_group(g)?.is_none() {
                return Err(ElbError::api(
                    "InvalidSecurityGroup",
                    format!("Security group '{g}' does not exist"),
                ));
            }
        }
        Ok(())
    }

    /// An ELBv2 load balancer that must exist.
    pub fn existing_load_balancer(&self, arn: &str) -> Result<LoadBalancerRecord, ElbError> {
        self.load_balancer(arn)?.filter(|l| l.kind != Kind::Classic && l.arn == arn).ok_or_else(
            || ElbError::api("LoadBalancerNotFound", format!("Load balancers '[{arn}]' not found")),
        )
    }

    /// SetSubnets: the subnets (and so zones) a load balancer is in.
    pub fn set_subnets(
        &self,
        arn: &str,
        subnets: Vec<String>,
    ) -> Result<LoadBalancerRecord, ElbError> {
        let mut lb = self.existing_load_balancer(arn)?;
        lb.zones = self.subnet_zones(lb.kind, &subnets)?;
        lb.subnets = subnets;
        self.update_load_balancer(&lb)?;
        Ok(lb)
    }

    /// SetSecurityGroups.
    pub fn set_security_groups(
        &self,
        arn: &str,
        groups: Vec<String>,
    ) -> Result<LoadBalancerRecord, ElbError> {
        let mut lb = self.existing_load_balancer(arn)?;
        self.check_security_groups(&groups)?;
        lb.security_groups = groups;
        self.update_load_balancer(&lb)?;
        Ok(lb)
    }

    /// ModifyLoadBalancerAttributes (`replace`: CloudFormation's whole set, the others back to
    /// their defaults).
    pub fn modify_load_balancer_attributes(
        &self,
        arn: &str,
        attributes: BTreeMap<String, String>,
        replace: bool,
    ) -> Result<LoadBalancerRecord, ElbError> {
        let mut lb = self.existing_load_balancer(arn)?;
        if replace {
            lb.attributes = attributes;
        } else {
            lb.attributes.extend(attributes);
        }
        self.update_load_balancer(&lb)?;
        Ok(lb)
    }

    /// DeleteLoadBalancer (ELBv2): its listeners and rules go too; a load balancer that is
    /// not there is already deleted.
    pub fn remove_load_balancer(&self, arn: &str) -> Result<(), ElbError> {
        let Some(lb) = self.load_balancer(arn)?.filter(|l| l.arn == arn) else { return Ok(()) };
        if lb.flag("deletion_protection.enabled", false) {
            return Err(ElbError::api(
                "OperationNotPermitted",
                format!(
                    "Load balancer '{arn}' cannot be deleted because deletion protection is enabled"
                ),
            ));
        }
        self.delete_load_balancer(arn)
    }

    /// Stores a new load balancer record (its address is chosen here).
    pub fn insert_load_balancer(
        &self,
        mut record: LoadBalancerRecord,
    ) -> Result<LoadBalancerRecord, ElbError> {
        if self.load_balancers()?.iter().any(|l| {
            l.name == record.name && (l.kind == Kind::Classic) == (record.kind == Kind::Classic)
        }) {
            return Err(ElbError::api(
                "DuplicateLoadBalancerName",
                format!("A load balancer with the same name '{}' exists", record.name),
            ));
        }
        record.ip = self.free_ip()?;
        self.store.put(LOAD_BALANCERS, &record.arn, &record)?;
        self.plane(&record);
        Ok(record)
    }

    /// Changes attributes, security groups or subnets.
    pub fn update_load_balancer(&self, record: &LoadBalancerRecord) -> Result<(), ElbError> {
        self.store.put(LOAD_BALANCERS, &record.arn, record)?;
        self.inner.lock().planes.remove(&record.arn);
        self.plane(record);
        self.republish()?;
        Ok(())
    }

    pub fn delete_load_balancer(&self, arn: &str) -> Result<(), ElbError> {
        for l in self.listeners()?.into_iter().filter(|l| l.lb_arn == arn) {
            self.delete_listener(&l.arn)?;
        }
        self.store.delete(LOAD_BALANCERS, arn)?;
        let mut inner = self.inner.lock();
        inner.planes.remove(arn);
        inner.counters.remove(arn);
        inner.writers.remove(arn);
        Ok(())
    }

    /// The data plane's view of a load balancer (counters survive rebuilds).
    pub(super) fn plane(&self, record: &LoadBalancerRecord) -> Arc<elb_proxy::LoadBalancer> {
        let mut inner = self.inner.lock();
        if let Some(p) = inner.planes.get(&record.arn) {
            return p.clone();
        }
        let counters = inner.counters.entry(record.arn.clone()).or_default().clone();
        let access_log = match (access_logs::Settings::of(record), self.logs_dir.lock().clone()) {
            (Some(settings), Some(dir)) => {
                let current = inner.writers.get(&record.arn).filter(|w| w.settings == settings);
                if current.is_none() {
                    let writer = access_logs::start(
                        dir,
                        settings,
                        self.account.clone(),
                        record.full_name.clone(),
                        self.clock.clone(),
                    );
                    inner.writers.insert(record.arn.clone(), writer);
                }
                inner.writers.get(&record.arn).map(|w| w.log.clone())
            }
            _ => {
                inner.writers.remove(&record.arn);
                None
            }
        };
        let plane = Arc::new(snapshot::load_balancer(record, counters, access_log, &self.clock));
        inner.planes.insert(record.arn.clone(), plane.clone());
        plane
    }

    pub fn counters(&self, lb_arn: &str) -> Option<Arc<Counters>> {
        self.inner.lock().counters.get(lb_arn).cloned()
    }

    /// Access logs (`access_logs.s3.enabled`) are written under `dir`, as if it held the
    /// buckets. Set before `recover`: load balancers already serving keep none until their
    /// attributes change.
    pub fn set_access_log_dir(&self, dir: std::path::PathBuf) {
        *self.logs_dir.lock() = Some(dir);
    }
}
