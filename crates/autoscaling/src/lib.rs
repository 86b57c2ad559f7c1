//! EC2 Auto Scaling locally. Each group has a reconciler (on the clock, woken by instance and
//! target-health changes) that keeps its desired capacity balanced across zones, replaces
//! instances that fail EC2 or ELB health checks, registers instances with target groups when
//! they enter service and drains them before they terminate, runs lifecycle hooks and
//! scheduled actions; rolling updates replace instances batch by batch. Scaling policies run
//! when their alarms fire (`AutoScaling::alarm_fired`); target tracking policies' alarms are
//! made through the `alarms::PolicyAlarms` seam, which the region implements over CloudWatch.
//!
//! Architecture Invariant: decisions (zone choice, termination policies, balance) are pure
//! functions in `policy`; the service only applies them.

pub mod alarms;
pub mod fleet;
pub mod model;
pub mod policy;
pub mod providers;
pub mod request;
pub mod schedule;
pub mod service;

pub use providers::{AsgProvider, TYPES};
pub use service::{AsgError, AutoScaling};
