//! The control plane of Elastic Load Balancing: keeps the records, binds listener sockets,
//! runs every target's health checks on the clock, and publishes what the data plane reads
//! (listener snapshots, each target group's routable targets).
//!
//! `records` reads the records and checks forwards; `load_balancers`, `listeners` (with
//! rules) and `target_groups` (with registration) change them, each operation taking its
//! typed request (`crate::requests`) whether the API or CloudFormation asks; `tags` tags
//! them; `classic` keeps Classic load balancers on the same records; `probing` runs the health
//! checks; `draining` drains deregistered targets and ramps slow start; `publish` builds and
//! publishes the data plane's snapshots and reads its counters. This file holds the types and
//! the lifecycle (construction, recovery after a restart, shutdown).

mod classic;
mod draining;
mod front;
mod listeners;
mod load_balancers;
mod probing;
mod publish;
mod records;
mod tags;
mod target_groups;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Weak};

use aws_ids::Account;
use clock::Clock;
use ec2::Ec2;
use elb_proxy::metrics::Counters;
use elb_proxy::{Serving, Target, TargetGroup, Upstream};
use parking_lot::Mutex;
use store::Store;
use tokio::sync::{Notify, broadcast};
use tokio_util::task::AbortOnDropHandle;

use crate::access_logs;
use crate::ca::Ca;
use crate::health::{Health, State};
use crate::model::*;

pub use classic::InstanceHealth;
pub use listeners::DEFAULT_SSL_POLICY;
pub use probing::{Prober, http_prober};

#[derive(Debug, thiserror::Error)]
pub enum ElbError {
    #[error("{message}")]
    Api { code: &'static str, message: String },
    #[error(transparent)]
    Store(#[from] store::StoreError),
}

/// EC2's answers as ELB reports them: a store failure stays one (InternalFailure).
impl From<ec2::Ec2Error> for ElbError {
    fn from(e: ec2::Ec2Error) -> ElbError {
        match e {
            ec2::Ec2Error::Store(e) => ElbError::Store(e),
            other => ElbError::api("ValidationError", other.to_string()),
        }
    }
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
    /// The fronts that make DNS names answer, by port (`front`).
    fronts: HashMap<u16, front::Front>,
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

    /// Binds every stored listener again and restarts health checks (targets start over in
    /// `initial`, as after a registration). A listener that cannot be bound is left out (and
    /// said so); a store failure stops the recovery.
    pub async fn recover(&self) -> Result<(), ElbError> {
        self.watch_instances();
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
        inner.fronts.clear();
        inner.serving.clear();
        inner.groups.clear();
    }
}
