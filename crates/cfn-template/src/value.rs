//! Resolved values: what a template node becomes once its intrinsic functions are evaluated.

use std::fmt;

use indexmap::IndexMap;

/// A resolved value. `Unknown` stands for what cannot be known yet: a parameter given no value
/// during validation, or an attribute of a resource that does not exist yet.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Null,
    Bool(bool),
    /// A number as written in the template (CloudFormation passes numbers on as text).
    Number(String),
    String(String),
    List(Vec<Value>),
    Map(IndexMap<String, Value>),
    Unknown,
}

impl Value {
    pub fn str(s: impl Into<String>) -> Value {
        Value::String(s.into())
    }

    pub fn list_of_strings<I: IntoIterator<Item = S>, S: Into<String>>(items: I) -> Value {
        Value::List(items.into_iter().map(|s| Value::String(s.into())).collect())
    }

    /// The value as a string where CloudFormation would accept one (strings, numbers, booleans).
    pub fn as_text(&self) -> Option<String> {
        match self {
            Value::String(s) | Value::Number(s) => Some(s.clone()),
            Value::Bool(b) => Some(b.to_string()),
            _ => None,
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::String(s) | Value::Number(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_list(&self) -> Option<&[Value]> {
        match self {
            Value::List(l) => Some(l),
            _ => None,
        }
    }

    pub fn as_map(&self) -> Option<&IndexMap<String, Value>> {
        match self {
            Value::Map(m) => Some(m),
            _ => None,
        }
    }

    pub fn get(&self, key: &str) -> Option<&Value> {
        self.as_map()?.get(key)
    }

    pub fn is_unknown(&self) -> bool {
        matches!(self, Value::Unknown)
    }

    /// Whether an `Unknown` appears anywhere inside.
    pub fn contains_unknown(&self) -> bool {
        match self {
            Value::Unknown => true,
            Value::List(items) => items.iter().any(Value::contains_unknown),
            Value::Map(map) => map.values().any(Value::contains_unknown),
            _ => false,
        }
    }

    /// Converts to JSON (numbers become JSON numbers where they parse as such).
    pub fn to_json(&self) -> serde_json::Value {
        use serde_json::Value as J;
        match self {
            Value::Null | Value::Unknown => J::Null,
            Value::Bool(b) => J::Bool(*b),
            Value::Number(n) => serde_json::from_str::<serde_json::Number>(n)
                .map(J::Number)
                .unwrap_or_else(|_| J::String(n.clone())),
            Value::String(s) => J::String(s.clone()),
            Value::List(items) => J::Array(items.iter().map(Value::to_json).collect()),
            Value::Map(map) => {
                J::Object(map.iter().map(|(k, v)| (k.clone(), v.to_json())).collect())
            }
        }
    }

    /// Converts from JSON (numbers keep their JSON text).
    pub fn from_json(json: &serde_json::Value) -> Value {
        use serde_json::Value as J;
        match json {
            J::Null => Value::Null,
            J::Bool(b) => Value::Bool(*b),
            J::Number(n) => Value::Number(n.to_string()),
            J::String(s) => Value::String(s.clone()),
            J::Array(items) => Value::List(items.iter().map(Value::from_json).collect()),
            J::Object(map) => {
                Value::Map(map.iter().map(|(k, v)| (k.clone(), Value::from_json(v))).collect())
            }
        }
    }
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Unknown => f.write_str("<unknown>"),
            Value::String(s) | Value::Number(s) => f.write_str(s),
            other => write!(f, "{}", other.to_json()),
        }
    }
}
