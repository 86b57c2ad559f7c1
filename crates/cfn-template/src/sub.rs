//! The `Fn::Sub` string syntax: `${Name}`, `${Resource.Attribute}` and the `${!Literal}` escape.

/// A piece of an `Fn::Sub` string.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Part<'a> {
    Text(String),
    Var(&'a str),
}

/// Splits a `Fn::Sub` string into literal text and variable references.
pub fn parse(s: &str) -> Vec<Part<'_>> {
    let mut parts = Vec::new();
    let mut text = String::new();
    let mut rest = s;
    while let Some(i) = rest.find("${") {
        text.push_str(&rest[..i]);
        let after = &rest[i + 2..];
        if let Some(literal) = after.strip_prefix('!') {
            // `${!Literal}` is the text `${Literal}`.
            text.push_str("${");
            rest = literal;
            continue;
        }
        match after.find('}') {
            Some(end) => {
                if !text.is_empty() {
                    parts.push(Part::Text(std::mem::take(&mut text)));
                }
                parts.push(Part::Var(after[..end].trim()));
                rest = &after[end + 1..];
            }
            None => {
                text.push_str("${");
                rest = after;
            }
        }
    }
    text.push_str(rest);
    if !text.is_empty() {
        parts.push(Part::Text(text));
    }
    parts
}

/// The names a `Fn::Sub` string refers to (variables, parameters, resources, `Res.Attr`).
pub fn variables(s: &str) -> Vec<&str> {
    parse(s)
        .into_iter()
        .filter_map(|p| match p {
            Part::Var(v) => Some(v),
            Part::Text(_) => None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_and_variables() {
        assert_eq!(
            parse("a-${X}-${!Lit}-${R.Arn}${"),
            vec![
                Part::Text("a-".into()),
                Part::Var("X"),
                Part::Text("-${Lit}-".into()),
                Part::Var("R.Arn"),
                Part::Text("${".into()),
            ]
        );
    }
}
