//! The load balancer's data plane.
//!
//! Listener sockets accept clients, match each request against the listener's rules and
//! answer it: a fixed response, a redirect, or a forward to a target chosen from the target
//! group's routable targets. Everything a request reads is a published snapshot
//! ([`config::Listener`], [`config::TargetSet`]) loaded without locks; the control plane
//! (`elb`) builds and replaces the snapshots as rules and target health change.

pub mod access_log;
pub mod balance;
pub mod config;
pub mod front;
pub mod h1;
pub mod matcher;
pub mod metered;
pub mod metrics;
pub mod pages;
pub mod proxy;
pub mod server;
pub mod upstream;
pub mod workers;

pub use config::{
    AccessLog, Action, Algorithm, Condition, Forward, Listener, LoadBalancer, Redirect, Rule,
    Stickiness, Target, TargetGroup, TargetSet, XffMode,
};
pub use server::{Serving, bind, tls_config};
pub use upstream::Upstream;
