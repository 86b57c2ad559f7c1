//! Parse, validate and resolve arbitrary text: no input may panic.

#![no_main]

use cfn_template::{Mode, Options, analyze, public_parameters};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let store = public_parameters();
    // As `cumulo validate` does, then as CreateStack would.
    let analysis = analyze(text, &Options::validate(&store));
    for d in &analysis.diagnostics {
        let _ = d.render("fuzz.yaml", text);
    }
    let mut options = Options::validate(&store);
    options.mode = Mode::Resolve;
    options.pseudo.stack_name = Some("fuzz".into());
    if let Some(stack) = analyze(text, &options).stack {
        for name in stack.template.resources.keys() {
            let _ = stack.resolve_properties(name, &cfn_template::NoResources, &store);
        }
        let _ = stack.resolve_outputs(&cfn_template::NoResources, &store);
    }
});
