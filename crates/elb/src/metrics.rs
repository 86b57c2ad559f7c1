//! The load balancers' CloudWatch metrics as AWS/ApplicationELB names them (and AWS/ELB for
//! Classic load balancers): the data plane's counters (cumulative since the load balancer was
//! made; the metric store takes the difference per period), timings as cumulative sums and
//! counts, and gauges read now (healthy and unhealthy hosts, open connections), each with
//! AWS's dimension sets.

use std::collections::BTreeMap;

use elb_proxy::metrics::Counters;
use serde::Serialize;

use crate::health::State;

pub const NAMESPACE: &str = "AWS/ApplicationELB";
pub const CLASSIC_NAMESPACE: &str = "AWS/ELB";

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum Kind {
    /// Cumulative: a period's value is the difference of two samples (statistic Sum).
    Counter,
    /// The value now (statistics Average, Minimum, Maximum).
    Gauge,
    /// Cumulative: `value` is a sum of seconds over `count` events (a period's mean is the
    /// difference of the sums over the difference of the counts).
    Timing { count: u64 },
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Sample {
    pub namespace: &'static str,
    pub name: &'static str,
    /// (name, value) in AWS's order.
    pub dimensions: Vec<(&'static str, String)>,
    pub value: f64,
    /// `Count`, `Seconds` or `Bytes`.
    pub unit: &'static str,
    pub kind: Kind,
}

fn get(c: &elb_proxy::metrics::Sharded) -> f64 {
    Counters::get(c) as f64
}

/// Request and response counters of one scope (a load balancer, or a target group within it).
fn traffic(c: &Counters, dims: &[(&'static str, String)], lb_level: bool, out: &mut Vec<Sample>) {
    let counter = |name: &'static str, value: f64, unit: &'static str| Sample {
        namespace: NAMESPACE,
        name,
        dimensions: dims.to_vec(),
        value,
        unit,
        kind: Kind::Counter,
    };
    out.push(counter("RequestCount", get(&c.request_count), "Count"));
    out.push(counter("HTTPCode_Target_2XX_Count", get(&c.target_2xx), "Count"));
    out.push(counter("HTTPCode_Target_3XX_Count", get(&c.target_3xx), "Count"));
    out.push(counter("HTTPCode_Target_4XX_Count", get(&c.target_4xx), "Count"));
    out.push(counter("HTTPCode_Target_5XX_Count", get(&c.target_5xx), "Count"));
    out.push(counter("TargetConnectionErrorCount", get(&c.target_connection_errors), "Count"));
    if !lb_level {
        return;
    }
    let responses = Counters::get(&c.target_responses);
    if responses > 0 {
        out.push(Sample {
            namespace: NAMESPACE,
            name: "TargetResponseTime",
            dimensions: dims.to_vec(),
            value: Counters::get(&c.target_response_us) as f64 / 1e6,
            unit: "Seconds",
            kind: Kind::Timing { count: responses },
        });
    }
    out.push(counter("HTTPCode_ELB_3XX_Count", get(&c.elb_3xx), "Count"));
    out.push(counter("HTTPCode_ELB_4XX_Count", get(&c.elb_4xx), "Count"));
    out.push(counter("HTTPCode_ELB_5XX_Count", get(&c.elb_5xx), "Count"));
    out.push(counter("HTTPCode_ELB_500_Count", get(&c.elb_500), "Count"));
    out.push(counter("HTTPCode_ELB_502_Count", get(&c.elb_502), "Count"));
    out.push(counter("HTTPCode_ELB_503_Count", get(&c.elb_503), "Count"));
    out.push(counter("HTTPCode_ELB_504_Count", get(&c.elb_504), "Count"));
    out.push(counter("NewConnectionCount", get(&c.new_connections), "Count"));
    out.push(counter("ProcessedBytes", get(&c.processed_bytes), "Bytes"));
    out.push(counter("NonStickyRequestCount", get(&c.non_sticky), "Count"));
    out.push(counter("HTTP_Fixed_Response_Count", get(&c.fixed_responses), "Count"));
    out.push(counter("HTTP_Redirect_Count", get(&c.redirects), "Count"));
    out.push(Sample {
        namespace: NAMESPACE,
        name: "ActiveConnectionCount",
        dimensions: dims.to_vec(),
        value: c.active_connections.get_signed().max(0) as f64,
        unit: "Count",
        kind: Kind::Gauge,
    });
}

/// What the control plane knows of one load balancer for its metrics.
pub struct LoadBalancerView<'a> {
    /// `app/NAME/ID`.
    pub full_name: &'a str,
    pub counters: &'a Counters,
    pub groups: Vec<GroupView<'a>>,
}

pub struct GroupView<'a> {
    /// `targetgroup/NAME/ID`.
    pub full_name: &'a str,
    pub counters: &'a Counters,
    /// Each registered target's zone and state.
    pub targets: Vec<(Option<&'a str>, State)>,
}

/// The samples of one load balancer and the target groups it forwards to.
pub fn samples(lb: &LoadBalancerView<'_>) -> Vec<Sample> {
    let mut out = Vec::new();
    let lb_dims = vec![("LoadBalancer", lb.full_name.to_string())];
    traffic(lb.counters, &lb_dims, true, &mut out);
    for g in &lb.groups {
        let dims = vec![
            ("TargetGroup", g.full_name.to_string()),
            ("LoadBalancer", lb.full_name.to_string()),
        ];
        traffic(g.counters, &dims, false, &mut out);
        // Hosts by health, over the group and per zone.
        let mut zones: BTreeMap<&str, (u32, u32)> = BTreeMap::new();
        let (mut healthy, mut unhealthy) = (0u32, 0u32);
        for (zone, state) in &g.targets {
            let (h, u) = match state {
                State::Healthy => (1, 0),
                State::Unhealthy => (0, 1),
                _ => (0, 0),
            };
            healthy += h;
            unhealthy += u;
            if let Some(z) = zone {
                let e = zones.entry(z).or_default();
                e.0 += h;
                e.1 += u;
            }
        }
        let gauge = |name: &'static str, dims: Vec<(&'static str, String)>, value: u32| Sample {
            namespace: NAMESPACE,
            name,
            dimensions: dims,
            value: f64::from(value),
            unit: "Count",
            kind: Kind::Gauge,
        };
        out.push(gauge("HealthyHostCount", dims.clone(), healthy));
        out.push(gauge("UnHealthyHostCount", dims.clone(), unhealthy));
        for (zone, (h, u)) in zones {
            let mut zdims = dims.clone();
            zdims.push(("AvailabilityZone", zone.to_string()));
            out.push(gauge("HealthyHostCount", zdims.clone(), h));
            out.push(gauge("UnHealthyHostCount", zdims, u));
        }
        // Per target: the group's requests over its healthy targets (as AWS reports it).
        let per_target =
            Counters::get(&g.counters.request_count) as f64 / f64::from(healthy.max(1));
        for dims in [vec![("TargetGroup", g.full_name.to_string())], dims.clone()] {
            out.push(Sample {
                namespace: NAMESPACE,
                name: "RequestCountPerTarget",
                dimensions: dims,
                value: per_target,
                unit: "Count",
                kind: Kind::Counter,
            });
        }
    }
    out
}

/// A Classic load balancer's samples: its one group's and its own, under AWS/ELB's names and
/// its `LoadBalancerName` dimension (and `AvailabilityZone` for host counts).
pub fn classic_samples(name: &str, lb: &LoadBalancerView<'_>) -> Vec<Sample> {
    let rename = |n: &str| -> Option<&'static str> {
        Some(match n {
            "RequestCount" => "RequestCount",
            "HTTPCode_Target_2XX_Count" => "HTTPCode_Backend_2XX",
            "HTTPCode_Target_3XX_Count" => "HTTPCode_Backend_3XX",
            "HTTPCode_Target_4XX_Count" => "HTTPCode_Backend_4XX",
            "HTTPCode_Target_5XX_Count" => "HTTPCode_Backend_5XX",
            "HTTPCode_ELB_4XX_Count" => "HTTPCode_ELB_4XX",
            "HTTPCode_ELB_5XX_Count" => "HTTPCode_ELB_5XX",
            "TargetConnectionErrorCount" => "BackendConnectionErrors",
            "TargetResponseTime" => "Latency",
            "HealthyHostCount" => "HealthyHostCount",
            "UnHealthyHostCount" => "UnHealthyHostCount",
            "ActiveConnectionCount" => "EstimatedALBActiveConnectionCount",
            "NewConnectionCount" => "EstimatedALBNewConnectionCount",
            "ProcessedBytes" => "EstimatedProcessedBytes",
            _ => return None,
        })
    };
    let mut out: Vec<Sample> = samples(lb)
        .into_iter()
        .filter(|s| {
            // The load balancer's own traffic; host counts from its group.
            let group_level = s.dimensions.iter().any(|(k, _)| *k == "TargetGroup");
            matches!(s.name, "HealthyHostCount" | "UnHealthyHostCount") == group_level
        })
        .filter_map(|s| {
            let metric = rename(s.name)?;
            let zone = s.dimensions.iter().find(|(k, _)| *k == "AvailabilityZone").cloned();
            let mut dimensions = vec![("LoadBalancerName", name.to_string())];
            dimensions.extend(zone);
            Some(Sample { namespace: CLASSIC_NAMESPACE, name: metric, dimensions, ..s })
        })
        .collect();
    // No request ever waits in a surge queue here, and none is spilled.
    for metric in ["SurgeQueueLength", "SpilloverCount"] {
        out.push(Sample {
            namespace: CLASSIC_NAMESPACE,
            name: metric,
            dimensions: vec![("LoadBalancerName", name.to_string())],
            value: 0.0,
            unit: "Count",
            kind: if metric == "SurgeQueueLength" { Kind::Gauge } else { Kind::Counter },
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use expect_test::expect;

    #[test]
    fn names_and_dimensions_are_awss() {
        let lb = Counters::default();
        Counters::add(&lb.request_count, 10);
        lb.target_status(200);
        lb.elb_status(503);
        Counters::add(&lb.target_response_us, 3_000);
        Counters::add(&lb.target_responses, 2);
        let tg = Counters::default();
        Counters::add(&tg.request_count, 10);
        let view = LoadBalancerView {
            full_name: "app/web/50dc6c495c0c9188",
            counters: &lb,
            groups: vec![GroupView {
                full_name: "targetgroup/web/73e2d6bc24d8a067",
                counters: &tg,
                targets: vec![
                    (Some("us-east-1a"), State::Healthy),
                    (Some("us-east-1b"), State::Unhealthy),
                    (Some("us-east-1b"), State::Initial),
                ],
            }],
        };
        let lines: Vec<String> = samples(&view)
            .iter()
            .filter(|s| s.value != 0.0)
            .map(|s| {
                let dims: Vec<String> =
                    s.dimensions.iter().map(|(k, v)| format!("{k}={v}")).collect();
                format!("{} {} {} {:?} [{}]", s.name, s.value, s.unit, s.kind, dims.join(","))
            })
            .collect();
        expect![[r#"
            RequestCount 10 Count Counter [LoadBalancer=app/web/50dc6c495c0c9188]
            HTTPCode_Target_2XX_Count 1 Count Counter [LoadBalancer=app/web/50dc6c495c0c9188]
            TargetResponseTime 0.003 Seconds Timing { count: 2 } [LoadBalancer=app/web/50dc6c495c0c9188]
            HTTPCode_ELB_5XX_Count 1 Count Counter [LoadBalancer=app/web/50dc6c495c0c9188]
            HTTPCode_ELB_503_Count 1 Count Counter [LoadBalancer=app/web/50dc6c495c0c9188]
            RequestCount 10 Count Counter [TargetGroup=targetgroup/web/73e2d6bc24d8a067,LoadBalancer=app/web/50dc6c495c0c9188]
            HealthyHostCount 1 Count Gauge [TargetGroup=targetgroup/web/73e2d6bc24d8a067,LoadBalancer=app/web/50dc6c495c0c9188]
            UnHealthyHostCount 1 Count Gauge [TargetGroup=targetgroup/web/73e2d6bc24d8a067,LoadBalancer=app/web/50dc6c495c0c9188]
            HealthyHostCount 1 Count Gauge [TargetGroup=targetgroup/web/73e2d6bc24d8a067,LoadBalancer=app/web/50dc6c495c0c9188,AvailabilityZone=us-east-1a]
            UnHealthyHostCount 1 Count Gauge [TargetGroup=targetgroup/web/73e2d6bc24d8a067,LoadBalancer=app/web/50dc6c495c0c9188,AvailabilityZone=us-east-1b]
            RequestCountPerTarget 10 Count Counter [TargetGroup=targetgroup/web/73e2d6bc24d8a067]
            RequestCountPerTarget 10 Count Counter [TargetGroup=targetgroup/web/73e2d6bc24d8a067,LoadBalancer=app/web/50dc6c495c0c9188]"#]]
        .assert_eq(&lines.join("\n"));
    }
}
