//! What a node refers to, found without evaluating it: `Ref`, `Fn::GetAtt`, `Fn::Sub`
//! variables and condition names. Used for static checks and for the dependency graph.

use crate::eval::Truth;
use crate::node::{Kind, Node};
use crate::span::Span;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RefKind {
    Ref,
    GetAtt,
    Sub,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reference {
    pub kind: RefKind,
    pub target: String,
    /// The attribute of a `Fn::GetAtt` (or `${Res.Attr}`) when it is literal.
    pub attribute: Option<String>,
    pub span: Span,
}

/// A use of a condition name: `Fn::If` or the `Condition` function.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConditionUse {
    pub name: String,
    pub span: Span,
    /// Used as the first argument of `Fn::If` (rather than by the `Condition` function).
    pub in_if: bool,
}

/// References in `node`. Where `truth` knows the value of an `Fn::If` condition, only the taken
/// branch is searched (what CloudFormation does once conditions are evaluated).
pub fn references(node: &Node, truth: &dyn Fn(&str) -> Truth) -> Vec<Reference> {
    let mut out = Vec::new();
    collect(node, truth, &mut out, &mut Vec::new());
    out
}

/// Condition names used in `node`.
pub fn condition_uses(node: &Node) -> Vec<ConditionUse> {
    let mut out = Vec::new();
    collect(node, &|_| None, &mut Vec::new(), &mut out);
    out
}

fn collect(
    node: &Node,
    truth: &dyn Fn(&str) -> Truth,
    refs: &mut Vec<Reference>,
    conds: &mut Vec<ConditionUse>,
) {
    match &node.kind {
        Kind::Seq(items) => items.iter().for_each(|n| collect(n, truth, refs, conds)),
        Kind::Map(map) => {
            let Some((name, arg)) = node.as_intrinsic() else {
                map.iter().for_each(|e| collect(&e.value, truth, refs, conds));
                return;
            };
            match name {
                "Ref" => {
                    if let Some(target) = arg.as_str() {
                        refs.push(Reference {
                            kind: RefKind::Ref,
                            target: target.to_string(),
                            attribute: None,
                            span: node.span,
                        });
                    }
                }
                "Fn::GetAtt" => match &arg.kind {
                    Kind::String(s) => {
                        let (target, attr) = s.split_once('.').unwrap_or((s, ""));
                        refs.push(Reference {
                            kind: RefKind::GetAtt,
                            target: target.to_string(),
                            attribute: (!attr.is_empty()).then(|| attr.to_string()),
                            span: node.span,
                        });
                    }
                    Kind::Seq(items) => {
                        if let Some(target) = items.first().and_then(Node::as_str) {
                            refs.push(Reference {
                                kind: RefKind::GetAtt,
                                target: target.to_string(),
                                attribute: items.get(1).and_then(Node::as_str).map(str::to_string),
                                span: node.span,
                            });
                        }
                        items.iter().skip(1).for_each(|n| collect(n, truth, refs, conds));
                    }
                    _ => {}
                },
                "Fn::Sub" => {
                    let (template, vars) = match &arg.kind {
                        Kind::String(s) => (Some(s.as_str()), None),
                        Kind::Seq(items) => (items.first().and_then(Node::as_str), items.get(1)),
                        _ => (None, None),
                    };
                    let local = vars.and_then(Node::as_map);
                    if let Some(template) = template {
                        for var in crate::sub::variables(template) {
                            if local.is_some_and(|m| m.get(var).is_some()) {
                                continue;
                            }
                            let (target, attribute) = match var.split_once('.') {
                                Some((t, a)) => (t, Some(a.to_string())),
                                None => (var, None),
                            };
                            let kind =
                                if attribute.is_some() { RefKind::GetAtt } else { RefKind::Sub };
                            refs.push(Reference {
                                kind,
                                target: target.to_string(),
                                attribute,
                                span: node.span,
                            });
                        }
                    }
                    if let Some(vars) = vars {
                        collect(vars, truth, refs, conds);
                    }
                }
                "Fn::If" => {
                    let items = arg.as_seq().unwrap_or_default();
                    let cond = items.first().and_then(Node::as_str);
                    if let Some(cond) = cond {
                        conds.push(ConditionUse {
                            name: cond.to_string(),
                            span: items[0].span,
                            in_if: true,
                        });
                    }
                    match cond.and_then(truth) {
                        Some(true) => {
                            items.get(1).into_iter().for_each(|n| collect(n, truth, refs, conds))
                        }
                        Some(false) => {
                            items.get(2).into_iter().for_each(|n| collect(n, truth, refs, conds))
                        }
                        None => items.iter().skip(1).for_each(|n| collect(n, truth, refs, conds)),
                    }
                }
                "Condition" => {
                    if let Some(cond) = arg.as_str() {
                        conds.push(ConditionUse {
                            name: cond.to_string(),
                            span: arg.span,
                            in_if: false,
                        });
                    }
                }
                _ => collect(arg, truth, refs, conds),
            }
        }
        _ => {}
    }
}
