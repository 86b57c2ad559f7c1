//! Load balancers: their records, their loopback addresses, and the data plane's view of
//! each (settings, counters, access log writer).

use std::collections::BTreeSet;
use std::net::Ipv4Addr;
use std::sync::Arc;

use elb_proxy::metrics::Counters;

use super::{Elb, ElbError};
use crate::access_logs;
use crate::model::*;
use crate::snapshot;

impl Elb {
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
