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

/// Why the compute side did not do what was asked: it refused (AWS's code and message, as an
/// activity or the caller shows them), or its store failed (the pass stops; nothing is blamed on
/// a zone or a target group).
#[derive(Debug, thiserror::Error)]
pub enum FleetError {
    #[error("{message}")]
    Refused { code: &'static str, message: String },
    #[error(transparent)]
    Store(#[from] store::StoreError),
}

impl FleetError {
    pub fn refused(message: impl Into<String>) -> FleetError {
        FleetError::Refused { code: "ValidationError", message: message.into() }
    }
}

impl From<ec2::Ec2Error> for FleetError {
    fn from(e: ec2::Ec2Error) -> FleetError {
        match e {
            ec2::Ec2Error::Store(e) => FleetError::Store(e),
            other => FleetError::Refused { code: "ValidationError", message: other.to_string() },
        }
    }
}

impl From<elb::ElbError> for FleetError {
    fn from(e: elb::ElbError) -> FleetError {
        match e {
            elb::ElbError::Store(e) => FleetError::Store(e),
            elb::ElbError::Api { code, message } => FleetError::Refused { code, message },
        }
    }
}

/// An instance as Auto Scaling sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InstanceView {
    pub id: String,
    pub state: InstanceState,
    pub zone: String,
    pub subnet_id: String,
    /// Running, but its system status check fails (its machine is gone).
    pub impaired: bool,
}

/// EC2 as Auto Scaling uses it.
#[async_trait]
pub trait Compute: Send + Sync {
    /// Every instance state change, announced after it is stored.
    fn subscribe(&self) -> broadcast::Receiver<InstanceChange>;
    fn instance(&self, id: &str) -> Result<Option<InstanceView>, FleetError>;
    /// The zone of a subnet, when the subnet exists.
    fn subnet_zone(&self, subnet: &str) -> Result<Option<String>, FleetError>;
    fn launch_template(&self, id_or_name: &str)
    -> Result<Option<LaunchTemplateRecord>, FleetError>;
    fn launch_configuration(
        &self,
        name: &str,
    ) -> Result<Option<LaunchConfigurationRecord>, FleetError>;
    fn launch_configurations(&self) -> Result<Vec<LaunchConfigurationRecord>, FleetError>;
    /// Stores a launch configuration (its properties in CloudFormation's shape).
    fn put_launch_configuration(
        &self,
        name: &str,
        data: serde_json::Value,
    ) -> Result<LaunchConfigurationRecord, FleetError>;
    fn delete_launch_configuration(&self, name: &str) -> Result<(), FleetError>;
    /// Launches one instance.
    async fn launch(&self, request: LaunchRequest) -> Result<InstanceView, FleetError>;
    /// Terminates an instance and waits until it is terminated.
    async fn terminate(&self, id: &str) -> Result<(), FleetError>;
}

/// Elastic Load Balancing as Auto Scaling uses it.
#[async_trait]
pub trait Balancer: Send + Sync {
    /// Every target health change.
    fn subscribe(&self) -> broadcast::Receiver<HealthChange>;
    fn register(&self, target_group: &str, ids: &[String]) -> Result<(), FleetError>;
    fn deregister(&self, target_group: &str, ids: &[String]) -> Result<(), FleetError>;
    /// The targets of a target group and their states (empty when it does not exist).
    fn targets(&self, target_group: &str) -> Result<Vec<(String, State)>, FleetError>;
    /// The worst state of an instance over the target groups it is registered in.
    fn instance_health(&self, id: &str) -> Option<State>;
    /// The traffic and health-check ports of a target group.
    fn ports(&self, target_group: &str) -> Result<Option<(u16, Option<u16>)>, FleetError>;
    /// The target groups standing for a Classic load balancer's instance ports.
    fn classic_target_groups(&self, load_balancer: &str) -> Result<Vec<String>, FleetError>;
    /// Waits until no target group is draining the instance.
    async fn wait_drained(&self, id: &str);
}

// === impl Compute for Ec2 ===

#[async_trait]
impl Compute for ec2::Ec2 {
    fn subscribe(&self) -> broadcast::Receiver<InstanceChange> {
        ec2::Ec2::subscribe(self)
    }

    fn instance(&self, id: &str) -> Result<Option<InstanceView>, FleetError> {
        Ok(ec2::Ec2::instance(self, id)?.map(|r| InstanceView {
            impaired: self.impaired(&r.id),
            id: r.id,
            state: r.state,
            zone: r.zone,
            subnet_id: r.subnet_id,
        }))
    }

    fn subnet_zone(&self, subnet: &str) -> Result<Option<String>, FleetError> {
        Ok(self.subnet(subnet)?.map(|s| s.zone))
    }

    fn launch_template(
        &self,
        id_or_name: &str,
    ) -> Result<Option<LaunchTemplateRecord>, FleetError> {
        Ok(ec2::Ec2::launch_template(self, id_or_name)?)
    }

    fn launch_configuration(
        &self,
        name: &str,
    ) -> Result<Option<LaunchConfigurationRecord>, FleetError> {
        Ok(ec2::Ec2::launch_configuration(self, name)?)
    }

    fn launch_configurations(&self) -> Result<Vec<LaunchConfigurationRecord>, FleetError> {
        Ok(ec2::Ec2::launch_configurations(self)?)
    }

    fn put_launch_configuration(
        &self,
        name: &str,
        data: serde_json::Value,
    ) -> Result<LaunchConfigurationRecord, FleetError> {
        Ok(ec2::Ec2::put_launch_configuration(self, name, data, None)?)
    }

    fn delete_launch_configuration(&self, name: &str) -> Result<(), FleetError> {
        Ok(ec2::Ec2::delete_launch_configuration(self, name)?)
    }

    async fn launch(&self, request: LaunchRequest) -> Result<InstanceView, FleetError> {
        let r = ec2::Ec2::launch(self, request).await?;
        Ok(InstanceView {
            id: r.id,
            state: r.state,
            zone: r.zone,
            subnet_id: r.subnet_id,
            impaired: false,
        })
    }

    async fn terminate(&self, id: &str) -> Result<(), FleetError> {
        Ok(ec2::Ec2::terminate(self, id).await?)
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

    fn register(&self, target_group: &str, ids: &[String]) -> Result<(), FleetError> {
        Ok(self.register_targets(target_group, &registrations(ids))?)
    }

    fn deregister(&self, target_group: &str, ids: &[String]) -> Result<(), FleetError> {
        Ok(self.deregister_targets(target_group, &registrations(ids))?)
    }

    fn targets(&self, target_group: &str) -> Result<Vec<(String, State)>, FleetError> {
        match self.target_health(target_group) {
            Ok(list) => Ok(list.into_iter().map(|t| (t.id, t.health.state)).collect()),
            Err(elb::ElbError::Store(e)) => Err(FleetError::Store(e)),
            // A target group that is gone has no targets.
            Err(elb::ElbError::Api { .. }) => Ok(Vec::new()),
        }
    }

    fn instance_health(&self, id: &str) -> Option<State> {
        elb::Elb::instance_health(self, id)
    }

    fn ports(&self, target_group: &str) -> Result<Option<(u16, Option<u16>)>, FleetError> {
        Ok(self.target_group(target_group)?.map(|t| (t.port, t.health_check.port)))
    }

    fn classic_target_groups(&self, load_balancer: &str) -> Result<Vec<String>, FleetError> {
        let prefix = format!("classic/{load_balancer}/");
        let groups = self.target_groups()?;
        Ok(groups.into_iter().filter(|t| t.arn.starts_with(&prefix)).map(|t| t.arn).collect())
    }

    async fn wait_drained(&self, id: &str) {
        elb::Elb::wait_drained(self, id).await
    }
}
