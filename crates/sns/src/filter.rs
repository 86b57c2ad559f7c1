//! Subscription filter policies ("Amazon SNS message filtering"): a JSON object whose keys name
//! message attributes (`FilterPolicyScope: MessageAttributes`, the default) or members of a
//! JSON message body (`MessageBody`, where objects nest), each with an array of conditions of
//! which one must match; every key must match (`$or` takes a list of alternative policies).
//!
//! Conditions: exact strings, numbers, booleans and null; `{"prefix": s}`, `{"suffix": s}`,
//! `{"equals-ignore-case": s}`; `{"anything-but": v | [v...] | {"prefix": s} | {"suffix": s}}`
//! (the key must be present); `{"numeric": [op, n (, op, n)]}` with `= < <= > >=`;
//! `{"exists": true|false}`. An array value in the message matches when one of its items does.
//! Message attributes filter by their type: a `Number` attribute is a number, a `String.Array`
//! its JSON array, `Binary` attributes are never matched.

use serde_json::{Map, Value as Json};

/// Where a policy looks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scope {
    MessageAttributes,
    MessageBody,
}

impl Scope {
    pub fn parse(s: &str) -> Option<Scope> {
        match s {
            "MessageAttributes" => Some(Scope::MessageAttributes),
            "MessageBody" => Some(Scope::MessageBody),
            _ => None,
        }
    }
}

/// Checks a policy as SNS does when it is set; the reason when it is not valid.
pub fn validate(policy: &str, scope: Scope) -> Result<(), String> {
    let json: Json =
        serde_json::from_str(policy).map_err(|e| format!("failed to parse JSON. {e}"))?;
    let Json::Object(map) = json else {
        return Err("Filter policy must be a JSON object".into());
    };
    if map.is_empty() {
        return Ok(());
    }
    check_object(&map, scope, 0)
}

fn check_object(map: &Map<String, Json>, scope: Scope, depth: usize) -> Result<(), String> {
    if depth > 5 {
        return Err("Filter policy is too deeply nested".into());
    }
    for (key, value) in map {
        match value {
            Json::Array(conds) if key == "$or" => {
                for alt in conds {
                    let Json::Object(alt) = alt else {
                        return Err("$or must list filter policies".into());
                    };
                    check_object(alt, scope, depth + 1)?;
                }
            }
            Json::Array(conds) => {
                if conds.is_empty() {
                    return Err(format!("Empty arrays are not allowed (key {key})"));
                }
                for c in conds {
                    check_condition(key, c)?;
                }
            }
            Json::Object(inner) if scope == Scope::MessageBody => {
                check_object(inner, scope, depth + 1)?
            }
            _ => {
                return Err(format!(
                    "Match value must be String, number, true, false, or null (key {key})"
                ));
            }
        }
    }
    Ok(())
}

fn check_condition(key: &str, c: &Json) -> Result<(), String> {
    let Json::Object(op) = c else { return Ok(()) };
    let Some((name, arg)) = op.iter().next().filter(|_| op.len() == 1) else {
        return Err(format!("Unrecognized match type in {key}"));
    };
    let ok = match name.as_str() {
        "prefix" | "suffix" | "equals-ignore-case" => arg.is_string(),
        "exists" => arg.is_boolean(),
        "anything-but" => match arg {
            Json::Object(inner) => {
                inner.len() == 1
                    && inner.iter().all(|(k, v)| (k == "prefix" || k == "suffix") && v.is_string())
            }
            Json::Array(items) => items.iter().all(|i| i.is_string() || i.is_number()),
            v => v.is_string() || v.is_number(),
        },
        "numeric" => numeric_ranges(arg).is_some(),
        _ => false,
    };
    if ok { Ok(()) } else { Err(format!("Unrecognized match type {name} in {key}")) }
}

fn numeric_ranges(arg: &Json) -> Option<Vec<(&str, f64)>> {
    let items = arg.as_array()?;
    if items.is_empty() || items.len() % 2 != 0 || items.len() > 4 {
        return None;
    }
    items
        .chunks(2)
        .map(|pair| {
            let op = pair[0].as_str().filter(|o| matches!(*o, "=" | "<" | "<=" | ">" | ">="))?;
            Some((op, pair[1].as_f64()?))
        })
        .collect()
}

/// The JSON object a policy of scope `MessageAttributes` is matched against: each attribute
/// by its type (`(name, data type, string value)`; binary attributes left out).
pub fn attributes_object<'a>(
    attributes: impl Iterator<Item = (&'a str, &'a str, Option<&'a str>)>,
) -> Json {
    let mut map = Map::new();
    for (name, data_type, value) in attributes {
        let Some(value) = value else { continue };
        let v = if data_type.starts_with("Number") {
            match value.trim().parse::<f64>().ok().and_then(serde_json::Number::from_f64) {
                Some(n) => Json::Number(n),
                None => continue,
            }
        } else if data_type.starts_with("String.Array") {
            serde_json::from_str::<Json>(value)
                .ok()
                .filter(Json::is_array)
                .unwrap_or_else(|| Json::String(value.to_string()))
        } else if data_type.starts_with("String") {
            Json::String(value.to_string())
        } else {
            continue;
        };
        map.insert(name.to_string(), v);
    }
    Json::Object(map)
}

/// Whether `message` (the attributes object or the parsed body) passes `policy` (a valid
/// policy; one that does not parse matches nothing).
pub fn matches(policy: &str, message: Option<&Json>) -> bool {
    match serde_json::from_str::<Json>(policy) {
        Ok(Json::Object(p)) => match_object(&p, message),
        _ => false,
    }
}

fn match_object(policy: &Map<String, Json>, value: Option<&Json>) -> bool {
    policy.iter().all(|(key, cond)| {
        if key == "$or" {
            return cond.as_array().is_some_and(|alts| {
                alts.iter().any(|a| a.as_object().is_some_and(|a| match_object(a, value)))
            });
        }
        let field = value.and_then(|v| v.get(key));
        match cond {
            Json::Object(inner) => match_object(inner, field),
            Json::Array(conds) => {
                let values: Vec<&Json> = match field {
                    None => Vec::new(),
                    Some(Json::Array(items)) => items.iter().collect(),
                    Some(v) => vec![v],
                };
                conds.iter().any(|c| match_condition(c, &values, field.is_some()))
            }
            _ => false,
        }
    })
}

fn same(a: &Json, b: &Json) -> bool {
    match (a, b) {
        (Json::Number(x), Json::Number(y)) => x.as_f64() == y.as_f64(),
        _ => a == b,
    }
}

fn match_condition(c: &Json, values: &[&Json], present: bool) -> bool {
    let Json::Object(op) = c else {
        return values.iter().any(|v| same(v, c));
    };
    let Some((name, arg)) = op.iter().next() else { return false };
    let strings = || values.iter().filter_map(|v| v.as_str());
    match (name.as_str(), arg) {
        ("prefix", Json::String(p)) => strings().any(|s| s.starts_with(p.as_str())),
        ("suffix", Json::String(p)) => strings().any(|s| s.ends_with(p.as_str())),
        ("equals-ignore-case", Json::String(p)) => strings().any(|s| s.eq_ignore_ascii_case(p)),
        ("exists", Json::Bool(want)) => present == *want,
        ("anything-but", arg) => {
            present
                && values.iter().any(|v| match arg {
                    Json::Array(items) => !items.iter().any(|i| same(v, i)),
                    Json::Object(inner) => {
                        match (inner.get("prefix"), inner.get("suffix"), v.as_str()) {
                            (Some(Json::String(p)), _, Some(s)) => !s.starts_with(p.as_str()),
                            (_, Some(Json::String(p)), Some(s)) => !s.ends_with(p.as_str()),
                            (_, _, None) => true,
                            _ => false,
                        }
                    }
                    other => !same(v, other),
                })
        }
        ("numeric", arg) => {
            let Some(ranges) = numeric_ranges(arg) else { return false };
            values.iter().filter_map(|v| v.as_f64()).any(|n| {
                ranges.iter().all(|(op, bound)| match *op {
                    "=" => n == *bound,
                    "<" => n < *bound,
                    "<=" => n <= *bound,
                    ">" => n > *bound,
                    ">=" => n >= *bound,
                    _ => false,
                })
            })
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// (policy, message attributes as `name:Type=value` separated by `;`, expected).
    const ATTRIBUTE_CASES: &[(&str, &str, bool)] = &[
        (r#"{"store":["example_corp"]}"#, "store:String=example_corp", true),
        (r#"{"store":["example_corp"]}"#, "store:String=other", false),
        (r#"{"store":["example_corp"]}"#, "", false),
        (r#"{"store":["a","b"]}"#, "store:String=b", true),
        // Every key must match.
        (r#"{"store":["a"],"event":["order"]}"#, "store:String=a", false),
        (r#"{"store":["a"],"event":["order"]}"#, "store:String=a;event:String=order", true),
        // Prefix, suffix, case.
        (r#"{"event":[{"prefix":"order-"}]}"#, "event:String=order-cancelled", true),
        (r#"{"event":[{"prefix":"order-"}]}"#, "event:String=refund", false),
        (r#"{"event":[{"suffix":"-cancelled"}]}"#, "event:String=order-cancelled", true),
        (r#"{"event":[{"equals-ignore-case":"ORDER"}]}"#, "event:String=order", true),
        // anything-but: present and none of the values.
        (r#"{"event":[{"anything-but":"order"}]}"#, "event:String=refund", true),
        (r#"{"event":[{"anything-but":"order"}]}"#, "event:String=order", false),
        (r#"{"event":[{"anything-but":"order"}]}"#, "", false),
        (r#"{"event":[{"anything-but":["a","b"]}]}"#, "event:String=b", false),
        (r#"{"event":[{"anything-but":{"prefix":"order-"}}]}"#, "event:String=order-x", false),
        (r#"{"event":[{"anything-but":{"prefix":"order-"}}]}"#, "event:String=refund", true),
        (r#"{"price":[{"anything-but":[100]}]}"#, "price:Number=150", true),
        // Numbers: exact and ranges; a Number attribute is not a string.
        (r#"{"price":[100]}"#, "price:Number=100.0", true),
        (r#"{"price":[{"numeric":[">",0,"<=",150]}]}"#, "price:Number=150", true),
        (r#"{"price":[{"numeric":[">",0,"<=",150]}]}"#, "price:Number=151", false),
        (r#"{"price":[{"numeric":["=",5]}]}"#, "price:Number=5", true),
        (r#"{"price":[{"numeric":["<",5]}]}"#, "price:String=3", false),
        (r#"{"price":["100"]}"#, "price:Number=100", false),
        // exists.
        (r#"{"store":[{"exists":true}]}"#, "store:String=x", true),
        (r#"{"store":[{"exists":true}]}"#, "", false),
        (r#"{"store":[{"exists":false}]}"#, "", true),
        (r#"{"store":[{"exists":false}]}"#, "store:String=x", false),
        // String.Array: one item is enough.
        (r#"{"sport":["soccer"]}"#, r#"sport:String.Array=["rugby","soccer"]"#, true),
        (r#"{"sport":["golf"]}"#, r#"sport:String.Array=["rugby","soccer"]"#, false),
        // Binary attributes are never matched.
        (r#"{"blob":[{"exists":true}]}"#, "blob:Binary=AAEC", false),
        // $or.
        (r#"{"$or":[{"a":["1"]},{"b":["2"]}]}"#, "b:String=2", true),
        (r#"{"$or":[{"a":["1"]},{"b":["2"]}]}"#, "c:String=3", false),
        // The empty policy matches everything.
        ("{}", "", true),
    ];

    #[test]
    fn attribute_policies_match_as_aws_documents() {
        for (policy, attrs, expected) in ATTRIBUTE_CASES {
            assert_eq!(validate(policy, Scope::MessageAttributes), Ok(()), "{policy}");
            let parsed: Vec<(String, String, String)> = attrs
                .split(';')
                .filter(|a| !a.is_empty())
                .map(|a| {
                    let (name, rest) = a.split_once(':').unwrap();
                    let (ty, value) = rest.split_once('=').unwrap();
                    (name.into(), ty.into(), value.into())
                })
                .collect();
            let object = attributes_object(
                parsed.iter().map(|(n, t, v)| (n.as_str(), t.as_str(), Some(v.as_str()))),
            );
            assert_eq!(matches(policy, Some(&object)), *expected, "{policy} on {attrs}");
        }
    }

    /// (policy, message body, expected).
    const BODY_CASES: &[(&str, &str, bool)] = &[
        (r#"{"order":{"status":["paid"]}}"#, r#"{"order":{"status":"paid","id":1}}"#, true),
        (r#"{"order":{"status":["paid"]}}"#, r#"{"order":{"status":"open"}}"#, false),
        (r#"{"order":{"total":[{"numeric":[">=",10]}]}}"#, r#"{"order":{"total":12.5}}"#, true),
        (r#"{"tags":["red"]}"#, r#"{"tags":["blue","red"]}"#, true),
        (r#"{"flag":[true]}"#, r#"{"flag":true}"#, true),
        (r#"{"gone":[null]}"#, r#"{"gone":null}"#, true),
        (r#"{"missing":[{"exists":false}]}"#, r#"{"other":1}"#, true),
        (r#"{"a":{"b":{"c":[{"prefix":"x"}]}}}"#, r#"{"a":{"b":{"c":"xyz"}}}"#, true),
        // A body that is not JSON matches no policy with keys.
        (r#"{"a":["1"]}"#, "plain text", false),
    ];

    #[test]
    fn body_policies_look_into_the_json_message() {
        for (policy, body, expected) in BODY_CASES {
            assert_eq!(validate(policy, Scope::MessageBody), Ok(()), "{policy}");
            let parsed: Option<Json> = serde_json::from_str(body).ok();
            assert_eq!(matches(policy, parsed.as_ref()), *expected, "{policy} on {body}");
        }
    }

    #[test]
    fn invalid_policies_are_refused_when_set() {
        let cases = [
            ("not json", Scope::MessageAttributes),
            ("[1]", Scope::MessageAttributes),
            (r#"{"a":"x"}"#, Scope::MessageAttributes),
            (r#"{"a":[]}"#, Scope::MessageAttributes),
            (r#"{"a":{"b":["x"]}}"#, Scope::MessageAttributes),
            (r#"{"a":[{"numeric":[">"]}]}"#, Scope::MessageAttributes),
            (r#"{"a":[{"frobnicate":1}]}"#, Scope::MessageBody),
        ];
        for (policy, scope) in cases {
            assert!(validate(policy, scope).is_err(), "{policy}");
        }
    }
}
