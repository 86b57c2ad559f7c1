//! Instance refresh (StartInstanceRefresh): replaces a group's instances in batches bounded by
//! MinHealthyPercentage (and MaxHealthyPercentage above 100 to launch before terminating),
//! waiting for each batch to be healthy and warmed up, pausing at checkpoints; cancel and
//! rollback (by request, or automatically on failure with AutoRollback).

use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::{AsgError, AutoScaling, Replace, cause_time};
use crate::model::*;

fn api(code: &'static str, message: impl Into<String>) -> AsgError {
    AsgError::Api { code, message: message.into() }
}

/// Batch size and instances kept in service for a refresh of a group of `desired`: AWS
/// replaces `desired - ceil(desired * MinHealthy%)` at a time (at least one), or launches up
/// to `floor(desired * MaxHealthy%) - desired` ahead when MaxHealthyPercentage is above 100.
pub fn refresh_batches(desired: u32, prefs: &RefreshPreferences) -> (u32, u32, bool) {
    let keep = (u64::from(desired) * u64::from(prefs.min_healthy)).div_ceil(100) as u32;
    match prefs.max_healthy.filter(|m| *m > 100) {
        Some(max) => {
            let ceiling = (u64::from(desired) * u64::from(max) / 100) as u32;
            let batch = ceiling.saturating_sub(keep).max(1);
            (batch, keep, true)
        }
        None => (desired.saturating_sub(keep).max(1), keep.min(desired.saturating_sub(1)), false),
    }
}

impl AutoScaling {
    fn refresh_key(r: &RefreshRecord) -> String {
        format!("{}/{}/{}", r.group, r.start, r.id)
    }

    pub(super) fn save_refresh(&self, r: &RefreshRecord) -> Result<(), AsgError> {
        self.store.put(REFRESHES, &Self::refresh_key(r), r)?;
        Ok(())
    }

    /// The group's instance refreshes, newest first.
    pub fn refreshes(&self, group: &str) -> Result<Vec<RefreshRecord>, AsgError> {
        let mut all: Vec<RefreshRecord> =
            self.store.list(REFRESHES, &format!("{group}/"))?.into_iter().map(|(_, r)| r).collect();
        all.sort_by(|a, b| b.start.cmp(&a.start).then_with(|| b.id.cmp(&a.id)));
        Ok(all)
    }

    fn active_refresh(&self, group: &str) -> Result<Option<RefreshRecord>, AsgError> {
        Ok(self.refreshes(group)?.into_iter().find(RefreshRecord::active))
    }

    fn set_refresh(
        &self,
        group: &str,
        id: &str,
        f: impl FnOnce(&mut RefreshRecord),
    ) -> Result<(), AsgError> {
        if let Some(mut r) = self.refreshes(group)?.into_iter().find(|r| r.id == id) {
            f(&mut r);
            self.save_refresh(&r)?;
        }
        Ok(())
    }

    pub fn start_refresh(
        &self,
        group: &str,
        desired: Option<Launch>,
        prefs: RefreshPreferences,
    ) -> Result<String, AsgError> {
        let g = self.group_or_err(group)?;
        if prefs.min_healthy > 100 {
            return Err(AsgError::validation("MinHealthyPercentage must be between 0 and 100"));
        }
        if let Some(max) = prefs.max_healthy
            && (!(100..=200).contains(&max) || max - prefs.min_healthy > 100)
        {
            return Err(AsgError::validation(
                "MaxHealthyPercentage must be between 100 and 200, and at most 100 above MinHealthyPercentage",
            ));
        }
        if prefs.checkpoints.windows(2).any(|w| w[0] >= w[1])
            || prefs.checkpoints.iter().any(|c| *c == 0 || *c > 100)
        {
            return Err(AsgError::validation(
                "CheckpointPercentages must be between 1 and 100 and in ascending order",
            ));
        }
        if self.active_refresh(group)?.is_some() {
            return Err(api(
                "InstanceRefreshInProgress",
                "An Instance Refresh is already in progress and blocks the execution of this Instance Refresh.",
            ));
        }
        if let Some(d) = &desired {
            self.launch_key(d)?;
        }
        let record = RefreshRecord {
            id: aws_ids::uuid(),
            group: group.to_string(),
            status: "Pending".into(),
            status_reason: None,
            start: clock::iso8601(self.clock.now()),
            end: None,
            percentage: 0,
            instances_to_update: 0,
            preferences: prefs,
            desired: desired.unwrap_or_else(|| g.launch.clone()),
            previous: g.launch.clone(),
        };
        self.save_refresh(&record)?;
        self.spawn_refresh(record.clone(), false);
        Ok(record.id)
    }

    /// The group's running refresh, or AWS's error when there is none.
    fn require_active_refresh(&self, group: &str) -> Result<RefreshRecord, AsgError> {
        self.group_or_err(group)?;
        self.active_refresh(group)?.ok_or_else(|| {
            api(
                "ActiveInstanceRefreshNotFound",
                format!("No in progress or pending Instance Refresh found for Auto Scaling group {group}"),
            )
        })
    }

    pub fn cancel_refresh(&self, group: &str) -> Result<String, AsgError> {
        let r = self.require_active_refresh(group)?;
        self.set_refresh(group, &r.id, |r| r.status = "Cancelling".into())?;
        if let Some((token, _)) = self.refresh_tasks.lock().get(group) {
            token.cancel();
        }
        Ok(r.id)
    }

    /// Stops the active refresh and puts back the instances it replaced.
    pub fn rollback_refresh(&self, group: &str) -> Result<String, AsgError> {
        let r = self.require_active_refresh(group)?;
        if r.status == "RollbackInProgress" {
            return Err(api(
                "IrreversibleInstanceRefresh",
                "The instance refresh is already rolling back.",
            ));
        }
        if r.previous == r.desired {
            return Err(api(
                "IrreversibleInstanceRefresh",
                "The instance refresh cannot be rolled back because it has no desired configuration.",
            ));
        }
        self.set_refresh(group, &r.id, |r| {
            r.status = "RollbackInProgress".into();
            r.status_reason = Some("Rollback started by the user.".into());
        })?;
        let mut r = r;
        r.status = "RollbackInProgress".into();
        self.spawn_refresh(r.clone(), true);
        Ok(r.id)
    }

    /// Runs a refresh (or its rollback) in the background; a newer one for the group
    /// replaces the task of an older one.
    pub(super) fn spawn_refresh(&self, record: RefreshRecord, rollback: bool) {
        let token = CancellationToken::new();
        let me = self.me.clone();
        let stop = token.clone();
        let group = record.group.clone();
        let task = tokio::spawn(async move {
            let Some(this) = me.upgrade() else { return };
            let (group, id) = (record.group.clone(), record.id.clone());
            if let Err(e) = this.run_refresh(record, rollback, stop).await {
                tracing::error!(group, "instance refresh {id} stopped: {e}");
            }
        });
        let old = self.refresh_tasks.lock().insert(group, (token, task));
        // A rollback takes over from the refresh it rolls back: that one's loop stops at its
        // next batch boundary and ends by itself.
        if let Some((token, _detached)) = old {
            token.cancel();
        }
    }

    async fn run_refresh(
        &self,
        record: RefreshRecord,
        rollback: bool,
        stop: CancellationToken,
    ) -> Result<(), AsgError> {
        let group = record.group.clone();
        let id = record.id.clone();
        let Some(g) = self.group(&group)? else { return Ok(()) };
        let target = if rollback { record.previous.clone() } else { record.desired.clone() };
        if g.launch != target {
            self.update(&group, |g| g.launch = target.clone())?;
        }
        let prefs = &record.preferences;
        let (max_batch, keep, surge) = refresh_batches(g.desired, prefs);
        // Without SkipMatching, every instance there now is replaced, matching or not (a
        // rollback only replaces what the refresh launched).
        let also = if rollback || prefs.skip_matching {
            Default::default()
        } else {
            g.instances.iter().map(|m| m.id.clone()).collect()
        };
        let warmup = Duration::from_secs(prefs.warmup.unwrap_or(g.grace));
        if !rollback {
            self.set_refresh(&group, &id, |r| r.status = "InProgress".into())?;
        }
        let progress_group = group.clone();
        let progress_id = id.clone();
        let me = self.me.clone();
        let plan = Replace {
            max_batch,
            min_in_service: keep,
            surge,
            exceed_max: surge,
            warmup,
            also,
            stop: stop.clone(),
            progress: Some(Box::new(move |done, total| {
                if let Some(this) = me.upgrade()
                    && let Err(e) = this.set_refresh(&progress_group, &progress_id, |r| {
                        r.instances_to_update = total - done;
                        r.percentage = (done * 100).checked_div(total).unwrap_or(100);
                    })
                {
                    // Progress is shown, not acted on: the next batch records it again.
                    tracing::warn!(group = progress_group, "cannot record refresh progress: {e}");
                }
            })),
            checkpoints: if rollback { Vec::new() } else { prefs.checkpoints.clone() },
            checkpoint_delay: Duration::from_secs(prefs.checkpoint_delay),
            reason: "an instance refresh",
            ..Replace::default()
        };
        let activity = self.activity(
            &group,
            format!("Instance refresh {id}"),
            format!(
                "At {} an instance refresh {} was started.",
                cause_time(&self.clock),
                if rollback { "rollback" } else { "" }
            )
            .replace("  ", " "),
        )?;
        let result = self.replace_instances(&group, &plan).await;
        let now = clock::iso8601(self.clock.now());
        match result {
            Ok(true) => {
                self.set_refresh(&group, &id, |r| {
                    r.status = if rollback { "RollbackSuccessful" } else { "Successful" }.into();
                    r.percentage = 100;
                    r.instances_to_update = 0;
                    r.end = Some(now);
                })?;
                self.finish(activity, true, None)
            }
            Ok(false) => {
                // Cancelled; a rollback that took over records its own end.
                let current = self.refreshes(&group)?.into_iter().find(|r| r.id == id);
                if current.is_some_and(|r| r.status == "Cancelling") {
                    self.set_refresh(&group, &id, |r| {
                        r.status = "Cancelled".into();
                        r.end = Some(now);
                    })?;
                    self.finish(activity, false, Some("Cancelled".into()))
                } else {
                    self.finish(activity, false, Some("Rolled back".into()))
                }
            }
            Err(e) if !rollback && prefs.auto_rollback => {
                self.finish(activity, false, Some(e.to_string()))?;
                let mut r = record.clone();
                r.status = "RollbackInProgress".into();
                r.status_reason = Some(format!("Instance refresh failed: {e}"));
                self.save_refresh(&r)?;
                Box::pin(self.run_refresh(r, true, CancellationToken::new())).await
            }
            Err(e) => {
                self.set_refresh(&group, &id, |r| {
                    r.status = if rollback { "RollbackFailed" } else { "Failed" }.into();
                    r.status_reason = Some(e.to_string());
                    r.end = Some(now);
                })?;
                self.finish(activity, false, Some(e.to_string()))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_follow_the_healthy_percentages() {
        let p = |min, max| RefreshPreferences {
            min_healthy: min,
            max_healthy: max,
            ..RefreshPreferences::default()
        };
        // Default 90 % of 4 keeps 4 (rounded up): one at a time, terminate first.
        assert_eq!(refresh_batches(4, &p(90, None)), (1, 3, false));
        assert_eq!(refresh_batches(10, &p(50, None)), (5, 5, false));
        assert_eq!(refresh_batches(5, &p(50, None)), (2, 3, false));
        assert_eq!(refresh_batches(4, &p(0, None)), (4, 0, false));
        // 100/200: launch a whole new set before terminating.
        assert_eq!(refresh_batches(4, &p(100, Some(200))), (4, 4, true));
        assert_eq!(refresh_batches(4, &p(100, Some(110))), (1, 4, true));
    }
}
