//! The wire protocols AWS services speak, decoded into one tree services read, and encoded back
//! in the protocol the request came in:
//!
//! - awsQuery: form parameters (`Tags.member.1.Key=k`), answered in XML;
//! - awsJson 1.0 / 1.1: `X-Amz-Target: <prefix>.<Operation>`, a JSON body; timestamps are epoch
//!   seconds (numbers), blobs base64 strings;
//! - smithy-rpc-v2-cbor: `POST /service/<Service>/operation/<Operation>`, a CBOR body;
//!   timestamps are tag 1 over epoch seconds (an integer, or a float when sub-second), blobs
//!   byte strings.
//!
//! Without the service model a decoder cannot tell a blob or timestamp sent as JSON from a string
//! or a number, so [`Value`]'s accessors read both spellings (`as_timestamp`, `as_blob`).

use base64::Engine as _;
use indexmap::IndexMap;

use crate::xml::XmlOut;

/// Nesting deeper than this is refused (no input may exhaust the stack).
pub const MAX_DEPTH: usize = 64;

/// A request's input or a response's output, whatever the protocol.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    String(String),
    Blob(Vec<u8>),
    /// Seconds since the epoch.
    Timestamp(f64),
    List(Vec<Value>),
    /// A structure (members by name), or a map a decoder read (it cannot tell them apart).
    Map(IndexMap<String, Value>),
    /// A map shape in an output (keys are data, as `DatapointValueMap`'s statistic names):
    /// JSON and CBOR write it as a map like any other, Query as `entry` key/value pairs.
    Dict(IndexMap<String, Value>),
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("the body is not valid JSON: {0}")]
    Json(String),
    #[error("the body is not valid CBOR: {0}")]
    Cbor(String),
    #[error("the input nests deeper than {MAX_DEPTH} levels")]
    TooDeep,
}

impl Value {
    pub fn map() -> Value {
        Value::Map(IndexMap::new())
    }

    /// Member `key` of a map.
    pub fn get(&self, key: &str) -> Option<&Value> {
        match self {
            Value::Map(m) => m.get(key).filter(|v| **v != Value::Null),
            _ => None,
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::String(s) => Some(s),
            _ => None,
        }
    }

    /// A boolean, or Query's `true`/`false` text.
    pub fn as_bool(&self) -> Option<bool> {
        match self {
            Value::Bool(b) => Some(*b),
            Value::String(s) if s.eq_ignore_ascii_case("true") => Some(true),
            Value::String(s) if s.eq_ignore_ascii_case("false") => Some(false),
            _ => None,
        }
    }

    /// An integer, or Query's digits.
    pub fn as_i64(&self) -> Option<i64> {
        match self {
            Value::Int(i) => Some(*i),
            Value::Float(f) if f.fract() == 0.0 && f.abs() < 9.0e15 => Some(*f as i64),
            Value::String(s) => s.parse().ok(),
            _ => None,
        }
    }

    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Value::Int(i) => Some(*i as f64),
            Value::Float(f) => Some(*f),
            Value::String(s) => s.parse().ok(),
            _ => None,
        }
    }

    /// Epoch seconds: CBOR's tag 1, JSON's number, or Query's ISO 8601 / number text.
    pub fn as_timestamp(&self) -> Option<f64> {
        match self {
            Value::Timestamp(t) => Some(*t),
            Value::Int(_) | Value::Float(_) => self.as_f64(),
            Value::String(s) => s.parse::<f64>().ok().or_else(|| {
                s.parse::<jiff::Timestamp>().ok().map(|t| t.as_millisecond() as f64 / 1000.0)
            }),
            _ => None,
        }
    }

    /// Bytes: CBOR's byte string, or JSON's and Query's base64 text.
    pub fn as_blob(&self) -> Option<Vec<u8>> {
        match self {
            Value::Blob(b) => Some(b.clone()),
            Value::String(s) => base64::engine::general_purpose::STANDARD.decode(s).ok(),
            _ => None,
        }
    }

    pub fn as_list(&self) -> &[Value] {
        match self {
            Value::List(l) => l,
            _ => &[],
        }
    }

    /// Member `key`'s text.
    pub fn str(&self, key: &str) -> Option<&str> {
        self.get(key).and_then(Value::as_str)
    }

    /// Member `key`'s list items (none when absent).
    pub fn list(&self, key: &str) -> &[Value] {
        self.get(key).map_or(&[], Value::as_list)
    }

    /// Member `key`'s text items.
    pub fn strings(&self, key: &str) -> Vec<String> {
        self.list(key).iter().filter_map(Value::as_str).map(str::to_string).collect()
    }

    /// Sets member `key` of a map (a `None` leaves it out).
    pub fn set(&mut self, key: &str, value: impl Into<Option<Value>>) -> &mut Value {
        if let (Value::Map(m), Some(v)) = (&mut *self, value.into()) {
            m.insert(key.to_string(), v);
        }
        self
    }
}

impl From<&str> for Value {
    fn from(s: &str) -> Value {
        Value::String(s.to_string())
    }
}

impl From<String> for Value {
    fn from(s: String) -> Value {
        Value::String(s)
    }
}

impl From<i64> for Value {
    fn from(i: i64) -> Value {
        Value::Int(i)
    }
}

impl From<bool> for Value {
    fn from(b: bool) -> Value {
        Value::Bool(b)
    }
}

impl From<Vec<Value>> for Value {
    fn from(l: Vec<Value>) -> Value {
        Value::List(l)
    }
}

// ---- JSON ---------------------------------------------------------------------------------

/// A JSON body (`{}` when empty).
pub fn decode_json(body: &[u8]) -> Result<Value, DecodeError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Value::map());
    }
    // serde_json refuses nesting deeper than 128 by itself.
    let json: serde_json::Value =
        serde_json::from_slice(body).map_err(|e| DecodeError::Json(e.to_string()))?;
    from_json(json, 0)
}

fn from_json(json: serde_json::Value, depth: usize) -> Result<Value, DecodeError> {
    if depth > MAX_DEPTH {
        return Err(DecodeError::TooDeep);
    }
    Ok(match json {
        serde_json::Value::Null => Value::Null,
        serde_json::Value::Bool(b) => Value::Bool(b),
        serde_json::Value::Number(n) => match n.as_i64() {
            Some(i) => Value::Int(i),
            None => Value::Float(n.as_f64().unwrap_or(f64::NAN)),
        },
        serde_json::Value::String(s) => Value::String(s),
        serde_json::Value::Array(items) => Value::List(
            items.into_iter().map(|v| from_json(v, depth + 1)).collect::<Result<_, _>>()?,
        ),
        serde_json::Value::Object(m) => Value::Map(
            m.into_iter()
                .map(|(k, v)| Ok((k, from_json(v, depth + 1)?)))
                .collect::<Result<_, DecodeError>>()?,
        ),
    })
}

/// A JSON body as awsJson answers: timestamps epoch seconds, blobs base64, non-finite floats
/// as botocore spells them (`"NaN"`, `"Infinity"`, `"-Infinity"`).
pub fn encode_json(value: &Value) -> Vec<u8> {
    to_json(value).to_string().into_bytes()
}

fn number(f: f64) -> serde_json::Value {
    if f.is_nan() {
        "NaN".into()
    } else if f.is_infinite() {
        if f > 0.0 { "Infinity".into() } else { "-Infinity".into() }
    } else if f.fract() == 0.0 && f.abs() < 9.0e15 {
        serde_json::Value::from(f as i64)
    } else {
        serde_json::Number::from_f64(f).map_or(serde_json::Value::Null, serde_json::Value::Number)
    }
}

fn to_json(value: &Value) -> serde_json::Value {
    match value {
        Value::Null => serde_json::Value::Null,
        Value::Bool(b) => (*b).into(),
        Value::Int(i) => (*i).into(),
        Value::Float(f) if f.is_finite() => {
            serde_json::Number::from_f64(*f).map_or(serde_json::Value::Null, Into::into)
        }
        Value::Float(f) => number(*f),
        Value::String(s) => s.clone().into(),
        Value::Blob(b) => base64::engine::general_purpose::STANDARD.encode(b).into(),
        Value::Timestamp(t) => number(*t),
        Value::List(l) => l.iter().map(to_json).collect(),
        Value::Map(m) | Value::Dict(m) => serde_json::Value::Object(
            m.iter()
                .filter(|(_, v)| **v != Value::Null)
                .map(|(k, v)| (k.clone(), to_json(v)))
                .collect(),
        ),
    }
}

// ---- CBOR ---------------------------------------------------------------------------------

/// A CBOR body (`{}` when empty): definite or indefinite lengths, tag 1 timestamps, byte
/// strings, half/single/double floats. Map keys must be text.
pub fn decode_cbor(body: &[u8]) -> Result<Value, DecodeError> {
    if body.is_empty() {
        return Ok(Value::map());
    }
    let mut d = minicbor::Decoder::new(body);
    let value = cbor_item(&mut d, 0)?;
    if d.position() != body.len() {
        return Err(DecodeError::Cbor(format!(
            "{} bytes after the data item",
            body.len() - d.position()
        )));
    }
    Ok(value)
}

fn cbor_error(e: minicbor::decode::Error) -> DecodeError {
    DecodeError::Cbor(e.to_string())
}

fn cbor_item(d: &mut minicbor::Decoder<'_>, depth: usize) -> Result<Value, DecodeError> {
    use minicbor::data::Type;
    if depth > MAX_DEPTH {
        return Err(DecodeError::TooDeep);
    }
    let e = cbor_error;
    Ok(match d.datatype().map_err(e)? {
        Type::Bool => Value::Bool(d.bool().map_err(e)?),
        Type::Null => {
            d.null().map_err(e)?;
            Value::Null
        }
        Type::Undefined => {
            d.undefined().map_err(e)?;
            Value::Null
        }
        Type::U8
        | Type::U16
        | Type::U32
        | Type::U64
        | Type::I8
        | Type::I16
        | Type::I32
        | Type::I64
        | Type::Int => {
            let i = d.int().map_err(e)?;
            match i64::try_from(i) {
                Ok(i) => Value::Int(i),
                Err(_) => Value::Float(i128::from(i) as f64),
            }
        }
        Type::F16 | Type::F32 => Value::Float(f64::from(d.f32().map_err(e)?)),
        Type::F64 => Value::Float(d.f64().map_err(e)?),
        Type::Bytes | Type::BytesIndef => {
            let mut out = Vec::new();
            for chunk in d.bytes_iter().map_err(e)? {
                out.extend_from_slice(chunk.map_err(e)?);
            }
            Value::Blob(out)
        }
        Type::String | Type::StringIndef => Value::String(cbor_text(d)?),
        Type::Array | Type::ArrayIndef => {
            let mut items = Vec::new();
            match d.array().map_err(e)? {
                Some(n) => {
                    for _ in 0..n {
                        items.push(cbor_item(d, depth + 1)?);
                    }
                }
                None => loop {
                    if d.datatype().map_err(e)? == Type::Break {
                        d.skip().map_err(e)?;
                        break;
                    }
                    items.push(cbor_item(d, depth + 1)?);
                },
            }
            Value::List(items)
        }
        Type::Map | Type::MapIndef => {
            let mut m = IndexMap::new();
            match d.map().map_err(e)? {
                Some(n) => {
                    for _ in 0..n {
                        let k = cbor_key(d)?;
                        m.insert(k, cbor_item(d, depth + 1)?);
                    }
                }
                None => loop {
                    if d.datatype().map_err(e)? == Type::Break {
                        d.skip().map_err(e)?;
                        break;
                    }
                    let k = cbor_key(d)?;
                    m.insert(k, cbor_item(d, depth + 1)?);
                },
            }
            Value::Map(m)
        }
        Type::Tag => {
            let tag = u64::from(d.tag().map_err(e)?);
            let inner = cbor_item(d, depth + 1)?;
            match (tag, &inner) {
                (1, Value::Int(_) | Value::Float(_)) => {
                    Value::Timestamp(inner.as_f64().unwrap_or(f64::NAN))
                }
                (1, _) => return Err(DecodeError::Cbor("tag 1 must tag a number".into())),
                // Other tags (bignums, ...) carry their content unchanged.
                _ => inner,
            }
        }
        Type::Simple => {
            d.simple().map_err(e)?;
            Value::Null
        }
        other => return Err(DecodeError::Cbor(format!("unexpected {other}"))),
    })
}

fn cbor_text(d: &mut minicbor::Decoder<'_>) -> Result<String, DecodeError> {
    let mut out = String::new();
    for chunk in d.str_iter().map_err(cbor_error)? {
        out.push_str(chunk.map_err(cbor_error)?);
    }
    Ok(out)
}

fn cbor_key(d: &mut minicbor::Decoder<'_>) -> Result<String, DecodeError> {
    use minicbor::data::Type;
    match d.datatype().map_err(cbor_error)? {
        Type::String | Type::StringIndef => cbor_text(d),
        other => Err(DecodeError::Cbor(format!("a map key must be text, not {other}"))),
    }
}

/// A CBOR body as rpc-v2-cbor answers (definite lengths, tag 1 timestamps, byte strings).
pub fn encode_cbor(value: &Value) -> Vec<u8> {
    let mut e = minicbor::Encoder::new(Vec::new());
    // Writing to a Vec cannot fail.
    let _ = cbor_write(&mut e, value);
    e.into_writer()
}

type CborResult = Result<(), minicbor::encode::Error<std::convert::Infallible>>;

fn cbor_write(e: &mut minicbor::Encoder<Vec<u8>>, value: &Value) -> CborResult {
    match value {
        Value::Null => {
            e.null()?;
        }
        Value::Bool(b) => {
            e.bool(*b)?;
        }
        Value::Int(i) => {
            e.i64(*i)?;
        }
        Value::Float(f) => {
            e.f64(*f)?;
        }
        Value::String(s) => {
            e.str(s)?;
        }
        Value::Blob(b) => {
            e.bytes(b)?;
        }
        Value::Timestamp(t) => {
            e.tag(minicbor::data::Tag::new(1))?;
            if t.fract() == 0.0 && t.abs() < 9.0e15 {
                e.i64(*t as i64)?;
            } else {
                e.f64(*t)?;
            }
        }
        Value::List(l) => {
            e.array(l.len() as u64)?;
            for item in l {
                cbor_write(e, item)?;
            }
        }
        Value::Map(m) | Value::Dict(m) => {
            let present: Vec<_> = m.iter().filter(|(_, v)| **v != Value::Null).collect();
            e.map(present.len() as u64)?;
            for (k, v) in present {
                e.str(k)?;
                cbor_write(e, v)?;
            }
        }
    }
    Ok(())
}

/// CBOR in diagnostic notation (RFC 8949 §8), for golden files and test failures.
pub fn cbor_diagnostic(body: &[u8]) -> String {
    match decode_cbor(body) {
        Ok(v) => diagnostic(&v),
        Err(e) => format!("<{e}>"),
    }
}

fn diagnostic(value: &Value) -> String {
    match value {
        Value::Null => "null".into(),
        Value::Bool(b) => b.to_string(),
        Value::Int(i) => i.to_string(),
        Value::Float(f) => format!("{f:?}"),
        Value::String(s) => serde_json::Value::String(s.clone()).to_string(),
        Value::Blob(b) => {
            format!("h'{}'", b.iter().map(|x| format!("{x:02x}")).collect::<String>())
        }
        Value::Timestamp(t) => format!(
            "1({})",
            if t.fract() == 0.0 { format!("{}", *t as i64) } else { format!("{t:?}") }
        ),
        Value::List(l) => format!("[{}]", l.iter().map(diagnostic).collect::<Vec<_>>().join(", ")),
        Value::Map(m) | Value::Dict(m) => format!(
            "{{{}}}",
            m.iter()
                .map(|(k, v)| format!(
                    "{}: {}",
                    serde_json::Value::String(k.clone()),
                    diagnostic(v)
                ))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

// ---- Query --------------------------------------------------------------------------------

/// Query form parameters as a tree: `A.member.N` and `A.N` become lists, `A.entry.N.key` /
/// `.value` maps, `A.B` structures; leaves stay text (the accessors read numbers and booleans
/// from it). `Action` and `Version` are left out.
pub fn query_tree(q: &crate::query::QueryInput) -> Value {
    #[derive(Default)]
    struct Node {
        text: Option<String>,
        children: std::collections::BTreeMap<String, Node>,
    }
    fn build(node: Node, depth: usize) -> Value {
        if depth > MAX_DEPTH {
            return Value::Null;
        }
        if node.children.is_empty() {
            return node.text.map_or(Value::Null, Value::String);
        }
        let numbered = |n: &std::collections::BTreeMap<String, Node>| {
            n.keys().all(|k| k.parse::<u32>().is_ok())
        };
        let keys: Vec<&str> = node.children.keys().map(String::as_str).collect();
        if keys == ["member"] || keys == ["entry"] {
            let (kind, inner) = node.children.into_iter().next().unwrap_or_default();
            if numbered(&inner.children) {
                let mut items: Vec<(u32, Node)> = inner
                    .children
                    .into_iter()
                    .filter_map(|(k, v)| Some((k.parse().ok()?, v)))
                    .collect();
                items.sort_by_key(|(n, _)| *n);
                if kind == "entry" {
                    let mut m = IndexMap::new();
                    for (_, mut entry) in items {
                        // `key`/`value`, or the `Name`/`Value` of SNS's message attributes.
                        let key = entry
                            .children
                            .remove("key")
                            .or_else(|| entry.children.remove("Name"))
                            .and_then(|k| k.text);
                        let value = entry
                            .children
                            .remove("value")
                            .or_else(|| entry.children.remove("Value"))
                            .map_or(Value::Null, |v| build(v, depth + 1));
                        if let Some(key) = key {
                            m.insert(key, value);
                        }
                    }
                    return Value::Map(m);
                }
                return Value::List(items.into_iter().map(|(_, v)| build(v, depth + 1)).collect());
            }
            let mut m = IndexMap::new();
            m.insert(kind, build(inner, depth + 1));
            return Value::Map(m);
        }
        if numbered(&node.children) {
            let mut items: Vec<(u32, Node)> =
                node.children.into_iter().filter_map(|(k, v)| Some((k.parse().ok()?, v))).collect();
            items.sort_by_key(|(n, _)| *n);
            return Value::List(items.into_iter().map(|(_, v)| build(v, depth + 1)).collect());
        }
        Value::Map(node.children.into_iter().map(|(k, v)| (k, build(v, depth + 1))).collect())
    }
    let mut root = Node::default();
    for (key, value) in q.pairs() {
        if key == "Action" || key == "Version" {
            continue;
        }
        let mut node = &mut root;
        for segment in key.split('.').take(MAX_DEPTH) {
            node = node.children.entry(segment.to_string()).or_default();
        }
        node.text = Some(value.to_string());
    }
    match build(root, 0) {
        Value::Null => Value::map(),
        v => v,
    }
}

/// A result as an awsQuery XML response: `<OpResponse><OpResult>...</OpResult>` with lists
/// as `member`s, structures as their members, map shapes ([`Value::Dict`]) as `entry`
/// key/value pairs, timestamps ISO 8601, blobs base64.
pub fn query_xml(operation: &str, xmlns: &str, result: &Value, request_id: &str) -> String {
    fn write(x: &mut XmlOut, name: &str, value: &Value, depth: usize) {
        if depth > MAX_DEPTH {
            return;
        }
        match value {
            Value::Null => {}
            Value::Bool(b) => {
                x.bool(name, *b);
            }
            Value::Int(i) => {
                x.text(name, &i.to_string());
            }
            Value::Float(f) => {
                x.text(name, &f.to_string());
            }
            Value::String(s) => {
                x.text(name, s);
            }
            Value::Blob(b) => {
                x.text(name, &base64::engine::general_purpose::STANDARD.encode(b));
            }
            Value::Timestamp(t) => {
                let ms = (*t * 1000.0).round() as i64;
                let text =
                    jiff::Timestamp::from_millisecond(ms).map(clock::iso8601).unwrap_or_default();
                x.text(name, &text);
            }
            Value::List(items) => {
                x.open(name, None);
                for item in items {
                    write(x, "member", item, depth + 1);
                }
                x.close();
            }
            Value::Map(m) => {
                x.open(name, None);
                for (k, v) in m {
                    write(x, k, v, depth + 1);
                }
                x.close();
            }
            Value::Dict(m) => {
                x.open(name, None);
                for (k, v) in m.iter().filter(|(_, v)| **v != Value::Null) {
                    x.open("entry", None).text("key", k);
                    write(x, "value", v, depth + 1);
                    x.close();
                }
                x.close();
            }
        }
    }
    let mut x = XmlOut::new();
    x.open(&format!("{operation}Response"), Some(xmlns));
    match result {
        Value::Map(m) if !m.is_empty() => write(&mut x, &format!("{operation}Result"), result, 0),
        _ => {}
    }
    x.open("ResponseMetadata", None).text("RequestId", request_id).close();
    x.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
    }

    #[test]
    fn cbor_decodes_what_botocore_sends() {
        // (hex, diagnostic notation of what the decoder reads)
        let cases = [
            // {"Name": "x", "Recursive": true}
            ("a2644e616d65617869526563757273697665f5", r#"{"Name": "x", "Recursive": true}"#),
            // tag 1 over an integer and over a double: timestamps.
            ("a169537461727454696d65c11a6553f100", r#"{"StartTime": 1(1700000000)}"#),
            ("a169537461727454696d65c1fb41d954fc40200000", r#"{"StartTime": 1(1700000000.5)}"#),
            // a byte string: a blob.
            ("a164426c6f624301ff02", r#"{"Blob": h'01ff02'}"#),
            // f32 and f16 (NaN, -Infinity) floats, negative integers.
            ("83fa3fc00000f97e00f9fc00", "[1.5, NaN, -inf]"),
            ("8220397fff", "[-1, -32768]"),
            // indefinite-length map, array and text (botocore does not send them; others may).
            ("bf634b65799f0102ff ff", r#"{"Key": [1, 2]}"#),
            ("7f626162626364ff", r#""abcd""#),
            ("a0", "{}"),
            ("", "{}"),
            // refused: a non-text key, trailing bytes, truncation, tag 1 over text.
            ("a10102", "<error>"),
            ("a0a0", "<error>"),
            ("a1644e616d65", "<error>"),
            ("c16161", "<error>"),
        ];
        for (input, expected) in cases {
            let bytes = hex(&input.replace(' ', ""));
            let got = match decode_cbor(&bytes) {
                Ok(v) => diagnostic(&v),
                Err(_) => "<error>".into(),
            };
            assert_eq!(got, expected, "{input}");
        }
    }

    #[test]
    fn cbor_nesting_is_bounded() {
        let deep = vec![0x81u8; 10_000];
        assert_eq!(decode_cbor(&deep), Err(DecodeError::TooDeep));
        let deep_json = "[".repeat(100) + &"]".repeat(100);
        assert_eq!(decode_json(deep_json.as_bytes()), Err(DecodeError::TooDeep));
    }

    #[test]
    fn encodings_round_trip_with_each_protocols_spelling() {
        let mut v = Value::map();
        v.set("Name", Value::from("/a"))
            .set("Version", Value::Int(3))
            .set("When", Value::Timestamp(1_700_000_000.25))
            .set("Whole", Value::Timestamp(1_700_000_000.0))
            .set("Data", Value::Blob(vec![1, 2, 255]))
            .set("Ratio", Value::Float(0.5))
            .set("Inf", Value::Float(f64::INFINITY))
            .set("Gone", None)
            .set("List", Value::List(vec![Value::Bool(true), Value::Null]));
        assert_eq!(
            String::from_utf8(encode_json(&v)).unwrap(),
            r#"{"Name":"/a","Version":3,"When":1700000000.25,"Whole":1700000000,"Data":"AQL/","Ratio":0.5,"Inf":"Infinity","List":[true,null]}"#
        );
        let cbor = encode_cbor(&v);
        assert_eq!(
            cbor_diagnostic(&cbor),
            r#"{"Name": "/a", "Version": 3, "When": 1(1700000000.25), "Whole": 1(1700000000), "Data": h'0102ff', "Ratio": 0.5, "Inf": inf, "List": [true, null]}"#
        );
        assert_eq!(decode_cbor(&cbor).unwrap(), v);
        let json = decode_json(&encode_json(&v)).unwrap();
        assert_eq!(json.get("When").and_then(Value::as_timestamp), Some(1_700_000_000.25));
        assert_eq!(json.get("Data").and_then(Value::as_blob), Some(vec![1, 2, 255]));
    }

    #[test]
    fn query_parameters_become_a_tree() {
        let q = crate::query::QueryInput::parse(
            "Action=PutMetricData&Version=2010-08-01",
            b"Namespace=App&MetricData.member.2.MetricName=B&MetricData.member.1.MetricName=A&MetricData.member.1.Dimensions.member.1.Name=Host&MetricData.member.1.Value=1.5&Attributes.entry.1.key=k&Attributes.entry.1.value=v&Filter.1.Name=n&MessageAttributes.entry.1.Name=color&MessageAttributes.entry.1.Value.DataType=String&MessageAttributes.entry.1.Value.StringValue=red",
        );
        assert_eq!(
            String::from_utf8(encode_json(&query_tree(&q))).unwrap(),
            r#"{"Attributes":{"k":"v"},"Filter":[{"Name":"n"}],"MessageAttributes":{"color":{"DataType":"String","StringValue":"red"}},"MetricData":[{"Dimensions":[{"Name":"Host"}],"MetricName":"A","Value":"1.5"},{"MetricName":"B"}],"Namespace":"App"}"#
        );
        let tree = query_tree(&q);
        assert_eq!(tree.list("MetricData")[0].get("Value").and_then(Value::as_f64), Some(1.5));
    }

    #[test]
    fn results_as_query_xml() {
        let mut v = Value::map();
        v.set("Items", Value::List(vec!["a".into(), "b".into()]))
            .set("At", Value::Timestamp(0.0))
            .set("Ok", Value::Bool(true))
            .set(
                "Stats",
                Value::Dict([("p90".to_string(), Value::Float(2.5))].into_iter().collect()),
            );
        assert_eq!(
            query_xml("ListThings", "http://x/", &v, "rid"),
            r#"<ListThingsResponse xmlns="http://x/"><ListThingsResult><Items><member>a</member><member>b</member></Items><At>1970-01-01T00:00:00.000Z</At><Ok>true</Ok><Stats><entry><key>p90</key><value>2.5</value></entry></Stats></ListThingsResult><ResponseMetadata><RequestId>rid</RequestId></ResponseMetadata></ListThingsResponse>"#
        );
        // JSON and CBOR write a map shape as any map.
        assert_eq!(
            String::from_utf8(encode_json(&v)).unwrap(),
            r#"{"Items":["a","b"],"At":0,"Ok":true,"Stats":{"p90":2.5}}"#
        );
        assert_eq!(
            cbor_diagnostic(&encode_cbor(&v)),
            r#"{"Items": ["a", "b"], "At": 1(0), "Ok": true, "Stats": {"p90": 2.5}}"#
        );
    }
}
