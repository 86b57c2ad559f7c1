//! Parameter values from the command line (`--parameter K=V`) and from files.

use std::path::Path;

use anyhow::{Context, bail};
use indexmap::IndexMap;

/// Parses `K=V` pairs.
pub fn parse_pairs(pairs: &[String]) -> anyhow::Result<IndexMap<String, String>> {
    let mut out = IndexMap::new();
    for pair in pairs {
        let Some((k, v)) = pair.split_once('=') else {
            bail!("--parameter {pair}: expected KEY=VALUE");
        };
        out.insert(k.trim().to_string(), v.to_string());
    }
    Ok(out)
}

/// Reads a parameters file. Accepted: the AWS CLI's JSON list
/// (`[{"ParameterKey": "K", "ParameterValue": "V"}]`), a JSON object (`{"K": "V"}`), or
/// `K=V` lines (`#` comments).
pub fn read_file(path: &Path) -> anyhow::Result<IndexMap<String, String>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    parse_file(&text).with_context(|| format!("{}: not a parameters file", path.display()))
}

pub fn parse_file(text: &str) -> anyhow::Result<IndexMap<String, String>> {
    let trimmed = text.trim_start();
    let mut out = IndexMap::new();
    if trimmed.starts_with('[') || trimmed.starts_with('{') {
        let json: serde_json::Value = serde_json::from_str(text)?;
        let scalar = |v: &serde_json::Value| -> anyhow::Result<String> {
            Ok(match v {
                serde_json::Value::String(s) => s.clone(),
                serde_json::Value::Number(n) => n.to_string(),
                serde_json::Value::Bool(b) => b.to_string(),
                serde_json::Value::Array(items) => items
                    .iter()
                    .map(|i| i.as_str().map(str::to_string).unwrap_or_else(|| i.to_string()))
                    .collect::<Vec<_>>()
                    .join(","),
                other => bail!("unsupported parameter value {other}"),
            })
        };
        match json {
            serde_json::Value::Array(items) => {
                for item in items {
                    let key = item
                        .get("ParameterKey")
                        .and_then(|k| k.as_str())
                        .context("every item needs a ParameterKey")?;
                    let value =
                        item.get("ParameterValue").map(scalar).transpose()?.unwrap_or_default();
                    out.insert(key.to_string(), value);
                }
            }
            serde_json::Value::Object(map) => {
                for (k, v) in map {
                    out.insert(k, scalar(&v)?);
                }
            }
            _ => bail!("expected a JSON list or object"),
        }
    } else {
        for line in text.lines() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let Some((k, v)) = line.split_once('=') else {
                bail!("expected KEY=VALUE, got {line}")
            };
            out.insert(k.trim().to_string(), v.trim().to_string());
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats() {
        let aws = parse_file(r#"[{"ParameterKey":"A","ParameterValue":"1"},{"ParameterKey":"B","ParameterValue":"x,y"}]"#).unwrap();
        assert_eq!(aws["A"], "1");
        assert_eq!(aws["B"], "x,y");
        let map = parse_file(r#"{"A": 2, "L": ["a", "b"]}"#).unwrap();
        assert_eq!((map["A"].as_str(), map["L"].as_str()), ("2", "a,b"));
        let lines = parse_file("# c\nA = 1\nB=x=y\n").unwrap();
        assert_eq!((lines["A"].as_str(), lines["B"].as_str()), ("1", "x=y"));
        assert!(parse_pairs(&["nope".into()]).is_err());
    }
}
