//! `cumulo validate TEMPLATE`: every problem at file:line:column, or a summary.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use cfn_template::{Analysis, Mode, Options, Pseudo, Severity, analyze, public_parameters};
use serde_json::json;

use crate::OutputFormat;
use crate::inputs;
use crate::render::{say, table};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// The template file (YAML or JSON).
    template: PathBuf,
    /// A parameter value, KEY=VALUE (repeatable; list values comma-separated).
    #[arg(long = "parameter", short = 'p', value_name = "KEY=VALUE")]
    parameters: Vec<String>,
    /// A file of parameter values: the AWS CLI's JSON list, a JSON object or KEY=VALUE lines.
    #[arg(long, value_name = "FILE")]
    parameters_file: Option<PathBuf>,
    /// The region the template is checked for.
    #[arg(long, default_value = "us-east-1", env = "AWS_REGION")]
    region: String,
    /// Check as CreateStack would: every parameter needs a value (given or default) and
    /// every value, defaults included, must satisfy its constraints.
    #[arg(long)]
    strict: bool,
    #[arg(long, value_enum, default_value_t)]
    output: OutputFormat,
}

/// Checks a template as `validate` does and prints its problems to stderr; whether it is valid.
pub fn report(
    file: &str,
    text: &str,
    parameters: &indexmap::IndexMap<String, String>,
    region: &str,
) -> bool {
    let store = public_parameters();
    let mut options = Options::validate(&store);
    options.parameters = parameters.clone();
    options.pseudo = Pseudo { region: region.to_string(), ..Pseudo::default() };
    let analysis = analyze(text, &options);
    for d in &analysis.diagnostics {
        eprint!("{}", d.render(file, text));
    }
    !analysis.has_errors()
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let text = std::fs::read_to_string(&args.template)
        .with_context(|| format!("cannot read {}", args.template.display()))?;
    let mut parameters = match &args.parameters_file {
        Some(path) => inputs::read_file(path)?,
        None => Default::default(),
    };
    parameters.extend(inputs::parse_pairs(&args.parameters)?);
    let store = public_parameters();
    let mut options = Options::validate(&store);
    options.parameters = parameters;
    options.mode = if args.strict { Mode::Resolve } else { Mode::Validate };
    options.pseudo = Pseudo { region: args.region.clone(), ..Pseudo::default() };
    let analysis = analyze(&text, &options);
    let file = args.template.display().to_string();
    match args.output {
        OutputFormat::Json => print_json(&file, &analysis),
        OutputFormat::Table => print_human(&file, &text, &analysis),
    }
    Ok(if analysis.has_errors() { ExitCode::FAILURE } else { ExitCode::SUCCESS })
}

fn print_human(file: &str, text: &str, analysis: &Analysis) {
    for d in &analysis.diagnostics {
        eprint!("{}", d.render(file, text));
    }
    let errors = analysis.errors().count();
    let warnings = analysis.diagnostics.len() - errors;
    if errors > 0 {
        eprintln!("{file}: {errors} error{}{}", plural(errors), warning_note(warnings));
        return;
    }
    let Some(stack) = &analysis.stack else { return };
    let t = &stack.template;
    say!(
        "{file}: valid{} — {} parameter{}, {} resource{}, {} output{}, {} condition{}",
        warning_note(warnings),
        t.parameters.len(),
        plural(t.parameters.len()),
        t.resources.len(),
        plural(t.resources.len()),
        t.outputs.len(),
        plural(t.outputs.len()),
        t.conditions.len(),
        plural(t.conditions.len()),
    );
    if let Some(description) = &t.description {
        say!("{}", description.trim());
    }
    if !t.parameters.is_empty() {
        let mut table = table(["Parameter", "Type", "Default", "Value"]);
        for (name, p) in &t.parameters {
            let mask = |s: String| if p.no_echo { "*****".to_string() } else { s };
            let default =
                p.default.as_ref().and_then(|d| d.scalar_text()).map(mask).unwrap_or_default();
            let value = stack
                .parameters
                .given
                .get(name)
                .cloned()
                .map(mask)
                .unwrap_or_else(|| "(no value)".into());
            table.add_row([name.as_str(), p.type_name.as_str(), &default, &value]);
        }
        say!("{table}");
    }
    let mut by_type: BTreeMap<&str, usize> = BTreeMap::new();
    for r in t.resources.values() {
        *by_type.entry(r.type_name.as_str()).or_default() += 1;
    }
    let mut types = table(["Resource type", "Count"]);
    for (ty, n) in by_type {
        types.add_row([ty.to_string(), n.to_string()]);
    }
    say!("{types}");
    if !t.outputs.is_empty() {
        let mut table = table(["Output", "Description", "Export"]);
        for (name, o) in &t.outputs {
            let description =
                o.description.as_ref().and_then(|d| d.scalar_text()).unwrap_or_default();
            let export = o.export_name.as_ref().map(|_| "yes").unwrap_or("");
            table.add_row([name.as_str(), description.trim(), export]);
        }
        say!("{table}");
    }
}

fn print_json(file: &str, analysis: &Analysis) {
    let diagnostics: Vec<_> = analysis
        .diagnostics
        .iter()
        .map(|d| {
            json!({
                "severity": if d.severity == Severity::Error { "error" } else { "warning" },
                "line": d.span.start.line,
                "column": d.span.start.col,
                "message": d.message,
            })
        })
        .collect();
    let mut out =
        json!({ "file": file, "valid": !analysis.has_errors(), "diagnostics": diagnostics });
    if let Some(stack) = &analysis.stack {
        let t = &stack.template;
        out["parameters"] = t
            .parameters
            .values()
            .map(|p| json!({"name": p.name, "type": p.type_name, "noEcho": p.no_echo, "hasDefault": p.default.is_some()}))
            .collect();
        out["resources"] = t
            .resources
            .values()
            .map(|r| json!({"logicalId": r.name, "type": r.type_name}))
            .collect();
        out["outputs"] = t.outputs.keys().cloned().collect();
    }
    say!("{}", serde_json::to_string_pretty(&out).unwrap_or_default());
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

fn warning_note(warnings: usize) -> String {
    if warnings == 0 { String::new() } else { format!(" ({warnings} warning{})", plural(warnings)) }
}
