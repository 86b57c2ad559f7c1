//! The decisions of a group, as pure functions: which zone gets the next instance, which
//! instance a scale-in terminates (zone balance first, then the termination policies), and
//! how to rebalance zones.

use crate::model::Member;

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
}
