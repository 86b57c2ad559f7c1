//! AWS Query protocol requests: form-encoded parameters, with lists and structures flattened
//! (`Parameters.member.1.ParameterKey=...`).

use std::collections::BTreeMap;

use indexmap::IndexMap;

/// The parameters of one Query request.
#[derive(Clone, Debug, Default)]
pub struct QueryInput {
    params: BTreeMap<String, String>,
}

impl QueryInput {
    /// From a form body and/or a URL query string (both may carry parameters).
    pub fn parse(query: &str, body: &[u8]) -> QueryInput {
        let mut params = BTreeMap::new();
        for (k, v) in form_urlencoded::parse(query.as_bytes()).chain(form_urlencoded::parse(body)) {
            params.insert(k.into_owned(), v.into_owned());
        }
        QueryInput { params }
    }

    pub fn from_pairs<I: IntoIterator<Item = (String, String)>>(pairs: I) -> QueryInput {
        QueryInput { params: pairs.into_iter().collect() }
    }

    /// Every parameter, in key order.
    pub fn pairs(&self) -> impl Iterator<Item = (&str, &str)> {
        self.params.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.params.get(key).map(String::as_str)
    }

    /// A required parameter, or AWS's ValidationError wording.
    pub fn required(&self, key: &str) -> Result<&str, String> {
        self.get(key).ok_or_else(|| format!("1 validation error detected: Value null at '{}' failed to satisfy constraint: Member must not be null", lower_first(key)))
    }

    pub fn bool(&self, key: &str) -> bool {
        self.get(key).is_some_and(|v| v.eq_ignore_ascii_case("true"))
    }

    /// `Key.member.N` values, in N order.
    pub fn list(&self, key: &str) -> Vec<String> {
        let prefix = format!("{key}.member.");
        let mut items: Vec<(u32, String)> = self
            .params
            .iter()
            .filter_map(|(k, v)| {
                k.strip_prefix(&prefix).and_then(|n| n.parse().ok()).map(|n| (n, v.clone()))
            })
            .collect();
        items.sort_by_key(|(n, _)| *n);
        items.into_iter().map(|(_, v)| v).collect()
    }

    /// `Key.N` values (EC2's flattened lists), in N order.
    pub fn list_flat(&self, key: &str) -> Vec<String> {
        let prefix = format!("{key}.");
        let mut items: Vec<(u32, String)> = self
            .params
            .iter()
            .filter_map(|(k, v)| {
                k.strip_prefix(&prefix).and_then(|n| n.parse().ok()).map(|n| (n, v.clone()))
            })
            .collect();
        items.sort_by_key(|(n, _)| *n);
        items.into_iter().map(|(_, v)| v).collect()
    }

    /// EC2 filters: `Filter.N.Name` with `Filter.N.Value.M`.
    pub fn filters(&self) -> Vec<(String, Vec<String>)> {
        let mut by_index: BTreeMap<u32, (String, Vec<(u32, String)>)> = BTreeMap::new();
        for (k, v) in &self.params {
            let Some(rest) = k.strip_prefix("Filter.") else { continue };
            let Some((n, field)) = rest.split_once('.') else { continue };
            let Ok(n) = n.parse::<u32>() else { continue };
            let entry = by_index.entry(n).or_default();
            if field == "Name" {
                entry.0 = v.clone();
            } else if let Some(m) = field.strip_prefix("Value.").and_then(|m| m.parse().ok()) {
                entry.1.push((m, v.clone()));
            }
        }
        by_index
            .into_values()
            .map(|(name, mut values)| {
                values.sort_by_key(|(m, _)| *m);
                (name, values.into_iter().map(|(_, v)| v).collect())
            })
            .collect()
    }

    /// `Key.member.N.Field` structures, in N order, each as a field map.
    pub fn structs(&self, key: &str) -> Vec<IndexMap<String, String>> {
        let prefix = format!("{key}.member.");
        let mut by_index: BTreeMap<u32, IndexMap<String, String>> = BTreeMap::new();
        for (k, v) in &self.params {
            let Some(rest) = k.strip_prefix(&prefix) else { continue };
            let Some((n, field)) = rest.split_once('.') else { continue };
            let Ok(n) = n.parse::<u32>() else { continue };
            by_index.entry(n).or_default().insert(field.to_string(), v.clone());
        }
        by_index.into_values().collect()
    }

    /// `Key.entry.N.key` / `Key.entry.N.value` maps (Query's map encoding).
    pub fn map(&self, key: &str) -> IndexMap<String, String> {
        let prefix = format!("{key}.entry.");
        let mut by_index: BTreeMap<u32, (Option<String>, Option<String>)> = BTreeMap::new();
        for (k, v) in &self.params {
            let Some(rest) = k.strip_prefix(&prefix) else { continue };
            let Some((n, field)) = rest.split_once('.') else { continue };
            let Ok(n) = n.parse::<u32>() else { continue };
            let entry = by_index.entry(n).or_default();
            match field {
                "key" => entry.0 = Some(v.clone()),
                "value" => entry.1 = Some(v.clone()),
                _ => {}
            }
        }
        by_index.into_values().filter_map(|(k, v)| Some((k?, v.unwrap_or_default()))).collect()
    }
}

fn lower_first(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_lowercase().collect::<String>() + c.as_str(),
        None => String::new(),
    }
}

/// Encodes parameters as a form body (the client side).
pub fn encode(params: &[(String, String)]) -> String {
    let mut s = form_urlencoded::Serializer::new(String::new());
    for (k, v) in params {
        s.append_pair(k, v);
    }
    s.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flattened_lists_and_structures() {
        let q = QueryInput::parse(
            "Action=CreateStack",
            b"StackName=web&Parameters.member.2.ParameterKey=B&Parameters.member.1.ParameterKey=A&Parameters.member.1.ParameterValue=x%2Cy&Capabilities.member.1=CAPABILITY_IAM&Tags.member.1.Key=k&Tags.member.1.Value=v&Attributes.entry.1.key=a&Attributes.entry.1.value=1",
        );
        assert_eq!(q.get("Action"), Some("CreateStack"));
        let params = q.structs("Parameters");
        assert_eq!(params.len(), 2);
        assert_eq!(
            (params[0]["ParameterKey"].as_str(), params[0]["ParameterValue"].as_str()),
            ("A", "x,y")
        );
        assert_eq!(params[1].get("ParameterValue"), None);
        assert_eq!(q.list("Capabilities"), ["CAPABILITY_IAM"]);
        assert_eq!(q.map("Attributes")["a"], "1");
        assert_eq!(
            q.required("TemplateBody").unwrap_err(),
            "1 validation error detected: Value null at 'templateBody' failed to satisfy constraint: Member must not be null"
        );
        let body = encode(&[("A".into(), "x y&z".into())]);
        assert_eq!(QueryInput::parse("", body.as_bytes()).get("A"), Some("x y&z"));
    }
}
