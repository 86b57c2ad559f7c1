//! The control plane of Elastic Load Balancing: keeps the records, binds listener sockets,
//! runs every target's health checks on the clock, and publishes what the data plane reads
//! (listener snapshots, each target group's routable targets).

use std::collections::{BTreeSet, HashMap};
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Weak};
use std::time::Duration;

use aws_ids::Account;
use clock::Clock;
use ec2::Ec2;
use elb_proxy::metrics::Counters;
use elb_proxy::{Algorithm, Serving, Stickiness, Target, TargetGroup, TargetSet, Upstream};
use http_body_util::Empty;
use hyper_util::rt::TokioIo;
use parking_lot::Mutex;
use store::Store;
use tokio::sync::{Notify, broadcast};
use tokio_util::task::AbortOnDropHandle;

use crate::access_logs;
use crate::ca::{Ca, SniResolver};
use crate::health::{Health, Probe, State, Thresholds};
use crate::model::*;
use crate::snapshot;

#[derive(Debug, thiserror::Error)]
pub enum ElbError {
    #[error("{message}")]
    Api { code: &'static str, message: String },
    #[error(transparent)]
    Store(#[from] store::StoreError),
}

impl ElbError {
    pub fn api(code: &'static str, message: impl Into<String>) -> ElbError {
        ElbError::Api { code, message: message.into() }
    }

    /// The AWS error code.
    pub fn code(&self) -> &'static str {
        match self {
            ElbError::Api { code, .. } => code,
            ElbError::Store(_) => "InternalFailure",
        }
    }
}

/// A target's health changed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HealthChange {
    pub target_group: String,
    pub id: String,
    pub port: u16,
    pub state: State,
}

/// A target as `DescribeTargetHealth` reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TargetHealth {
    pub id: String,
    pub port: u16,
    pub zone: Option<String>,
    pub health: Health,
}

/// A target group's name, counters and (zone, state) of each target, read for metrics.
type GroupReading = (String, Arc<Counters>, Vec<(Option<String>, State)>);

/// Where a listener really answers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Endpoint {
    pub load_balancer: String,
    pub dns_name: String,
    /// The listener's port in the template.
    pub port: u16,
    pub https: bool,
    pub addr: SocketAddr,
}

struct Tgt {
    id: String,
    port: u16,
    zone: Option<String>,
    plane: Arc<Target>,
    health: Health,
    /// A target's own tasks, aborted when dropped.
    prober: Option<AbortOnDropHandle<()>>,
    drain: Option<AbortOnDropHandle<()>>,
    ramp: Option<AbortOnDropHandle<()>>,
}

struct Group {
    plane: Arc<TargetGroup>,
    targets: Vec<Tgt>,
    in_use: bool,
}

#[derive(Default)]
struct Inner {
    counters: HashMap<String, Arc<Counters>>,
    planes: HashMap<String, Arc<elb_proxy::LoadBalancer>>,
    serving: HashMap<String, Serving>,
    groups: HashMap<String, Group>,
    /// Access log writers, by load balancer ARN.
    writers: HashMap<String, access_logs::Writer>,
    stopped: bool,
}

pub struct Elb {
    store: Arc<Store>,
    clock: Clock,
    ec2: Arc<Ec2>,
    account: Account,
    pub ca: Arc<Ca>,
    upstream: Upstream,
    prober: Prober,
    /// Where access logs go (`access_logs.s3.*` attributes); none until the region says.
    logs_dir: Mutex<Option<std::path::PathBuf>>,

    inner: Mutex<Inner>,
    changes: broadcast::Sender<HealthChange>,
    drained: Notify,
    me: Weak<Elb>,
}

/// How a health check is made: the real one connects and sends `GET path`; tests script it.
pub type Prober = Arc<
    dyn Fn(
            SocketAddr,
            String,
            HealthCheck,
        ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Probe> + Send>>
        + Send
        + Sync,
>;

/// The real health check.
pub fn http_prober() -> Prober {
    Arc::new(|addr, host, hc| Box::pin(async move { probe(addr, &host, &hc).await }))
}

fn io_error(e: std::io::Error, what: &str) -> ElbError {
    ElbError::api("InternalFailure", format!("{what}: {e}"))
}

impl Elb {
    pub fn new(
        store: Arc<Store>,
        clock: Clock,
        ec2: Arc<Ec2>,
        account: Account,
        ca: Arc<Ca>,
    ) -> Arc<Elb> {
        Elb::with_prober(store, clock, ec2, account, ca, http_prober())
    }

    /// An Elb whose health checks are made by `prober`.
    pub fn with_prober(
        store: Arc<Store>,
        clock: Clock,
        ec2: Arc<Ec2>,
        account: Account,
        ca: Arc<Ca>,
        prober: Prober,
    ) -> Arc<Elb> {
        Arc::new_cyclic(|me| Elb {
            prober,
            logs_dir: Mutex::new(None),
            store,
            clock,
            ec2,
            account,
            ca,
            upstream: Upstream::new(),
            inner: Mutex::new(Inner::default()),
            changes: broadcast::channel(1024).0,
            drained: Notify::new(),
            me: me.clone(),
        })
    }

    pub fn account(&self) -> &Account {
        &self.account
    }

    pub fn clock(&self) -> &Clock {
        &self.clock
    }

    pub fn ec2(&self) -> &Arc<Ec2> {
        &self.ec2
    }

    pub fn subscribe(&self) -> broadcast::Receiver<HealthChange> {
        self.changes.subscribe()
    }

    // ---- records ----

    // Reads of the records: a store failure is an error, never "none" or "not found".

    pub fn load_balancers(&self) -> Result<Vec<LoadBalancerRecord>, ElbError> {
        Ok(self.store.list(LOAD_BALANCERS, "")?.into_iter().map(|(_, r)| r).collect())
    }

    pub fn load_balancer(&self, arn_or_name: &str) -> Result<Option<LoadBalancerRecord>, ElbError> {
        Ok(self
            .load_balancers()?
            .into_iter()
            .find(|l| l.arn == arn_or_name || l.name == arn_or_name))
    }

    pub fn listeners(&self) -> Result<Vec<ListenerRecord>, ElbError> {
        Ok(self.store.list(LISTENERS, "")?.into_iter().map(|(_, r)| r).collect())
    }

    pub fn listener(&self, arn: &str) -> Result<Option<ListenerRecord>, ElbError> {
        Ok(self.store.get(LISTENERS, arn)?)
    }

    pub fn rules(&self) -> Result<Vec<RuleRecord>, ElbError> {
        Ok(self.store.list(RULES, "")?.into_iter().map(|(_, r)| r).collect())
    }

    pub fn target_groups(&self) -> Result<Vec<TargetGroupRecord>, ElbError> {
        Ok(self.store.list(TARGET_GROUPS, "")?.into_iter().map(|(_, r)| r).collect())
    }

    pub fn target_group(&self, arn: &str) -> Result<Option<TargetGroupRecord>, ElbError> {
        Ok(self.store.get(TARGET_GROUPS, arn)?)
    }

    /// A target group that must exist.
    fn existing_group(&self, arn: &str) -> Result<TargetGroupRecord, ElbError> {
        self.target_group(arn)?.ok_or_else(|| {
            ElbError::api("TargetGroupNotFound", format!("Target groups '{arn}' not found"))
        })
    }

    /// The load balancers a target group receives traffic from.
    pub fn load_balancers_of(&self, tg_arn: &str) -> Result<Vec<String>, ElbError> {
        let rules = self.rules()?;
        let mut out = BTreeSet::new();
        for l in self.listeners()? {
            let mut groups = snapshot::forwarded_groups(&l.default_actions);
            for r in rules.iter().filter(|r| r.listener_arn == l.arn) {
                groups.extend(snapshot::forwarded_groups(&r.actions));
            }
            if groups.iter().any(|g| g == tg_arn) {
                out.insert(l.lb_arn.clone());
            }
        }
        Ok(out.into_iter().collect())
    }

    /// Where each listener answers (for URLs that work: the DNS name stands for this address).
    pub fn endpoints(&self) -> Result<Vec<Endpoint>, ElbError> {
        let lbs = self.load_balancers()?;
        let mut out: Vec<Endpoint> = self
            .listeners()?
            .into_iter()
            .filter_map(|l| {
                let lb = lbs.iter().find(|b| b.arn == l.lb_arn)?;
                Some(Endpoint {
                    load_balancer: lb.name.clone(),
                    dns_name: lb.dns_name.clone(),
                    port: l.port,
                    https: l.protocol == "HTTPS" || l.protocol == "SSL",
                    addr: SocketAddr::from((lb.ip, l.bound_port)),
                })
            })
            .collect();
        out.sort_by(|a, b| (&a.dns_name, a.port).cmp(&(&b.dns_name, b.port)));
        Ok(out)
    }

    // ---- load balancers ----

    /// A loopback address no other load balancer uses (127.0.1.1, 127.0.1.2, ...).
    fn free_ip(&self) -> Result<Ipv4Addr, ElbError> {
        let used: BTreeSet<Ipv4Addr> = self.load_balancers()?.into_iter().map(|l| l.ip).collect();
        Ok((1u32..0xFFFE)
            .map(|n| Ipv4Addr::from(u32::from(Ipv4Addr::new(127, 0, 1, 0)) + n))
            .find(|ip| ip.octets()[3] != 0 && ip.octets()[3] != 255 && !used.contains(ip))
            .unwrap_or(Ipv4Addr::LOCALHOST))
    }

    /// Stores a new load balancer (its address is chosen here).
    pub fn create_load_balancer(
        &self,
        mut record: LoadBalancerRecord,
    ) -> Result<LoadBalancerRecord, ElbError> {
        if self.load_balancers()?.iter().any(|l| l.name == record.name && l.kind == record.kind) {
            return Err(ElbError::api(
                "DuplicateLoadBalancerName",
                "A load balancer with the same name exists",
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
    fn plane(&self, record: &LoadBalancerRecord) -> Arc<elb_proxy::LoadBalancer> {
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

    // ---- listeners ----

    /// Binds the listener's socket on its load balancer's address. When the port cannot be
    /// bound (privileged, or taken), another is chosen and a warning says which.
    pub async fn create_listener(
        &self,
        mut record: ListenerRecord,
    ) -> Result<ListenerRecord, ElbError> {
        let lb = self.load_balancer(&record.lb_arn)?.ok_or_else(|| {
            ElbError::api(
                "LoadBalancerNotFound",
                format!("Load balancer '{}' not found", record.lb_arn),
            )
        })?;
        if self
            .listeners()?
            .iter()
            .any(|l| l.lb_arn == record.lb_arn && l.port == record.port && l.arn != record.arn)
        {
            return Err(ElbError::api(
                "DuplicateListener",
                "A listener already exists on this port for this load balancer",
            ));
        }
        if record.protocol == "HTTPS"
            && record.certificates.is_empty()
            && lb.kind == Kind::Application
        {
            return Err(ElbError::api(
                "CertificateNotFound",
                "A certificate must be specified for HTTPS listeners",
            ));
        }
        self.check_actions(&record.default_actions, &lb)?;
        let wanted = if record.bound_port != 0 { record.bound_port } else { record.port };
        let (serving, port) = self.bind(&lb, &record, wanted).await?;
        record.bound_port = port;
        self.store.put(LISTENERS, &record.arn, &record)?;
        self.inner.lock().serving.insert(record.arn.clone(), serving);
        self.republish()?;
        Ok(record)
    }

    async fn bind(
        &self,
        lb: &LoadBalancerRecord,
        record: &ListenerRecord,
        port: u16,
    ) -> Result<(Serving, u16), ElbError> {
        let snapshot = self.listener_snapshot(lb, record)?;
        let tls = if record.protocol == "HTTPS" || record.protocol == "SSL" {
            let resolver =
                Arc::new(SniResolver { ca: self.ca.clone(), fallback: lb.ip.to_string() });
            Some(elb_proxy::tls_config(resolver, lb.flag("routing.http2.enabled", true)))
        } else {
            None
        };
        let mut candidates = vec![port];
        if port < 1024 {
            candidates.push(port.saturating_add(8000));
        }
        candidates.push(0);
        let mut last = None;
        for candidate in candidates {
            match elb_proxy::bind(
                SocketAddr::from((lb.ip, candidate)),
                snapshot.clone(),
                tls.clone(),
                self.upstream.clone(),
            )
            .await
            {
                Ok(serving) => {
                    let bound = serving.local_addr.port();
                    if bound != record.port {
                        tracing::warn!(
                            "load balancer {} listener {}: port {} cannot be bound here; it answers on {}:{bound} instead",
                            lb.name,
                            record.port,
                            record.port,
                            lb.ip
                        );
                    }
                    return Ok((serving, bound));
                }
                Err(e) => last = Some(e),
            }
        }
        Err(io_error(
            last.unwrap_or_else(|| std::io::Error::other("no port")),
            &format!("cannot listen on {}:{}", lb.ip, record.port),
        ))
    }

    pub async fn update_listener(
        &self,
        record: ListenerRecord,
    ) -> Result<ListenerRecord, ElbError> {
        let old = self.listener(&record.arn)?;
        let rebinding =
            old.as_ref().is_none_or(|o| o.port != record.port || o.protocol != record.protocol);
        if rebinding {
            self.inner.lock().serving.remove(&record.arn);
            let fresh = ListenerRecord { bound_port: 0, ..record };
            return self.create_listener(fresh).await;
        }
        let lb = self
            .load_balancer(&record.lb_arn)?
            .ok_or_else(|| ElbError::api("LoadBalancerNotFound", "Load balancer not found"))?;
        self.check_actions(&record.default_actions, &lb)?;
        let record =
            ListenerRecord { bound_port: old.map_or(record.port, |o| o.bound_port), ..record };
        self.store.put(LISTENERS, &record.arn, &record)?;
        self.republish()?;
        Ok(record)
    }

    pub fn delete_listener(&self, arn: &str) -> Result<(), ElbError> {
        for r in self.rules()?.into_iter().filter(|r| r.listener_arn == arn) {
            self.store.delete(RULES, &r.arn)?;
        }
        self.store.delete(LISTENERS, arn)?;
        self.inner.lock().serving.remove(arn);
        self.republish()?;
        Ok(())
    }

    /// Target groups of actions must exist and belong to no other load balancer.
    fn check_actions(
        &self,
        actions: &[serde_json::Value],
        lb: &LoadBalancerRecord,
    ) -> Result<(), ElbError> {
        for arn in snapshot::forwarded_groups(actions) {
            if self.target_group(&arn)?.is_none() {
                return Err(ElbError::api(
                    "TargetGroupNotFound",
                    format!("Target groups '{arn}' not found"),
                ));
            }
            let others: Vec<String> =
                self.load_balancers_of(&arn)?.into_iter().filter(|l| *l != lb.arn).collect();
            if !others.is_empty() {
                return Err(ElbError::api(
                    "TargetGroupAssociationLimit",
                    format!(
                        "The following target groups cannot be associated with more than one load balancer: {arn}"
                    ),
                ));
            }
        }
        Ok(())
    }

    // ---- rules ----

    pub fn put_rule(&self, record: RuleRecord) -> Result<RuleRecord, ElbError> {
        let listener = self
            .listener(&record.listener_arn)?
            .ok_or_else(|| ElbError::api("ListenerNotFound", "One or more listeners not found"))?;
        if self.rules()?.iter().any(|r| {
            r.listener_arn == record.listener_arn
                && r.priority == record.priority
                && r.arn != record.arn
        }) {
            return Err(ElbError::api(
                "PriorityInUse",
                format!("Priority '{}' is currently in use", record.priority),
            ));
        }
        if !(1..=50_000).contains(&record.priority) {
            return Err(ElbError::api("ValidationError", "Priority must be between 1 and 50000"));
        }
        for c in &record.conditions {
            if snapshot::condition(c).is_none() {
                return Err(ElbError::api(
                    "ValidationError",
                    format!("A condition is not valid: {c}"),
                ));
            }
        }
        if let Some(lb) = self.load_balancer(&listener.lb_arn)? {
            self.check_actions(&record.actions, &lb)?;
        }
        self.store.put(RULES, &record.arn, &record)?;
        self.republish()?;
        Ok(record)
    }

    pub fn delete_rule(&self, arn: &str) -> Result<(), ElbError> {
        self.store.delete(RULES, arn)?;
        self.republish()?;
        Ok(())
    }

    // ---- target groups ----

    fn group_plane(&self, record: &TargetGroupRecord) -> TargetGroup {
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
    ) -> (u16, SocketAddr, Option<String>) {
        let port = reg.port.unwrap_or(record.port);
        if record.target_type == "instance" {
            let instance = self.ec2.instance(&reg.id);
            let addr = self
                .ec2
                .target_address(&reg.id, port)
                .unwrap_or(SocketAddr::from((Ipv4Addr::LOCALHOST, 9)));
            (port, addr, instance.map(|i| i.zone).or_else(|| reg.zone.clone()))
        } else {
            let ip: std::net::IpAddr = reg.id.parse().unwrap_or(Ipv4Addr::LOCALHOST.into());
            (port, SocketAddr::new(ip, port), reg.zone.clone())
        }
    }

    /// Registers targets (what RegisterTargets and the template's `Targets` do).
    pub fn register_targets(&self, tg_arn: &str, targets: &[Registration]) -> Result<(), ElbError> {
        let mut record = self.existing_group(tg_arn)?;
        for t in targets {
            if record.target_type == "instance" && self.ec2.instance(&t.id).is_none() {
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
        let mut fresh = Vec::new();
        for t in targets {
            let port = t.port.unwrap_or(record.port);
            if !record.targets.iter().any(|r| r.id == t.id && r.port.unwrap_or(record.port) == port)
            {
                record.targets.push(t.clone());
                fresh.push(t.clone());
            }
        }
        self.store.put(TARGET_GROUPS, &record.arn, &record)?;
        self.attach(&record, &fresh)
    }

    /// Adds runtime targets (initial health) for stored registrations, re-registering
    /// draining ones.
    fn attach(&self, record: &TargetGroupRecord, regs: &[Registration]) -> Result<(), ElbError> {
        let resolved: Vec<_> = regs.iter().map(|r| (r.clone(), self.resolve(record, r))).collect();
        {
            let mut inner = self.inner.lock();
            let Some(group) = inner.groups.get_mut(&record.arn) else { return Ok(()) };
            for (reg, (port, addr, zone)) in resolved {
                group.targets.retain(|t| !(t.id == reg.id && t.port == port));
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

    /// Deregisters targets: they take no new requests, drain for the deregistration delay,
    /// then go away.
    pub fn deregister_targets(
        &self,
        tg_arn: &str,
        targets: &[Registration],
    ) -> Result<(), ElbError> {
        let mut record = self.existing_group(tg_arn)?;
        let keys: Vec<(String, u16)> =
            targets.iter().map(|t| (t.id.clone(), t.port.unwrap_or(record.port))).collect();
        for (id, port) in &keys {
            if !record.targets.iter().any(|r| &r.id == id && r.port.unwrap_or(record.port) == *port)
            {
                return Err(ElbError::api(
                    "InvalidTarget",
                    format!("The following targets are not registered in target group: '{id}'"),
                ));
            }
        }
        record.targets.retain(|r| !keys.contains(&(r.id.clone(), r.port.unwrap_or(record.port))));
        self.store.put(TARGET_GROUPS, &record.arn, &record)?;
        let delay =
            Duration::from_secs(record.seconds("deregistration_delay.timeout_seconds", 300));
        let mut inner = self.inner.lock();
        let Some(group) = inner.groups.get_mut(tg_arn) else { return Ok(()) };
        for t in group.targets.iter_mut().filter(|t| keys.contains(&(t.id.clone(), t.port))) {
            let was_in_use = group.in_use && t.health.state != State::Unused;
            t.prober = None;
            t.ramp = None;
            if !was_in_use || delay.is_zero() {
                t.health = Health::not_registered();
                t.plane.cut.notify_waiters();
                continue;
            }
            t.health = Health::draining();
            let _ = self.changes.send(HealthChange {
                target_group: tg_arn.into(),
                id: t.id.clone(),
                port: t.port,
                state: State::Draining,
            });
            let me = self.me.clone();
            let clock = self.clock.clone();
            let (arn, id, port) = (tg_arn.to_string(), t.id.clone(), t.port);
            t.drain = Some(AbortOnDropHandle::new(tokio::spawn(async move {
                clock.sleep(delay).await;
                if let Some(elb) = me.upgrade() {
                    elb.finish_drain(&arn, &id, port);
                }
            })));
        }
        group.targets.retain(|t| {
            t.health.state != State::Unused
                || t.health.reason.as_deref() != Some("Target.NotRegistered")
        });
        publish_group(group);
        drop(inner);
        self.drained.notify_waiters();
        Ok(())
    }

    fn finish_drain(&self, tg_arn: &str, id: &str, port: u16) {
        let mut inner = self.inner.lock();
        if let Some(group) = inner.groups.get_mut(tg_arn) {
            if let Some(pos) = group
                .targets
                .iter()
                .position(|t| t.id == id && t.port == port && t.health.state == State::Draining)
            {
                let t = group.targets.remove(pos);
                // Requests still open are cut.
                t.plane.cut.notify_waiters();
            }
            publish_group(group);
        }
        drop(inner);
        let _ = self.changes.send(HealthChange {
            target_group: tg_arn.into(),
            id: id.into(),
            port,
            state: State::Unused,
        });
        self.drained.notify_waiters();
    }

    /// Waits until no target `id` is draining in any group.
    pub async fn wait_drained(&self, id: &str) {
        loop {
            let notified = self.drained.notified();
            let draining =
                self.inner.lock().groups.values().any(|g| {
                    g.targets.iter().any(|t| t.id == id && t.health.state == State::Draining)
                });
            if !draining {
                return;
            }
            notified.await;
        }
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

    /// Access logs (`access_logs.s3.enabled`) are written under `dir`, as if it held the
    /// buckets. Set before `recover`: load balancers already serving keep none until their
    /// attributes change.
    pub fn set_access_log_dir(&self, dir: std::path::PathBuf) {
        *self.logs_dir.lock() = Some(dir);
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

    /// Every load balancer's AWS/ApplicationELB samples now (for CloudWatch).
    pub fn metrics(&self) -> Result<Vec<crate::metrics::Sample>, ElbError> {
        let lbs = self.load_balancers()?;
        let groups = self.target_groups()?;
        // Which load balancers forward to each group, read once.
        let users = groups
            .iter()
            .map(|g| Ok((g.arn.as_str(), self.load_balancers_of(&g.arn)?)))
            .collect::<Result<HashMap<&str, Vec<String>>, ElbError>>()?;
        let mut out = Vec::new();
        for lb in lbs {
            let Some(counters) = self.counters(&lb.arn) else { continue };
            let forwarded: Vec<&TargetGroupRecord> = groups
                .iter()
                .filter(|g| users.get(g.arn.as_str()).is_some_and(|u| u.contains(&lb.arn)))
                .collect();
            let inner = self.inner.lock();
            let views: Vec<GroupReading> = forwarded
                .iter()
                .filter_map(|g| {
                    let group = inner.groups.get(&g.arn)?;
                    let targets =
                        group.targets.iter().map(|t| (t.zone.clone(), t.health.state)).collect();
                    Some((g.full_name.clone(), group.plane.counters.clone(), targets))
                })
                .collect();
            drop(inner);
            let view = crate::metrics::LoadBalancerView {
                full_name: &lb.full_name,
                counters: &counters,
                groups: views
                    .iter()
                    .map(|(name, counters, targets)| crate::metrics::GroupView {
                        full_name: name,
                        counters,
                        targets: targets.iter().map(|(z, s)| (z.as_deref(), *s)).collect(),
                    })
                    .collect(),
            };
            out.extend(crate::metrics::samples(&view));
        }
        Ok(out)
    }

    pub fn group_counters(&self, tg_arn: &str) -> Option<Arc<Counters>> {
        self.inner.lock().groups.get(tg_arn).map(|g| g.plane.counters.clone())
    }

    // ---- publishing ----

    fn listener_snapshot(
        &self,
        lb: &LoadBalancerRecord,
        record: &ListenerRecord,
    ) -> Result<elb_proxy::Listener, ElbError> {
        let rules = self.rules()?;
        let plane = self.plane(lb);
        let inner = self.inner.lock();
        let group = |arn: &str| inner.groups.get(arn).map(|g| g.plane.clone());
        Ok(snapshot::listener(plane, record, &rules, &group, &self.clock))
    }

    /// Rebuilds every listener's snapshot and which groups are in use, from the stored
    /// records (nothing is published when they cannot be read).
    fn republish(&self) -> Result<(), ElbError> {
        let lbs = self.load_balancers()?;
        let listeners = self.listeners()?;
        let rules = self.rules()?;
        let mut used = BTreeSet::new();
        for l in &listeners {
            used.extend(snapshot::forwarded_groups(&l.default_actions));
            for r in rules.iter().filter(|r| r.listener_arn == l.arn) {
                used.extend(snapshot::forwarded_groups(&r.actions));
            }
        }
        let planes: HashMap<String, Arc<elb_proxy::LoadBalancer>> =
            lbs.iter().map(|lb| (lb.arn.clone(), self.plane(lb))).collect();
        let mut changed_groups = Vec::new();
        {
            let mut inner = self.inner.lock();
            for (arn, group) in inner.groups.iter_mut() {
                let in_use = used.contains(arn);
                if in_use != group.in_use {
                    group.in_use = in_use;
                    for t in &mut group.targets {
                        if t.health.state == State::Draining {
                            continue;
                        }
                        t.prober = None;
                        t.health =
                            if in_use { Health::registering() } else { Health::not_in_use() };
                    }
                    publish_group(group);
                    changed_groups.push(arn.clone());
                }
            }
            let group_of = |arn: &str| inner.groups.get(arn).map(|g| g.plane.clone());
            for l in &listeners {
                if let (Some(serving), Some(plane)) =
                    (inner.serving.get(&l.arn), planes.get(&l.lb_arn))
                {
                    serving.publish(snapshot::listener(
                        plane.clone(),
                        l,
                        &rules,
                        &group_of,
                        &self.clock,
                    ));
                }
            }
        }
        for arn in changed_groups {
            self.restart_probers(&arn)?;
        }
        Ok(())
    }

    // ---- health checks ----

    /// Starts a prober for every target of an in-use group that has none.
    fn restart_probers(&self, tg_arn: &str) -> Result<(), ElbError> {
        let Some(record) = self.target_group(tg_arn)? else { return Ok(()) };
        let mut inner = self.inner.lock();
        if inner.stopped {
            return Ok(());
        }
        let Some(group) = inner.groups.get_mut(tg_arn) else { return Ok(()) };
        if !group.in_use {
            return Ok(());
        }
        for t in group
            .targets
            .iter_mut()
            .filter(|t| t.prober.is_none() && t.health.state != State::Draining)
        {
            if !record.health_check.enabled {
                t.health = Health::checks_disabled();
                continue;
            }
            let me = self.me.clone();
            let (arn, id, port) = (tg_arn.to_string(), t.id.clone(), t.port);
            let hc = record.health_check.clone();
            let instance = record.target_type == "instance";
            let clock = self.clock.clone();
            t.prober = Some(AbortOnDropHandle::new(tokio::spawn(async move {
                let mut ticks = clock.interval(Duration::from_secs(hc.interval.max(1)));
                loop {
                    let Some(elb) = me.upgrade() else { return };
                    let probe = elb.probe_target(&arn, &id, port, &hc, instance).await;
                    if let Some(probe) = probe {
                        elb.report(&arn, &id, port, &probe);
                    }
                    drop(elb);
                    ticks.tick().await;
                }
            })));
        }
        publish_group(group);
        Ok(())
    }

    /// One health check of a target; `None` when the target is an instance that does not run.
    async fn probe_target(
        &self,
        tg_arn: &str,
        id: &str,
        port: u16,
        hc: &HealthCheck,
        instance: bool,
    ) -> Option<Probe> {
        let addr = if instance {
            let record = self.ec2.instance(id);
            let state = record.as_ref().map_or("terminated", |r| r.state.name());
            if state != "running" && state != "pending" {
                self.set_health(tg_arn, id, port, Health::invalid_state(state));
                return None;
            }
            let check_port = hc.port.unwrap_or(port);
            self.ec2
                .target_address(id, check_port)
                .unwrap_or(SocketAddr::from((Ipv4Addr::LOCALHOST, 9)))
        } else {
            let ip: std::net::IpAddr = id.parse().ok()?;
            SocketAddr::new(ip, hc.port.unwrap_or(port))
        };
        let host = if instance {
            self.ec2.instance(id).map_or(addr.ip().to_string(), |r| r.private_ip)
        } else {
            id.to_string()
        };
        let timeout = Duration::from_secs(hc.timeout.max(1));
        Some(match self.clock.timeout(timeout, (self.prober)(addr, host, hc.clone())).await {
            Err(_) => Probe::Timeout,
            Ok(p) => p,
        })
    }

    fn set_health(&self, tg_arn: &str, id: &str, port: u16, health: Health) {
        let mut inner = self.inner.lock();
        let Some(group) = inner.groups.get_mut(tg_arn) else { return };
        let Some(t) = group.targets.iter_mut().find(|t| t.id == id && t.port == port) else {
            return;
        };
        if t.health.state == State::Draining || t.health == health {
            return;
        }
        let state = health.state;
        t.health = health;
        publish_group(group);
        drop(inner);
        let _ = self.changes.send(HealthChange {
            target_group: tg_arn.into(),
            id: id.into(),
            port,
            state,
        });
    }

    /// Takes a health check's result into the target's health. When the target group cannot
    /// be read, the result is left out (and said so): the next check comes soon.
    fn report(&self, tg_arn: &str, id: &str, port: u16, probe: &Probe) {
        let record = match self.target_group(tg_arn) {
            Ok(Some(record)) => record,
            Ok(None) => return,
            Err(e) => {
                tracing::warn!(
                    target_group = tg_arn,
                    id,
                    port,
                    "health check result left out: {e}"
                );
                return;
            }
        };
        let thresholds = Thresholds {
            healthy: record.health_check.healthy,
            unhealthy: record.health_check.unhealthy,
        };
        let slow_start = Duration::from_secs(record.seconds("slow_start.duration_seconds", 0));
        let mut inner = self.inner.lock();
        let Some(group) = inner.groups.get_mut(tg_arn) else { return };
        let others_full = group.targets.iter().any(|t| {
            t.health.state == State::Healthy && t.ramp.is_none() && !(t.id == id && t.port == port)
        });
        let Some(t) = group.targets.iter_mut().find(|t| t.id == id && t.port == port) else {
            return;
        };
        match t.health.state {
            // A target back from a stopped instance starts over.
            State::Unused if t.health.reason.as_deref() == Some("Target.InvalidState") => {
                t.health = Health::initial_checking()
            }
            State::Initial if t.health.reason.as_deref() == Some("Elb.RegistrationInProgress") => {
                t.health = Health::initial_checking()
            }
            _ => {}
        }
        if !t.health.observe(probe, thresholds) {
            return;
        }
        let state = t.health.state;
        if state == State::Healthy && !slow_start.is_zero() && others_full {
            t.plane.weight.store(0, std::sync::atomic::Ordering::Relaxed);
            let plane = t.plane.clone();
            let clock = self.clock.clone();
            t.ramp = Some(AbortOnDropHandle::new(tokio::spawn(async move {
                // A linear ramp in 1/20 steps over the slow-start duration.
                for step in 1..=20u32 {
                    clock.sleep(slow_start / 20).await;
                    plane.weight.store(step * 50, std::sync::atomic::Ordering::Relaxed);
                }
            })));
        } else if state != State::Healthy {
            t.ramp = None;
            t.plane.weight.store(1000, std::sync::atomic::Ordering::Relaxed);
        }
        publish_group(group);
        drop(inner);
        tracing::debug!(
            target_group = tg_arn,
            id,
            port,
            state = state.as_str(),
            "target health changed"
        );
        let _ = self.changes.send(HealthChange {
            target_group: tg_arn.into(),
            id: id.into(),
            port,
            state,
        });
    }

    // ---- lifecycle ----

    /// Binds every stored listener again and restarts health checks (targets start over in
    /// `initial`, as after a registration). A listener that cannot be bound is left out (and
    /// said so); a store failure stops the recovery.
    pub async fn recover(&self) -> Result<(), ElbError> {
        for lb in self.load_balancers()? {
            self.plane(&lb);
        }
        for record in self.target_groups()? {
            let plane = Arc::new(self.group_plane(&record));
            self.inner
                .lock()
                .groups
                .insert(record.arn.clone(), Group { plane, targets: Vec::new(), in_use: false });
            let regs = record.targets.clone();
            self.attach(&record, &regs)?;
        }
        for l in self.listeners()? {
            let Some(lb) = self.load_balancer(&l.lb_arn)? else { continue };
            match self.bind(&lb, &l, l.bound_port).await {
                Ok((serving, port)) => {
                    if port != l.bound_port {
                        // Served only once the port it answers on is stored.
                        let moved = ListenerRecord { bound_port: port, ..l.clone() };
                        self.store.put(LISTENERS, &l.arn, &moved)?;
                    }
                    self.inner.lock().serving.insert(l.arn.clone(), serving);
                }
                Err(e @ ElbError::Store(_)) => return Err(e),
                Err(e) => tracing::error!("load balancer {} listener {}: {e}", lb.name, l.port),
            }
        }
        self.republish()
    }

    /// Closes every listener and stops every health check.
    pub fn shutdown(&self) {
        let mut inner = self.inner.lock();
        inner.stopped = true;
        inner.serving.clear();
        inner.groups.clear();
    }
}

/// Publishes a group's routable targets: the healthy ones (and those whose checks are
/// disabled); when there are none, every unhealthy one (fail-open). Initial and draining
/// targets never take new requests.
fn publish_group(group: &Group) {
    let mut routable: Vec<Arc<Target>> =
        group.targets.iter().filter(|t| t.health.routable()).map(|t| t.plane.clone()).collect();
    let fail_open =
        routable.is_empty() && group.targets.iter().any(|t| t.health.state == State::Unhealthy);
    if fail_open {
        routable = group
            .targets
            .iter()
            .filter(|t| t.health.state == State::Unhealthy)
            .map(|t| t.plane.clone())
            .collect();
    }
    group.plane.publish(TargetSet { routable, fail_open });
}

/// One health check: connect, `GET path` with ELB's User-Agent, compare the status with the
/// matcher; the connection is closed after each check.
async fn probe(addr: SocketAddr, host: &str, hc: &HealthCheck) -> Probe {
    let Ok(stream) = tokio::net::TcpStream::connect(addr).await else { return Probe::Failed };
    if hc.protocol == "TCP" || hc.protocol == "SSL" {
        return Probe::Ok;
    }
    let Ok((mut sender, conn)) =
        hyper::client::conn::http1::handshake::<_, Empty<bytes::Bytes>>(TokioIo::new(stream)).await
    else {
        return Probe::Failed;
    };
    let connection = tokio::spawn(conn);
    let request = http::Request::get(hc.path.as_str())
        .header(http::header::HOST, format!("{host}:{}", addr.port()))
        .header(http::header::USER_AGENT, "ELB-HealthChecker/2.0")
        .header(http::header::CONNECTION, "close")
        .body(Empty::new());
    let Ok(request) = request else { return Probe::Failed };
    let result = match sender.send_request(request).await {
        Ok(response) => {
            let status = response.status().as_u16();
            if hc.matches(status) { Probe::Ok } else { Probe::Mismatch(status) }
        }
        Err(_) => Probe::Failed,
    };
    connection.abort();
    result
}
