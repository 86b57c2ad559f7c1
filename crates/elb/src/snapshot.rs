//! Records into data-plane snapshots: a listener's rules (priority order, default rule last)
//! with their conditions and terminal actions, and the load balancer's settings.
//!
//! The data plane runs on real time, so every duration a user sets in AWS time (idle timeout,
//! stickiness) is turned into real time here, through the clock.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use clock::Clock;
use elb_proxy::matcher::{Pattern, SourceNet};
use elb_proxy::metrics::Counters;
use elb_proxy::{Action, Condition, Forward, Redirect, Rule, TargetGroup, XffMode};
use serde_json::Value as Json;

use crate::model::{ListenerRecord, LoadBalancerRecord, RuleRecord, flag, number, strings, text};

/// The load balancer's settings, with the idle timeout in real time.
pub fn load_balancer(
    record: &LoadBalancerRecord,
    counters: Arc<Counters>,
    access_log: Option<elb_proxy::AccessLog>,
    clock: &Clock,
) -> elb_proxy::LoadBalancer {
    let idle = record
        .attribute("idle_timeout.timeout_seconds")
        .and_then(|v| v.parse().ok())
        .unwrap_or(60u64);
    let xff = match record.attribute("routing.http.xff_header_processing.mode") {
        Some("preserve") => XffMode::Preserve,
        Some("remove") => XffMode::Remove,
        _ => XffMode::Append,
    };
    elb_proxy::LoadBalancer {
        full_name: record.full_name.clone(),
        name: record.name.clone(),
        idle_timeout: clock.real_duration(Duration::from_secs(idle.max(1))),
        xff,
        xff_client_port: record.flag("routing.http.xff_client_port.enabled", false),
        preserve_host: record.flag("routing.http.preserve_host_header.enabled", false),
        retry_idempotent: record.flag(crate::RETRY_ATTRIBUTE, false),
        counters,
        access_log,
    }
}

/// The target groups a set of actions forwards to.
pub fn forwarded_groups(actions: &[Json]) -> Vec<String> {
    let mut out = Vec::new();
    for a in actions {
        if let Some(arn) = a.get("TargetGroupArn").and_then(Json::as_str) {
            out.push(arn.to_string());
        }
        let listed =
            a.pointer("/ForwardConfig/TargetGroups").and_then(Json::as_array).into_iter().flatten();
        out.extend(listed.filter_map(|g| g.get("TargetGroupArn")?.as_str().map(str::to_string)));
    }
    out.sort();
    out.dedup();
    out
}

/// Values of a condition: `<Config>.Values` or the legacy top-level `Values`.
fn values(condition: &Json, config: &str) -> Vec<String> {
    let inner = condition.get(config).map(|c| strings(c, "Values")).unwrap_or_default();
    if inner.is_empty() { strings(condition, "Values") } else { inner }
}

pub fn condition(c: &Json) -> Option<Condition> {
    let field = c.get("Field")?.as_str()?;
    Some(match field {
        "host-header" => Condition::Host(
            values(c, "HostHeaderConfig").iter().map(|v| Pattern::new(v, true)).collect(),
        ),
        "path-pattern" => Condition::Path(
            values(c, "PathPatternConfig").iter().map(|v| Pattern::new(v, false)).collect(),
        ),
        "http-header" => {
            let config = c.get("HttpHeaderConfig")?;
            let name =
                http::HeaderName::from_bytes(text(config, "HttpHeaderName")?.as_bytes()).ok()?;
            Condition::Header {
                name,
                values: strings(config, "Values").iter().map(|v| Pattern::new(v, true)).collect(),
            }
        }
        "http-request-method" => Condition::Method(
            values(c, "HttpRequestMethodConfig")
                .iter()
                .filter_map(|m| http::Method::from_bytes(m.as_bytes()).ok())
                .collect(),
        ),
        "query-string" => {
            let pairs = c
                .pointer("/QueryStringConfig/Values")
                .and_then(Json::as_array)
                .into_iter()
                .flatten();
            Condition::Query(
                pairs
                    .filter_map(|kv| {
                        Some((
                            text(kv, "Key").map(|k| Pattern::new(&k, true)),
                            Pattern::new(&text(kv, "Value")?, true),
                        ))
                    })
                    .collect(),
            )
        }
        "source-ip" => Condition::SourceIp(
            values(c, "SourceIpConfig").iter().filter_map(|v| SourceNet::parse(v)).collect(),
        ),
        _ => return None,
    })
}

/// The terminal action of a rule (the last forward, redirect or fixed-response by Order),
/// with the target group stickiness duration in real time.
pub fn action(
    actions: &[Json],
    group: &dyn Fn(&str) -> Option<Arc<TargetGroup>>,
    clock: &Clock,
) -> Option<Action> {
    let mut sorted: Vec<&Json> = actions.iter().collect();
    sorted.sort_by_key(|a| number(a, "Order").unwrap_or(u64::MAX));
    let terminal = sorted.into_iter().rev().find(|a| {
        matches!(
            a.get("Type").and_then(Json::as_str),
            Some("forward" | "redirect" | "fixed-response")
        )
    })?;
    match terminal.get("Type")?.as_str()? {
        "forward" => {
            let mut groups = Vec::new();
            if let Some(listed) =
                terminal.pointer("/ForwardConfig/TargetGroups").and_then(Json::as_array)
            {
                for g in listed {
                    let arn = text(g, "TargetGroupArn")?;
                    let weight = number(g, "Weight").unwrap_or(1) as u32;
                    groups.push((group(&arn)?, weight));
                }
            }
            if groups.is_empty() {
                groups.push((group(&text(terminal, "TargetGroupArn")?)?, 1));
            }
            let stickiness = terminal.pointer("/ForwardConfig/TargetGroupStickinessConfig");
            let group_stickiness = stickiness.filter(|s| flag(s, "Enabled")).map(|s| {
                clock.real_duration(Duration::from_secs(
                    number(s, "DurationSeconds").unwrap_or(3600),
                ))
            });
            Some(Action::Forward(Forward { groups, group_stickiness }))
        }
        "redirect" => {
            let c = terminal.get("RedirectConfig")?;
            Some(Action::Redirect(Redirect {
                protocol: text(c, "Protocol"),
                host: text(c, "Host"),
                port: text(c, "Port"),
                path: text(c, "Path"),
                query: text(c, "Query"),
                status: if text(c, "StatusCode").as_deref() == Some("HTTP_302") {
                    302
                } else {
                    301
                },
            }))
        }
        "fixed-response" => {
            let c = terminal.get("FixedResponseConfig")?;
            Some(Action::Fixed {
                status: text(c, "StatusCode").and_then(|s| s.parse().ok()).unwrap_or(200),
                content_type: text(c, "ContentType").unwrap_or_else(|| "text/plain".into()),
                body: Bytes::from(text(c, "MessageBody").unwrap_or_default()),
            })
        }
        _ => None,
    }
}

/// A listener's snapshot: its rules by priority, then its default actions.
pub fn listener(
    lb: Arc<elb_proxy::LoadBalancer>,
    record: &ListenerRecord,
    rules: &[RuleRecord],
    group: &dyn Fn(&str) -> Option<Arc<TargetGroup>>,
    clock: &Clock,
) -> elb_proxy::Listener {
    let mut ordered: Vec<&RuleRecord> =
        rules.iter().filter(|r| r.listener_arn == record.arn).collect();
    ordered.sort_by_key(|r| r.priority);
    let mut out = Vec::new();
    for r in ordered {
        let conditions: Vec<Condition> = r.conditions.iter().filter_map(condition).collect();
        if conditions.len() != r.conditions.len() {
            tracing::warn!(rule = %r.arn, "a condition of this rule is not understood; the rule is skipped");
            continue;
        }
        if let Some(action) = action(&r.actions, group, clock) {
            out.push(Rule { priority: r.priority, conditions, action });
        }
    }
    if let Some(action) = action(&record.default_actions, group, clock) {
        out.push(Rule { priority: 0, conditions: Vec::new(), action });
    }
    elb_proxy::Listener { lb, port: record.port, https: record.protocol == "HTTPS", rules: out }
}

#[cfg(test)]
mod tests {
    use super::*;
    use elb_proxy::{Algorithm, Stickiness};
    use serde_json::json;

    #[test]
    fn target_group_stickiness_is_scaled_to_real_time() {
        let clock = Clock::new(60.0);
        let tg = Arc::new(TargetGroup::new(
            "targetgroup/a/1",
            "1",
            Algorithm::RoundRobin,
            Stickiness::None,
            false,
        ));
        let group = |_: &str| Some(tg.clone());
        let actions = [json!({
            "Type": "forward",
            "ForwardConfig": {
                "TargetGroups": [{"TargetGroupArn": "a", "Weight": 1}],
                "TargetGroupStickinessConfig": {"Enabled": "true", "DurationSeconds": 120},
            },
        })];
        let Some(Action::Forward(forward)) = action(&actions, &group, &clock) else {
            panic!("not a forward")
        };
        assert_eq!(
            forward.group_stickiness,
            Some(Duration::from_secs(2)),
            "120 AWS seconds at scale 60"
        );
    }
}
