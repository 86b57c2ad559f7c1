//! Counters the data plane keeps per load balancer and per target group (AWS/ApplicationELB
//! metric names); the control plane reads them into CloudWatch. Relaxed atomics only.

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

#[derive(Debug, Default)]
pub struct Counters {
    pub request_count: AtomicU64,
    pub target_2xx: AtomicU64,
    pub target_3xx: AtomicU64,
    pub target_4xx: AtomicU64,
    pub target_5xx: AtomicU64,
    pub target_connection_errors: AtomicU64,
    /// Sum of TargetResponseTime in microseconds, and how many.
    pub target_response_us: AtomicU64,
    pub target_responses: AtomicU64,
    pub elb_3xx: AtomicU64,
    pub elb_4xx: AtomicU64,
    pub elb_5xx: AtomicU64,
    pub elb_500: AtomicU64,
    pub elb_502: AtomicU64,
    pub elb_503: AtomicU64,
    pub elb_504: AtomicU64,
    pub active_connections: AtomicI64,
    pub new_connections: AtomicU64,
    pub processed_bytes: AtomicU64,
    pub fixed_responses: AtomicU64,
    pub redirects: AtomicU64,
    pub non_sticky: AtomicU64,
    pub unhealthy_routing: AtomicU64,
    /// Targets left out by Cumulo's passive outlier ejection.
    pub outlier_ejections: AtomicU64,
}

impl Counters {
    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    /// Records a target's response status.
    pub fn target_status(&self, status: u16) {
        let c = match status {
            200..=299 => &self.target_2xx,
            300..=399 => &self.target_3xx,
            400..=499 => &self.target_4xx,
            _ => &self.target_5xx,
        };
        c.fetch_add(1, Ordering::Relaxed);
    }

    /// Records a response the load balancer made itself.
    pub fn elb_status(&self, status: u16) {
        let c = match status {
            300..=399 => &self.elb_3xx,
            400..=499 => &self.elb_4xx,
            _ => &self.elb_5xx,
        };
        c.fetch_add(1, Ordering::Relaxed);
        let specific = match status {
            500 => Some(&self.elb_500),
            502 => Some(&self.elb_502),
            503 => Some(&self.elb_503),
            504 => Some(&self.elb_504),
            _ => None,
        };
        if let Some(c) = specific {
            c.fetch_add(1, Ordering::Relaxed);
        }
    }

    pub fn get(c: &AtomicU64) -> u64 {
        c.load(Ordering::Relaxed)
    }
}
