//! Snapshots and publication: every listener's snapshot rebuilt from the stored records, each
//! group's routable targets, and the readings of what the data plane counted (metrics).

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use elb_proxy::metrics::Counters;
use elb_proxy::{Target, TargetSet};

use super::{Elb, ElbError, Group};
use crate::health::{Health, State};
use crate::model::*;
use crate::snapshot;

/// A target group's name, counters and (zone, state) of each target, read for metrics.
type GroupReading = (String, Arc<Counters>, Vec<(Option<String>, State)>);

impl Elb {
    pub(super) fn listener_snapshot(
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
    pub(super) fn republish(&self) -> Result<(), ElbError> {
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
        self.refresh_fronts(&lbs, &listeners);
        for arn in changed_groups {
            self.restart_probers(&arn)?;
        }
        Ok(())
    }

    /// Every load balancer's samples now (for CloudWatch): AWS/ApplicationELB, and AWS/ELB for
    /// Classic load balancers.
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
            if lb.kind == crate::model::Kind::Classic {
                out.extend(crate::metrics::classic_samples(&lb.name, &view));
            } else {
                out.extend(crate::metrics::samples(&view));
            }
        }
        Ok(out)
    }

    pub fn group_counters(&self, tg_arn: &str) -> Option<Arc<Counters>> {
        self.inner.lock().groups.get(tg_arn).map(|g| g.plane.counters.clone())
    }
}

/// Publishes a group's routable targets: the healthy ones (and those whose checks are
/// disabled); when there are none, every unhealthy one (fail-open). Initial and draining
/// targets never take new requests.
pub(super) fn publish_group(group: &Group) {
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
