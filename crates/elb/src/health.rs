//! Target health as ELB keeps it: the states, their reason codes and descriptions, and the
//! transitions a probe result causes. Pure: the prober (in `service`) feeds results in.

use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum State {
    Initial,
    Healthy,
    Unhealthy,
    Unused,
    Draining,
    Unavailable,
}

impl State {
    pub fn as_str(self) -> &'static str {
        match self {
            State::Initial => "initial",
            State::Healthy => "healthy",
            State::Unhealthy => "unhealthy",
            State::Unused => "unused",
            State::Draining => "draining",
            State::Unavailable => "unavailable",
        }
    }
}

/// What one health check found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Probe {
    /// The status matched the matcher.
    Ok,
    /// An answer whose status is not in the matcher.
    Mismatch(u16),
    /// No answer within HealthCheckTimeoutSeconds.
    Timeout,
    /// The connection failed or the answer was not HTTP.
    Failed,
}

/// A target's health: state, reason code and description, and the streaks that move it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Health {
    pub state: State,
    pub reason: Option<String>,
    pub description: Option<String>,
    pub successes: u32,
    pub failures: u32,
}

/// Health-check thresholds of a target group.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Thresholds {
    pub healthy: u32,
    pub unhealthy: u32,
}

impl Health {
    fn with(state: State, reason: Option<&str>, description: Option<&str>) -> Health {
        Health {
            state,
            reason: reason.map(str::to_string),
            description: description.map(str::to_string),
            successes: 0,
            failures: 0,
        }
    }

    /// Just registered, no check yet.
    pub fn registering() -> Health {
        Health::with(
            State::Initial,
            Some("Elb.RegistrationInProgress"),
            Some("Target registration is in progress"),
        )
    }

    /// Checks have started on a new target.
    pub fn initial_checking() -> Health {
        Health::with(
            State::Initial,
            Some("Elb.InitialHealthChecking"),
            Some("Initial health checks in progress"),
        )
    }

    pub fn healthy() -> Health {
        Health::with(State::Healthy, None, None)
    }

    pub fn draining() -> Health {
        Health::with(
            State::Draining,
            Some("Target.DeregistrationInProgress"),
            Some("Target deregistration is in progress"),
        )
    }

    /// The target group receives no traffic (no listener rule forwards to it).
    pub fn not_in_use() -> Health {
        Health::with(
            State::Unused,
            Some("Target.NotInUse"),
            Some("Target group is not configured to receive traffic from the load balancer"),
        )
    }

    pub fn not_registered() -> Health {
        Health::with(
            State::Unused,
            Some("Target.NotRegistered"),
            Some("Target is not registered to the target group"),
        )
    }

    /// An instance target that is not running.
    pub fn invalid_state(instance_state: &str) -> Health {
        Health::with(
            State::Unused,
            Some("Target.InvalidState"),
            Some(&format!("Target is in the {instance_state} state")),
        )
    }

    pub fn checks_disabled() -> Health {
        Health::with(
            State::Unavailable,
            Some("Target.HealthCheckDisabled"),
            Some("Health checks are disabled"),
        )
    }

    fn failure_reason(probe: &Probe) -> (String, String) {
        match probe {
            Probe::Mismatch(code) => (
                "Target.ResponseCodeMismatch".into(),
                format!("Health checks failed with these codes: [{code}]"),
            ),
            Probe::Timeout => ("Target.Timeout".into(), "Request timed out".into()),
            _ => ("Target.FailedHealthChecks".into(), "Health checks failed".into()),
        }
    }

    /// Applies one probe result; returns whether the state changed.
    ///
    /// initial → healthy after one success, → unhealthy after `unhealthy` failures in a row;
    /// healthy → unhealthy after `unhealthy` failures; unhealthy → healthy after `healthy`
    /// successes. Other states ignore probes.
    pub fn observe(&mut self, probe: &Probe, t: Thresholds) -> bool {
        if !matches!(self.state, State::Initial | State::Healthy | State::Unhealthy) {
            return false;
        }
        let before = self.state;
        if *probe == Probe::Ok {
            self.successes += 1;
            self.failures = 0;
            let needed = if self.state == State::Initial { 1 } else { t.healthy };
            if self.state != State::Healthy && self.successes >= needed {
                *self = Health { successes: self.successes, ..Health::healthy() };
            }
        } else {
            self.failures += 1;
            self.successes = 0;
            let (reason, description) = Health::failure_reason(probe);
            if self.state == State::Unhealthy || self.failures >= t.unhealthy {
                self.state = State::Unhealthy;
                self.reason = Some(reason);
                self.description = Some(description);
            } else if self.state == State::Initial {
                // Still checking: the reason stays "initial health checks".
                self.reason = Some("Elb.InitialHealthChecking".into());
                self.description = Some("Initial health checks in progress".into());
            }
        }
        self.state != before
    }

    /// Whether new requests may go to the target (healthy, or checks disabled).
    pub fn routable(&self) -> bool {
        matches!(self.state, State::Healthy | State::Unavailable)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: Thresholds = Thresholds { healthy: 3, unhealthy: 2 };

    /// Runs a sequence of probes ('+' ok, 'x' failed, 't' timeout, digits: a status code
    /// mismatch of 5xx) from `start` and reports each state.
    fn run(start: Health, probes: &str) -> String {
        let mut h = start;
        let mut out = vec![format!("{} {}", h.state.as_str(), h.reason.as_deref().unwrap_or("-"))];
        for p in probes.chars() {
            let probe = match p {
                '+' => Probe::Ok,
                't' => Probe::Timeout,
                'x' => Probe::Failed,
                d => Probe::Mismatch(500 + d.to_digit(10).unwrap_or(2) as u16),
            };
            let changed = h.observe(&probe, T);
            out.push(format!(
                "{p} -> {}{} {}",
                h.state.as_str(),
                if changed { "*" } else { "" },
                h.description.as_deref().or(h.reason.as_deref()).unwrap_or("-")
            ));
        }
        out.join("\n")
    }

    #[test]
    fn a_new_target_is_healthy_after_one_success() {
        expect_test::expect![[r#"
            initial Elb.InitialHealthChecking
            + -> healthy* -"#]]
        .assert_eq(&run(Health::initial_checking(), "+"));
    }

    #[test]
    fn a_new_target_is_unhealthy_after_the_unhealthy_threshold() {
        expect_test::expect![[r#"
            initial Elb.InitialHealthChecking
            x -> initial Initial health checks in progress
            x -> unhealthy* Health checks failed"#]]
        .assert_eq(&run(Health::initial_checking(), "xx"));
    }

    #[test]
    fn healthy_to_unhealthy_needs_consecutive_failures() {
        expect_test::expect![[r#"
            healthy -
            2 -> healthy -
            + -> healthy -
            2 -> healthy -
            t -> unhealthy* Request timed out
            2 -> unhealthy Health checks failed with these codes: [502]"#]]
        .assert_eq(&run(Health::healthy(), "2+2t2"));
    }

    #[test]
    fn unhealthy_to_healthy_needs_the_healthy_threshold() {
        let mut start = Health::healthy();
        start.observe(&Probe::Failed, T);
        start.observe(&Probe::Failed, T);
        expect_test::expect![[r#"
            unhealthy Target.FailedHealthChecks
            + -> unhealthy Health checks failed
            + -> unhealthy Health checks failed
            x -> unhealthy Health checks failed
            + -> unhealthy Health checks failed
            + -> unhealthy Health checks failed
            + -> healthy* -"#]]
        .assert_eq(&run(start, "++x+++"));
    }

    #[test]
    fn other_states_ignore_probes() {
        for start in [
            Health::draining(),
            Health::not_in_use(),
            Health::checks_disabled(),
            Health::invalid_state("stopped"),
        ] {
            let mut h = start.clone();
            assert!(!h.observe(&Probe::Ok, T));
            assert_eq!(h, start);
        }
        assert_eq!(
            Health::invalid_state("stopped").description.as_deref(),
            Some("Target is in the stopped state")
        );
    }
}
