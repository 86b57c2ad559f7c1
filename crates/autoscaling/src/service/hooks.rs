//! Lifecycle hooks: PutLifecycleHook, the wait for CompleteLifecycleAction or the heartbeat
//! timeout.

use std::time::Duration;

use tokio::sync::mpsc;

use super::*;
use crate::request::HookSpec;

impl AutoScaling {
    // ---- lifecycle hooks ----

    /// A hook as AWS keeps it: defaults filled in (HeartbeatTimeout 3600, DefaultResult
    /// ABANDON), timeouts and transitions checked.
    pub(super) fn hook_record(group: &str, spec: HookSpec) -> Result<HookRecord, AsgError> {
        let hook = HookRecord {
            group: group.to_string(),
            name: spec.name,
            transition: spec.transition,
            heartbeat_timeout: spec.heartbeat_timeout.unwrap_or(3600),
            default_result: spec.default_result.unwrap_or_else(|| "ABANDON".into()),
            notification_target: spec.notification_target,
            role: spec.role,
            metadata: spec.metadata,
        };
        if !(30..=7200).contains(&hook.heartbeat_timeout) {
            return Err(AsgError::validation(
                "HeartbeatTimeout must be between 30 and 7200 seconds",
            ));
        }
        if !matches!(
            hook.transition.as_str(),
            "autoscaling:EC2_INSTANCE_LAUNCHING" | "autoscaling:EC2_INSTANCE_TERMINATING"
        ) {
            return Err(AsgError::validation(format!(
                "Invalid Lifecycle Transition: {}",
                hook.transition
            )));
        }
        if !matches!(hook.default_result.as_str(), "CONTINUE" | "ABANDON") {
            return Err(AsgError::validation(format!(
                "Invalid value for DefaultResult: {}. Valid values are CONTINUE and ABANDON",
                hook.default_result
            )));
        }
        Ok(hook)
    }

    /// PutLifecycleHook (creates or replaces the hook).
    pub fn put_hook(&self, group: &str, spec: HookSpec) -> Result<HookRecord, AsgError> {
        self.group_or_err(group)?;
        let hook = AutoScaling::hook_record(group, spec)?;
        let others = self.hooks_of(group)?;
        if others.len() >= 50 && !others.iter().any(|h| h.name == hook.name) {
            return Err(AsgError::Api {
                code: "LimitExceeded",
                message: format!(
                    "Maximum number of lifecycle hooks (50) reached for AutoScalingGroup {group}"
                ),
            });
        }
        self.store.put(HOOKS, &format!("{}/{}", hook.group, hook.name), &hook)?;
        Ok(hook)
    }

    pub fn delete_hook(&self, group: &str, name: &str) -> Result<(), AsgError> {
        self.store.delete(HOOKS, &format!("{group}/{name}"))?;
        Ok(())
    }

    /// Waits for CompleteLifecycleAction (or the heartbeat timeout: the default result).
    pub(super) async fn wait_hook(&self, hook: &HookRecord, id: &str) -> String {
        let (tx, mut rx) = mpsc::unbounded_channel();
        let key = (id.to_string(), hook.name.clone());
        self.hooks.lock().insert(key.clone(), tx);
        let timeout = Duration::from_secs(hook.heartbeat_timeout);
        // The overall cap: 100 heartbeat timeouts or 48 hours.
        let cap =
            self.clock.deadline(timeout.saturating_mul(100).min(Duration::from_secs(48 * 3600)));
        let result = loop {
            tokio::select! {
                signal = rx.recv() => match signal {
                    Some(HookSignal::Complete(r)) => break r,
                    Some(HookSignal::Heartbeat) => {
                        if self.clock.instant() > cap { break hook.default_result.clone() }
                        continue;
                    }
                    None => break hook.default_result.clone(),
                },
                _ = self.clock.sleep(timeout) => break hook.default_result.clone(),
            }
        };
        self.hooks.lock().remove(&key);
        result
    }

    /// CompleteLifecycleAction.
    pub fn complete_lifecycle_action(
        &self,
        group: &str,
        hook: &str,
        id: &str,
        result: &str,
    ) -> Result<(), AsgError> {
        if !matches!(result, "CONTINUE" | "ABANDON") {
            return Err(AsgError::validation("LifecycleActionResult must be CONTINUE or ABANDON"));
        }
        self.group_or_err(group)?;
        let hooks = self.hooks.lock();
        let tx = hooks.get(&(id.to_string(), hook.to_string())).ok_or_else(|| {
            AsgError::validation(format!("No active Lifecycle Action found with instance ID {id}"))
        })?;
        let _ = tx.send(HookSignal::Complete(result.to_string()));
        Ok(())
    }

    /// RecordLifecycleActionHeartbeat: the timeout starts again.
    pub fn record_heartbeat(&self, group: &str, hook: &str, id: &str) -> Result<(), AsgError> {
        self.group_or_err(group)?;
        let hooks = self.hooks.lock();
        let tx = hooks.get(&(id.to_string(), hook.to_string())).ok_or_else(|| {
            AsgError::validation(format!("No active Lifecycle Action found with instance ID {id}"))
        })?;
        let _ = tx.send(HookSignal::Heartbeat);
        Ok(())
    }
}
