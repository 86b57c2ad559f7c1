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

    /// A list of structures of any depth (`Key.member.N.A.B.member.M.C=...`) as JSON: every
    /// `member.N` level an array in N order, every other level an object, values strings.
    /// What ELBv2's actions and conditions are sent as.
    pub fn tree_list(&self, key: &str) -> Vec<serde_json::Value> {
        self.tree().get(key).and_then(serde_json::Value::as_array).cloned().unwrap_or_default()
    }

    /// Whether any parameter starts with `key.` or is `key` (a list given, even empty).
    pub fn has(&self, key: &str) -> bool {
        let prefix = format!("{key}.");
        self.params.keys().any(|k| k == key || k.starts_with(&prefix))
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

impl QueryInput {
    /// The parameters as one tree, the shape the JSON protocols carry: `A.B=v` is
    /// `{"A": {"B": "v"}}`; numbered segments (`X.1`, EC2's lists, and `X.member.1`) are lists in
    /// number order; `X.entry.N.key` / `.value` are maps. A value that also has children keeps
    /// its children.
    pub fn tree(&self) -> serde_json::Value {
        let mut root = Node::Branch(BTreeMap::new());
        for (key, value) in &self.params {
            let path: Vec<&str> = key.split('.').collect();
            // Bounded depth: no AWS shape nests this deep, and the tree is built recursively.
            if path.len() <= MAX_DEPTH {
                root.insert(&path, value);
            }
        }
        root.into_json()
    }
}

/// The deepest parameter name [`QueryInput::tree`] reads (segments).
const MAX_DEPTH: usize = 32;

enum Node {
    Leaf(String),
    Branch(BTreeMap<String, Node>),
}

impl Node {
    fn insert(&mut self, path: &[&str], value: &str) {
        let Some((first, rest)) = path.split_first() else {
            if let Node::Leaf(leaf) = self {
                *leaf = value.to_string();
            }
            return;
        };
        if let Node::Leaf(_) = self {
            *self = Node::Branch(BTreeMap::new());
        }
        if let Node::Branch(children) = self {
            children
                .entry(first.to_string())
                .or_insert_with(|| Node::Leaf(String::new()))
                .insert(rest, value);
        }
    }

    fn into_json(self) -> serde_json::Value {
        use serde_json::Value;
        let children = match self {
            Node::Leaf(s) => return Value::String(s),
            Node::Branch(children) => children,
        };
        let numbered = |c: &BTreeMap<String, Node>| {
            !c.is_empty() && c.keys().all(|k| k.parse::<u32>().is_ok())
        };
        let list = |c: BTreeMap<String, Node>| {
            let mut items: Vec<(u32, Node)> =
                c.into_iter().filter_map(|(k, v)| Some((k.parse().ok()?, v))).collect();
            items.sort_by_key(|(n, _)| *n);
            Value::Array(items.into_iter().map(|(_, v)| v.into_json()).collect())
        };
        if numbered(&children) {
            return list(children);
        }
        if children.len() == 1 {
            let (key, _) = children.iter().next().expect("one child");
            if key == "member" || key == "entry" {
                let key = key.clone();
                let Some(Node::Branch(items)) = children.into_values().next() else {
                    return Value::Array(Vec::new());
                };
                if key == "member" {
                    return if numbered(&items) { list(items) } else { Value::Array(Vec::new()) };
                }
                let Value::Array(entries) = list(items) else { return Value::Null };
                let map = entries
                    .into_iter()
                    .filter_map(|e| {
                        let k = e.get("key")?.as_str()?.to_string();
                        Some((k, e.get("value").cloned().unwrap_or(Value::String(String::new()))))
                    })
                    .collect();
                return Value::Object(map);
            }
        }
        Value::Object(children.into_iter().map(|(k, v)| (k, v.into_json())).collect())
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
        expect_test::expect![[r#"{"Action":"CreateStack","Attributes":{"a":"1"},"Capabilities":["CAPABILITY_IAM"],"Parameters":[{"ParameterKey":"A","ParameterValue":"x,y"},{"ParameterKey":"B"}],"StackName":"web","Tags":[{"Key":"k","Value":"v"}]}"#]]
        .assert_eq(&q.tree().to_string());
        let ec2 = QueryInput::parse(
            "",
            b"SecurityGroupId.2=sg-b&SecurityGroupId.10=sg-c&SecurityGroupId.1=sg-a&Placement.AvailabilityZone=us-east-1b&TagSpecification.1.Tag.1.Key=Name&TagSpecification.1.Tag.1.Value=web&TagSpecification.1.ResourceType=instance",
        );
        expect_test::expect![[r#"{"Placement":{"AvailabilityZone":"us-east-1b"},"SecurityGroupId":["sg-a","sg-b","sg-c"],"TagSpecification":[{"ResourceType":"instance","Tag":[{"Key":"Name","Value":"web"}]}]}"#]]
        .assert_eq(&ec2.tree().to_string());
        let body = encode(&[("A".into(), "x y&z".into())]);
        assert_eq!(QueryInput::parse("", body.as_bytes()).get("A"), Some("x y&z"));
    }
}
