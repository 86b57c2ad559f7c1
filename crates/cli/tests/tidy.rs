//! Rules of the workspace's layout that the compiler does not check, held by reading the sources.

use std::path::{Path, PathBuf};

/// The crates that are edges: they may use `anyhow` and read the process environment. `cli` is
/// the edge of the region's process (it reads the environment and injects what it read through
/// config); `instance-tools` runs inside instances, as other programs, and its environment is
/// the instance's (`AWS_ENDPOINT_URL`, `CUMULO_INSTANCE_ID`, the metadata endpoint...).
const EDGES: &[&str] = &["cli", "instance-tools"];

/// What reads the process environment at run time (`env!`/`option_env!` are compile time).
const ENV_READS: &[&str] = &["env::var", "env::temp_dir", "env::home_dir"];

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The workspace's crates, in name order.
fn crates(root: &Path) -> Vec<PathBuf> {
    let mut crates: Vec<PathBuf> = std::fs::read_dir(root.join("crates"))
        .expect("the workspace's crates")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.join("Cargo.toml").is_file())
        .collect();
    crates.sort();
    crates
}

/// Every `.rs` file under `dir`, except test code: `tests/`, `benches/` and `examples/`
/// directories and `tests.rs` files (which are `#[cfg(test)] mod tests;`).
fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for entry in entries.flatten() {
        let path = entry.path();
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if path.is_dir() {
            if !matches!(name.as_ref(), "tests" | "benches" | "examples" | "target") {
                sources(&path, out);
            }
        } else if name.ends_with(".rs") && name != "tests.rs" {
            out.push(path);
        }
    }
}

/// The lines of a source file that are neither comments nor test code, with their numbers. An
/// inline `#[cfg(test)] mod … {` is, by the workspace's convention, the last item of its file:
/// everything from it on is test code.
fn code_lines(text: &str) -> Vec<(usize, &str)> {
    let lines: Vec<&str> = text.lines().collect();
    let mut out = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        let trimmed = line.trim_start();
        if trimmed.starts_with("#[cfg(test)]") {
            let next = lines[i + 1..].iter().map(|l| l.trim()).find(|l| !l.is_empty());
            if next.is_some_and(|l| l.starts_with("mod ") && l.ends_with('{')) {
                break;
            }
        }
        if trimmed.starts_with("//") {
            continue;
        }
        out.push((i + 1, *line));
    }
    out
}

/// `anyhow` in a manifest outside `[dev-dependencies]`.
fn manifest_uses_anyhow(text: &str) -> Vec<(usize, &str)> {
    let mut section = "";
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let trimmed = line.trim();
        if trimmed.starts_with('[') {
            section = trimmed;
        } else if trimmed.starts_with("anyhow") && !section.contains("dev-dependencies") {
            out.push((i + 1, line));
        }
    }
    out
}

#[test]
fn anyhow_and_env_reads_stay_at_the_edges() {
    let root = workspace();
    let mut offences = Vec::new();
    let crates = crates(&root);
    assert!(crates.len() > 5, "found the crates in {}", root.display());
    for krate in crates {
        let name = krate.file_name().unwrap().to_string_lossy().into_owned();
        if EDGES.contains(&name.as_str()) {
            continue;
        }
        let manifest = std::fs::read_to_string(krate.join("Cargo.toml")).unwrap();
        for (n, line) in manifest_uses_anyhow(&manifest) {
            offences.push(format!("crates/{name}/Cargo.toml:{n}: {}", line.trim()));
        }
        let mut files = Vec::new();
        sources(&krate, &mut files);
        files.sort();
        for file in files {
            let text = std::fs::read_to_string(&file).unwrap();
            for (n, line) in code_lines(&text) {
                if line.contains("anyhow") || ENV_READS.iter().any(|p| line.contains(p)) {
                    let shown = file.strip_prefix(&root).unwrap_or(&file).display().to_string();
                    offences.push(format!("{shown}:{n}: {}", line.trim()));
                }
            }
        }
    }
    assert!(
        offences.is_empty(),
        "anyhow and environment reads belong to crates/cli (and crates/instance-tools, which runs \
         inside instances); read the value in cli and pass it in through config, or give the \
         error a thiserror type (ARCHITECTURE.md, crates/cli):\n{}",
        offences.join("\n")
    );
}

#[test]
fn the_edge_check_skips_comments_and_test_code() {
    let text = "\
fn a() { let _ = std::env::var(\"X\"); }
// std::env::var in a comment
#[cfg(test)]
fn helper() {}
fn b() {}
#[cfg(test)]
mod tests {
    fn t() { std::env::var(\"UPDATE_EXPECT\"); }
}
";
    let lines: Vec<usize> = code_lines(text).into_iter().map(|(n, _)| n).collect();
    assert_eq!(lines, [1, 3, 4, 5]);
    let manifest = "[dependencies]\nanyhow.workspace = true\n[dev-dependencies]\nanyhow = \"1\"\n";
    assert_eq!(manifest_uses_anyhow(manifest), [(2, "anyhow.workspace = true")]);
}

/// The crates that may read the time or wait on it outside the clock: `clock` itself; the load
/// balancer's data plane (`elb-proxy`), which runs on real time by design (every duration
/// handed to it is scaled at the boundary); and the programs outside the region's clock: the
/// client side (`cli` talks to a region over HTTP), the supervisor shim and `instance-tools`
/// (they run in other processes).
const REAL_TIME: &[&str] = &["clock", "elb-proxy", "cli", "supervisor", "instance-tools"];

/// What reads the time or waits on it without a `Clock`.
const TIME_READS: &[&str] = &[
    "Instant::now",
    "SystemTime::now",
    "Timestamp::now",
    "time::sleep",
    "time::timeout",
    "time::interval",
    "interval_at",
    "time::sleep_until",
];

/// A store call whose error is dropped on the floor: `let _ = ...store...`, or a store read
/// turned into "nothing there" (`.ok()`, `.unwrap_or_default()` on the same line).
fn drops_a_store_result(line: &str) -> bool {
    line.contains("store.")
        && (line.trim_start().starts_with("let _ =")
            || line.contains(".ok()")
            || line.contains(".unwrap_or_default()"))
}

#[test]
fn time_goes_through_the_clock_and_store_errors_are_not_dropped() {
    let root = workspace();
    let mut offences = Vec::new();
    let crates = crates(&root);
    for krate in crates {
        let name = krate.file_name().unwrap().to_string_lossy().into_owned();
        let real_time = REAL_TIME.contains(&name.as_str());
        let mut files = Vec::new();
        sources(&krate, &mut files);
        files.sort();
        for file in files {
            let text = std::fs::read_to_string(&file).unwrap();
            let shown = file.strip_prefix(&root).unwrap_or(&file).display().to_string();
            for (n, line) in code_lines(&text) {
                if !real_time && TIME_READS.iter().any(|p| line.contains(p)) {
                    offences.push(format!("{shown}:{n}: time outside the clock: {}", line.trim()));
                }
                if drops_a_store_result(line) {
                    offences.push(format!("{shown}:{n}: a dropped store error: {}", line.trim()));
                }
            }
        }
    }
    assert!(
        offences.is_empty(),
        "every timer and timestamp goes through clock::Clock (ARCHITECTURE.md, crates/clock), and \
         a store error is returned or handled, never dropped:\n{}",
        offences.join("\n")
    );
}

#[test]
fn the_clock_check_sees_what_it_is_for() {
    assert!(drops_a_store_result("        let _ = self.store.put(GROUPS, &id, &g);"));
    assert!(!drops_a_store_result("        self.store.put(GROUPS, &id, &g)?;"));
    assert!(drops_a_store_result("self.store.get(PARAMETERS, &id).ok().flatten();"));
    assert!(drops_a_store_result("self.store.list(GROUPS, \"\").unwrap_or_default()"));
    let found = |line: &str| TIME_READS.iter().any(|p| line.contains(p));
    assert!(found("let now = tokio::time::Instant::now();"));
    assert!(found("tokio::time::sleep(Duration::from_millis(50)).await;"));
    assert!(!found("self.clock.sleep(TICK).await;"));
}
