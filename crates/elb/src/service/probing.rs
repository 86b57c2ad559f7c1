//! Health probing: one prober per target of an in-use group, on the clock, each check's
//! result taken into the target's health (`crate::health`'s state machine) and announced.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use http_body_util::Empty;
use hyper_util::rt::TokioIo;
use tokio_util::task::AbortOnDropHandle;

use super::publish::publish_group;
use super::{Elb, ElbError, HealthChange, draining};
use crate::health::{Health, Probe, State, Thresholds};
use crate::model::*;

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

impl Elb {
    /// Starts a prober for every target of an in-use group that has none.
    pub(super) fn restart_probers(&self, tg_arn: &str) -> Result<(), ElbError> {
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
        let (addr, host) = if instance {
            // A store that cannot say what the instance is gives no health check (the
            // target's health stays as it was), never a verdict.
            let record = match self.ec2.instance(id) {
                Ok(record) => record,
                Err(e) => {
                    tracing::warn!(target = id, "health check skipped: {e}");
                    return None;
                }
            };
            let state = record.as_ref().map_or("terminated", |r| r.state.name());
            if state != "running" && state != "pending" {
                self.set_health(tg_arn, id, port, Health::invalid_state(state));
                return None;
            }
            let check_port = hc.port.unwrap_or(port);
            let addr = record
                .as_ref()
                .and_then(|r| r.host_port(check_port))
                .map_or(SocketAddr::from((Ipv4Addr::LOCALHOST, 9)), |p| {
                    SocketAddr::from((Ipv4Addr::LOCALHOST, p))
                });
            let host = record.map_or(addr.ip().to_string(), |r| r.private_ip);
            (addr, host)
        } else {
            let ip: std::net::IpAddr = id.parse().ok()?;
            (SocketAddr::new(ip, hc.port.unwrap_or(port)), id.to_string())
        };
        let timeout = Duration::from_secs(hc.timeout.max(1));
        Some(match self.clock.timeout(timeout, (self.prober)(addr, host, hc.clone())).await {
            Err(_) => Probe::Timeout,
            Ok(p) => p,
        })
    }

    /// An instance that leaves `running` (stopping, shutting down) stops taking traffic at
    /// once, before its app goes: its targets become unused (`Target.InvalidState`) when EC2
    /// announces the change, not at their next health check.
    pub(super) fn watch_instances(&self) {
        let mut changes = self.ec2.subscribe();
        let me = self.me.clone();
        tokio::spawn(async move {
            loop {
                let change = match changes.recv().await {
                    Ok(change) => change,
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                    Err(_) => return,
                };
                let Some(elb) = me.upgrade() else { return };
                let state = change.state.name();
                if state == "running" || state == "pending" {
                    continue;
                }
                let targets: Vec<(String, u16)> = {
                    let inner = elb.inner.lock();
                    inner
                        .groups
                        .iter()
                        .flat_map(|(arn, g)| {
                            g.targets
                                .iter()
                                .filter(|t| t.id == change.id)
                                .map(|t| (arn.clone(), t.port))
                                .collect::<Vec<_>>()
                        })
                        .collect()
                };
                for (arn, port) in targets {
                    elb.set_health(&arn, &change.id, port, Health::invalid_state(state));
                }
            }
        });
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
        draining::slow_start(&self.clock, t, state, slow_start, others_full);
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
