//! EC2 locally. The network model (VPCs, subnets, security groups) keeps EC2's checks; launch
//! templates keep their versions; IAM roles and instance profiles are records instances read
//! their role from. Instances really run: each is a supervised process tree started from its
//! UserData (see the `supervisor` crate), with its own metadata service, its own loopback
//! ports standing for the ports the template expects, its console log.
//!
//! Architecture Invariant: an instance's app only learns where it runs from its environment
//! (`PORT`, `PORT_<n>`, `AWS_EC2_METADATA_SERVICE_ENDPOINT`, ...) and its metadata service;
//! other services find an instance's address through [`Ec2::target_address`].

mod imds;
pub mod model;
pub mod network;
mod providers;
mod service;

pub use model::{InstanceRecord, InstanceState, LaunchSource, PortMap};
pub use providers::{Ec2Provider, TYPES, instance_provided};
pub use service::{
    CreateRole, CreateSecurityGroup, CreateSubnet, CreateVpc, Ec2, Ec2Config, Ec2Error,
    InstanceChange, InstanceOverride, InstanceUsage, LaunchRequest, LaunchSpec, free_port, vcpus,
    zones,
};
