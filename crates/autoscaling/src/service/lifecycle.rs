//! Instance lifecycles: Pending → (launch hooks) → registered → InService, and InService →
//! Terminating (deregistered, drained) → (terminate hooks) → terminated.

use super::*;

impl AutoScaling {
    // ---- instance lifecycles ----

    pub(super) fn spawn_enter_service(&self, group: &str, id: &str) {
        self.spawn_enter_service_with(group, id, None);
    }

    /// Pending → (launch hooks) → registered with the target groups → InService, in the
    /// background.
    pub(super) fn spawn_enter_service_with(
        &self,
        group: &str,
        id: &str,
        activity: Option<Activity>,
    ) {
        let me = self.me.clone();
        let (group, id) = (group.to_string(), id.to_string());
        tokio::spawn(async move {
            let Some(this) = me.upgrade() else { return };
            if let Err(e) = this.enter_service(&group, &id, activity).await {
                tracing::error!(
                    group,
                    instance = id,
                    "cannot record the instance entering service: {e}"
                );
            }
            this.wake(&group);
        });
    }

    async fn enter_service(
        &self,
        group: &str,
        id: &str,
        activity: Option<Activity>,
    ) -> Result<(), AsgError> {
        let hooks: Vec<HookRecord> =
            self.hooks_of(group)?.into_iter().filter(HookRecord::launching).collect();
        for hook in hooks {
            self.update_member(group, id, |m| m.lifecycle = Lifecycle::PendingWait)?;
            let result = self.wait_hook(&hook, id).await;
            if result != "CONTINUE" {
                // ABANDON: the instance is terminated and replaced.
                tracing::info!(
                    group,
                    instance = id,
                    hook = hook.name,
                    "launch abandoned by lifecycle hook"
                );
                self.update_member(group, id, |m| m.lifecycle = Lifecycle::Terminating)?;
                let terminated = self.ec2.terminate(id).await;
                self.update(group, |g| g.instances.retain(|m| m.id != id))?;
                if let Some(a) = activity {
                    let mut message = format!(
                        "Instance failed to complete user's Lifecycle Action: Lifecycle Action with token for instance {id} was abandoned."
                    );
                    if let Err(e) = terminated {
                        message.push_str(&format!(" {e}"));
                    }
                    self.finish(a, false, Some(message))?;
                }
                return Ok(());
            }
            self.update_member(group, id, |m| m.lifecycle = Lifecycle::Pending)?;
        }
        let Some(g) = self.group(group)? else { return Ok(()) };
        if !g.suspended("AddToLoadBalancer") {
            for tg in self.target_groups_of(&g)? {
                if let Err(e) = self.elb.register(&tg, &[id.to_string()]) {
                    tracing::warn!(group, instance = id, "cannot register with {tg}: {e}");
                }
            }
        }
        let now = self.now();
        self.update_member(group, id, |m| {
            if matches!(m.lifecycle, Lifecycle::Pending | Lifecycle::PendingWait) {
                m.lifecycle = Lifecycle::InService;
                m.in_service_at = Some(now);
            }
        })?;
        if let Some(a) = activity {
            self.finish(a, true, None)?;
        }
        Ok(())
    }

    /// InService → Terminating (deregistered, drained) → (terminate hooks) → terminated. The
    /// Terminating state is recorded before this returns; the rest goes on in the background.
    pub(super) fn begin_termination(
        &self,
        group: &str,
        member: &Member,
        activity: Activity,
    ) -> Result<(), AsgError> {
        self.update_member(group, &member.id, |m| m.lifecycle = Lifecycle::Terminating)?;
        let me = self.me.clone();
        let (group, id) = (group.to_string(), member.id.clone());
        tokio::spawn(async move {
            let Some(this) = me.upgrade() else { return };
            if let Err(e) = this.terminate_member(&group, &id, activity).await {
                tracing::error!(group, instance = id, "cannot record the termination: {e}");
            }
            this.wake(&group);
        });
        Ok(())
    }

    async fn terminate_member(
        &self,
        group: &str,
        id: &str,
        activity: Activity,
    ) -> Result<(), AsgError> {
        if let Some(g) = self.group(group)? {
            for tg in &self.target_groups_of(&g)? {
                if self.elb.targets(tg)?.iter().any(|(t, _)| t == id)
                    && let Err(e) = self.elb.deregister(tg, &[id.to_string()])
                {
                    tracing::warn!(group, instance = id, "cannot deregister from {tg}: {e}");
                }
            }
            self.elb.wait_drained(id).await;
        }
        let hooks: Vec<HookRecord> =
            self.hooks_of(group)?.into_iter().filter(|h| !h.launching()).collect();
        for hook in hooks {
            self.update_member(group, id, |m| m.lifecycle = Lifecycle::TerminatingWait)?;
            self.wait_hook(&hook, id).await;
        }
        let result = self.ec2.terminate(id).await;
        self.update(group, |g| g.instances.retain(|m| m.id != id))?;
        self.finish(activity, result.is_ok(), result.err().map(|e| e.to_string()))
    }
}
