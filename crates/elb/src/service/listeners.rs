//! Listeners and their rules: binding a listener's sockets (another port when its own cannot
//! be bound), changing and deleting listeners and rules, as ELB validates them.

use std::net::SocketAddr;
use std::sync::Arc;

use elb_proxy::Serving;

use super::{Elb, ElbError};
use crate::ca::SniResolver;
use serde_json::Value as Json;

use crate::model::*;
use crate::requests::{
    CreateListener, CreateRule, ModifyListener, ModifyRule, normalize_actions, normalize_conditions,
};
use crate::snapshot;

fn io_error(e: std::io::Error, what: &str) -> ElbError {
    ElbError::api("InternalFailure", format!("{what}: {e}"))
}

/// The default actions' checks ELB makes: each has a known type and its config.
pub(crate) fn check_action_shapes(actions: &[Json]) -> Result<(), ElbError> {
    if actions.is_empty() {
        return Err(ElbError::api("ValidationError", "At least one action must be specified"));
    }
    for a in actions {
        let bad = |m: &str| Err(ElbError::api("ValidationError", m.to_string()));
        match a.get("Type").and_then(Json::as_str) {
            Some("forward") => {
                let single = a.get("TargetGroupArn").and_then(Json::as_str).is_some();
                let groups = a
                    .pointer("/ForwardConfig/TargetGroups")
                    .and_then(Json::as_array)
                    .map_or(0, Vec::len);
                if !single && groups == 0 {
                    return bad("A target group ARN must be specified for forward actions");
                }
                if groups > 5 {
                    return bad("A forward action can have at most 5 target groups");
                }
            }
            Some("fixed-response") => {
                let code = a.pointer("/FixedResponseConfig/StatusCode").and_then(Json::as_str);
                let ok = code.is_some_and(|c| {
                    c.len() == 3
                        && c.starts_with(['2', '4', '5'])
                        && c.chars().all(|d| d.is_ascii_digit())
                });
                if !ok {
                    return bad("A fixed-response action needs a StatusCode of 2XX, 4XX or 5XX");
                }
            }
            Some("redirect") => {
                let code = a.pointer("/RedirectConfig/StatusCode").and_then(Json::as_str);
                if !matches!(code, Some("HTTP_301" | "HTTP_302")) {
                    return bad("A redirect action needs a StatusCode of HTTP_301 or HTTP_302");
                }
            }
            Some("authenticate-oidc" | "authenticate-cognito") => {}
            Some(other) => {
                return bad(&format!(
                    "Action type '{other}' must be one of [forward, redirect, fixed-response, authenticate-oidc, authenticate-cognito]"
                ));
            }
            None => return bad("An action must have a Type"),
        }
    }
    Ok(())
}

fn listener_not_found() -> ElbError {
    ElbError::api("ListenerNotFound", "One or more listeners not found")
}

fn rule_not_found() -> ElbError {
    ElbError::api("RuleNotFound", "One or more rules not found")
}

/// The default SSL policy of HTTPS listeners.
pub const DEFAULT_SSL_POLICY: &str = "ELBSecurityPolicy-2016-08";

impl Elb {
    /// CreateListener, for the API and CloudFormation alike: its actions checked, its
    /// socket bound, the ARN made unless CloudFormation gave it.
    pub async fn create_listener(&self, req: CreateListener) -> Result<ListenerRecord, ElbError> {
        let lb = self.existing_load_balancer(&req.load_balancer_arn)?;
        let protocol = req.protocol.unwrap_or_else(|| "HTTP".into()).to_ascii_uppercase();
        if !["HTTP", "HTTPS", "TCP", "TLS", "UDP", "TCP_UDP"].contains(&protocol.as_str()) {
            return Err(ElbError::api(
                "UnsupportedProtocol",
                format!("Protocol '{protocol}' is not supported"),
            ));
        }
        let port = match req.port {
            Some(p) if p > 0 => p,
            Some(p) => {
                return Err(ElbError::api("ValidationError", format!("Port {p} is not valid")));
            }
            None if protocol == "HTTPS" => 443,
            None => 80,
        };
        let default_actions = normalize_actions(&req.default_actions);
        check_action_shapes(&default_actions)?;
        let arn = req.arn.unwrap_or_else(|| {
            let tail = lb.full_name.clone();
            self.account
                .arn("elasticloadbalancing", &format!("listener/{tail}/{}", aws_ids::hex(16)))
        });
        let ssl_policy = match (&req.ssl_policy, protocol.as_str()) {
            (Some(p), _) => Some(p.clone()),
            (None, "HTTPS" | "TLS") => Some(DEFAULT_SSL_POLICY.into()),
            _ => None,
        };
        let record = ListenerRecord {
            arn,
            lb_arn: lb.arn,
            port,
            protocol,
            certificates: req.certificates,
            default_actions,
            bound_port: 0,
            ssl_policy,
            tags: req.tags,
        };
        self.add_listener(record).await
    }

    /// ModifyListener: what is given changes (a new port or protocol binds again).
    pub async fn modify_listener(&self, req: ModifyListener) -> Result<ListenerRecord, ElbError> {
        let mut record = self.listener(&req.arn)?.ok_or_else(listener_not_found)?;
        if let Some(p) = req.protocol {
            record.protocol = p.to_ascii_uppercase();
        }
        if let Some(p) = req.port {
            record.port = p;
        }
        if let Some(c) = req.certificates {
            record.certificates = c;
        }
        if req.ssl_policy.is_some() {
            record.ssl_policy = req.ssl_policy;
        }
        if let Some(actions) = req.default_actions {
            let actions = normalize_actions(&actions);
            check_action_shapes(&actions)?;
            record.default_actions = actions;
        }
        if record.protocol == "HTTPS" && record.ssl_policy.is_none() {
            record.ssl_policy = Some(DEFAULT_SSL_POLICY.into());
        }
        self.replace_listener(record).await
    }

    /// AddListenerCertificates (and `AWS::ElasticLoadBalancingV2::ListenerCertificate`).
    pub async fn add_listener_certificates(
        &self,
        arn: &str,
        certificates: &[String],
    ) -> Result<ListenerRecord, ElbError> {
        let mut record = self.listener(arn)?.ok_or_else(listener_not_found)?;
        for c in certificates {
            if !record.certificates.contains(c) {
                record.certificates.push(c.clone());
            }
        }
        self.replace_listener(record).await
    }

    /// RemoveListenerCertificates (the default one, the first, stays).
    pub async fn remove_listener_certificates(
        &self,
        arn: &str,
        certificates: &[String],
    ) -> Result<ListenerRecord, ElbError> {
        let mut record = self.listener(arn)?.ok_or_else(listener_not_found)?;
        if record.certificates.first().is_some_and(|d| certificates.contains(d)) {
            return Err(ElbError::api(
                "OperationNotPermitted",
                "The default certificate cannot be removed; use ModifyListener to change it",
            ));
        }
        record.certificates.retain(|c| !certificates.contains(c));
        self.replace_listener(record).await
    }

    /// DeleteListener (its rules go too).
    pub fn remove_listener(&self, arn: &str) -> Result<(), ElbError> {
        self.listener(arn)?.ok_or_else(listener_not_found)?;
        self.delete_listener(arn)
    }

    /// CreateRule, for the API and CloudFormation alike.
    pub fn create_rule(&self, req: CreateRule) -> Result<RuleRecord, ElbError> {
        let listener = self.listener(&req.listener_arn)?.ok_or_else(listener_not_found)?;
        if req.conditions.is_empty() {
            return Err(ElbError::api(
                "ValidationError",
                "A rule must have at least one condition",
            ));
        }
        let actions = normalize_actions(&req.actions);
        check_action_shapes(&actions)?;
        let arn = req.arn.unwrap_or_else(|| {
            let tail = listener.arn.split_once(":listener/").map_or("app/lb/0/0", |(_, t)| t);
            self.account
                .arn("elasticloadbalancing", &format!("listener-rule/{tail}/{}", aws_ids::hex(16)))
        });
        self.put_rule(RuleRecord {
            arn,
            listener_arn: listener.arn,
            priority: req.priority,
            conditions: normalize_conditions(&req.conditions),
            actions,
            tags: req.tags,
        })
    }

    pub fn rule(&self, arn: &str) -> Result<Option<RuleRecord>, ElbError> {
        Ok(self.store.get(RULES, arn)?)
    }

    /// ModifyRule: what is given changes.
    pub fn modify_rule(&self, req: ModifyRule) -> Result<RuleRecord, ElbError> {
        let mut record = self.rule(&req.arn)?.ok_or_else(rule_not_found)?;
        if let Some(c) = req.conditions {
            record.conditions = normalize_conditions(&c);
        }
        if let Some(a) = req.actions {
            let a = normalize_actions(&a);
            check_action_shapes(&a)?;
            record.actions = a;
        }
        self.put_rule(record)
    }

    /// SetRulePriorities: all or none; two rules of a listener never share a priority.
    pub fn set_rule_priorities(
        &self,
        priorities: &[(String, u32)],
    ) -> Result<Vec<RuleRecord>, ElbError> {
        let rules = self.rules()?;
        let mut changed = Vec::new();
        for (arn, priority) in priorities {
            let mut r = rules.iter().find(|r| &r.arn == arn).cloned().ok_or_else(rule_not_found)?;
            if !(1..=50_000).contains(priority) {
                return Err(ElbError::api(
                    "ValidationError",
                    "Priority must be between 1 and 50000",
                ));
            }
            r.priority = *priority;
            changed.push(r);
        }
        let mut taken = std::collections::HashSet::new();
        for r in &rules {
            let new = changed.iter().find(|c| c.arn == r.arn).map_or(r.priority, |c| c.priority);
            if !taken.insert((r.listener_arn.clone(), new)) {
                return Err(ElbError::api(
                    "PriorityInUse",
                    format!("Priority '{new}' is currently in use"),
                ));
            }
        }
        for r in &changed {
            self.store.put(RULES, &r.arn, r)?;
        }
        self.republish()?;
        Ok(changed)
    }

    /// DeleteRule.
    pub fn remove_rule(&self, arn: &str) -> Result<(), ElbError> {
        self.rule(arn)?.ok_or_else(rule_not_found)?;
        self.delete_rule(arn)
    }

    /// Binds the listener's socket on its load balancer's address. When the port cannot be
    /// bound (privileged, or taken), another is chosen and a warning says which.
    pub async fn add_listener(
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
                format!(
                    "A listener already exists on this port for this load balancer '{}'",
                    record.lb_arn
                ),
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

    /// Stores a listener record over the one it replaces (binding again when its port or
    /// protocol changed).
    pub async fn replace_listener(
        &self,
        record: ListenerRecord,
    ) -> Result<ListenerRecord, ElbError> {
        let old = self.listener(&record.arn)?;
        let rebinding =
            old.as_ref().is_none_or(|o| o.port != record.port || o.protocol != record.protocol);
        if rebinding {
            self.inner.lock().serving.remove(&record.arn);
            let fresh = ListenerRecord { bound_port: 0, ..record };
            return self.add_listener(fresh).await;
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
