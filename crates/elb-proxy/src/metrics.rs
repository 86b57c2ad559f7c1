//! Counters the data plane keeps per load balancer and per target group (AWS/ApplicationELB
//! metric names); the control plane reads them into CloudWatch. Relaxed atomics only, and
//! sharded: each data-plane thread adds to a cell of its own (a cache line apart from the
//! others), so threads never contend on a counter; a reader sums the cells.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

/// Cells per counter. Threads take cells in turn; beyond this many they share (still correct).
pub(crate) const SLOTS: usize = 8;

#[derive(Default)]
#[repr(align(64))]
struct Cell(AtomicU64);

/// This thread's cell index.
pub(crate) fn slot() -> usize {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    thread_local! {
        static SLOT: usize = NEXT.fetch_add(1, Ordering::Relaxed) % SLOTS;
    }
    SLOT.with(|s| *s)
}

/// A counter that threads add to without sharing a cache line.
#[derive(Default)]
pub struct Sharded {
    cells: [Cell; SLOTS],
}

impl Sharded {
    pub fn add(&self, n: u64) {
        self.cells[slot()].0.fetch_add(n, Ordering::Relaxed);
    }

    pub fn sub(&self, n: u64) {
        self.cells[slot()].0.fetch_sub(n, Ordering::Relaxed);
    }

    /// Adds one and returns this thread's count before it (a per-thread sequence).
    pub fn next(&self) -> u64 {
        self.cells[slot()].0.fetch_add(1, Ordering::Relaxed)
    }

    pub fn get(&self) -> u64 {
        self.cells.iter().fold(0u64, |sum, c| sum.wrapping_add(c.0.load(Ordering::Relaxed)))
    }

    /// The sum of a counter that also goes down (cells may wrap; their sum does not).
    pub fn get_signed(&self) -> i64 {
        self.get() as i64
    }
}

impl std::fmt::Debug for Sharded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.get())
    }
}

#[derive(Debug, Default)]
pub struct Counters {
    pub request_count: Sharded,
    pub target_2xx: Sharded,
    pub target_3xx: Sharded,
    pub target_4xx: Sharded,
    pub target_5xx: Sharded,
    pub target_connection_errors: Sharded,
    /// Sum of TargetResponseTime in microseconds, and how many.
    pub target_response_us: Sharded,
    pub target_responses: Sharded,
    pub elb_3xx: Sharded,
    pub elb_4xx: Sharded,
    pub elb_5xx: Sharded,
    pub elb_500: Sharded,
    pub elb_502: Sharded,
    pub elb_503: Sharded,
    pub elb_504: Sharded,
    pub active_connections: Sharded,
    pub new_connections: Sharded,
    pub processed_bytes: Sharded,
    pub fixed_responses: Sharded,
    pub redirects: Sharded,
    pub non_sticky: Sharded,
    pub unhealthy_routing: Sharded,
    /// Targets left out by Cumulo's passive outlier ejection.
    pub outlier_ejections: Sharded,
}

impl Counters {
    pub fn add(counter: &Sharded, n: u64) {
        counter.add(n);
    }

    /// Records a target's response status.
    pub fn target_status(&self, status: u16) {
        let c = match status {
            200..=299 => &self.target_2xx,
            300..=399 => &self.target_3xx,
            400..=499 => &self.target_4xx,
            _ => &self.target_5xx,
        };
        c.add(1);
    }

    /// Records a response the load balancer made itself.
    pub fn elb_status(&self, status: u16) {
        let c = match status {
            300..=399 => &self.elb_3xx,
            400..=499 => &self.elb_4xx,
            _ => &self.elb_5xx,
        };
        c.add(1);
        let specific = match status {
            500 => Some(&self.elb_500),
            502 => Some(&self.elb_502),
            503 => Some(&self.elb_503),
            504 => Some(&self.elb_504),
            _ => None,
        };
        if let Some(c) = specific {
            c.add(1);
        }
    }

    pub fn get(c: &Sharded) -> u64 {
        c.get()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sharded_counters_sum_what_every_thread_added() {
        let c = std::sync::Arc::new(Sharded::default());
        let threads: Vec<_> = (0..12)
            .map(|_| {
                let c = c.clone();
                std::thread::spawn(move || {
                    for _ in 0..1000 {
                        c.add(2);
                    }
                    c.sub(5);
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(c.get(), 12 * (2000 - 5));
        let gauge = Sharded::default();
        gauge.sub(3);
        gauge.add(1);
        assert_eq!(gauge.get_signed(), -2);
    }
}
