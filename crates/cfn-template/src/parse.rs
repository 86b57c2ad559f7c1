//! YAML and JSON to [`Node`] trees, with positions, short-form tags expanded.
//!
//! YAML goes through saphyr-parser's event stream (so that tags, spans and duplicate keys are
//! ours to handle); JSON through jsonc-parser in strict mode.

use std::collections::HashMap;

use saphyr_parser::{Event, Parser, ScalarStyle, Span as YSpan, Tag};

use crate::diag::Diagnostics;
use crate::node::{Entry, Kind, Map, Node};
use crate::span::{LineIndex, Pos, Span};

/// Nesting deeper than this is refused: no real template comes close, and it keeps every
/// recursive pass over the tree safe.
pub const MAX_DEPTH: usize = 100;
/// Templates may be at most 1 MB on AWS; we allow more but refuse absurd sizes.
pub const MAX_BYTES: usize = 16 * 1024 * 1024;
/// Upper bound on nodes created, including copies made by YAML aliases.
const MAX_NODES: usize = 2_000_000;

/// The format a template was written in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Json,
    Yaml,
}

/// JSON when the first significant character is `{`, YAML otherwise (as CloudFormation does).
pub fn detect_format(text: &str) -> Format {
    match text.trim_start_matches('\u{feff}').trim_start().chars().next() {
        Some('{') => Format::Json,
        _ => Format::Yaml,
    }
}

/// Parses a template body. Returns the root node (if the text could be read at all) and adds
/// every problem found to `diags`.
pub fn parse(text: &str, diags: &mut Diagnostics) -> Option<Node> {
    if text.len() > MAX_BYTES {
        diags.error(
            Span::default(),
            format!("Template format error: template is {} bytes, over the limit", text.len()),
        );
        return None;
    }
    let root = match detect_format(text) {
        Format::Json => parse_json(text, diags),
        Format::Yaml => parse_yaml(text, diags),
    }?;
    if let Some(span) = too_deep(&root, 0) {
        diags.error(span, format!("Template format error: nesting deeper than {MAX_DEPTH} levels"));
        return None;
    }
    Some(root)
}

fn too_deep(node: &Node, depth: usize) -> Option<Span> {
    if depth > MAX_DEPTH {
        return Some(node.span);
    }
    match &node.kind {
        Kind::Seq(items) => items.iter().find_map(|n| too_deep(n, depth + 1)),
        Kind::Map(map) => map.entries.iter().find_map(|e| too_deep(&e.value, depth + 1)),
        _ => None,
    }
}

// === JSON ===

fn parse_json(text: &str, diags: &mut Diagnostics) -> Option<Node> {
    use jsonc_parser::{CollectOptions, ParseOptions, parse_to_ast};
    let options = ParseOptions {
        allow_comments: false,
        allow_loose_object_property_names: false,
        allow_trailing_commas: false,
        allow_missing_commas: false,
        allow_single_quoted_strings: false,
        allow_hexadecimal_numbers: false,
        allow_unary_plus_numbers: false,
    };
    let index = LineIndex::new(text);
    let body = text.strip_prefix('\u{feff}').unwrap_or(text);
    let offset = text.len() - body.len();
    match parse_to_ast(body, &CollectOptions::default(), &options) {
        Ok(result) => {
            let Some(value) = result.value else {
                diags
                    .error(Span::default(), "Template format error: JSON not well-formed. (empty)");
                return None;
            };
            Some(JsonConv { index: &index, offset, diags }.node(value))
        }
        Err(err) => {
            let range = err.range();
            let span = index.span(range.start + offset, range.end + offset);
            diags.error(
                span,
                format!(
                    "Template format error: JSON not well-formed. (line {}, column {}): {}",
                    span.start.line,
                    span.start.col,
                    err.kind()
                ),
            );
            None
        }
    }
}

struct JsonConv<'a, 'd> {
    index: &'a LineIndex<'a>,
    offset: usize,
    diags: &'d mut Diagnostics,
}

impl JsonConv<'_, '_> {
    fn span(&self, range: jsonc_parser::common::Range) -> Span {
        self.index.span(range.start + self.offset, range.end + self.offset)
    }

    fn node(&mut self, value: jsonc_parser::ast::Value<'_>) -> Node {
        use jsonc_parser::ast::{ObjectPropName, Value};
        match value {
            Value::StringLit(s) => {
                Node::new(self.span(s.range), Kind::String(s.value.into_owned()))
            }
            Value::NumberLit(n) => Node::new(self.span(n.range), Kind::Number(n.value.to_string())),
            Value::BooleanLit(b) => Node::new(self.span(b.range), Kind::Bool(b.value)),
            Value::NullKeyword(n) => Node::new(self.span(n.range), Kind::Null),
            Value::Array(a) => {
                let span = self.span(a.range);
                let items = a.elements.into_iter().map(|v| self.node(v)).collect();
                Node::new(span, Kind::Seq(items))
            }
            Value::Object(o) => {
                let span = self.span(o.range);
                let mut map = Map::default();
                for prop in o.properties {
                    let (key, key_span) = match prop.name {
                        ObjectPropName::String(s) => (s.value.into_owned(), self.span(s.range)),
                        ObjectPropName::Word(w) => (w.value.to_string(), self.span(w.range)),
                    };
                    let value = self.node(prop.value);
                    if map.entry(&key).is_some() {
                        self.diags.error(
                            key_span,
                            format!(
                                "Template format error: JSON not well-formed. (line {}, column {}): duplicate key '{key}'",
                                key_span.start.line, key_span.start.col
                            ),
                        );
                        continue;
                    }
                    map.entries.push(Entry { key, key_span, value });
                }
                Node::new(span, Kind::Map(map))
            }
        }
    }
}

// === YAML ===

fn pos(m: saphyr_parser::Marker) -> Pos {
    Pos { line: m.line() as u32, col: m.col() as u32 + 1 }
}

fn yspan(s: YSpan) -> Span {
    Span { start: pos(s.start), end: pos(s.end) }
}

enum Frame {
    Seq { start: Pos, anchor: usize, tag: Option<Tag>, items: Vec<Node> },
    Map { start: Pos, anchor: usize, tag: Option<Tag>, map: Map, key: Option<(String, Span)> },
}

struct YamlBuilder<'d> {
    diags: &'d mut Diagnostics,
    stack: Vec<Frame>,
    root: Option<Node>,
    documents: usize,
    anchors: HashMap<usize, (Node, usize)>,
    nodes: usize,
    failed: bool,
}

fn parse_yaml(text: &str, diags: &mut Diagnostics) -> Option<Node> {
    let mut builder = YamlBuilder {
        diags,
        stack: Vec::new(),
        root: None,
        documents: 0,
        anchors: HashMap::new(),
        nodes: 0,
        failed: false,
    };
    let parser = Parser::new_from_str(text);
    for event in parser {
        match event {
            Ok((event, span)) => builder.event(event, span),
            Err(err) => {
                let p = pos(*err.marker());
                builder.diags.error(
                    Span::point(p),
                    format!(
                        "Template format error: YAML not well-formed. (line {}, column {}): {}",
                        p.line,
                        p.col,
                        err.info()
                    ),
                );
                return None;
            }
        }
        if builder.failed {
            return None;
        }
    }
    if builder.root.is_none() {
        builder.diags.error(Span::default(), "Template format error: the template is empty");
    }
    builder.root
}

impl YamlBuilder<'_> {
    fn fail(&mut self, span: Span, message: String) {
        self.diags.error(span, message);
        self.failed = true;
    }

    fn event(&mut self, event: Event<'_>, span: YSpan) {
        let span = yspan(span);
        match event {
            Event::DocumentStart(_) => {
                self.documents += 1;
                if self.documents > 1 {
                    self.fail(
                        span,
                        "Template format error: YAML not well-formed: a template is a single YAML document".into(),
                    );
                }
            }
            Event::Scalar(value, style, anchor, tag) => {
                let tag = tag.map(|t| t.into_owned());
                let node = self.scalar(value.into_owned(), style, tag, span);
                self.finish(node, anchor);
            }
            Event::SequenceStart(anchor, tag) => {
                self.open(span);
                self.stack.push(Frame::Seq {
                    start: span.start,
                    anchor,
                    tag: tag.map(|t| t.into_owned()),
                    items: Vec::new(),
                });
            }
            Event::MappingStart(anchor, tag) => {
                self.open(span);
                self.stack.push(Frame::Map {
                    start: span.start,
                    anchor,
                    tag: tag.map(|t| t.into_owned()),
                    map: Map::default(),
                    key: None,
                });
            }
            Event::SequenceEnd | Event::MappingEnd => {
                let Some(frame) = self.stack.pop() else { return };
                let (node, anchor, tag) = match frame {
                    Frame::Seq { start, anchor, tag, items } => {
                        (Node::new(Span::new(start, span.end), Kind::Seq(items)), anchor, tag)
                    }
                    Frame::Map { start, anchor, tag, map, .. } => {
                        (Node::new(Span::new(start, span.end), Kind::Map(map)), anchor, tag)
                    }
                };
                let node = match tag {
                    Some(tag) => self.apply_tag(node, &tag),
                    None => node,
                };
                self.finish(node, anchor);
            }
            Event::Alias(id) => {
                match self.anchors.get(&id) {
                    Some((node, size)) => {
                        let (node, size) = (node.clone(), *size);
                        self.nodes += size;
                        if self.nodes > MAX_NODES {
                            self.fail(span, "Template format error: too many nodes after expanding YAML aliases".into());
                            return;
                        }
                        self.finish(node, 0);
                    }
                    None => self.fail(
                        span,
                        "Template format error: YAML alias to an unknown anchor".into(),
                    ),
                }
            }
            Event::Nothing | Event::StreamStart | Event::StreamEnd | Event::DocumentEnd => {}
        }
    }

    fn open(&mut self, span: Span) {
        if self.stack.len() >= MAX_DEPTH {
            self.fail(
                span,
                format!("Template format error: nesting deeper than {MAX_DEPTH} levels"),
            );
        }
    }

    fn scalar(&mut self, value: String, style: ScalarStyle, tag: Option<Tag>, span: Span) -> Node {
        match tag {
            None if style == ScalarStyle::Plain => Node::new(span, plain_scalar(value)),
            None => Node::new(span, Kind::String(value)),
            Some(tag) => {
                let node = Node::new(span, Kind::String(value));
                self.apply_tag(node, &tag)
            }
        }
    }

    /// Expands `!Ref x` into `{Ref: x}` and friends; applies `!!str` and other core tags.
    fn apply_tag(&mut self, node: Node, tag: &Tag) -> Node {
        let span = node.span;
        if tag.handle == "!" {
            let name = tag.suffix.as_str();
            let key = match name {
                "Ref" | "Condition" => name.to_string(),
                "GetAtt" => {
                    let arg = match node.kind {
                        Kind::String(s) => {
                            let (res, attr) = match s.split_once('.') {
                                Some((r, a)) => (r.to_string(), Some(a.to_string())),
                                None => (s, None),
                            };
                            let mut items = vec![Node::new(span, Kind::String(res))];
                            items.extend(attr.map(|a| Node::new(span, Kind::String(a))));
                            Node::new(span, Kind::Seq(items))
                        }
                        kind => Node::new(span, kind),
                    };
                    return intrinsic(span, "Fn::GetAtt", arg);
                }
                // Unknown `!Name` tags become `Fn::Name`, reported as an unsupported function.
                _ => format!("Fn::{name}"),
            };
            return intrinsic(span, &key, node);
        }
        let core = tag.handle == "tag:yaml.org,2002:" || tag.handle == "!!";
        if core {
            let text = node.scalar_text();
            let kind = match (tag.suffix.as_str(), text) {
                ("str", Some(t)) => Kind::String(t),
                ("int" | "float", Some(t)) => Kind::Number(t),
                ("bool", Some(t)) => Kind::Bool(t.eq_ignore_ascii_case("true")),
                ("null", _) => Kind::Null,
                (_, _) => node.kind,
            };
            return Node::new(span, kind);
        }
        self.diags.error(
            span,
            format!("Template format error: unknown tag {}{}", tag.handle, tag.suffix),
        );
        node
    }

    /// A finished node goes into its parent: a list item, a mapping key or a mapping value.
    fn finish(&mut self, node: Node, anchor: usize) {
        self.nodes += 1;
        if self.nodes > MAX_NODES {
            self.fail(node.span, "Template format error: template has too many nodes".into());
            return;
        }
        if anchor > 0 {
            let mut size = 0;
            node.walk(&mut |_| size += 1);
            self.anchors.insert(anchor, (node.clone(), size));
        }
        match self.stack.last_mut() {
            None => {
                if self.root.is_none() {
                    self.root = Some(node);
                }
            }
            Some(Frame::Seq { items, .. }) => items.push(node),
            Some(Frame::Map { map, key, .. }) => match key.take() {
                None => match node
                    .scalar_text()
                    .or_else(|| matches!(node.kind, Kind::Null).then(String::new))
                {
                    Some(text) => {
                        if map.entry(&text).is_some() {
                            let message = format!(
                                "Template format error: YAML not well-formed. (line {}, column {}): duplicate key '{text}'",
                                node.span.start.line, node.span.start.col
                            );
                            self.diags.error(node.span, message);
                            *key = Some((format!("\u{0}dup:{text}"), node.span));
                        } else {
                            *key = Some((text, node.span));
                        }
                    }
                    None => {
                        let span = node.span;
                        self.fail(span, "Template format error: YAML not well-formed: mapping keys must be scalars".into());
                    }
                },
                Some((k, key_span)) => {
                    // A duplicate key's value is dropped (it has been reported).
                    if !k.starts_with("\u{0}dup:") {
                        map.entries.push(Entry { key: k, key_span, value: node });
                    }
                }
            },
        }
    }
}

fn intrinsic(span: Span, name: &str, arg: Node) -> Node {
    let entry = Entry { key: name.to_string(), key_span: span, value: arg };
    Node::new(span, Kind::Map(Map { entries: vec![entry] }))
}

/// Resolves an untagged plain scalar per the YAML 1.2 core schema, keeping numbers as text.
fn plain_scalar(value: String) -> Kind {
    match value.as_str() {
        "" | "~" | "null" | "Null" | "NULL" => Kind::Null,
        "true" | "True" | "TRUE" => Kind::Bool(true),
        "false" | "False" | "FALSE" => Kind::Bool(false),
        s if is_yaml_number(s) => Kind::Number(value),
        _ => Kind::String(value),
    }
}

fn is_yaml_number(s: &str) -> bool {
    let body = s.strip_prefix(['-', '+']).unwrap_or(s);
    if body.is_empty() {
        return false;
    }
    if let Some(hex) = body.strip_prefix("0x") {
        return !hex.is_empty() && hex.chars().all(|c| c.is_ascii_hexdigit());
    }
    if let Some(oct) = body.strip_prefix("0o") {
        return !oct.is_empty() && oct.chars().all(|c| ('0'..='7').contains(&c));
    }
    if matches!(body, ".inf" | ".Inf" | ".INF") || matches!(s, ".nan" | ".NaN" | ".NAN") {
        return true;
    }
    // [0-9]+ ( . [0-9]* )? ( [eE] [-+]? [0-9]+ )?  or  . [0-9]+ ...
    let (mantissa, exponent) = match body.find(['e', 'E']) {
        Some(i) => (&body[..i], Some(&body[i + 1..])),
        None => (body, None),
    };
    let (int, frac) = match mantissa.split_once('.') {
        Some((i, f)) => (i, Some(f)),
        None => (mantissa, None),
    };
    let digits = |t: &str| t.chars().all(|c| c.is_ascii_digit());
    let mantissa_ok = match frac {
        None => !int.is_empty() && digits(int),
        Some(f) => digits(int) && digits(f) && !(int.is_empty() && f.is_empty()),
    };
    let exponent_ok = match exponent {
        None => true,
        Some(e) => {
            let e = e.strip_prefix(['-', '+']).unwrap_or(e);
            !e.is_empty() && digits(e)
        }
    };
    mantissa_ok && exponent_ok
}

#[cfg(test)]
mod tests {
    use super::*;

    fn number(s: &str) -> bool {
        is_yaml_number(s)
    }

    #[test]
    fn yaml_numbers() {
        for yes in
            ["0", "80", "-1", "+1", "0.5", ".5", "1.", "1e3", "1.5E-2", "0x1F", "0o17", ".inf"]
        {
            assert!(number(yes), "{yes}");
        }
        for no in ["", "-", ".", "1.2.3", "2010-09-09", "1e", "0x", "abc", "1_000", "e3"] {
            assert!(!number(no), "{no}");
        }
    }
}
