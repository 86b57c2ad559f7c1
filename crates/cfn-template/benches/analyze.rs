//! Parse, validate and resolve the largest corpus templates; prints one line per template.
//!
//!     cargo bench -p cfn-template --bench analyze
//!
//! Times are per template, after one warm-up run (which also parses the resource schemas the
//! template uses, once per process).

use std::time::{Duration, Instant};

use cfn_template::{Mode, Options, analyze, public_parameters};

fn main() {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests");
    let manifest = std::fs::read_to_string(format!("{root}/corpus/MANIFEST.tsv")).unwrap();
    let params: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(format!("{root}/corpus-parameters.json")).unwrap(),
    )
    .unwrap();
    let mut templates: Vec<(String, String)> = manifest
        .lines()
        .skip(1)
        .filter_map(|l| l.split('\t').next())
        .map(|p| (p.to_string(), std::fs::read_to_string(format!("{root}/corpus/{p}")).unwrap()))
        .collect();
    templates.sort_by_key(|(_, t)| std::cmp::Reverse(t.len()));
    let store = public_parameters();
    println!(
        "{:<62} {:>8} {:>10} {:>10} {:>10}",
        "template", "bytes", "validate", "resolve", "min"
    );
    for (path, text) in templates.iter().take(5) {
        let mut strict = Options::validate(&store);
        strict.mode = Mode::Resolve;
        strict.pseudo.stack_name = Some("bench".into());
        if let Some(map) = params[path].as_object() {
            strict.parameters = map
                .iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
                .collect();
        }
        let validate = Options::validate(&store);
        // Warm-up: schema parsing is once per process.
        assert!(!analyze(text, &strict).has_errors());
        let time = |options: &Options<'_>| -> (Duration, Duration) {
            let n = 200;
            let mut min = Duration::MAX;
            let start = Instant::now();
            for _ in 0..n {
                let t = Instant::now();
                std::hint::black_box(analyze(std::hint::black_box(text), options));
                min = min.min(t.elapsed());
            }
            (start.elapsed() / n, min)
        };
        let (v, _) = time(&validate);
        let (r, rmin) = time(&strict);
        println!(
            "{:<62} {:>8} {:>8.2}ms {:>8.2}ms {:>8.2}ms",
            path,
            text.len(),
            ms(v),
            ms(r),
            ms(rmin)
        );
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}
