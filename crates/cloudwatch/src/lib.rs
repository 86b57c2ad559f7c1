//! CloudWatch locally: a metric store with AWS's resolutions and retention, statistics, metric
//! math, and alarms evaluated on the region's clock whose actions reach the other services
//! through a trait.

pub mod evaluate;
pub mod math;
