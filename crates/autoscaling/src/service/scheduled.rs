//! Scheduled actions, fired on their recurrence or start time on the clock.

use std::time::Duration;

use super::*;

impl AutoScaling {
    // ---- scheduled actions ----

    pub fn schedules_of(&self, group: &str) -> Result<Vec<ScheduleRecord>, AsgError> {
        Ok(self.store.list(SCHEDULES, &format!("{group}/"))?.into_iter().map(|(_, s)| s).collect())
    }

    pub fn put_schedule(&self, s: ScheduleRecord) -> Result<(), AsgError> {
        self.group_or_err(&s.group)?;
        if let Some(r) = &s.recurrence {
            crate::schedule::parse(r).map_err(AsgError::validation)?;
        }
        if let Some(tz) = &s.time_zone {
            jiff::tz::TimeZone::get(tz)
                .map_err(|_| AsgError::validation(format!("Invalid time zone: {tz}")))?;
        }
        if s.recurrence.is_none() && s.start.is_none() {
            return Err(AsgError::validation("Either StartTime or Recurrence must be specified"));
        }
        self.store.put(SCHEDULES, &format!("{}/{}", s.group, s.name), &s)?;
        self.start_schedule(s);
        Ok(())
    }

    pub fn delete_schedule(&self, group: &str, name: &str) -> Result<(), AsgError> {
        self.schedules.lock().remove(&(group.to_string(), name.to_string()));
        self.store.delete(SCHEDULES, &format!("{group}/{name}"))?;
        Ok(())
    }

    pub(super) fn start_schedule(&self, s: ScheduleRecord) {
        let me = self.me.clone();
        let clock = self.clock.clone();
        let key = (s.group.clone(), s.name.clone());
        let task = tokio::spawn(async move {
            let mut after = clock.now();
            loop {
                let Some(next) = crate::schedule::next_fire(&s, after) else {
                    // Past its EndTime (or a one-off that ran): the action is removed.
                    if let Some(this) = me.upgrade()
                        && let Err(e) =
                            this.store.delete(SCHEDULES, &format!("{}/{}", s.group, s.name))
                    {
                        // It stays listed; the next start finds it ended and removes it.
                        tracing::error!(
                            group = s.group,
                            "cannot remove ended action {}: {e}",
                            s.name
                        );
                    }
                    return;
                };
                let wait = next.duration_since(clock.now());
                let wait = Duration::try_from(wait).unwrap_or(Duration::ZERO);
                clock.sleep(wait).await;
                let Some(this) = me.upgrade() else { return };
                let g = match this.group(&s.group) {
                    Ok(Some(g)) => g,
                    Ok(None) => return,
                    Err(e) => {
                        tracing::error!(
                            group = s.group,
                            "scheduled action {} skipped: {e}",
                            s.name
                        );
                        after = next;
                        continue;
                    }
                };
                if !g.suspended("ScheduledActions") {
                    let cause = format!(
                        "At {} a scheduled action update of AutoScalingGroup constraints to min: {}, max: {}, desired: {} changing the desired capacity from {} to {}.",
                        cause_time(&clock),
                        s.min.unwrap_or(g.min),
                        s.max.unwrap_or(g.max),
                        s.desired.map_or("-".into(), |d| d.to_string()),
                        g.desired,
                        s.desired.unwrap_or(g.desired)
                    );
                    let run = || -> Result<(), AsgError> {
                        let a = this.activity(
                            &s.group,
                            format!("Executing scheduled action {}", s.name),
                            cause,
                        )?;
                        let result = this.set_sizes(&s.group, s.min, s.max, s.desired);
                        this.finish(a, result.is_ok(), result.err().map(|e| e.to_string()))
                    };
                    if let Err(e) = run() {
                        tracing::error!(group = s.group, "scheduled action {} failed: {e}", s.name);
                    }
                }
                after = next;
            }
        });
        self.schedules.lock().insert(key, Task::new(task));
    }
}
