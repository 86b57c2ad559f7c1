//! Stack events as the commands show them: one aligned line per event, a progress line below,
//! or JSON lines for scripts.

use std::collections::HashSet;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::OutputFormat;
use crate::render::say;

/// A stack event, from the engine (`From<&StackEvent>`) or from DescribeStackEvents.
pub type EventView = api::cfn_client::Event;

/// An event as `--output json` prints it.
pub fn to_json(e: &EventView) -> serde_json::Value {
    serde_json::json!({
        "timestamp": e.timestamp,
        "logicalResourceId": e.logical_id,
        "physicalResourceId": e.physical_id,
        "resourceType": e.resource_type,
        "resourceStatus": e.status.as_str(),
        "resourceStatusReason": e.reason,
    })
}

/// `HH:MM:SS  STATUS  Type  LogicalId  reason`.
pub fn line(e: &EventView) -> String {
    let time = e.timestamp.get(11..19).unwrap_or(&e.timestamp);
    let reason = e.reason.as_deref().unwrap_or("");
    format!("{time}  {:<34} {:<44} {:<28} {reason}", e.status, e.resource_type, e.logical_id)
        .trim_end()
        .to_string()
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
                self.line(line(event))
            }
            OutputFormat::Json => say!("{}", to_json(event)),
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
