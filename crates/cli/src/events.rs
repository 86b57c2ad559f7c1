//! Stack events as the commands show them: one aligned line per event, a progress line below,
//! or JSON lines for scripts.

use std::collections::HashSet;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use cfn_stacks::model::EventStatus;

use crate::OutputFormat;
use crate::render::say;

/// A stack event, from the engine or from DescribeStackEvents.
#[derive(Clone, Debug, PartialEq)]
pub struct EventView {
    pub event_id: String,
    pub timestamp: String,
    pub logical_id: String,
    pub physical_id: Option<String>,
    pub resource_type: String,
    pub status: EventStatus,
    pub reason: Option<String>,
}

impl From<&cfn_stacks::model::StackEvent> for EventView {
    fn from(e: &cfn_stacks::model::StackEvent) -> EventView {
        EventView {
            event_id: e.event_id.clone(),
            timestamp: e.timestamp.clone(),
            logical_id: e.logical_id.clone(),
            physical_id: e.physical_id.clone(),
            resource_type: e.resource_type.clone(),
            status: e.status,
            reason: e.status_reason.clone(),
        }
    }
}

impl From<&api::cfn_client::Event> for EventView {
    fn from(e: &api::cfn_client::Event) -> EventView {
        EventView {
            event_id: e.event_id.clone(),
            timestamp: e.timestamp.clone(),
            logical_id: e.logical_id.clone(),
            physical_id: e.physical_id.clone(),
            resource_type: e.resource_type.clone(),
            status: e.status,
            reason: e.reason.clone(),
        }
    }
}

impl EventView {
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "timestamp": self.timestamp,
            "logicalResourceId": self.logical_id,
            "physicalResourceId": self.physical_id,
            "resourceType": self.resource_type,
            "resourceStatus": self.status.as_str(),
            "resourceStatusReason": self.reason,
        })
    }

    /// `HH:MM:SS  STATUS  Type  LogicalId  reason`.
    pub fn line(&self) -> String {
        let time = self.timestamp.get(11..19).unwrap_or(&self.timestamp);
        let reason = self.reason.as_deref().unwrap_or("");
        format!(
            "{time}  {:<34} {:<44} {:<28} {reason}",
            self.status, self.resource_type, self.logical_id
        )
        .trim_end()
        .to_string()
    }
}

/// Prints events as they come, with a progress line counting resources done.
pub struct EventPrinter {
    format: OutputFormat,
    stack_name: String,
    bar: ProgressBar,
    seen: HashSet<String>,
    resources: HashSet<String>,
    done: HashSet<String>,
    total: usize,
    /// The column header is printed above the first event (none when no event comes).
    header_shown: bool,
}

impl EventPrinter {
    /// `verb` is what the bar says (`creating web`); `total` the number of resources expected.
    pub fn new(format: OutputFormat, stack_name: &str, verb: &str, total: usize) -> EventPrinter {
        let bar = if format == OutputFormat::Table {
            ProgressBar::with_draw_target(None, ProgressDrawTarget::stdout())
        } else {
            ProgressBar::hidden()
        };
        bar.set_style(
            ProgressStyle::with_template("{spinner} {msg} [{elapsed}]")
                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
        );
        bar.enable_steady_tick(Duration::from_millis(120));
        let printer = EventPrinter {
            format,
            stack_name: stack_name.to_string(),
            bar,
            seen: HashSet::new(),
            resources: HashSet::new(),
            done: HashSet::new(),
            total,
            header_shown: false,
        };
        printer.bar.set_message(format!("{verb}: 0/{total} resources"));
        printer
    }

    /// Shows an event once (repeats, as polling gives them, are skipped).
    pub fn show(&mut self, event: &EventView, verb: &str) {
        if !self.seen.insert(event.event_id.clone()) {
            return;
        }
        match self.format {
            OutputFormat::Table => {
                if !self.header_shown {
                    self.header_shown = true;
                    self.line(format!(
                        "{:<8}  {:<34} {:<44} {:<28} {}",
                        "Time", "Status", "Type", "Logical ID", "Reason"
                    ));
                }
                self.line(event.line())
            }
            OutputFormat::Json => say!("{}", event.to_json()),
        }
        let is_stack = event.resource_type == "AWS::CloudFormation::Stack"
            && event.logical_id == self.stack_name;
        if !is_stack {
            self.resources.insert(event.logical_id.clone());
            if event.status.is_terminal() {
                self.done.insert(event.logical_id.clone());
            }
        }
        let total = self.total.max(self.resources.len());
        self.bar.set_message(format!("{verb}: {}/{total} resources", self.done.len().min(total)));
    }

    /// A line above the progress line (plain stdout when that is not a terminal).
    fn line(&self, text: String) {
        if self.bar.is_hidden() {
            say!("{text}");
        } else {
            self.bar.println(text);
        }
    }

    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }
}
