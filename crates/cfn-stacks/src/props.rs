//! Reading resolved resource properties the way providers need them: CloudFormation passes
//! numbers and booleans as strings as often as not, so readers accept either.

use serde_json::Value as Json;

/// A string, number or boolean property as text.
pub fn text(props: &Json, key: &str) -> Option<String> {
    match props.get(key)? {
        Json::String(s) => Some(s.clone()),
        Json::Number(n) => Some(n.to_string()),
        Json::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// A whole number given as a number or a string.
pub fn number(props: &Json, key: &str) -> Option<u64> {
    text(props, key)?.trim().parse().ok()
}

/// The strings of a list property (other items are skipped).
pub fn strings(props: &Json, key: &str) -> Vec<String> {
    props
        .get(key)
        .and_then(Json::as_array)
        .into_iter()
        .flatten()
        .filter_map(|v| v.as_str().map(str::to_string))
        .collect()
}

/// A boolean given as `true`/`false` or as a string (any case); `None` when absent.
pub fn boolean(props: &Json, key: &str) -> Option<bool> {
    let v = props.get(key)?;
    v.as_bool().or_else(|| v.as_str().map(|s| s.eq_ignore_ascii_case("true")))
}

/// A boolean given as `true` or `"true"` (any case).
pub fn flag(props: &Json, key: &str) -> bool {
    props.get(key).is_some_and(|v| {
        v.as_bool() == Some(true) || v.as_str().is_some_and(|s| s.eq_ignore_ascii_case("true"))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn strings_numbers_and_booleans_either_way() {
        let p = json!({"A": "5", "B": 5, "C": true, "D": "TRUE", "E": ["x", 1, "y"], "F": {}});
        assert_eq!((number(&p, "A"), number(&p, "B")), (Some(5), Some(5)));
        assert_eq!(text(&p, "C").as_deref(), Some("true"));
        assert!(flag(&p, "C") && flag(&p, "D") && !flag(&p, "A"));
        assert_eq!(
            (boolean(&p, "D"), boolean(&p, "A"), boolean(&p, "missing")),
            (Some(true), Some(false), None)
        );
        assert_eq!(strings(&p, "E"), ["x", "y"]);
        assert_eq!((text(&p, "F"), number(&p, "missing")), (None, None));
    }
}
