//! The overrides file: local-only changes that keep the template deployable to AWS.
//!
//! ```yaml
//! # cumulo.overrides.yaml
//! instances:
//!   AppLaunchTemplate:            # a launch template's, launch configuration's or instance's logical id ("*": all)
//!     command: [cumulo, demo-app, --port, "8080"]   # run this instead of the UserData
//!     env: {APP_MODE: local}
//!     ports: [8080]               # the ports the app answers on (each gets a loopback port)
//! templates:                      # nested stacks' TemplateURLs, as local files
//!   https://s3.amazonaws.com/bucket/network.yaml: ./network.yaml
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use cfn_stacks::TemplateLoader;
use ec2::InstanceOverride;
use serde::Deserialize;

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Overrides {
    #[serde(default)]
    pub instances: BTreeMap<String, InstanceOverride>,
    #[serde(default)]
    pub templates: BTreeMap<String, PathBuf>,
    /// The directory relative template paths are read from.
    #[serde(skip)]
    pub base: PathBuf,
}

impl Overrides {
    /// Reads an overrides file (YAML or JSON); errors name the file and position.
    pub fn load(path: &Path) -> Result<Overrides, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        let mut overrides =
            Overrides::parse(&text).map_err(|e| format!("{}: {e}", path.display()))?;
        overrides.base = path.parent().map(Path::to_path_buf).unwrap_or_default();
        Ok(overrides)
    }

    pub fn parse(text: &str) -> Result<Overrides, String> {
        let mut diags = cfn_template::diag::Diagnostics::default();
        let Some(root) = cfn_template::parse::parse(text, &mut diags) else {
            let d = diags.finish();
            return Err(d
                .first()
                .map(|d| format!("{}:{}: {}", d.span.start.line, d.span.start.col, d.message))
                .unwrap_or_default());
        };
        let json = node_json(&root);
        serde_json::from_value(json).map_err(|e| format!("not an overrides file: {e}"))
    }

    /// Nested stacks' TemplateURLs: mapped ones from the file, others as local paths.
    pub fn template_loader(&self) -> TemplateLoader {
        let map: BTreeMap<String, PathBuf> =
            self.templates.iter().map(|(url, p)| (url.clone(), self.base.join(p))).collect();
        Arc::new(move |url: &str| match map.get(url) {
            Some(path) => std::fs::read_to_string(path)
                .map_err(|e| format!("cannot read {} (mapped from {url}): {e}", path.display())),
            None => cfn_stacks::load_local_template(url),
        })
    }
}

/// A YAML/JSON node as JSON (numbers stay numbers, so `ports: [8080]` reads as integers).
fn node_json(node: &cfn_template::Node) -> serde_json::Value {
    use cfn_template::Kind;
    match &node.kind {
        Kind::Null => serde_json::Value::Null,
        Kind::Bool(b) => serde_json::Value::Bool(*b),
        Kind::Number(n) => {
            serde_json::from_str(n).unwrap_or_else(|_| serde_json::Value::String(n.clone()))
        }
        Kind::String(s) => serde_json::Value::String(s.clone()),
        Kind::Seq(items) => serde_json::Value::Array(items.iter().map(node_json).collect()),
        Kind::Map(m) => serde_json::Value::Object(
            m.iter().map(|e| (e.key.clone(), node_json(&e.value))).collect(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_instances_and_templates() {
        let o = Overrides::parse(
            "instances:\n  AppLT:\n    command: [cumulo, demo-app]\n    env: {A: \"1\"}\n    ports: [8080]\ntemplates:\n  https://s3.amazonaws.com/b/x.yaml: ./x.yaml\n",
        )
        .unwrap();
        assert_eq!(
            o.instances["AppLT"].command.as_deref(),
            Some(&["cumulo".to_string(), "demo-app".to_string()][..])
        );
        assert_eq!(o.instances["AppLT"].ports.as_deref(), Some(&[8080u16][..]));
        assert_eq!(o.templates["https://s3.amazonaws.com/b/x.yaml"], PathBuf::from("./x.yaml"));
        assert!(
            Overrides::parse("instances:\n  A:\n    comand: [x]\n")
                .unwrap_err()
                .contains("unknown field `comand`")
        );
    }
}
