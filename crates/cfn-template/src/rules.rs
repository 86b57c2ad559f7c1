//! The Rules section: assertions over parameter values, checked before anything is created.

use crate::diag::{Diagnostic, Diagnostics};
use crate::eval::{Evaluator, Truth};
use crate::node::Node;
use crate::value::Value;

/// Checks every rule whose condition holds. Assertions that depend on unknown values, or on
/// account facts (`Fn::ValueOf`, `Fn::RefAll`), are not decided.
pub fn check(ev: &Evaluator<'_>, diags: &mut Diagnostics) {
    for rule in ev.template.rules.values() {
        let applies = match &rule.rule_condition {
            Some(c) => match truth(ev, c) {
                Ok(t) => t,
                Err(d) => {
                    diags.push(d);
                    continue;
                }
            },
            None => Some(true),
        };
        if applies != Some(true) {
            continue;
        }
        for assertion in &rule.assertions {
            match truth(ev, &assertion.assert) {
                Ok(Some(false)) => {
                    let text = assertion
                        .description
                        .clone()
                        .unwrap_or_else(|| format!("Assertion of rule {} failed", rule.name));
                    diags.error(assertion.assert.span, format!("Template error: {text}"));
                }
                Ok(_) => {}
                Err(d) => diags.push(d),
            }
        }
    }
}

fn truth(ev: &Evaluator<'_>, node: &Node) -> Result<Truth, Diagnostic> {
    let Some((name, arg)) = node.as_intrinsic() else { return ev.truth(node) };
    let args = |n: usize| -> Result<&[Node], Diagnostic> {
        match arg.as_seq() {
            Some(items) if items.len() == n => Ok(items),
            _ => Err(Diagnostic::error(
                arg.span,
                format!("Template error: {name} requires a list of {n} arguments"),
            )),
        }
    };
    match name {
        "Fn::Not" => Ok(truth(ev, &args(1)?[0])?.map(|b| !b)),
        "Fn::And" | "Fn::Or" => {
            let is_and = name == "Fn::And";
            let mut unknown = false;
            for item in arg.as_seq().unwrap_or_default() {
                match truth(ev, item)? {
                    Some(b) if b != is_and => return Ok(Some(b)),
                    Some(_) => {}
                    None => unknown = true,
                }
            }
            Ok(if unknown { None } else { Some(is_and) })
        }
        "Fn::Equals" => {
            let items = args(2)?;
            let (a, b) = (value(ev, &items[0])?, value(ev, &items[1])?);
            if a.contains_unknown() || b.contains_unknown() {
                return Ok(None);
            }
            Ok(Some(a.as_text().zip(b.as_text()).map_or(a == b, |(x, y)| x == y)))
        }
        "Fn::Contains" | "Fn::EachMemberEquals" | "Fn::EachMemberIn" => {
            let items = args(2)?;
            let (a, b) = (value(ev, &items[0])?, value(ev, &items[1])?);
            if a.contains_unknown() || b.contains_unknown() {
                return Ok(None);
            }
            let list = |v: &Value| -> Vec<String> {
                match v {
                    Value::List(items) => items.iter().filter_map(Value::as_text).collect(),
                    other => other.as_text().into_iter().collect(),
                }
            };
            let (la, lb) = (list(&a), list(&b));
            Ok(Some(match name {
                "Fn::Contains" => lb.first().is_some_and(|x| la.contains(x)),
                "Fn::EachMemberEquals" => lb.first().is_some_and(|x| la.iter().all(|i| i == x)),
                _ => la.iter().all(|i| lb.contains(i)),
            }))
        }
        _ => ev.truth(node),
    }
}

/// A value inside a rule: account lookups are unknown locally at validation time.
fn value(ev: &Evaluator<'_>, node: &Node) -> Result<Value, Diagnostic> {
    if let Some((name, _)) = node.as_intrinsic()
        && matches!(name, "Fn::ValueOf" | "Fn::ValueOfAll" | "Fn::RefAll")
    {
        return Ok(Value::Unknown);
    }
    ev.value(node)
}
