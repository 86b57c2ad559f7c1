//! Broken templates (tests/broken/*): each gives the expected messages at the right
//! line:column, rendered as `cumulo validate` prints them. The expectations are golden files
//! beside the templates (`NAME.expected`); `UPDATE_EXPECT=1 cargo test` rewrites them.

use std::path::Path;

use cfn_template::{Mode, Options, analyze, public_parameters};

use crate::support::repo;

/// Reads `# params: K=V ...` and `# mode: strict` from the first lines of a template.
fn options_from_header(text: &str) -> (Vec<(String, String)>, Mode) {
    let mut params = Vec::new();
    let mut mode = Mode::Validate;
    for line in text.lines().take_while(|l| l.starts_with('#')) {
        if let Some(rest) = line.strip_prefix("# params:") {
            for pair in rest.split_whitespace() {
                let (k, v) = pair.split_once('=').expect("K=V");
                params.push((k.to_string(), v.to_string()));
            }
        } else if line.trim() == "# mode: strict" {
            mode = Mode::Resolve;
        }
    }
    (params, mode)
}

fn render(name: &str, text: &str) -> String {
    let store = public_parameters();
    let (params, mode) = options_from_header(text);
    let mut options = Options::validate(&store);
    options.parameters = params.into_iter().collect();
    options.mode = mode;
    let analysis = analyze(text, &options);
    assert!(analysis.has_errors(), "{name} should not be valid");
    analysis.diagnostics.iter().map(|d| d.render(name, text)).collect()
}

#[test]
fn broken_templates_give_expected_messages() {
    let dir = repo().join("crates/cfn-template/tests/broken");
    let mut names: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.ends_with(".yaml") || n.ends_with(".json"))
        .collect();
    names.sort();
    assert!(names.len() >= 30, "only {} broken templates", names.len());
    let update = std::env::var_os("UPDATE_EXPECT").is_some();
    let mut mismatches = Vec::new();
    for name in &names {
        let text = std::fs::read_to_string(dir.join(name)).unwrap();
        let actual = render(name, &text);
        let expected_path = dir.join(Path::new(name).with_extension("expected"));
        let expected = std::fs::read_to_string(&expected_path).unwrap_or_default();
        if actual != expected {
            if update {
                std::fs::write(&expected_path, &actual).unwrap();
            } else {
                mismatches.push(format!("--- {name}: expected\n{expected}--- actual\n{actual}"));
            }
        }
    }
    assert!(mismatches.is_empty(), "{}\n(UPDATE_EXPECT=1 to accept)", mismatches.join("\n"));
}
