//! Notifications to SNS from the services that send them: Auto Scaling's launch and
//! termination messages (`autoscaling::alarms::Notifications`), and CloudFormation's stack
//! events to a stack's NotificationARNs, in the text AWS sends.

use std::sync::Arc;

use cfn_stacks::Engine;
use sns::{Notifier, Sns};
use tokio_util::sync::CancellationToken;

/// Auto Scaling's notifications, published to SNS.
pub struct GroupNotifications {
    pub sns: Arc<Sns>,
}

impl autoscaling::alarms::Notifications for GroupNotifications {
    fn notify(&self, topic_arn: &str, subject: &str, message: &str) -> Result<(), String> {
        Notifier::publish(&*self.sns, topic_arn, Some(subject), message).map(|_| ())
    }
}

/// A stack event as CloudFormation's notifications write it: `Key='value'` lines.
fn stack_event_message(e: &cfn_stacks::model::StackEvent, account: &str) -> String {
    let quote = |v: &str| v.replace('\'', "\\'");
    let status = e.status.to_string();
    let lines = [
        ("StackId", e.stack_id.clone()),
        ("Timestamp", e.timestamp.clone()),
        ("EventId", e.event_id.clone()),
        ("LogicalResourceId", e.logical_id.clone()),
        ("Namespace", account.to_string()),
        ("PhysicalResourceId", e.physical_id.clone().unwrap_or_default()),
        ("PrincipalId", account.to_string()),
        ("ResourceProperties", String::new()),
        ("ResourceStatus", status),
        ("ResourceStatusReason", e.status_reason.clone().unwrap_or_default()),
        ("ResourceType", e.resource_type.clone()),
        ("StackName", e.stack_name.clone()),
        ("ClientRequestToken", "null".to_string()),
    ];
    lines.iter().map(|(k, v)| format!("{k}='{}'\n", quote(v))).collect()
}

/// Publishes every stack event to its stack's NotificationARNs until `cancel`.
pub fn forward_stack_events(
    engine: Arc<Engine>,
    sns: Arc<Sns>,
    account: String,
    cancel: CancellationToken,
) {
    let mut events = engine.subscribe();
    tokio::spawn(async move {
        loop {
            let event = tokio::select! {
                e = events.recv() => e,
                _ = cancel.cancelled() => return,
            };
            let event = match event {
                Ok(e) => e,
                Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => {
                    tracing::warn!("{n} stack events were not notified (too many at once)");
                    continue;
                }
                Err(_) => return,
            };
            let topics = match engine.lookup_stack(&event.stack_id) {
                Ok(Some(stack)) => stack.notification_arns,
                _ => continue,
            };
            if topics.is_empty() {
                continue;
            }
            let message = stack_event_message(&event, &account);
            for topic in topics {
                if let Err(e) = Notifier::publish(
                    &*sns,
                    &topic,
                    Some("AWS CloudFormation Notification"),
                    &message,
                ) {
                    tracing::warn!(stack = event.stack_name, "notification to {topic}: {e}");
                }
            }
        }
    });
}
