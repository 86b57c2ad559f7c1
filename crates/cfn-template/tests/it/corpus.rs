//! Every corpus template validates with no false error, without parameter values and with a
//! full set of them, and with the full set it resolves completely.

use cfn_template::{Mode, Options, Value, analyze, public_parameters};
use indexmap::IndexMap;

use crate::support::{Placeholders, corpus, repo};

fn render(path: &str, text: &str, diags: &[cfn_template::Diagnostic]) -> String {
    diags.iter().filter(|d| d.is_error()).map(|d| d.render(path, text)).collect()
}

#[test]
fn corpus_validates_without_parameter_values() {
    let store = public_parameters();
    let mut failures = String::new();
    let templates = corpus();
    for (path, text) in &templates {
        let analysis = analyze(text, &Options::validate(&store));
        failures.push_str(&render(path, text, &analysis.diagnostics));
    }
    assert!(failures.is_empty(), "false errors:\n{failures}");
    eprintln!("corpus: {} templates validate without parameter values", templates.len());
}

#[test]
fn corpus_resolves_completely_with_full_parameter_values() {
    let store = public_parameters();
    let all: IndexMap<String, IndexMap<String, String>> = serde_json::from_str(
        &std::fs::read_to_string(repo().join("tests/corpus-parameters.json")).unwrap(),
    )
    .unwrap();
    let templates = corpus();
    let mut failures = String::new();
    let (mut resources, mut outputs) = (0, 0);
    for (path, text) in &templates {
        let mut options = Options::validate(&store);
        options.mode = Mode::Resolve;
        options.pseudo.stack_name = Some("corpus".into());
        options.pseudo.stack_id = Some("arn:aws:cloudformation:us-east-1:000000000000:stack/corpus/0f7a6b2e-3c1d-4e5f-8a9b-0c1d2e3f4a5b".into());
        options.parameters = all
            .get(path)
            .cloned()
            .unwrap_or_else(|| panic!("{path} has no entry in tests/corpus-parameters.json"));
        let analysis = analyze(text, &options);
        failures.push_str(&render(path, text, &analysis.diagnostics));
        let Some(stack) = analysis.stack else { continue };
        let resolver = Placeholders { template: &stack.template };
        for (name, value) in &stack.parameters.values {
            if value.contains_unknown() {
                failures.push_str(&format!("{path}: parameter {name} has no value\n"));
            }
        }
        for (name, truth) in &stack.conditions {
            if truth.is_none() {
                failures.push_str(&format!("{path}: condition {name} undecided\n"));
            }
        }
        for name in stack.template.resources.keys() {
            match stack.present(name) {
                Some(true) => {}
                Some(false) => continue,
                None => {
                    failures.push_str(&format!("{path}: presence of {name} undecided\n"));
                    continue;
                }
            }
            resources += 1;
            match stack.resolve_properties(name, &resolver, &store) {
                Ok(Some(v)) if v.contains_unknown() => {
                    failures.push_str(&format!("{path}: {name} not fully resolved: {v}\n"))
                }
                Ok(_) => {}
                Err(errors) => failures.push_str(&render(path, text, &errors)),
            }
        }
        let (resolved, errors) = stack.resolve_outputs(&resolver, &store);
        failures.push_str(&render(path, text, &errors));
        for o in &resolved {
            outputs += 1;
            if o.value.contains_unknown() || matches!(o.value, Value::Map(_)) {
                failures
                    .push_str(&format!("{path}: output {} not resolved: {}\n", o.name, o.value));
            }
        }
    }
    assert!(failures.is_empty(), "{failures}");
    eprintln!(
        "corpus: {} templates validate and resolve completely with full parameter values ({resources} resources, {outputs} outputs)",
        templates.len()
    );
}

/// The repository's copy of the corpus is the shared corpus, byte for byte (when it is here).
#[test]
fn corpus_copy_is_verbatim() {
    let shared = repo().join("../shared/corpus");
    if !shared.join("MANIFEST.tsv").exists() {
        eprintln!(
            "../shared/corpus is not on this machine; the copy in tests/corpus is used as is"
        );
        return;
    }
    let mut differing = Vec::new();
    for (path, text) in corpus() {
        if std::fs::read_to_string(shared.join(&path)).ok().as_deref() != Some(text.as_str()) {
            differing.push(path);
        }
    }
    let manifest = |p: std::path::PathBuf| std::fs::read_to_string(p.join("MANIFEST.tsv")).unwrap();
    assert_eq!(
        manifest(shared.clone()),
        manifest(repo().join("tests/corpus")),
        "MANIFEST.tsv differs"
    );
    assert!(differing.is_empty(), "tests/corpus differs from ../shared/corpus: {differing:?}");
}
