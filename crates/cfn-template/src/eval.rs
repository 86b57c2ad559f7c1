//! Evaluation of intrinsic functions and condition functions.
//!
//! The evaluator is pure: what it cannot compute itself (a resource's physical id or attribute,
//! another stack's export) it asks a [`Resolver`], which the stack engine implements.

use base64::Engine as _;
use indexmap::IndexMap;

use crate::cidr;
use crate::diag::Diagnostic;
use crate::node::{Kind, Node};
use crate::params::Mode;
use crate::span::Span;
use crate::ssm::{ParameterStore, dynamic_refs};
use crate::template::{LANGUAGE_EXTENSIONS, Template};
use crate::value::Value;

/// What the engine asks of the world outside the template.
pub trait Resolver {
    /// `Ref` of a resource. `Ok(Value::Unknown)` when it does not exist yet.
    fn resource_ref(&self, logical_id: &str) -> Result<Value, String>;
    /// `Fn::GetAtt` of a resource. `Ok(Value::Unknown)` when not known yet.
    fn resource_attr(&self, logical_id: &str, attribute: &str) -> Result<Value, String>;
    /// `Fn::ImportValue`. `Ok(Value::Unknown)` when not known (validation).
    fn import_value(&self, export_name: &str) -> Result<Value, String>;
}

/// A resolver that knows nothing: every resource value and export is `Unknown`. Used to
/// validate a template without deploying it.
pub struct NoResources;

impl Resolver for NoResources {
    fn resource_ref(&self, _: &str) -> Result<Value, String> {
        Ok(Value::Unknown)
    }
    fn resource_attr(&self, _: &str, _: &str) -> Result<Value, String> {
        Ok(Value::Unknown)
    }
    fn import_value(&self, _: &str) -> Result<Value, String> {
        Ok(Value::Unknown)
    }
}

/// Pseudo parameter values. `None` for stack name and id means "not known yet".
#[derive(Clone, Debug)]
pub struct Pseudo {
    pub region: String,
    pub account_id: String,
    pub partition: String,
    pub url_suffix: String,
    pub stack_name: Option<String>,
    pub stack_id: Option<String>,
    pub notification_arns: Vec<String>,
}

impl Default for Pseudo {
    fn default() -> Pseudo {
        Pseudo {
            region: "us-east-1".into(),
            account_id: "000000000000".into(),
            partition: "aws".into(),
            url_suffix: "amazonaws.com".into(),
            stack_name: None,
            stack_id: None,
            notification_arns: Vec::new(),
        }
    }
}

pub const PSEUDO_PARAMETERS: &[&str] = &[
    "AWS::AccountId",
    "AWS::NotificationARNs",
    "AWS::NoValue",
    "AWS::Partition",
    "AWS::Region",
    "AWS::StackId",
    "AWS::StackName",
    "AWS::URLSuffix",
];

/// The availability zones of `region`, as `Fn::GetAZs` returns them locally.
pub fn availability_zones(region: &str) -> Vec<String> {
    ["a", "b", "c"].iter().map(|l| format!("{region}{l}")).collect()
}

/// Three-valued truth for conditions that depend on values not known yet.
pub type Truth = Option<bool>;

/// Everything an evaluation needs.
pub struct Evaluator<'a> {
    pub template: &'a Template,
    pub params: &'a IndexMap<String, Value>,
    pub conditions: &'a IndexMap<String, Truth>,
    pub pseudo: &'a Pseudo,
    pub resolver: &'a dyn Resolver,
    pub store: &'a dyn ParameterStore,
    pub mode: Mode,
    /// Resolve `{{resolve:...}}` dynamic references in strings (resource properties only).
    pub dynamic_references: bool,
    /// The section being evaluated, for messages (`Resources`, `Outputs`).
    pub section: &'static str,
}

type Eval = Result<Option<Value>, Diagnostic>;

fn err(span: Span, message: impl Into<String>) -> Diagnostic {
    Diagnostic::error(span, message)
}

const SUPPORTED: &str = "[Fn::Base64, Fn::GetAtt, Fn::GetAZs, Fn::ImportValue, Fn::Join, Fn::Split, Fn::FindInMap, Fn::Select, Ref, Fn::Equals, Fn::If, Fn::Not, Condition, Fn::And, Fn::Or, Fn::Contains, Fn::EachMemberEquals, Fn::EachMemberIn, Fn::ValueOf, Fn::ValueOfAll, Fn::RefAll, Fn::Sub, Fn::Cidr]";

// === impl Evaluator ===

impl Evaluator<'_> {
    /// Evaluates a node. `Ok(None)` is `AWS::NoValue`: the caller drops the item or property.
    pub fn eval(&self, node: &Node) -> Eval {
        match &node.kind {
            Kind::Null => Ok(Some(Value::Null)),
            Kind::Bool(b) => Ok(Some(Value::Bool(*b))),
            Kind::Number(n) => Ok(Some(Value::Number(n.clone()))),
            Kind::String(s) => Ok(Some(self.string(s, node.span)?)),
            Kind::Seq(items) => {
                let mut out = Vec::with_capacity(items.len());
                for item in items {
                    if let Some(v) = self.eval(item)? {
                        out.push(v);
                    }
                }
                Ok(Some(Value::List(out)))
            }
            Kind::Map(map) => {
                if let Some((name, arg)) = node.as_intrinsic() {
                    return self.function(name, arg, node.span);
                }
                let mut out = IndexMap::with_capacity(map.len());
                for entry in map.iter() {
                    if let Some(v) = self.eval(&entry.value)? {
                        out.insert(entry.key.clone(), v);
                    }
                }
                Ok(Some(Value::Map(out)))
            }
        }
    }

    /// Evaluates a node that must produce a value (`AWS::NoValue` is an error here).
    pub fn value(&self, node: &Node) -> Result<Value, Diagnostic> {
        self.eval(node)?
            .ok_or_else(|| err(node.span, "Template error: AWS::NoValue is not allowed here"))
    }

    fn string(&self, s: &str, span: Span) -> Result<Value, Diagnostic> {
        if !self.dynamic_references || !s.contains("{{resolve:") {
            return Ok(Value::String(s.to_string()));
        }
        let mut out = String::new();
        let mut last = 0;
        for r in dynamic_refs(s) {
            out.push_str(&s[last..r.range.start]);
            last = r.range.end;
            let key = match r.service.as_str() {
                "ssm" | "ssm-secure" => r.name.clone(),
                "secretsmanager" => format!("secretsmanager:{}", r.name),
                other => {
                    return Err(err(
                        span,
                        format!("Template error: unsupported dynamic reference service {other}"),
                    ));
                }
            };
            match self.store.get(&key, r.version.as_deref()) {
                Some(v) => out.push_str(&v),
                None if self.mode == Mode::Validate => return Ok(Value::Unknown),
                None => {
                    return Err(err(
                        span,
                        format!(
                            "Unable to fetch parameters [{}] from parameter store for this account.",
                            r.name
                        ),
                    ));
                }
            }
        }
        out.push_str(&s[last..]);
        Ok(Value::String(out))
    }

    fn function(&self, name: &str, arg: &Node, span: Span) -> Eval {
        match name {
            "Ref" => self.ref_(arg, span),
            "Fn::GetAtt" => self.get_att(arg, span).map(Some),
            "Fn::Sub" => self.sub(arg, span).map(Some),
            "Fn::Join" => self.join(arg, span).map(Some),
            "Fn::Select" => self.select(arg, span),
            "Fn::Split" => self.split(arg, span).map(Some),
            "Fn::If" => self.if_(arg, span),
            "Fn::FindInMap" => self.find_in_map(arg, span).map(Some),
            "Fn::GetAZs" => self.get_azs(arg, span).map(Some),
            "Fn::Base64" => self.base64(arg).map(Some),
            "Fn::Cidr" => self.cidr(arg, span).map(Some),
            "Fn::ImportValue" => self.import_value(arg, span).map(Some),
            "Fn::Equals" | "Fn::Not" | "Fn::And" | "Fn::Or" | "Condition" => {
                let truth = self.condition_fn(name, arg, span)?;
                Ok(Some(truth.map_or(Value::Unknown, Value::Bool)))
            }
            "Fn::Length" | "Fn::ToJsonString"
                if !self.template.has_transform(LANGUAGE_EXTENSIONS) =>
            {
                Err(err(
                    span,
                    format!(
                        "Template format error: {name} needs the AWS::LanguageExtensions transform"
                    ),
                ))
            }
            "Fn::Length" => {
                let v = self.value(arg)?;
                Ok(Some(match v {
                    Value::List(items) => Value::Number(items.len().to_string()),
                    Value::Unknown => Value::Unknown,
                    _ => return Err(err(arg.span, "Template error: Fn::Length requires a list")),
                }))
            }
            "Fn::ToJsonString" => {
                let v = self.value(arg)?;
                if v.contains_unknown() {
                    return Ok(Some(Value::Unknown));
                }
                Ok(Some(Value::String(v.to_json().to_string())))
            }
            "Fn::Contains"
            | "Fn::EachMemberEquals"
            | "Fn::EachMemberIn"
            | "Fn::RefAll"
            | "Fn::ValueOf"
            | "Fn::ValueOfAll" => Err(err(
                span,
                format!("Template format error: {name} can only be used in the Rules section"),
            )),
            "Fn::Transform" => Err(err(
                span,
                "Template format error: Fn::Transform (macros) is not supported by Cumulo",
            )),
            "Fn::ForEach" => {
                Err(err(span, "Template format error: Fn::ForEach is not supported by Cumulo"))
            }
            other => Err(unsupported_function(other, span)),
        }
    }

    /// A `Ref` target: pseudo parameter, parameter or resource.
    pub fn reference(&self, target: &str, span: Span) -> Eval {
        let pseudo = self.pseudo;
        let known = |v: &Option<String>| v.clone().map_or(Value::Unknown, Value::String);
        Ok(Some(match target {
            "AWS::NoValue" => return Ok(None),
            "AWS::Region" => Value::str(&pseudo.region),
            "AWS::AccountId" => Value::str(&pseudo.account_id),
            "AWS::Partition" => Value::str(&pseudo.partition),
            "AWS::URLSuffix" => Value::str(&pseudo.url_suffix),
            "AWS::StackName" => known(&pseudo.stack_name),
            "AWS::StackId" => known(&pseudo.stack_id),
            "AWS::NotificationARNs" => {
                Value::list_of_strings(pseudo.notification_arns.iter().cloned())
            }
            _ => {
                if let Some(v) = self.params.get(target) {
                    v.clone()
                } else if self.template.resources.contains_key(target) {
                    self.check_present(target, span)?;
                    self.resolver.resource_ref(target).map_err(|m| err(span, m))?
                } else {
                    return Err(err(span, unresolved_in(target, self.section)));
                }
            }
        }))
    }

    fn ref_(&self, arg: &Node, span: Span) -> Eval {
        match arg.as_str() {
            Some(target) => self.reference(target, span),
            None => Err(err(
                arg.span,
                "Template error: every Ref object must have a single String value.",
            )),
        }
    }

    /// Errors when a referenced resource is excluded by a condition that is false.
    fn check_present(&self, logical_id: &str, span: Span) -> Result<(), Diagnostic> {
        let resource = &self.template.resources[logical_id];
        if let Some((cond, _)) = &resource.condition
            && self.conditions.get(cond).copied().flatten() == Some(false)
        {
            return Err(err(span, unresolved(logical_id)));
        }
        Ok(())
    }

    fn get_att(&self, arg: &Node, span: Span) -> Result<Value, Diagnostic> {
        let (resource, attribute) = match &arg.kind {
            Kind::String(s) => match s.split_once('.') {
                Some((r, a)) => (r.to_string(), Value::str(a)),
                None => {
                    return Err(err(
                        arg.span,
                        "Template error: every Fn::GetAtt object requires two non-empty parameters, the resource name and the resource attribute",
                    ));
                }
            },
            Kind::Seq(items) if items.len() == 2 => {
                let Some(r) = items[0].as_str() else {
                    return Err(err(
                        items[0].span,
                        "Template error: the first argument of Fn::GetAtt must be a resource name",
                    ));
                };
                (r.to_string(), self.value(&items[1])?)
            }
            _ => {
                return Err(err(
                    arg.span,
                    "Template error: every Fn::GetAtt object requires two non-empty parameters, the resource name and the resource attribute",
                ));
            }
        };
        let Some(res) = self.template.resources.get(&resource) else {
            return Err(err(
                span,
                format!(
                    "Template error: instance of Fn::GetAtt references undefined resource {resource}"
                ),
            ));
        };
        self.check_present(&resource, span)?;
        let attribute = match attribute {
            Value::Unknown => return Ok(Value::Unknown),
            other => other.as_text().ok_or_else(|| {
                err(arg.span, "Template error: the attribute name of Fn::GetAtt must be a string")
            })?,
        };
        if !attribute_allowed(&res.type_name, &attribute) {
            return Err(err(
                span,
                format!(
                    "Template error: resource {resource} does not support attribute type {attribute} in Fn::GetAtt"
                ),
            ));
        }
        self.resolver.resource_attr(&resource, &attribute).map_err(|m| err(span, m))
    }

    fn sub(&self, arg: &Node, span: Span) -> Result<Value, Diagnostic> {
        let (template, vars) = match &arg.kind {
            Kind::String(s) => (s.as_str(), None),
            Kind::Seq(items) if items.len() == 2 => {
                let Some(s) = items[0].as_str() else {
                    return Err(err(
                        items[0].span,
                        "Template error: the first argument of Fn::Sub must be a string",
                    ));
                };
                let Some(vars) = items[1].as_map() else {
                    return Err(err(
                        items[1].span,
                        "Template error: the second argument of Fn::Sub must be a map of variables",
                    ));
                };
                (s, Some(vars))
            }
            _ => {
                return Err(err(
                    arg.span,
                    "Template error: Fn::Sub takes a string or a list of a string and a map",
                ));
            }
        };
        let mut out = String::new();
        let mut unknown = false;
        for part in crate::sub::parse(template) {
            match part {
                crate::sub::Part::Text(t) => out.push_str(&t),
                crate::sub::Part::Var(name) => {
                    let value = match vars.and_then(|v| v.get(name)) {
                        Some(node) => self.value(node)?,
                        None => match name.split_once('.') {
                            Some((res, attr)) if !self.params.contains_key(name) => {
                                let node = Node::new(
                                    span,
                                    Kind::Seq(vec![
                                        Node::new(span, Kind::String(res.to_string())),
                                        Node::new(span, Kind::String(attr.to_string())),
                                    ]),
                                );
                                self.get_att(&node, span)?
                            }
                            _ => {
                                self.reference(name, span)?.unwrap_or(Value::String(String::new()))
                            }
                        },
                    };
                    match value {
                        Value::Unknown => unknown = true,
                        v => match v.as_text() {
                            Some(t) => out.push_str(&t),
                            None => {
                                return Err(err(
                                    span,
                                    format!(
                                        "Template error: variable {name} in Fn::Sub expression does not resolve to a string"
                                    ),
                                ));
                            }
                        },
                    }
                }
            }
        }
        Ok(if unknown { Value::Unknown } else { Value::String(out) })
    }

    fn args<'n>(&self, arg: &'n Node, name: &str, n: usize) -> Result<&'n [Node], Diagnostic> {
        match arg.as_seq() {
            Some(items) if items.len() == n => Ok(items),
            _ => Err(err(
                arg.span,
                format!("Template error: {name} requires a list of {n} arguments"),
            )),
        }
    }

    fn join(&self, arg: &Node, span: Span) -> Result<Value, Diagnostic> {
        const MSG: &str = "Template error: every Fn::Join object requires two parameters, (1) a string delimiter and (2) a list of strings to be joined or a function that returns a list of strings (such as Fn::GetAZs) to be joined.";
        let items = arg.as_seq().filter(|i| i.len() == 2).ok_or_else(|| err(arg.span, MSG))?;
        let delimiter = match self.value(&items[0])? {
            Value::Unknown => return Ok(Value::Unknown),
            v => v.as_text().ok_or_else(|| err(items[0].span, MSG))?,
        };
        let list = match self.value(&items[1])? {
            Value::List(l) => l,
            Value::Unknown => return Ok(Value::Unknown),
            _ => return Err(err(items[1].span, MSG)),
        };
        let mut parts = Vec::with_capacity(list.len());
        for v in list {
            match v {
                Value::Unknown => return Ok(Value::Unknown),
                v => parts.push(v.as_text().ok_or_else(|| err(span, MSG))?),
            }
        }
        Ok(Value::String(parts.join(&delimiter)))
    }

    fn select(&self, arg: &Node, span: Span) -> Eval {
        let items = self.args(arg, "Fn::Select", 2)?;
        let index = match self.value(&items[0])? {
            Value::Unknown => return Ok(Some(Value::Unknown)),
            v => v.as_text().and_then(|t| t.trim().parse::<i64>().ok()).ok_or_else(|| {
                err(
                    items[0].span,
                    "Template error: Fn::Select requires a list index as its first argument",
                )
            })?,
        };
        let list = match self.value(&items[1])? {
            Value::List(l) => l,
            Value::Unknown => return Ok(Some(Value::Unknown)),
            _ => {
                return Err(err(
                    items[1].span,
                    "Template error: Fn::Select requires a list as its second argument",
                ));
            }
        };
        match usize::try_from(index).ok().and_then(|i| list.into_iter().nth(i)) {
            Some(v) => Ok(Some(v)),
            None => Err(err(
                span,
                format!(
                    "Template error: Fn::Select cannot select nonexistent value at index {index}"
                ),
            )),
        }
    }

    fn split(&self, arg: &Node, _span: Span) -> Result<Value, Diagnostic> {
        let items = self.args(arg, "Fn::Split", 2)?;
        let delimiter = match self.value(&items[0])? {
            Value::Unknown => return Ok(Value::Unknown),
            v => v.as_text().ok_or_else(|| {
                err(items[0].span, "Template error: the delimiter of Fn::Split must be a string")
            })?,
        };
        let source = match self.value(&items[1])? {
            Value::Unknown => return Ok(Value::Unknown),
            v => v.as_text().ok_or_else(|| {
                err(items[1].span, "Template error: Fn::Split can only split a string")
            })?,
        };
        if delimiter.is_empty() {
            return Err(err(
                items[0].span,
                "Template error: the delimiter of Fn::Split must not be empty",
            ));
        }
        Ok(Value::list_of_strings(source.split(delimiter.as_str())))
    }

    fn if_(&self, arg: &Node, _span: Span) -> Eval {
        let items = self.args(arg, "Fn::If", 3)?;
        let Some(cond) = items[0].as_str() else {
            return Err(err(
                items[0].span,
                "Template error: the first argument of Fn::If must be a condition name",
            ));
        };
        let truth = match self.conditions.get(cond) {
            Some(t) => t,
            None if self.template.conditions.contains_key(cond) => &None,
            None => {
                return Err(err(
                    items[0].span,
                    format!("Template error: unresolved condition dependency {cond} in Fn::If"),
                ));
            }
        };
        match truth {
            Some(true) => self.eval(&items[1]),
            Some(false) => self.eval(&items[2]),
            None => {
                // Both branches are checked; the result is unknown.
                let a = self.eval(&items[1])?;
                let b = self.eval(&items[2])?;
                Ok(match (a, b) {
                    (Some(a), Some(b)) if a == b => Some(a),
                    _ => Some(Value::Unknown),
                })
            }
        }
    }

    fn find_in_map(&self, arg: &Node, span: Span) -> Result<Value, Diagnostic> {
        let items = match arg.as_seq() {
            Some(items) if items.len() == 3 || items.len() == 4 => items,
            _ => {
                return Err(err(
                    arg.span,
                    "Template error: Fn::FindInMap requires a list of 3 arguments",
                ));
            }
        };
        let mut keys = Vec::with_capacity(3);
        for item in &items[..3] {
            match self.value(item)? {
                Value::Unknown => return Ok(Value::Unknown),
                v => keys.push(v.as_text().ok_or_else(|| {
                    err(item.span, "Template error: the keys of Fn::FindInMap must be strings")
                })?),
            }
        }
        let default = match items.get(3) {
            Some(d) => {
                if !self.template.has_transform(LANGUAGE_EXTENSIONS) {
                    return Err(err(
                        d.span,
                        "Template error: a DefaultValue in Fn::FindInMap needs the AWS::LanguageExtensions transform",
                    ));
                }
                match d.as_map().and_then(|m| m.get("DefaultValue")) {
                    Some(v) => Some(v),
                    None => {
                        return Err(err(
                            d.span,
                            "Template error: the fourth argument of Fn::FindInMap must be {DefaultValue: ...}",
                        ));
                    }
                }
            }
            None => None,
        };
        let Some(map) = self.template.mappings.get(&keys[0]) else {
            return Err(err(
                items[0].span,
                format!(
                    "Template error: Mapping named '{}' is not present in the 'Mappings' section of template.",
                    keys[0]
                ),
            ));
        };
        let found = map
            .as_map()
            .and_then(|m| m.get(&keys[1]))
            .and_then(Node::as_map)
            .and_then(|m| m.get(&keys[2]));
        match (found, default) {
            (Some(node), _) => self.value(node),
            (None, Some(d)) => self.value(d),
            (None, None) => Err(err(
                span,
                format!(
                    "Template error: Unable to get mapping for {}::{}::{}",
                    keys[0], keys[1], keys[2]
                ),
            )),
        }
    }

    fn get_azs(&self, arg: &Node, _span: Span) -> Result<Value, Diagnostic> {
        let region = match &arg.kind {
            Kind::Null => String::new(),
            _ => match self.value(arg)? {
                Value::Unknown => return Ok(Value::Unknown),
                v => v.as_text().ok_or_else(|| {
                    err(arg.span, "Template error: Fn::GetAZs requires a region name")
                })?,
            },
        };
        let region = if region.is_empty() { self.pseudo.region.clone() } else { region };
        Ok(Value::list_of_strings(availability_zones(&region)))
    }

    fn base64(&self, arg: &Node) -> Result<Value, Diagnostic> {
        match self.value(arg)? {
            Value::Unknown => Ok(Value::Unknown),
            v => {
                let text = v
                    .as_text()
                    .ok_or_else(|| err(arg.span, "Template error: Fn::Base64 requires a string"))?;
                Ok(Value::String(base64::engine::general_purpose::STANDARD.encode(text)))
            }
        }
    }

    fn cidr(&self, arg: &Node, span: Span) -> Result<Value, Diagnostic> {
        let items = self.args(arg, "Fn::Cidr", 3)?;
        let mut texts = Vec::with_capacity(3);
        for item in items {
            match self.value(item)? {
                Value::Unknown => return Ok(Value::Unknown),
                v => texts.push(v.as_text().ok_or_else(|| {
                    err(
                        item.span,
                        "Template error: the arguments of Fn::Cidr must be strings or numbers",
                    )
                })?),
            }
        }
        let count = texts[1].trim().parse::<u32>().map_err(|_| {
            err(items[1].span, "Template error: the count of Fn::Cidr must be a number")
        })?;
        let bits = texts[2].trim().parse::<u32>().map_err(|_| {
            err(items[2].span, "Template error: the cidrBits of Fn::Cidr must be a number")
        })?;
        cidr::cidr(&texts[0], count, bits)
            .map(Value::list_of_strings)
            .map_err(|m| err(span, format!("Template error: {m}")))
    }

    fn import_value(&self, arg: &Node, span: Span) -> Result<Value, Diagnostic> {
        match self.value(arg)? {
            Value::Unknown => Ok(Value::Unknown),
            v => {
                let name = v.as_text().ok_or_else(|| {
                    err(arg.span, "Template error: Fn::ImportValue requires an export name")
                })?;
                self.resolver.import_value(&name).map_err(|m| err(span, m))
            }
        }
    }

    /// Evaluates a condition function (`Fn::Equals`, `Fn::And`, ... or `Condition`).
    pub fn condition_fn(&self, name: &str, arg: &Node, span: Span) -> Result<Truth, Diagnostic> {
        match name {
            "Condition" => {
                let Some(cond) = arg.as_str() else {
                    return Err(err(
                        arg.span,
                        "Template error: Condition requires a condition name",
                    ));
                };
                match self.conditions.get(cond) {
                    Some(t) => Ok(*t),
                    // Declared but not decided (it is part of a cycle, reported on its own).
                    None if self.template.conditions.contains_key(cond) => Ok(None),
                    None => Err(err(
                        arg.span,
                        format!("Template error: unresolved condition dependency {cond}"),
                    )),
                }
            }
            "Fn::Equals" => {
                let items = self.args(arg, "Fn::Equals", 2)?;
                let a = self.value(&items[0])?;
                let b = self.value(&items[1])?;
                if a.contains_unknown() || b.contains_unknown() {
                    return Ok(None);
                }
                Ok(Some(loose_eq(&a, &b)))
            }
            "Fn::Not" => {
                let items = self.args(arg, "Fn::Not", 1)?;
                Ok(self.truth(&items[0])?.map(|b| !b))
            }
            "Fn::And" | "Fn::Or" => {
                let items = match arg.as_seq() {
                    Some(items) if (2..=10).contains(&items.len()) => items,
                    _ => {
                        return Err(err(
                            arg.span,
                            format!("Template error: {name} requires a list of 2 to 10 conditions"),
                        ));
                    }
                };
                let is_and = name == "Fn::And";
                let mut unknown = false;
                for item in items {
                    match self.truth(item)? {
                        Some(b) if b != is_and => return Ok(Some(b)),
                        Some(_) => {}
                        None => unknown = true,
                    }
                }
                Ok(if unknown { None } else { Some(is_and) })
            }
            _ => Err(err(span, format!("Template error: {name} is not a condition function"))),
        }
    }

    /// Evaluates a node that must be a condition (a condition function or a boolean).
    pub fn truth(&self, node: &Node) -> Result<Truth, Diagnostic> {
        if let Some((name, arg)) = node.as_intrinsic()
            && matches!(name, "Fn::Equals" | "Fn::Not" | "Fn::And" | "Fn::Or" | "Condition")
        {
            return self.condition_fn(name, arg, node.span);
        }
        match self.value(node)? {
            Value::Bool(b) => Ok(Some(b)),
            Value::Unknown => Ok(None),
            v => match v.as_text().as_deref() {
                Some("true") => Ok(Some(true)),
                Some("false") => Ok(Some(false)),
                _ => Err(err(
                    node.span,
                    "Template error: a condition must be a condition function or a boolean",
                )),
            },
        }
    }
}

/// `Fn::Equals` compares values as strings (`1` equals `"1"`), lists item by item.
fn loose_eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::List(x), Value::List(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(a, b)| loose_eq(a, b))
        }
        (Value::Map(_), _) | (_, Value::Map(_)) => a == b,
        _ => match (a.as_text(), b.as_text()) {
            (Some(x), Some(y)) => x == y,
            _ => a == b,
        },
    }
}

pub(crate) fn unsupported_function(name: &str, span: Span) -> Diagnostic {
    err(
        span,
        format!(
            "Template format error: Encountered unsupported function: {name} Supported functions are: {SUPPORTED}"
        ),
    )
}

pub(crate) fn unresolved(target: &str) -> String {
    unresolved_in(target, "Resources")
}

pub(crate) fn unresolved_in(target: &str, section: &str) -> String {
    format!(
        "Template format error: Unresolved resource dependencies [{target}] in the {section} block of the template"
    )
}

/// Whether `Fn::GetAtt` of `attribute` is valid on a resource of `type_name`.
///
/// Custom resources accept any attribute, nested stacks `Outputs.*`; other types take their
/// read-only properties, and, being lenient where AWS is inconsistent, any property path of
/// their schema. Unknown types accept anything (their type is reported elsewhere).
pub fn attribute_allowed(type_name: &str, attribute: &str) -> bool {
    if type_name.starts_with("Custom::") || type_name == "AWS::CloudFormation::CustomResource" {
        return true;
    }
    if type_name == "AWS::CloudFormation::Stack" && attribute.starts_with("Outputs.") {
        return true;
    }
    let Some(schema) = cfn_schema::get(type_name) else { return true };
    if schema.has_attribute(attribute) {
        return true;
    }
    let mut current = schema.schema.get("properties");
    let mut found = None;
    for part in attribute.split('.') {
        let Some(sub) = current.and_then(|p| p.get(part)) else { return false };
        let sub = schema.resolve(sub);
        found = Some(sub);
        current = sub.get("properties");
    }
    found.is_some()
}
