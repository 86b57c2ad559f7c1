//! COVERAGE.md marks every operation the endpoint answers, and only those: an operation
//! added without rerunning `scripts/coverage.py` fails here, and so does a stale mark.

use std::collections::{BTreeMap, BTreeSet};

#[test]
fn coverage_md_marks_exactly_the_operations_answered() {
    let path = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../COVERAGE.md");
    let text = std::fs::read_to_string(&path).expect("COVERAGE.md (python3 scripts/coverage.py)");
    let mut marked: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut listed: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut service = String::new();
    for line in text.lines() {
        if let Some(s) = line.strip_prefix("## ") {
            service = s.trim().to_string();
        } else if let Some(op) = line.strip_prefix("- [x] ") {
            marked.entry(service.clone()).or_default().insert(op.trim().to_string());
            listed.entry(service.clone()).or_default().insert(op.trim().to_string());
        } else if let Some(op) = line.strip_prefix("- [ ] ") {
            listed.entry(service.clone()).or_default().insert(op.trim().to_string());
        }
    }
    let mut problems = Vec::new();
    for (service, actions) in api::coverage::implemented() {
        let actions: BTreeSet<String> = actions.iter().map(|a| a.to_string()).collect();
        let have = marked.get(service).cloned().unwrap_or_default();
        for a in actions.difference(&have) {
            if listed.get(service).is_some_and(|l| l.contains(a)) {
                problems.push(format!("{service} {a}: answered but not marked"));
            } else {
                problems.push(format!(
                    "{service} {a}: answered but not an operation of botocore's model"
                ));
            }
        }
        for a in have.difference(&actions) {
            problems.push(format!("{service} {a}: marked but not answered"));
        }
        marked.remove(service);
    }
    for (service, left) in marked {
        problems
            .push(format!("{service}: marked {} operations Cumulo does not answer", left.len()));
    }
    assert!(problems.is_empty(), "rerun python3 scripts/coverage.py:\n{}", problems.join("\n"));
}
