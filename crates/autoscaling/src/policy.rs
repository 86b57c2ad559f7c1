//! The decisions of a group, as pure functions: which zone gets the next instance, which
//! instance a scale-in terminates (zone balance first, then the termination policies), and
//! how to rebalance zones.

use crate::model::{Member, Step};

/// The zone for the next launch: the enabled zone with the fewest instances (ties: the
/// first in the group's order), skipping zones in `avoid` (launches failing there).
pub fn launch_zone<'z>(
    zones: &'z [String],
    members: &[&Member],
    avoid: &[String],
) -> Option<&'z String> {
    zones
        .iter()
        .filter(|z| !avoid.contains(z))
        .min_by_key(|z| members.iter().filter(|m| &m.zone == *z).count())
}

/// The instance a scale-in terminates: in the zone with the most instances (protected ones
/// count) that has an unprotected one, the first the policies leave.
pub fn scale_in_victim<'m>(
    members: &[&'m Member],
    policies: &[String],
    current_launch: &str,
    now: i64,
) -> Option<&'m Member> {
    let mut zones: Vec<&str> = members.iter().map(|m| m.zone.as_str()).collect();
    zones.sort();
    zones.dedup();
    let count = |z: &str| members.iter().filter(|m| m.zone == z).count();
    let zone = zones
        .iter()
        .filter(|z| members.iter().any(|m| m.zone == **z && !m.protected))
        .max_by(|a, b| count(a).cmp(&count(b)).then_with(|| b.cmp(a)))?;
    let candidates: Vec<&Member> =
        members.iter().filter(|m| m.zone == *zone && !m.protected).copied().collect();
    apply_policies(candidates, policies, current_launch, now).into_iter().next()
}

/// Narrows candidates by each policy in turn (`Default` last when not named).
pub fn apply_policies<'m>(
    mut candidates: Vec<&'m Member>,
    policies: &[String],
    current_launch: &str,
    now: i64,
) -> Vec<&'m Member> {
    let mut order: Vec<&str> = policies.iter().map(String::as_str).collect();
    if !order.contains(&"Default") {
        order.push("Default");
    }
    for policy in order {
        if candidates.len() <= 1 {
            break;
        }
        candidates = match policy {
            "OldestInstance" => extremes(candidates, |m| -m.launched_at),
            "NewestInstance" => extremes(candidates, |m| m.launched_at),
            "OldestLaunchConfiguration" => {
                let lc: Vec<&Member> = candidates
                    .iter()
                    .filter(|m| m.launched_from.starts_with("lc:"))
                    .copied()
                    .collect();
                if lc.is_empty() { candidates } else { lc }
            }
            "OldestLaunchTemplate" => {
                let outdated: Vec<&Member> = candidates
                    .iter()
                    .filter(|m| m.launched_from != current_launch)
                    .copied()
                    .collect();
                if outdated.is_empty() {
                    candidates
                } else {
                    extremes(outdated, |m| -version_of(&m.launched_from))
                }
            }
            "ClosestToNextInstanceHour" => {
                extremes(candidates, |m| (now - m.launched_at).rem_euclid(3600))
            }
            "Default" => {
                // Outdated first: a launch configuration, then another template, then the
                // oldest version of the current one; then (billing hours being gone) by chance.
                let current_template = current_launch.split(':').next().unwrap_or("");
                let tiers: [&dyn Fn(&Member) -> bool; 3] = [
                    &|m: &Member| {
                        m.launched_from.starts_with("lc:") && !current_launch.starts_with("lc:")
                    },
                    &|m: &Member| {
                        !m.launched_from.starts_with(current_template)
                            && !m.launched_from.starts_with("lc:")
                    },
                    &|m: &Member| m.launched_from != current_launch,
                ];
                let mut chosen = None;
                for tier in tiers {
                    let matched: Vec<&Member> =
                        candidates.iter().filter(|m| tier(m)).copied().collect();
                    if !matched.is_empty() {
                        chosen = Some(extremes(matched, |m| -version_of(&m.launched_from)));
                        break;
                    }
                }
                match chosen {
                    Some(c) => c,
                    None => {
                        let pick = fastrand::usize(..candidates.len());
                        vec![candidates[pick]]
                    }
                }
            }
            _ => candidates,
        };
    }
    candidates
}

/// The members with the greatest `key`.
fn extremes(candidates: Vec<&Member>, key: impl Fn(&Member) -> i64) -> Vec<&Member> {
    let Some(best) = candidates.iter().map(|m| key(m)).max() else { return candidates };
    candidates.into_iter().filter(|m| key(m) == best).collect()
}

fn version_of(launched_from: &str) -> i64 {
    launched_from.rsplit(':').next().and_then(|v| v.parse().ok()).unwrap_or(0)
}

/// Whether the group's zones are out of balance (more than one apart), and if so the zone
/// short of instances and the one with too many.
pub fn imbalance<'z>(
    zones: &'z [String],
    members: &[&Member],
    avoid: &[String],
) -> Option<(&'z String, &'z String)> {
    let usable: Vec<&String> = zones.iter().filter(|z| !avoid.contains(z)).collect();
    let count = |z: &String| members.iter().filter(|m| &m.zone == z).count();
    let low = usable.iter().min_by_key(|z| count(z))?;
    let high = zones.iter().max_by_key(|z| count(z))?;
    (count(high) > count(low) + 1).then_some((*low, high))
}

/// The capacity a simple or step adjustment asks for, as AWS computes it: `ChangeInCapacity`
/// adds, `ExactCapacity` sets, `PercentChangeInCapacity` adds a percentage of `current` rounded
/// as AWS rounds it (above 1 down, 12.7 -> 12; between 0 and 1 up to 1; between -1 and 0 down
/// to -1; below -1 toward zero, -6.67 -> -6), at least `min_magnitude` away when given. The
/// result stays within [min, max]. `None` for an adjustment type AWS does not have.
pub fn adjusted_capacity(
    current: u32,
    adjustment_type: &str,
    adjustment: i32,
    min_magnitude: Option<i32>,
    min: u32,
    max: u32,
) -> Option<u32> {
    let current_i = i64::from(current);
    let target = match adjustment_type {
        "ChangeInCapacity" => current_i + i64::from(adjustment),
        "ExactCapacity" => i64::from(adjustment),
        "PercentChangeInCapacity" => {
            let raw = current as f64 * f64::from(adjustment) / 100.0;
            let mut change = if raw >= 1.0 {
                raw.floor() as i64
            } else if raw > 0.0 {
                1
            } else if raw == 0.0 {
                0
            } else if raw > -1.0 {
                -1
            } else {
                raw.trunc() as i64
            };
            if let Some(m) = min_magnitude.map(i64::from)
                && change != 0
                && change.abs() < m
            {
                change = m * change.signum();
            }
            current_i + change
        }
        _ => return None,
    };
    Some(target.clamp(i64::from(min), i64::from(max.max(min))) as u32)
}

/// The step of a step scaling policy that a metric value chooses, its bounds relative to the
/// alarm's threshold: above the threshold a step's lower bound is inclusive and its upper
/// exclusive; below it the other way round. A missing bound is infinite.
pub fn step_for(steps: &[Step], metric: f64, threshold: f64) -> Option<&Step> {
    let d = metric - threshold;
    let (lo, hi) = (f64::NEG_INFINITY, f64::INFINITY);
    steps.iter().find(|s| {
        let (l, u) = (s.lower.unwrap_or(lo), s.upper.unwrap_or(hi));
        if d >= 0.0 { l <= d && d < u } else { l < d && d <= u }
    })
}

/// The capacity a target tracking policy asks for: `ceil(current × metric / target)`, which
/// rounds as AWS does (adding 1.5 instances adds 2, removing 1.5 removes 1). Not clamped; a
/// target that is not positive asks for no change.
pub fn tracking_capacity(current: u32, metric: f64, target: f64) -> u32 {
    if target.is_nan() || target <= 0.0 || !metric.is_finite() {
        return current;
    }
    let wanted = f64::from(current) * metric / target;
    // A hair below an integer is that integer (3 × 70 / 70 must not become 4).
    (wanted - 1e-9).ceil().clamp(0.0, f64::from(u32::MAX)) as u32
}

/// A step policy's metric over the alarm's datapoints by its MetricAggregationType (`Average`,
/// `Minimum`, `Maximum`); `None` without datapoints or for another aggregation.
pub fn aggregate(kind: &str, values: &[f64]) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    match kind {
        "Average" => Some(values.iter().sum::<f64>() / values.len() as f64),
        "Minimum" => values.iter().copied().reduce(f64::min),
        "Maximum" => values.iter().copied().reduce(f64::max),
        _ => None,
    }
}

/// Checks step adjustments as AWS does: no gaps, no overlaps, at most one step without a
/// lower bound and one without an upper bound, never a step without both.
pub fn check_steps(steps: &[Step]) -> Result<(), String> {
    if steps.is_empty() {
        return Err("StepAdjustments must be specified for a StepScaling policy".into());
    }
    if steps.len() > 20 {
        return Err("The maximum number of step adjustments (20) has been exceeded".into());
    }
    if steps.iter().any(|s| s.lower.is_none() && s.upper.is_none()) {
        return Err("A step adjustment cannot have both MetricIntervalLowerBound and MetricIntervalUpperBound null".into());
    }
    for s in steps {
        if let (Some(l), Some(u)) = (s.lower, s.upper)
            && l >= u
        {
            return Err(format!(
                "MetricIntervalLowerBound ({l}) must be less than MetricIntervalUpperBound ({u})"
            ));
        }
    }
    let mut sorted: Vec<&Step> = steps.iter().collect();
    sorted.sort_by(|a, b| {
        a.lower.unwrap_or(f64::NEG_INFINITY).total_cmp(&b.lower.unwrap_or(f64::NEG_INFINITY))
    });
    if sorted.iter().skip(1).any(|s| s.lower.is_none()) {
        return Err("Only one step adjustment can have a null MetricIntervalLowerBound".into());
    }
    for pair in sorted.windows(2) {
        match (pair[0].upper, pair[1].lower) {
            (Some(u), Some(l)) if u == l => {}
            (Some(u), Some(l)) if u > l => {
                return Err("Step adjustments must not overlap".into());
            }
            (None, _) => {
                return Err(
                    "Only one step adjustment can have a null MetricIntervalUpperBound".into()
                );
            }
            _ => return Err("Step adjustments must not have gaps between them".into()),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Lifecycle;

    fn member(id: &str, zone: &str, from: &str, at: i64) -> Member {
        Member {
            id: id.into(),
            zone: zone.into(),
            subnet: None,
            lifecycle: Lifecycle::InService,
            healthy: true,
            launched_from: from.into(),
            protected: false,
            launched_at: at,
            in_service_at: Some(at),
        }
    }

    fn zones() -> Vec<String> {
        vec!["us-east-1a".into(), "us-east-1b".into()]
    }

    #[test]
    fn launches_go_to_the_emptier_zone_and_around_failing_ones() {
        let a = member("i-1", "us-east-1a", "lt-1:1", 0);
        let members = vec![&a];
        assert_eq!(launch_zone(&zones(), &members, &[]).unwrap(), "us-east-1b");
        assert_eq!(launch_zone(&zones(), &members, &["us-east-1b".into()]).unwrap(), "us-east-1a");
        assert_eq!(launch_zone(&zones(), &[], &[]).unwrap(), "us-east-1a");
    }

    #[test]
    fn scale_in_takes_from_the_fuller_zone_then_the_outdated_instance() {
        let ms = [
            member("i-a1", "us-east-1a", "lt-1:2", 10),
            member("i-a2", "us-east-1a", "lt-1:1", 20),
            member("i-a3", "us-east-1a", "lt-1:2", 30),
            member("i-b1", "us-east-1b", "lt-1:1", 5),
        ];
        let refs: Vec<&Member> = ms.iter().collect();
        let victim = scale_in_victim(&refs, &["Default".into()], "lt-1:2", 100).unwrap();
        assert_eq!(victim.id, "i-a2", "zone a has more; its oldest version goes");
        let victim = scale_in_victim(&refs, &["NewestInstance".into()], "lt-1:2", 100).unwrap();
        assert_eq!(victim.id, "i-a3");
        let victim = scale_in_victim(&refs, &["OldestInstance".into()], "lt-1:2", 100).unwrap();
        assert_eq!(victim.id, "i-a1");
    }

    #[test]
    fn protected_instances_are_never_chosen_but_count_for_balance() {
        let mut ms = [
            member("i-a1", "us-east-1a", "lt-1:1", 1),
            member("i-a2", "us-east-1a", "lt-1:1", 2),
            member("i-b1", "us-east-1b", "lt-1:1", 3),
        ];
        ms[0].protected = true;
        ms[1].protected = true;
        let refs: Vec<&Member> = ms.iter().collect();
        assert_eq!(scale_in_victim(&refs, &[], "lt-1:1", 10).unwrap().id, "i-b1");
    }

    #[test]
    fn a_launch_configuration_instance_is_outdated_under_a_template() {
        let ms =
            [member("i-1", "us-east-1a", "lt-1:3", 1), member("i-2", "us-east-1a", "lc:old", 2)];
        let refs: Vec<&Member> = ms.iter().collect();
        assert_eq!(scale_in_victim(&refs, &[], "lt-1:3", 10).unwrap().id, "i-2");
    }

    #[test]
    fn imbalance_is_more_than_one_apart() {
        let ms = [
            member("i-1", "us-east-1a", "x", 1),
            member("i-2", "us-east-1a", "x", 2),
            member("i-3", "us-east-1a", "x", 3),
        ];
        let refs: Vec<&Member> = ms.iter().collect();
        assert_eq!(
            imbalance(&zones(), &refs, &[]).map(|(l, h)| (l.as_str(), h.as_str())),
            Some(("us-east-1b", "us-east-1a"))
        );
        assert_eq!(imbalance(&zones(), &refs[..1], &[]), None);
        assert_eq!(
            imbalance(&zones(), &refs, &["us-east-1b".into()]),
            None,
            "the short zone is failing"
        );
    }

    #[test]
    fn adjustments_compute_capacity_as_aws_does() {
        // (current, type, adjustment, min magnitude, min, max) -> new capacity
        type Case = (u32, &'static str, i32, Option<i32>, u32, u32, u32);
        let cases: &[Case] = &[
            (2, "ChangeInCapacity", 2, None, 0, 10, 4),
            (2, "ChangeInCapacity", -5, None, 1, 10, 1),
            (2, "ChangeInCapacity", 20, None, 0, 10, 10),
            (2, "ExactCapacity", 7, None, 0, 10, 7),
            (2, "ExactCapacity", 0, None, 1, 10, 1),
            (10, "PercentChangeInCapacity", 127, None, 0, 100, 22), // 12.7 -> 12
            (10, "PercentChangeInCapacity", 5, None, 0, 100, 11),   // 0.5 -> 1
            (10, "PercentChangeInCapacity", -5, None, 0, 100, 9),   // -0.5 -> -1
            (15, "PercentChangeInCapacity", -45, None, 0, 100, 9),  // -6.75 -> -6
            (4, "PercentChangeInCapacity", 25, Some(2), 0, 100, 6), // 1, at least 2
            (4, "PercentChangeInCapacity", -25, Some(2), 0, 100, 2),
            (0, "PercentChangeInCapacity", 50, Some(2), 0, 100, 0), // 0 stays 0
            (10, "PercentChangeInCapacity", 100, None, 0, 15, 15),
        ];
        for &(current, kind, adj, mag, min, max, want) in cases {
            assert_eq!(
                adjusted_capacity(current, kind, adj, mag, min, max),
                Some(want),
                "{current} {kind} {adj} {mag:?} [{min},{max}]"
            );
        }
        assert_eq!(adjusted_capacity(2, "Doubling", 2, None, 0, 10), None);
    }

    #[test]
    fn target_tracking_rounds_as_aws_does() {
        // (current, metric, target) -> capacity asked for
        let cases = [
            (2, 90.0, 50.0, 4),  // 3.6 -> 4
            (2, 75.0, 50.0, 3),  // exactly 3
            (3, 70.0, 70.0, 3),  // no change, no float noise
            (2, 87.5, 50.0, 4),  // adding 1.5 adds 2
            (4, 31.25, 50.0, 3), // 2.5: removing 1.5 removes 1
            (4, 0.0, 50.0, 0),   // real zeros can scale to MinSize (clamped by the caller)
            (4, 60.0, 0.0, 4),   // no target, no change
        ];
        for (current, metric, target, want) in cases {
            assert_eq!(
                tracking_capacity(current, metric, target),
                want,
                "{current} {metric} {target}"
            );
        }
        assert_eq!(aggregate("Average", &[40.0, 60.0, 80.0]), Some(60.0));
        assert_eq!(aggregate("Minimum", &[40.0, 60.0, 80.0]), Some(40.0));
        assert_eq!(aggregate("Maximum", &[40.0, 60.0, 80.0]), Some(80.0));
        assert_eq!(aggregate("Average", &[]), None);
        assert_eq!(aggregate("Median", &[1.0]), None);
    }

    #[test]
    fn a_metric_value_chooses_its_step() {
        let step =
            |lower: Option<f64>, upper: Option<f64>, adjustment| Step { lower, upper, adjustment };
        // The guide's example: threshold 50; [0,10) -> 0, [10,20) -> +10 %, [20,inf) -> +30 %.
        let up = [
            step(Some(0.0), Some(10.0), 0),
            step(Some(10.0), Some(20.0), 10),
            step(Some(20.0), None, 30),
        ];
        check_steps(&up).unwrap();
        let chosen = |steps: &[Step], metric| step_for(steps, metric, 50.0).map(|s| s.adjustment);
        assert_eq!(chosen(&up, 50.0), Some(0));
        assert_eq!(chosen(&up, 60.0), Some(10), "the lower bound is inclusive above");
        assert_eq!(chosen(&up, 75.0), Some(30));
        assert_eq!(chosen(&up, 40.0), None);
        let down = [step(None, Some(-10.0), -2), step(Some(-10.0), Some(0.0), -1)];
        check_steps(&down).unwrap();
        assert_eq!(chosen(&down, 40.0), Some(-2), "the upper bound is inclusive below");
        assert_eq!(chosen(&down, 45.0), Some(-1));
        for (steps, error) in [
            (vec![step(Some(0.0), Some(10.0), 1), step(Some(20.0), None, 2)], "gaps"),
            (vec![step(Some(0.0), Some(20.0), 1), step(Some(10.0), None, 2)], "overlap"),
            (vec![step(None, None, 1)], "both"),
            (
                vec![step(None, Some(0.0), 1), step(None, Some(5.0), 2)],
                "null MetricIntervalLowerBound",
            ),
        ] {
            let e = check_steps(&steps).unwrap_err();
            assert!(e.contains(error), "{e}");
        }
    }
}
