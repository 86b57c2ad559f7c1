//! Choosing a target: the group's algorithm, slow start, and stickiness cookies (`AWSALB`,
//! `AWSALBAPP-*`, `AWSALBTG`).

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;

use crate::config::{Algorithm, Target, TargetGroup, TargetSet};

/// How long ALB's own cookies live (fixed, whatever the stickiness duration). It is the
/// client's keeping of the cookie, not the stickiness: that goes stale by the issue time the
/// cookie carries and the group's stickiness duration (real time, scaled by the control
/// plane), and seven days outlast every stickiness duration AWS allows, so it is not scaled.
pub const COOKIE_LIFETIME: Duration = Duration::from_secs(7 * 24 * 3600);

pub fn now_secs() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

pub fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

/// An opaque cookie value naming a group and target, and when it was issued (milliseconds
/// since the epoch: on a time-scaled region a stickiness duration can be under a second).
pub fn encode_cookie(group: &str, target: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(format!("{group}|{target}|{}", now_ms()))
}

/// Whether a cookie issued at `issued` (milliseconds since the epoch) is within `duration`.
pub fn fresh(issued: u64, duration: Duration) -> bool {
    u128::from(now_ms().saturating_sub(issued)) <= duration.as_millis()
}

/// `(group, target, issued)` from a cookie value.
pub fn decode_cookie(value: &str) -> Option<(String, String, u64)> {
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(value.trim()).ok()?;
    let text = String::from_utf8(bytes).ok()?;
    let mut parts = text.splitn(3, '|');
    Some((parts.next()?.to_string(), parts.next()?.to_string(), parts.next()?.parse().ok()?))
}

/// The value of cookie `name` in the request's Cookie headers.
pub fn cookie<'h>(headers: &'h http::HeaderMap, name: &str) -> Option<&'h str> {
    headers
        .get_all(http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|pair| {
            let (k, v) = pair.trim().split_once('=')?;
            (k == name).then_some(v)
        })
}

/// The target a sticky cookie names, if it is still routable and the stickiness is fresh.
pub fn sticky_target(
    group: &TargetGroup,
    set: &TargetSet,
    value: &str,
    duration: Duration,
) -> Option<Arc<Target>> {
    let (g, target, issued) = decode_cookie(value)?;
    if g != group.id || !fresh(issued, duration) {
        return None;
    }
    set.routable.iter().find(|t| t.key() == target).cloned()
}

/// A target by the group's algorithm (slow-starting targets get their share), passing over
/// ejected outliers unless every target is one.
pub fn choose(group: &TargetGroup, set: &TargetSet) -> Option<Arc<Target>> {
    let first = choose_any(group, set)?;
    if group.outlier_errors.load(Ordering::Relaxed) == 0 || !first.ejected() {
        return Some(first);
    }
    let others: Vec<&Arc<Target>> = set.routable.iter().filter(|t| !t.ejected()).collect();
    match others.len() {
        0 => Some(first),
        n => Some(others[group.round_robin() % n].clone()),
    }
}

fn choose_any(group: &TargetGroup, set: &TargetSet) -> Option<Arc<Target>> {
    let targets = &set.routable;
    match targets.len() {
        0 => None,
        1 => Some(targets[0].clone()),
        n => match group.algorithm {
            Algorithm::LeastOutstanding => {
                let start = group.round_robin() % n;
                (0..n)
                    .map(|i| &targets[(start + i) % n])
                    .min_by_key(|t| t.in_flight.load(Ordering::Relaxed))
                    .cloned()
            }
            Algorithm::WeightedRandom => weighted(targets, fastrand::u32(..)),
            Algorithm::RoundRobin => {
                // Slow start: a target at weight w is taken w/1000 of its turns.
                for _ in 0..n * 2 {
                    let t = &targets[group.round_robin() % n];
                    let w = t.weight.load(Ordering::Relaxed);
                    if w >= 1000 || fastrand::u32(..1000) < w {
                        return Some(t.clone());
                    }
                }
                Some(targets[group.round_robin() % n].clone())
            }
        },
    }
}

fn weighted(targets: &[Arc<Target>], roll: u32) -> Option<Arc<Target>> {
    let total: u64 =
        targets.iter().map(|t| u64::from(t.weight.load(Ordering::Relaxed).max(1))).sum();
    let mut point = u64::from(roll) % total.max(1);
    for t in targets {
        let w = u64::from(t.weight.load(Ordering::Relaxed).max(1));
        if point < w {
            return Some(t.clone());
        }
        point -= w;
    }
    targets.last().cloned()
}

/// A forward's target group by weight (0 = never).
pub fn choose_group<T: Clone>(groups: &[(T, u32)]) -> Option<T> {
    let total: u32 = groups.iter().map(|(_, w)| *w).sum();
    if total == 0 {
        return groups.first().map(|(g, _)| g.clone());
    }
    let mut point = fastrand::u32(..total);
    for (g, w) in groups {
        if point < *w {
            return Some(g.clone());
        }
        point -= w;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Stickiness, TargetSet};

    fn group(algorithm: Algorithm, n: usize) -> (TargetGroup, TargetSet) {
        let tg = TargetGroup::new("targetgroup/tg/0", "tg0", algorithm, Stickiness::None, false);
        let routable: Vec<Arc<Target>> = (0..n)
            .map(|i| {
                Arc::new(Target::new(
                    &format!("i-{i}"),
                    80,
                    ([127, 0, 0, 1], 9000 + i as u16).into(),
                    "us-east-1a",
                ))
            })
            .collect();
        (tg, TargetSet { routable, fail_open: false })
    }

    #[test]
    fn round_robin_takes_turns() {
        let (tg, set) = group(Algorithm::RoundRobin, 3);
        let picks: Vec<String> = (0..6).map(|_| choose(&tg, &set).unwrap().id.clone()).collect();
        assert_eq!(picks, ["i-0", "i-1", "i-2", "i-0", "i-1", "i-2"]);
    }

    #[test]
    fn least_outstanding_prefers_the_idle() {
        let (tg, set) = group(Algorithm::LeastOutstanding, 3);
        set.routable[0].in_flight.store(5, Ordering::Relaxed);
        set.routable[2].in_flight.store(2, Ordering::Relaxed);
        for _ in 0..5 {
            assert_eq!(choose(&tg, &set).unwrap().id, "i-1");
        }
    }

    #[test]
    fn cookies_round_trip_and_go_stale() {
        let (tg, set) = group(Algorithm::RoundRobin, 2);
        let value = encode_cookie("tg0", "i-1:80");
        assert_eq!(sticky_target(&tg, &set, &value, Duration::from_secs(60)).unwrap().id, "i-1");
        let old = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(format!("tg0|i-1:80|{}", now_ms() - 120_000));
        assert!(sticky_target(&tg, &set, &old, Duration::from_secs(60)).is_none(), "stale");
        assert!(sticky_target(&tg, &set, "garbage", Duration::from_secs(60)).is_none());
        // Sub-second durations (a time-scaled region) are kept to the millisecond.
        let recent = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(format!("tg0|i-1:80|{}", now_ms() - 1_500));
        assert!(sticky_target(&tg, &set, &recent, Duration::from_secs(1)).is_none(), "stale");
        assert!(sticky_target(&tg, &set, &recent, Duration::from_secs(2)).is_some(), "fresh");
        assert!(
            sticky_target(&tg, &set, &encode_cookie("other", "i-1:80"), Duration::from_secs(60))
                .is_none()
        );
        let mut headers = http::HeaderMap::new();
        headers.insert(http::header::COOKIE, "a=1; AWSALB=xyz; b=2".parse().unwrap());
        assert_eq!(cookie(&headers, "AWSALB"), Some("xyz"));
    }

    #[test]
    fn weights_split_groups() {
        let groups = [("a", 0u32), ("b", 10)];
        for _ in 0..20 {
            assert_eq!(choose_group(&groups), Some("b"));
        }
    }
}
