//! The snapshots the data plane reads. The control plane builds them and publishes them
//! (`ArcSwap`); the request path only loads them, never locks or waits.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::Duration;

use arc_swap::ArcSwap;

use crate::matcher::{Pattern, SourceNet};
use crate::metrics::Counters;

/// Load-balancer-wide settings (attributes).
#[derive(Clone, Debug)]
pub struct LoadBalancer {
    /// `app/<name>/<id>`, the CloudWatch dimension.
    pub full_name: String,
    pub name: String,
    /// `idle_timeout.timeout_seconds` (real time, already scaled).
    pub idle_timeout: Duration,
    /// `routing.http.xff_header_processing.mode`.
    pub xff: XffMode,
    pub xff_client_port: bool,
    pub preserve_host: bool,
    /// Retry idempotent requests on another target when a connection fails before any
    /// response byte (Cumulo's own attribute, off by default: AWS does not).
    pub retry_idempotent: bool,
    pub counters: Arc<Counters>,
    /// Where access log lines go when `access_logs.s3.enabled` is on.
    pub access_log: Option<AccessLog>,
}

/// The sending end of a load balancer's access log: the data plane formats a line per
/// request and hands it over without waiting (a full queue drops the line and counts it).
#[derive(Clone, Debug)]
pub struct AccessLog {
    /// `arn:aws:elasticloadbalancing:REGION:ACCOUNT:` (target group ARNs in the lines).
    pub arn_prefix: String,
    pub lines: tokio::sync::mpsc::Sender<String>,
    pub dropped: Arc<AtomicU64>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum XffMode {
    Append,
    Preserve,
    Remove,
}

/// What a listener socket serves.
#[derive(Clone, Debug)]
pub struct Listener {
    pub lb: Arc<LoadBalancer>,
    /// The port as the template gives it (X-Forwarded-Port, Host rewriting, redirects).
    pub port: u16,
    pub https: bool,
    /// Rules in priority order; the default rule (no conditions) last.
    pub rules: Vec<Rule>,
}

#[derive(Clone, Debug)]
pub struct Rule {
    /// 1-50000; 0 for the default rule (as access logs show it).
    pub priority: u32,
    pub conditions: Vec<Condition>,
    pub action: Action,
}

#[derive(Clone, Debug)]
pub enum Condition {
    /// Case-insensitive wildcard patterns on the first Host header (port stripped).
    Host(Vec<Pattern>),
    /// Case-sensitive wildcard patterns on the path (no query).
    Path(Vec<Pattern>),
    /// A header (name case-insensitive) whose value matches one of the patterns (case-insensitive).
    Header {
        name: http::HeaderName,
        values: Vec<Pattern>,
    },
    Method(Vec<http::Method>),
    /// Query parameters: (key pattern or any key, value pattern), case-insensitive.
    Query(Vec<(Option<Pattern>, Pattern)>),
    SourceIp(Vec<SourceNet>),
}

#[derive(Clone, Debug)]
pub enum Action {
    Forward(Forward),
    Redirect(Redirect),
    Fixed { status: u16, content_type: String, body: bytes::Bytes },
}

#[derive(Clone, Debug)]
pub struct Forward {
    pub groups: Vec<(Arc<TargetGroup>, u32)>,
    /// Target group stickiness (`AWSALBTG`) for multi-group forwards.
    pub group_stickiness: Option<Duration>,
}

#[derive(Clone, Debug)]
pub struct Redirect {
    pub protocol: Option<String>,
    pub host: Option<String>,
    pub port: Option<String>,
    pub path: Option<String>,
    pub query: Option<String>,
    pub status: u16,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Algorithm {
    RoundRobin,
    LeastOutstanding,
    WeightedRandom,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Stickiness {
    None,
    /// `AWSALB` cookie; the duration after which stickiness is stale.
    LbCookie(Duration),
    /// The app's own cookie name; `AWSALBAPP-*` carries the target.
    AppCookie {
        name: String,
        duration: Duration,
    },
}

/// A target group as the data plane sees it. The targets that may receive requests change
/// with health; they are swapped in as a whole.
#[derive(Debug)]
pub struct TargetGroup {
    /// `targetgroup/<name>/<id>`.
    pub full_name: String,
    pub id: String,
    pub algorithm: Algorithm,
    pub stickiness: Stickiness,
    /// Speak HTTP/2 to targets (ProtocolVersion HTTP2).
    pub http2: bool,
    pub targets: ArcSwap<TargetSet>,
    pub next: crate::metrics::Sharded,
    pub counters: Arc<Counters>,
    /// Passive outlier ejection (Cumulo's own, off = 0): consecutive connection failures
    /// after which a target gets no new requests for a while.
    pub outlier_errors: AtomicU32,
    /// The first ejection's length in real milliseconds (the n-th lasts n times as long, up
    /// to ten times).
    pub outlier_base_ms: AtomicU64,
}

/// The targets of a group at one moment.
#[derive(Clone, Debug, Default)]
pub struct TargetSet {
    /// Targets that receive new requests: the healthy ones, or every registered one that is
    /// not draining or initial when none is healthy (fail-open).
    pub routable: Vec<Arc<Target>>,
    /// Whether routing is failing open (every target unhealthy).
    pub fail_open: bool,
}

/// A registered target. Kept (by identity) across snapshots so its counters survive.
#[derive(Debug)]
pub struct Target {
    /// Instance id or IP.
    pub id: String,
    pub port: u16,
    /// Where requests really go (the instance's loopback port).
    pub addr: SocketAddr,
    pub zone: String,
    pub in_flight: AtomicU32,
    /// Slow start: share of traffic in thousandths (1000 = full).
    pub weight: AtomicU32,
    /// Set when the deregistration delay ends: requests still open are cut (502).
    pub cut: Cut,
    /// Outlier ejection: connection failures in a row, ejections so far, and until when
    /// (milliseconds since the epoch) the target is left out.
    pub failures: AtomicU32,
    pub ejections: AtomicU32,
    pub ejected_until_ms: AtomicU64,
}

/// Wakes a target's open requests when its deregistration delay ends. A request waits on its
/// own thread's signal (no lock shared between data-plane threads); the control plane
/// signals them all.
#[derive(Default)]
pub struct Cut {
    signals: [PaddedNotify; crate::metrics::SLOTS],
}

#[derive(Default)]
#[repr(align(64))]
struct PaddedNotify(tokio::sync::Notify);

impl Cut {
    pub fn notified(&self) -> tokio::sync::futures::Notified<'_> {
        self.signals[crate::metrics::slot()].0.notified()
    }

    pub fn notify_waiters(&self) {
        for s in &self.signals {
            s.0.notify_waiters();
        }
    }
}

impl std::fmt::Debug for Cut {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Cut")
    }
}

impl Target {
    pub fn new(id: &str, port: u16, addr: SocketAddr, zone: &str) -> Target {
        Target {
            id: id.to_string(),
            port,
            addr,
            zone: zone.to_string(),
            in_flight: AtomicU32::new(0),
            weight: AtomicU32::new(1000),
            cut: Cut::default(),
            failures: AtomicU32::new(0),
            ejections: AtomicU32::new(0),
            ejected_until_ms: AtomicU64::new(0),
        }
    }

    /// Left out by outlier ejection now.
    pub fn ejected(&self) -> bool {
        let until = self.ejected_until_ms.load(Ordering::Relaxed);
        until != 0 && until > crate::balance::now_ms()
    }

    /// A connection to the target failed: counts toward ejection when the group has it on.
    /// Returns true when this failure ejected the target.
    pub fn note_failure(&self, group: &TargetGroup) -> bool {
        let threshold = group.outlier_errors.load(Ordering::Relaxed);
        if threshold == 0 {
            return false;
        }
        let failures = self.failures.fetch_add(1, Ordering::Relaxed) + 1;
        if failures < threshold || self.ejected() {
            return false;
        }
        self.failures.store(0, Ordering::Relaxed);
        let n = u64::from((self.ejections.fetch_add(1, Ordering::Relaxed) + 1).min(10));
        let length = group.outlier_base_ms.load(Ordering::Relaxed).saturating_mul(n);
        self.ejected_until_ms.store(crate::balance::now_ms() + length.max(1), Ordering::Relaxed);
        true
    }

    /// A response came back: the run of failures ends.
    pub fn note_success(&self, group: &TargetGroup) {
        if group.outlier_errors.load(Ordering::Relaxed) != 0
            && self.failures.load(Ordering::Relaxed) != 0
        {
            self.failures.store(0, Ordering::Relaxed);
        }
    }

    /// `id:port`, what stickiness cookies name.
    pub fn key(&self) -> String {
        format!("{}:{}", self.id, self.port)
    }
}

impl TargetGroup {
    pub fn new(
        full_name: &str,
        id: &str,
        algorithm: Algorithm,
        stickiness: Stickiness,
        http2: bool,
    ) -> TargetGroup {
        TargetGroup {
            full_name: full_name.to_string(),
            id: id.to_string(),
            algorithm,
            stickiness,
            http2,
            targets: ArcSwap::from_pointee(TargetSet::default()),
            next: crate::metrics::Sharded::default(),
            counters: Arc::new(Counters::default()),
            outlier_errors: AtomicU32::new(0),
            outlier_base_ms: AtomicU64::new(30_000),
        }
    }

    pub fn publish(&self, set: TargetSet) {
        self.targets.store(Arc::new(set));
    }

    /// The next position in this thread's round-robin turn (threads take turns independently,
    /// so the group stays evenly loaded without a shared cursor).
    pub(crate) fn round_robin(&self) -> usize {
        self.next.next() as usize
    }
}

/// The client's address as the proxy saw it.
#[derive(Clone, Copy, Debug)]
pub struct Peer {
    pub addr: SocketAddr,
}

impl Peer {
    pub fn ip(&self) -> IpAddr {
        self.addr.ip()
    }
}
