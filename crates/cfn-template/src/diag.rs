//! Diagnostics: every problem found in a template, each with its position.
//!
//! The engine never stops at the first problem: parsing, validation and resolution return
//! their result together with all diagnostics.

use std::fmt::Write as _;

use crate::span::Span;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Severity {
    Error,
    Warning,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Diagnostic {
    pub severity: Severity,
    pub span: Span,
    pub message: String,
}

impl Diagnostic {
    pub fn error(span: Span, message: impl Into<String>) -> Diagnostic {
        Diagnostic { severity: Severity::Error, span, message: message.into() }
    }

    pub fn warning(span: Span, message: impl Into<String>) -> Diagnostic {
        Diagnostic { severity: Severity::Warning, span, message: message.into() }
    }

    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }

    /// `file:line:column: message`, then the offending line with a caret under the span.
    pub fn render(&self, file: &str, text: &str) -> String {
        let mut out = String::new();
        let severity = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        if self.span.start.line == 0 {
            // Not tied to a place in the template (parameter values given on the command line).
            let _ = writeln!(out, "{file}: {severity}: {}", self.message);
            return out;
        }
        let _ = writeln!(
            out,
            "{file}:{}:{}: {severity}: {}",
            self.span.start.line, self.span.start.col, self.message
        );
        let line_no = self.span.start.line as usize;
        if let Some(line) = line_no.checked_sub(1).and_then(|i| text.lines().nth(i)) {
            let line = line.trim_end_matches('\r');
            let gutter = line_no.to_string();
            let pad = " ".repeat(gutter.len());
            let col = (self.span.start.col as usize).saturating_sub(1);
            let width = if self.span.end.line == self.span.start.line {
                (self.span.end.col as usize).saturating_sub(self.span.start.col as usize).max(1)
            } else {
                line.chars().count().saturating_sub(col).max(1)
            };
            // Tabs keep their width in the marker line so the caret lines up.
            let lead: String =
                line.chars().take(col).map(|c| if c == '\t' { '\t' } else { ' ' }).collect();
            let _ = writeln!(out, "{pad} |");
            let _ = writeln!(out, "{gutter} | {line}");
            let _ = writeln!(out, "{pad} | {lead}{}", "^".repeat(width.min(80)));
        }
        out
    }
}

/// A growing list of diagnostics.
#[derive(Debug, Default)]
pub struct Diagnostics {
    pub items: Vec<Diagnostic>,
}

impl Diagnostics {
    pub fn error(&mut self, span: Span, message: impl Into<String>) {
        self.items.push(Diagnostic::error(span, message));
    }

    pub fn warning(&mut self, span: Span, message: impl Into<String>) {
        self.items.push(Diagnostic::warning(span, message));
    }

    pub fn push(&mut self, d: Diagnostic) {
        self.items.push(d);
    }

    pub fn has_errors(&self) -> bool {
        self.items.iter().any(Diagnostic::is_error)
    }

    /// Sorted by position, duplicates removed.
    pub fn finish(mut self) -> Vec<Diagnostic> {
        self.items.sort_by(|a, b| (a.span.start, &a.message).cmp(&(b.span.start, &b.message)));
        self.items.dedup();
        self.items
    }
}
