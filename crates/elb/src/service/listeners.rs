//! Listeners and their rules: binding a listener's sockets (another port when its own cannot
//! be bound), changing and deleting listeners and rules, as ELB validates them.

use std::net::SocketAddr;
use std::sync::Arc;

use elb_proxy::Serving;

use super::{Elb, ElbError};
use crate::ca::SniResolver;
use crate::model::*;
use crate::snapshot;

fn io_error(e: std::io::Error, what: &str) -> ElbError {
    ElbError::api("InternalFailure", format!("{what}: {e}"))
}

impl Elb {
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

    pub(super) async fn bind(
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
}
