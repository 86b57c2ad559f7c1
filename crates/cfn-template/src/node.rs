//! The parsed template tree: JSON-shaped values that remember where they came from.
//!
//! YAML short forms are already expanded here (`!Ref X` is the map `{Ref: X}`), so the rest of
//! the engine sees one shape whatever the source format.

use crate::span::Span;

#[derive(Clone, Debug, PartialEq)]
pub struct Node {
    pub span: Span,
    pub kind: Kind,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Kind {
    Null,
    Bool(bool),
    /// A number, kept as written (`080`, `0.10` and `1e3` stay distinguishable).
    Number(String),
    String(String),
    Seq(Vec<Node>),
    Map(Map),
}

/// A mapping with its keys in source order. Keys are unique (the parsers reject duplicates).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Map {
    pub entries: Vec<Entry>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Entry {
    pub key: String,
    pub key_span: Span,
    pub value: Node,
}

/// Names of the functions that may appear as the single key of an intrinsic map.
pub const INTRINSICS: &[&str] = &[
    "Ref",
    "Condition",
    "Fn::Base64",
    "Fn::Cidr",
    "Fn::FindInMap",
    "Fn::GetAtt",
    "Fn::GetAZs",
    "Fn::If",
    "Fn::ImportValue",
    "Fn::Join",
    "Fn::Select",
    "Fn::Split",
    "Fn::Sub",
    "Fn::Transform",
    "Fn::Equals",
    "Fn::Not",
    "Fn::And",
    "Fn::Or",
    "Fn::Length",
    "Fn::ToJsonString",
    "Fn::ForEach",
    "Fn::Contains",
    "Fn::EachMemberEquals",
    "Fn::EachMemberIn",
    "Fn::RefAll",
    "Fn::ValueOf",
    "Fn::ValueOfAll",
    "Fn::GetStackOutput",
];

// === impl Node ===

impl Node {
    pub fn new(span: Span, kind: Kind) -> Node {
        Node { span, kind }
    }

    pub fn as_map(&self) -> Option<&Map> {
        match &self.kind {
            Kind::Map(m) => Some(m),
            _ => None,
        }
    }

    pub fn as_seq(&self) -> Option<&[Node]> {
        match &self.kind {
            Kind::Seq(s) => Some(s),
            _ => None,
        }
    }

    /// The text of a string scalar.
    pub fn as_str(&self) -> Option<&str> {
        match &self.kind {
            Kind::String(s) => Some(s),
            _ => None,
        }
    }

    /// The text of any scalar (numbers and booleans as written), as CloudFormation reads them
    /// where it expects a string.
    pub fn scalar_text(&self) -> Option<String> {
        match &self.kind {
            Kind::String(s) | Kind::Number(s) => Some(s.clone()),
            Kind::Bool(b) => Some(b.to_string()),
            _ => None,
        }
    }

    /// If this node is an intrinsic function (a map with exactly one key that names one),
    /// the function name and its argument.
    pub fn as_intrinsic(&self) -> Option<(&str, &Node)> {
        let map = self.as_map()?;
        match map.entries.as_slice() {
            [entry] if is_function_name(&entry.key) => Some((&entry.key, &entry.value)),
            _ => None,
        }
    }

    /// A short description of the node's type, for error messages.
    pub fn type_name(&self) -> &'static str {
        match &self.kind {
            Kind::Null => "null",
            Kind::Bool(_) => "boolean",
            Kind::Number(_) => "number",
            Kind::String(_) => "string",
            Kind::Seq(_) => "list",
            Kind::Map(_) => "map",
        }
    }

    /// Calls `f` on this node and every node below it, parents first.
    pub fn walk<'a>(&'a self, f: &mut dyn FnMut(&'a Node)) {
        f(self);
        match &self.kind {
            Kind::Seq(items) => items.iter().for_each(|n| n.walk(f)),
            Kind::Map(map) => map.entries.iter().for_each(|e| e.value.walk(f)),
            _ => {}
        }
    }
}

/// Whether `key` names an intrinsic function: `Ref`, `Condition` or any `Fn::` name.
pub fn is_function_name(key: &str) -> bool {
    key == "Ref" || key == "Condition" || key.starts_with("Fn::")
}

// === impl Map ===

impl Map {
    pub fn get(&self, key: &str) -> Option<&Node> {
        self.entry(key).map(|e| &e.value)
    }

    pub fn entry(&self, key: &str) -> Option<&Entry> {
        self.entries.iter().find(|e| e.key == key)
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = &Entry> {
        self.entries.iter()
    }
}
