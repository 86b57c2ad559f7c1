//! Resource properties checked against the published resource provider schemas.
//!
//! CloudFormation is lenient about scalars (`"80"` is a fine integer, `8080` a fine string,
//! `"true"` a fine boolean), and so is this check. Values not known yet are not checked.
//! Messages follow AWS: `Encountered unsupported property X` for an unknown top-level property,
//! otherwise the JSON-schema validator's wording under
//! `Properties validation failed for resource X with message: #/path: ...`.

use std::cell::RefCell;
use std::collections::HashMap;

use cfn_schema::ResourceSchema;
use fancy_regex::Regex;
use serde_json::Value as J;

use crate::diag::Diagnostic;
use crate::node::{Kind, Node};
use crate::span::Span;
use crate::value::Value;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Seg {
    Key(String),
    Index(usize),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SchemaError {
    pub path: Vec<Seg>,
    /// For unknown properties: the key itself.
    pub key: Option<String>,
    pub message: String,
}

/// Checks a resource's resolved properties. `node` is the `Properties` node (for positions),
/// `fallback` the span used when a position cannot be found.
pub fn check_resource(
    logical_id: &str,
    schema: &ResourceSchema,
    properties: Option<&Value>,
    node: Option<&Node>,
    fallback: Span,
) -> Vec<Diagnostic> {
    let empty = Value::Map(Default::default());
    let value = properties.unwrap_or(&empty);
    let mut errors = Vec::new();
    let mut checker = Checker { schema, errors: &mut errors };
    checker.check(&schema.schema, value, &mut Vec::new(), 0);
    errors
        .into_iter()
        .map(|e| {
            let span = if e.path.is_empty() && e.key.is_none() {
                fallback
            } else {
                locate(node, &e.path, e.key.as_deref()).unwrap_or(fallback)
            };
            let message = match (&e.key, e.path.is_empty()) {
                (Some(key), true) if e.message.starts_with("extraneous key") => {
                    format!("Encountered unsupported property {key}")
                }
                _ => format!(
                    "Properties validation failed for resource {logical_id} with message: {}: {}",
                    pointer(&e.path),
                    e.message
                ),
            };
            Diagnostic::error(span, message)
        })
        .collect()
}

fn pointer(path: &[Seg]) -> String {
    let mut out = String::from("#");
    for seg in path {
        out.push('/');
        match seg {
            Seg::Key(k) => out.push_str(k),
            Seg::Index(i) => out.push_str(&i.to_string()),
        }
    }
    out
}

/// The deepest node along `path` (and the key itself for an unknown property).
fn locate(node: Option<&Node>, path: &[Seg], key: Option<&str>) -> Option<Span> {
    let mut current = node?;
    for seg in path {
        let next = match (seg, &current.kind) {
            (Seg::Key(k), Kind::Map(m)) if current.as_intrinsic().is_none() => m.get(k),
            (Seg::Index(i), Kind::Seq(items)) => items.get(*i),
            _ => None,
        };
        match next {
            Some(n) => current = n,
            None => return Some(current.span),
        }
    }
    if let (Some(key), Kind::Map(m)) = (key, &current.kind)
        && let Some(entry) = m.entry(key)
    {
        return Some(entry.key_span);
    }
    Some(current.span)
}

struct Checker<'a> {
    schema: &'a ResourceSchema,
    errors: &'a mut Vec<SchemaError>,
}

thread_local! {
    static PATTERNS: RefCell<HashMap<String, Option<Regex>>> = RefCell::new(HashMap::new());
}

fn pattern_matches(pattern: &str, text: &str) -> bool {
    PATTERNS.with(|cache| {
        let mut cache = cache.borrow_mut();
        let re = cache.entry(pattern.to_string()).or_insert_with(|| {
            fancy_regex::RegexBuilder::new(pattern)
                .backtrack_limit(100_000)
                .delegate_size_limit(1 << 22)
                .build()
                .ok()
        });
        // Patterns our engine cannot compile (look-around and the like) are not checked.
        re.as_ref().is_none_or(|re| re.is_match(text).unwrap_or(true))
    })
}

fn json_text(j: &J) -> Option<String> {
    match j {
        J::String(s) => Some(s.clone()),
        J::Number(n) => Some(n.to_string()),
        J::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn found_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "Null",
        Value::Bool(_) => "Boolean",
        Value::Number(n) if n.parse::<i64>().is_ok() => "Integer",
        Value::Number(_) => "Number",
        Value::String(_) => "String",
        Value::List(_) => "JSONArray",
        Value::Map(_) => "JSONObject",
        Value::Unknown => "Unknown",
    }
}

fn numeric(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) | Value::String(n) => {
            n.trim().parse::<f64>().ok().filter(|f| f.is_finite())
        }
        _ => None,
    }
}

fn type_matches(ty: &str, v: &Value) -> bool {
    match ty {
        "string" => matches!(v, Value::String(_) | Value::Number(_) | Value::Bool(_)),
        "integer" => match v {
            Value::Number(n) | Value::String(n) => {
                let t = n.trim();
                t.parse::<i128>().is_ok()
                    || t.parse::<f64>().is_ok_and(|f| f.fract() == 0.0 && f.is_finite())
            }
            _ => false,
        },
        "number" => numeric(v).is_some(),
        "boolean" => match v {
            Value::Bool(_) => true,
            Value::String(s) => s.eq_ignore_ascii_case("true") || s.eq_ignore_ascii_case("false"),
            _ => false,
        },
        "object" => matches!(v, Value::Map(_)),
        "array" => matches!(v, Value::List(_)),
        "null" => matches!(v, Value::Null),
        _ => true,
    }
}

fn schema_type_name(ty: &str) -> &'static str {
    match ty {
        "string" => "String",
        "integer" => "Integer",
        "number" => "Number",
        "boolean" => "Boolean",
        "object" => "JSONObject",
        "array" => "JSONArray",
        _ => "Null",
    }
}

// === impl Checker ===

impl Checker<'_> {
    fn push(&mut self, path: &[Seg], key: Option<String>, message: String) {
        self.errors.push(SchemaError { path: path.to_vec(), key, message });
    }

    /// Errors a subschema would give, without recording them.
    fn trial(&self, sub: &J, v: &Value, path: &mut Vec<Seg>, depth: usize) -> Vec<SchemaError> {
        let mut errors = Vec::new();
        Checker { schema: self.schema, errors: &mut errors }.check(sub, v, path, depth);
        errors
    }

    fn check(&mut self, schema: &J, v: &Value, path: &mut Vec<Seg>, depth: usize) {
        if depth > 64 || v.is_unknown() {
            return;
        }
        let schema = self.schema.resolve(schema);
        let Some(obj) = schema.as_object() else { return };

        if let Some(ty) = obj.get("type") {
            let ok = match ty {
                J::String(t) => type_matches(t, v),
                J::Array(ts) => ts.iter().filter_map(J::as_str).any(|t| type_matches(t, v)),
                _ => true,
            };
            if !ok {
                let expected = match ty {
                    J::String(t) => schema_type_name(t).to_string(),
                    J::Array(ts) => ts
                        .iter()
                        .filter_map(J::as_str)
                        .map(schema_type_name)
                        .collect::<Vec<_>>()
                        .join(" or "),
                    _ => String::new(),
                };
                self.push(
                    path,
                    None,
                    format!("expected type: {expected}, found: {}", found_type(v)),
                );
                return;
            }
        }

        // Scalars.
        if let Some(text) = match v {
            Value::String(_) | Value::Number(_) | Value::Bool(_) => v.as_text(),
            _ => None,
        } {
            if let Some(J::Array(allowed)) = obj.get("enum") {
                let insensitive =
                    obj.get("enumCaseInsensitive").and_then(J::as_bool).unwrap_or(false);
                let ok = allowed
                    .iter()
                    .filter_map(json_text)
                    .any(|a| if insensitive { a.eq_ignore_ascii_case(&text) } else { a == text });
                if !ok && !allowed.is_empty() {
                    self.push(path, None, format!("{text} is not a valid enum value"));
                }
            }
            if let Some(c) = obj.get("const").and_then(json_text)
                && c != text
            {
                self.push(path, None, format!("{text} is not the constant value {c}"));
            }
            if matches!(v, Value::String(_)) {
                let len = text.chars().count() as u64;
                if let Some(min) = obj.get("minLength").and_then(J::as_u64)
                    && len < min
                {
                    self.push(path, None, format!("expected minLength: {min}, actual: {len}"));
                }
                if let Some(max) = obj.get("maxLength").and_then(J::as_u64)
                    && len > max
                {
                    self.push(path, None, format!("expected maxLength: {max}, actual: {len}"));
                }
                if let Some(p) = obj.get("pattern").and_then(J::as_str)
                    && !pattern_matches(p, &text)
                {
                    self.push(path, None, format!("string [{text}] does not match pattern {p}"));
                }
            }
            if let Some(n) = numeric(v)
                .filter(|_| !matches!(obj.get("type"), Some(J::String(t)) if t == "string"))
            {
                if let Some(min) = obj.get("minimum").and_then(J::as_f64)
                    && n < min
                {
                    self.push(
                        path,
                        None,
                        format!("{text} is not greater or equal to {}", fmt(min)),
                    );
                }
                if let Some(max) = obj.get("maximum").and_then(J::as_f64)
                    && n > max
                {
                    self.push(path, None, format!("{text} is not less or equal to {}", fmt(max)));
                }
                if let Some(max) = obj.get("exclusiveMaximum").and_then(J::as_f64)
                    && n >= max
                {
                    self.push(path, None, format!("{text} is not less than {}", fmt(max)));
                }
            }
        }

        match v {
            Value::Map(map) => {
                let properties = obj.get("properties").and_then(J::as_object);
                let patterns = obj.get("patternProperties").and_then(J::as_object);
                let additional = obj.get("additionalProperties");
                for (key, value) in map {
                    path.push(Seg::Key(key.clone()));
                    if let Some(sub) = properties.and_then(|p| p.get(key)) {
                        self.check(sub, value, path, depth + 1);
                    } else if let Some(sub) = patterns.and_then(|p| {
                        p.iter().find(|(re, _)| pattern_matches(re, key)).map(|(_, s)| s)
                    }) {
                        self.check(sub, value, path, depth + 1);
                    } else {
                        match additional {
                            Some(J::Bool(false)) => {
                                path.pop();
                                self.push(
                                    path,
                                    Some(key.clone()),
                                    format!("extraneous key [{key}] is not permitted"),
                                );
                                continue;
                            }
                            Some(sub @ J::Object(_)) => self.check(sub, value, path, depth + 1),
                            _ => {}
                        }
                    }
                    path.pop();
                }
                if let Some(J::Array(required)) = obj.get("required") {
                    for name in required.iter().filter_map(J::as_str) {
                        if !map.contains_key(name) {
                            self.push(path, None, format!("required key [{name}] not found"));
                        }
                    }
                }
                for key in ["dependencies", "dependentRequired"] {
                    if let Some(J::Object(deps)) = obj.get(key) {
                        for (name, needed) in deps {
                            if !map.contains_key(name) {
                                continue;
                            }
                            for n in needed.as_array().into_iter().flatten().filter_map(J::as_str) {
                                if !map.contains_key(n) {
                                    self.push(
                                        path,
                                        None,
                                        format!("property [{name}] requires property [{n}]"),
                                    );
                                }
                            }
                        }
                    }
                }
                if let Some(max) = obj.get("maxProperties").and_then(J::as_u64)
                    && map.len() as u64 > max
                {
                    self.push(path, None, format!("maximum size: [{max}], found: [{}]", map.len()));
                }
            }
            Value::List(items) => {
                if let Some(min) = obj.get("minItems").and_then(J::as_u64)
                    && (items.len() as u64) < min
                    && !items.iter().any(Value::is_unknown)
                {
                    self.push(
                        path,
                        None,
                        format!("expected minimum item count: {min}, found: {}", items.len()),
                    );
                }
                if let Some(max) = obj.get("maxItems").and_then(J::as_u64)
                    && items.len() as u64 > max
                {
                    self.push(
                        path,
                        None,
                        format!("expected maximum item count: {max}, found: {}", items.len()),
                    );
                }
                if let Some(sub @ J::Object(_)) = obj.get("items") {
                    for (i, item) in items.iter().enumerate() {
                        path.push(Seg::Index(i));
                        self.check(sub, item, path, depth + 1);
                        path.pop();
                    }
                }
            }
            _ => {}
        }

        if let Some(J::Array(all)) = obj.get("allOf") {
            for sub in all {
                self.check(sub, v, path, depth + 1);
            }
        }
        for key in ["oneOf", "anyOf"] {
            if let Some(J::Array(branches)) = obj.get(key) {
                let mut best: Option<Vec<SchemaError>> = None;
                for sub in branches {
                    let errors = self.trial(sub, v, path, depth + 1);
                    if errors.is_empty() {
                        best = None;
                        break;
                    }
                    if best.as_ref().is_none_or(|b| errors.len() < b.len()) {
                        best = Some(errors);
                    }
                }
                if let Some(errors) = best {
                    self.errors.extend(errors);
                }
            }
        }
        if let Some(cond) = obj.get("if") {
            let branch = if self.trial(cond, v, path, depth + 1).is_empty() {
                obj.get("then")
            } else {
                obj.get("else")
            };
            if let Some(sub) = branch {
                self.check(sub, v, path, depth + 1);
            }
        }
    }
}

fn fmt(n: f64) -> String {
    if n.fract() == 0.0 && n.abs() < 1e15 { format!("{}", n as i64) } else { n.to_string() }
}
