//! Helpers shared by the integration tests.

use std::path::PathBuf;

use cfn_template::{Resolver, Value};

/// The repository root.
pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The corpus templates, from the repository's copy (`tests/corpus`), in MANIFEST order.
pub fn corpus() -> Vec<(String, String)> {
    let dir = repo().join("tests/corpus");
    let manifest =
        std::fs::read_to_string(dir.join("MANIFEST.tsv")).expect("tests/corpus/MANIFEST.tsv");
    manifest
        .lines()
        .skip(1)
        .filter_map(|l| l.split('\t').next())
        .map(|path| (path.to_string(), std::fs::read_to_string(dir.join(path)).expect(path)))
        .collect()
}

/// Gives every resource a placeholder physical id and every attribute a value of the shape its
/// schema declares (lists for arrays, CIDRs for CIDR blocks), so that templates resolve fully.
pub struct Placeholders<'a> {
    pub template: &'a cfn_template::Template,
}

impl Resolver for Placeholders<'_> {
    fn resource_ref(&self, logical_id: &str) -> Result<Value, String> {
        Ok(Value::String(format!("id-of-{logical_id}")))
    }

    fn resource_attr(&self, logical_id: &str, attribute: &str) -> Result<Value, String> {
        let ty = &self.template.resources[logical_id].type_name;
        let is_array = cfn_schema::get(ty)
            .and_then(|s| {
                s.property(attribute.split('.').next().unwrap_or_default())
                    .map(|p| p["type"] == "array")
            })
            .unwrap_or(false);
        let text = |i: usize| {
            if attribute.contains("Ipv6Cidr") {
                format!("2600:1f18:1234:56{i}0::/56")
            } else if attribute.contains("CidrBlock") {
                format!("10.{i}.0.0/16")
            } else {
                format!("{logical_id}-{attribute}-{i}")
            }
        };
        Ok(if is_array {
            Value::List(vec![Value::String(text(0)), Value::String(text(1))])
        } else {
            Value::String(text(0))
        })
    }

    fn import_value(&self, name: &str) -> Result<Value, String> {
        Ok(Value::String(format!("export-{name}")))
    }
}
