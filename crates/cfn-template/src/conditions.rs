//! The Conditions section: evaluated once per stack operation, in dependency order.

use indexmap::IndexMap;

use crate::diag::Diagnostics;
use crate::eval::{Evaluator, Truth};
use crate::refs;

/// Evaluates every condition. Conditions that depend on unknown parameter values are `None`.
/// Cycles and references to missing conditions are reported; such conditions are `None`.
pub fn evaluate(base: &Evaluator<'_>, diags: &mut Diagnostics) -> IndexMap<String, Truth> {
    let template = base.template;
    let mut values: IndexMap<String, Truth> = IndexMap::new();
    // Depth-first in dependency order; `visiting` detects cycles.
    let mut state: IndexMap<&str, u8> = IndexMap::new(); // 1 = visiting, 2 = done
    for name in template.conditions.keys() {
        visit(name, base, &mut values, &mut state, &mut Vec::new(), diags);
    }
    // Keep template order.
    template.conditions.keys().map(|k| (k.clone(), values.get(k).copied().flatten())).collect()
}

fn visit<'t>(
    name: &'t str,
    base: &Evaluator<'t>,
    values: &mut IndexMap<String, Truth>,
    state: &mut IndexMap<&'t str, u8>,
    chain: &mut Vec<&'t str>,
    diags: &mut Diagnostics,
) {
    match state.get(name) {
        Some(2) => return,
        Some(1) => {
            let start = chain.iter().position(|c| *c == name).unwrap_or(0);
            let cycle = chain[start..].join(", ");
            let span = base.template.conditions[name].span;
            diags.error(
                span,
                format!("Template error: circular dependency between conditions: [{cycle}]"),
            );
            return;
        }
        _ => {}
    }
    let Some((key, condition)) = base.template.conditions.get_key_value(name) else { return };
    state.insert(key.as_str(), 1);
    chain.push(key.as_str());
    for used in refs::condition_uses(&condition.expr) {
        if let Some((dep, _)) = base.template.conditions.get_key_value(used.name.as_str()) {
            visit(dep.as_str(), base, values, state, chain, diags);
        }
    }
    chain.pop();
    state.insert(key.as_str(), 2);
    // A condition that refers to something other than a parameter has been reported already.
    let template = base.template;
    let valid = refs::references(&condition.expr, &|_| None).iter().all(|r| {
        template.parameters.contains_key(&r.target)
            || crate::eval::PSEUDO_PARAMETERS.contains(&r.target.as_str())
    });
    if !valid {
        values.insert(key.clone(), None);
        return;
    }
    let evaluator = Evaluator { conditions: values, ..*base };
    let truth = match evaluator.truth(&condition.expr) {
        Ok(t) => t,
        Err(d) => {
            diags.push(d);
            None
        }
    };
    values.insert(key.clone(), truth);
}
