//! What the reconciler needs of the compute side, as two traits: [`Compute`] (EC2: launch,
//! terminate, instance state, launch sources, subnets) and [`Balancer`] (ELB: register,
//! deregister, target health, draining). The region hands in `ec2::Ec2` and `elb::Elb`; tests
//! hand in a fake fleet and run the reconciler on paused time.
//!
//! Architecture Invariant: Auto Scaling starts and stops instances only through `Compute`, and
//! registers them only through `Balancer`.

use async_trait::async_trait;
use ec2::model::{LaunchConfigurationRecord, LaunchTemplateRecord};
use ec2::{InstanceChange, InstanceState, LaunchRequest};
use elb::{HealthChange, State};
use tokio::sync::broadcast;

/// An instance as Auto Scaling sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InstanceView {
    pub id: String,
    pub state: InstanceState,
    pub zone: String,
    pub subnet_id: String,
}

/// EC2 as Auto Scaling uses it.
#[async_trait]
pub trait Compute: Send + Sync {
    /// Every instance state change, announced after it is stored.
    fn subscribe(&self) -> broadcast::Receiver<InstanceChange>;
    fn instance(&self, id: &str) -> Option<InstanceView>;
    /// The zone of a subnet, when the subnet exists.
    fn subnet_zone(&self, subnet: &str) -> Option<String>;
    fn launch_template(&self, id_or_name: &str) -> Option<LaunchTemplateRecord>;
    fn launch_configuration(&self, name: &str) -> Option<LaunchConfigurationRecord>;
    /// Launches one instance; the error is EC2's message.
    async fn launch(&self, request: LaunchRequest) -> Result<InstanceView, String>;
    /// Terminates an instance and waits until it is terminated.
    async fn terminate(&self, id: &str) -> Result<(), String>;
}

/// Elastic Load Balancing as Auto Scaling uses it.
#[async_trait]
pub trait Balancer: Send + Sync {
    /// Every target health change.
    fn subscribe(&self) -> broadcast::Receiver<HealthChange>;
    fn register(&self, target_group: &str, ids: &[String]) -> Result<(), String>;
    fn deregister(&self, target_group: &str, ids: &[String]) -> Result<(), String>;
    /// The targets of a target group and their states (empty when it does not exist).
    fn targets(&self, target_group: &str) -> Vec<(String, State)>;
    /// The worst state of an instance over the target groups it is registered in.
    fn instance_health(&self, id: &str) -> Option<State>;
    /// The traffic and health-check ports of a target group.
    fn ports(&self, target_group: &str) -> Option<(u16, Option<u16>)>;
    /// The target groups standing for a Classic load balancer's instance ports.
    fn classic_target_groups(&self, load_balancer: &str) -> Vec<String>;
    /// Waits until no target group is draining the instance.
    async fn wait_drained(&self, id: &str);
}

// === impl Compute for Ec2 ===

#[async_trait]
impl Compute for ec2::Ec2 {
    fn subscribe(&self) -> broadcast::Receiver<InstanceChange> {
        ec2::Ec2::subscribe(self)
    }

    fn instance(&self, id: &str) -> Option<InstanceView> {
        ec2::Ec2::instance(self, id).map(|r| InstanceView {
            id: r.id,
            state: r.state,
            zone: r.zone,
            subnet_id: r.subnet_id,
        })
    }

    fn subnet_zone(&self, subnet: &str) -> Option<String> {
        self.subnet(subnet).map(|s| s.zone)
    }

    fn launch_template(&self, id_or_name: &str) -> Option<LaunchTemplateRecord> {
        ec2::Ec2::launch_template(self, id_or_name)
    }

    fn launch_configuration(&self, name: &str) -> Option<LaunchConfigurationRecord> {
        ec2::Ec2::launch_configuration(self, name)
    }

    async fn launch(&self, request: LaunchRequest) -> Result<InstanceView, String> {
        let r = ec2::Ec2::launch(self, request).await.map_err(|e| e.to_string())?;
        Ok(InstanceView { id: r.id, state: r.state, zone: r.zone, subnet_id: r.subnet_id })
    }

    async fn terminate(&self, id: &str) -> Result<(), String> {
        ec2::Ec2::terminate(self, id).await.map_err(|e| e.to_string())
    }
}

// === impl Balancer for Elb ===

fn registrations(ids: &[String]) -> Vec<elb::model::Registration> {
    ids.iter()
        .map(|id| elb::model::Registration { id: id.clone(), port: None, zone: None })
        .collect()
}

#[async_trait]
impl Balancer for elb::Elb {
    fn subscribe(&self) -> broadcast::Receiver<HealthChange> {
        elb::Elb::subscribe(self)
    }

    fn register(&self, target_group: &str, ids: &[String]) -> Result<(), String> {
        self.register_targets(target_group, &registrations(ids)).map_err(|e| e.to_string())
    }

    fn deregister(&self, target_group: &str, ids: &[String]) -> Result<(), String> {
        self.deregister_targets(target_group, &registrations(ids)).map_err(|e| e.to_string())
    }

    fn targets(&self, target_group: &str) -> Vec<(String, State)> {
        match self.target_health(target_group) {
            Ok(list) => list.into_iter().map(|t| (t.id, t.health.state)).collect(),
            Err(elb::ElbError::Store(e)) => {
                tracing::warn!(target_group, "target health unknown, taken as no targets: {e}");
                Vec::new()
            }
            Err(_) => Vec::new(),
        }
    }

    fn instance_health(&self, id: &str) -> Option<State> {
        elb::Elb::instance_health(self, id)
    }

    fn ports(&self, target_group: &str) -> Option<(u16, Option<u16>)> {
        match self.target_group(target_group) {
            Ok(group) => group.map(|t| (t.port, t.health_check.port)),
            Err(e) => {
                tracing::warn!(target_group, "target group unreadable, taken as absent: {e}");
                None
            }
        }
    }

    fn classic_target_groups(&self, load_balancer: &str) -> Vec<String> {
        let prefix = format!("classic/{load_balancer}/");
        match self.target_groups() {
            Ok(groups) => {
                groups.into_iter().filter(|t| t.arn.starts_with(&prefix)).map(|t| t.arn).collect()
            }
            Err(e) => {
                tracing::warn!(load_balancer, "target groups unreadable, taken as none: {e}");
                Vec::new()
            }
        }
    }

    async fn wait_drained(&self, id: &str) {
        elb::Elb::wait_drained(self, id).await
    }
}
