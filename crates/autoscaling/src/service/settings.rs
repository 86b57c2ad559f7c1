//! What a group keeps beside its capacity: tags, notification configurations (a test
//! notification when one is put; launches and terminations notify through
//! `alarms::Notifications`), warm pools (recorded), metrics collection; launch configurations
//! (records of EC2's side, through `fleet::Compute`); and DeleteAutoScalingGroup's rules.

use ec2::model::LaunchConfigurationRecord;

use super::*;

pub const NOTIFICATION_TYPES: [&str; 5] = [
    "autoscaling:EC2_INSTANCE_LAUNCH",
    "autoscaling:EC2_INSTANCE_LAUNCH_ERROR",
    "autoscaling:EC2_INSTANCE_TERMINATE",
    "autoscaling:EC2_INSTANCE_TERMINATE_ERROR",
    "autoscaling:TEST_NOTIFICATION",
];

pub const METRICS: [&str; 20] = [
    "GroupMinSize",
    "GroupMaxSize",
    "GroupDesiredCapacity",
    "GroupInServiceInstances",
    "GroupPendingInstances",
    "GroupStandbyInstances",
    "GroupTerminatingInstances",
    "GroupTotalInstances",
    "GroupInServiceCapacity",
    "GroupPendingCapacity",
    "GroupStandbyCapacity",
    "GroupTerminatingCapacity",
    "GroupTotalCapacity",
    "WarmPoolDesiredCapacity",
    "WarmPoolWarmedCapacity",
    "WarmPoolPendingCapacity",
    "WarmPoolTerminatingCapacity",
    "WarmPoolTotalCapacity",
    "GroupAndWarmPoolDesiredCapacity",
    "GroupAndWarmPoolTotalCapacity",
];

impl AutoScaling {
    // ---- deletion ----

    /// DeleteAutoScalingGroup: without `force`, a group that still has instances or a scaling
    /// activity in progress is refused as AWS refuses it; otherwise the group shows `Delete in
    /// progress` while its instances terminate, then goes (in the background).
    pub async fn delete_group_request(&self, name: &str, force: bool) -> Result<(), AsgError> {
        let g = self.group_or_err(name)?;
        if g.status.is_some() {
            return Ok(());
        }
        let instances = g.instances.iter().any(|m| m.lifecycle != Lifecycle::Detached);
        if !force {
            if instances || g.desired > 0 {
                return Err(AsgError::Api {
                    code: "ResourceInUse",
                    message: "You cannot delete an AutoScalingGroup while there are instances or pending Spot instance request(s) still in the group.".into(),
                });
            }
            if self.activities(name)?.iter().any(|a| a.status == "InProgress") {
                return Err(AsgError::Api {
                    code: "ScalingActivityInProgress",
                    message: "You cannot delete an AutoScalingGroup while there are scaling activities in progress for that group.".into(),
                });
            }
        }
        if !instances {
            return self.delete_group(name).await;
        }
        self.update(name, |g| g.status = Some("Delete in progress".into()))?;
        let Some(me) = self.me.upgrade() else { return Ok(()) };
        let group = name.to_string();
        tokio::spawn(async move {
            if let Err(e) = me.delete_group(&group).await {
                tracing::error!(group, "deletion stopped: {e}");
            }
        });
        Ok(())
    }

    // ---- tags ----

    /// CreateOrUpdateTags: a tag with a key the group has replaces it.
    pub fn put_tags(&self, tags: &[(String, Tag)]) -> Result<(), AsgError> {
        for (group, _) in tags {
            self.group_or_err(group)?;
        }
        for (group, tag) in tags {
            let mut over = false;
            self.update(group, |g| {
                match g.tags.iter_mut().find(|t| t.key == tag.key) {
                    Some(t) => *t = tag.clone(),
                    None => g.tags.push(tag.clone()),
                }
                over = g.tags.iter().filter(|t| !t.key.starts_with("aws:")).count() > 50;
            })?;
            if over {
                // Undo: the limit is checked on what the group would have.
                self.update(group, |g| g.tags.retain(|t| t.key != tag.key))?;
                return Err(AsgError::Api {
                    code: "LimitExceeded",
                    message: "The quota of 50 tags per Auto Scaling group has been exceeded".into(),
                });
            }
        }
        Ok(())
    }

    /// DeleteTags: by key, and by value when one is given.
    pub fn delete_tags(&self, tags: &[(String, String, Option<String>)]) -> Result<(), AsgError> {
        for (group, key, value) in tags {
            self.group_or_err(group)?;
            self.update(group, |g| {
                g.tags.retain(|t| !(t.key == *key && value.as_ref().is_none_or(|v| *v == t.value)))
            })?;
        }
        Ok(())
    }

    // ---- notifications ----

    /// PutNotificationConfiguration (replaces the topic's types).
    pub fn put_notification(
        &self,
        group: &str,
        topic: &str,
        types: &[String],
    ) -> Result<(), AsgError> {
        self.group_or_err(group)?;
        if let Some(t) = types.iter().find(|t| !NOTIFICATION_TYPES.contains(&t.as_str())) {
            return Err(AsgError::validation(format!("Invalid notification type: {t}")));
        }
        let config = Notification { topic: topic.to_string(), types: types.to_vec() };
        self.update(group, |g| match g.notifications.iter_mut().find(|n| n.topic == topic) {
            Some(n) => *n = config,
            None => g.notifications.push(config),
        })?;
        // AWS tells the topic at once that it is configured.
        if let Some(g) = self.group(group)? {
            self.notify_test(&g, topic);
        }
        Ok(())
    }

    pub fn delete_notification(&self, group: &str, topic: &str) -> Result<(), AsgError> {
        let g = self.group_or_err(group)?;
        if !g.notifications.iter().any(|n| n.topic == topic) {
            return Err(AsgError::validation(format!(
                "No notification configuration found for AutoScalingGroup {group} and topic {topic}"
            )));
        }
        self.update(group, |g| g.notifications.retain(|n| n.topic != topic))?;
        Ok(())
    }

    // ---- warm pools ----

    pub fn put_warm_pool(&self, group: &str, pool: WarmPool) -> Result<(), AsgError> {
        self.group_or_err(group)?;
        if !matches!(pool.state.as_str(), "Stopped" | "Running" | "Hibernated") {
            return Err(AsgError::validation(format!(
                "Value '{}' at 'poolState' failed to satisfy constraint: Member must satisfy enum value set: [Running, Stopped, Hibernated]",
                pool.state
            )));
        }
        self.update(group, |g| g.warm_pool = Some(pool))?;
        Ok(())
    }

    pub fn delete_warm_pool(&self, group: &str) -> Result<(), AsgError> {
        let g = self.group_or_err(group)?;
        if g.warm_pool.is_none() {
            return Err(AsgError::validation(format!(
                "No warm pool found for AutoScalingGroup {group}"
            )));
        }
        self.update(group, |g| g.warm_pool = None)?;
        Ok(())
    }

    // ---- metrics collection ----

    /// Enable/DisableMetricsCollection; no metrics named means all of them.
    pub fn collect_metrics(
        &self,
        group: &str,
        metrics: &[String],
        enable: bool,
    ) -> Result<(), AsgError> {
        self.group_or_err(group)?;
        if let Some(m) = metrics.iter().find(|m| !METRICS.contains(&m.as_str())) {
            return Err(AsgError::validation(format!("Invalid metric name: {m}")));
        }
        let list: Vec<String> = if metrics.is_empty() {
            METRICS.iter().map(|m| m.to_string()).collect()
        } else {
            metrics.to_vec()
        };
        self.update(group, |g| {
            if enable {
                for m in list {
                    if !g.metrics.contains(&m) {
                        g.metrics.push(m);
                    }
                }
            } else {
                g.metrics.retain(|m| !list.contains(m));
            }
        })?;
        Ok(())
    }

    // ---- launch configurations ----

    pub fn launch_configurations(&self) -> Result<Vec<LaunchConfigurationRecord>, AsgError> {
        let mut list = self.ec2.launch_configurations()?;
        list.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(list)
    }

    /// CreateLaunchConfiguration: `data` in CloudFormation's shape (what the
    /// `AWS::AutoScaling::LaunchConfiguration` provider stores too).
    pub fn create_launch_configuration(
        &self,
        name: &str,
        data: serde_json::Value,
    ) -> Result<LaunchConfigurationRecord, AsgError> {
        if self.ec2.launch_configuration(name)?.is_some() {
            return Err(AsgError::Api {
                code: "AlreadyExists",
                message: format!(
                    "Launch Configuration by this name already exists - A launch configuration already exists with the name {name}"
                ),
            });
        }
        for key in ["ImageId", "InstanceType"] {
            if data.get(key).and_then(serde_json::Value::as_str).is_none_or(str::is_empty) {
                return Err(AsgError::validation(format!(
                    "{key} is required when InstanceId is not specified"
                )));
            }
        }
        Ok(self.ec2.put_launch_configuration(name, data)?)
    }

    /// DeleteLaunchConfiguration: refused while a group uses it.
    pub fn delete_launch_configuration(&self, name: &str) -> Result<(), AsgError> {
        if self.ec2.launch_configuration(name)?.is_none() {
            return Err(AsgError::validation(format!(
                "Launch configuration name not found - Launch configuration {name} not found"
            )));
        }
        if let Some(g) = self
            .groups()?
            .into_iter()
            .find(|g| g.launch == (Launch::Configuration { name: name.to_string() }))
        {
            return Err(AsgError::Api {
                code: "ResourceInUse",
                message: format!(
                    "Cannot delete launch configuration {name} because it is attached to AutoScalingGroup {}",
                    g.name
                ),
            });
        }
        Ok(self.ec2.delete_launch_configuration(name)?)
    }
}
