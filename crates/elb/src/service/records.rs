//! Reading the records (a store failure is an error, never "none" or "not found"), what
//! they say about each other (which load balancers a group serves, where listeners answer),
//! and the checks of a rule's or listener's forwards.

use std::collections::BTreeSet;
use std::net::SocketAddr;

use super::{Elb, ElbError, Endpoint};
use crate::model::*;
use crate::snapshot;

impl Elb {
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
    pub(super) fn existing_group(&self, arn: &str) -> Result<TargetGroupRecord, ElbError> {
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

    /// Target groups of actions must exist and belong to no other load balancer.
    pub(super) fn check_actions(
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
}
