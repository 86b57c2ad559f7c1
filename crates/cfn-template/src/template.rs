//! The template model: sections, parameters, resources and outputs, read from a [`Node`] tree
//! with the structural checks CloudFormation makes before it evaluates anything.

use indexmap::IndexMap;

use crate::diag::Diagnostics;
use crate::node::{Kind, Node};
use crate::params::ParamType;
use crate::span::Span;

pub const SERVERLESS_TRANSFORM: &str = "AWS::Serverless-2016-10-31";
pub const LANGUAGE_EXTENSIONS: &str = "AWS::LanguageExtensions";

/// A parsed and structurally checked template.
#[derive(Clone, Debug)]
pub struct Template {
    pub root: Node,
    pub description: Option<String>,
    pub metadata: Option<Node>,
    pub parameters: IndexMap<String, Parameter>,
    pub mappings: IndexMap<String, Node>,
    pub conditions: IndexMap<String, Condition>,
    pub rules: IndexMap<String, Rule>,
    pub transforms: Vec<(String, Span)>,
    pub resources: IndexMap<String, Resource>,
    pub outputs: IndexMap<String, Output>,
}

#[derive(Clone, Debug)]
pub struct Parameter {
    pub name: String,
    pub span: Span,
    pub ty: ParamType,
    pub type_name: String,
    pub type_span: Span,
    pub default: Option<Node>,
    pub allowed_values: Option<(Vec<String>, Span)>,
    pub allowed_pattern: Option<(String, Span)>,
    pub min_length: Option<u64>,
    pub max_length: Option<u64>,
    pub min_value: Option<f64>,
    pub max_value: Option<f64>,
    pub no_echo: bool,
    pub description: Option<String>,
    pub constraint_description: Option<String>,
}

#[derive(Clone, Debug)]
pub struct Condition {
    pub name: String,
    pub span: Span,
    pub expr: Node,
}

#[derive(Clone, Debug)]
pub struct Rule {
    pub name: String,
    pub span: Span,
    pub rule_condition: Option<Node>,
    pub assertions: Vec<Assertion>,
}

#[derive(Clone, Debug)]
pub struct Assertion {
    pub assert: Node,
    pub description: Option<String>,
}

#[derive(Clone, Debug)]
pub struct Resource {
    pub name: String,
    /// The span of the logical id (the key).
    pub span: Span,
    pub type_name: String,
    pub type_span: Span,
    pub properties: Option<Node>,
    pub depends_on: Vec<(String, Span)>,
    pub condition: Option<(String, Span)>,
    pub metadata: Option<Node>,
    pub creation_policy: Option<Node>,
    pub update_policy: Option<Node>,
    pub deletion_policy: Option<(String, Span)>,
    pub update_replace_policy: Option<(String, Span)>,
}

#[derive(Clone, Debug)]
pub struct Output {
    pub name: String,
    pub span: Span,
    pub value: Node,
    pub description: Option<Node>,
    pub export_name: Option<Node>,
    pub condition: Option<(String, Span)>,
}

const SECTIONS: &[&str] = &[
    "AWSTemplateFormatVersion",
    "Description",
    "Metadata",
    "Parameters",
    "Mappings",
    "Conditions",
    "Rules",
    "Transform",
    "Resources",
    "Outputs",
];

const RESOURCE_ATTRIBUTES: &[&str] = &[
    "Type",
    "Properties",
    "DependsOn",
    "Condition",
    "Metadata",
    "CreationPolicy",
    "UpdatePolicy",
    "DeletionPolicy",
    "UpdateReplacePolicy",
];

const PARAMETER_ATTRIBUTES: &[&str] = &[
    "Type",
    "Default",
    "AllowedValues",
    "AllowedPattern",
    "MinLength",
    "MaxLength",
    "MinValue",
    "MaxValue",
    "NoEcho",
    "Description",
    "ConstraintDescription",
];

pub(crate) fn is_alphanumeric(name: &str) -> bool {
    !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric())
}

// === impl Template ===

impl Template {
    /// Reads the sections of a template. Problems go to `diags`; a template comes back whenever
    /// the root is a mapping, so that later passes can report their problems too.
    pub fn from_root(root: Node, diags: &mut Diagnostics) -> Option<Template> {
        let Some(map) = root.as_map() else {
            diags.error(
                root.span,
                "Template format error: a template must be a JSON object or a YAML mapping",
            );
            return None;
        };
        let mut template = Template {
            root: root.clone(),
            description: None,
            metadata: None,
            parameters: IndexMap::new(),
            mappings: IndexMap::new(),
            conditions: IndexMap::new(),
            rules: IndexMap::new(),
            transforms: Vec::new(),
            resources: IndexMap::new(),
            outputs: IndexMap::new(),
        };
        let unknown: Vec<_> = map.iter().filter(|e| !SECTIONS.contains(&e.key.as_str())).collect();
        for entry in &unknown {
            diags.error(
                entry.key_span,
                format!(
                    "Template format error: Invalid template property or properties [{}]",
                    entry.key
                ),
            );
        }
        if let Some(v) = map.get("AWSTemplateFormatVersion")
            && v.scalar_text().as_deref() != Some("2010-09-09")
        {
            diags.error(
                    v.span,
                    "Template format error: Unsupported AWSTemplateFormatVersion; the only valid version is 2010-09-09",
                );
        }
        if let Some(v) = map.get("Description") {
            match v.scalar_text() {
                Some(text) => {
                    if text.len() > 1024 {
                        diags.error(
                            v.span,
                            "Template format error: Description is longer than 1024 bytes",
                        );
                    }
                    template.description = Some(text);
                }
                None => diags.error(v.span, "Template format error: Description must be a string"),
            }
        }
        template.metadata = map.get("Metadata").cloned();
        if let Some(v) = map.get("Transform") {
            template.transforms = read_transforms(v, diags);
        }
        if let Some(v) = map.get("Parameters") {
            template.read_parameters(v, diags);
        }
        if let Some(v) = map.get("Mappings") {
            template.read_mappings(v, diags);
        }
        if let Some(v) = map.get("Conditions") {
            for (name, span, expr) in section_entries(v, "Conditions", diags) {
                template
                    .conditions
                    .insert(name.clone(), Condition { name, span, expr: expr.clone() });
            }
        }
        if let Some(v) = map.get("Rules") {
            template.read_rules(v, diags);
        }
        match map.get("Resources") {
            Some(v) => template.read_resources(v, diags),
            None => diags.error(
                root.span,
                "Template format error: At least one Resources member must be defined.",
            ),
        }
        if let Some(v) = map.get("Outputs") {
            template.read_outputs(v, diags);
        }
        template.check_limits(diags);
        Some(template)
    }

    pub fn has_transform(&self, name: &str) -> bool {
        self.transforms.iter().any(|(t, _)| t == name)
    }

    fn read_parameters(&mut self, node: &Node, diags: &mut Diagnostics) {
        for (name, span, def) in section_entries(node, "Parameters", diags) {
            if !is_alphanumeric(&name) {
                diags.error(
                    span,
                    format!("Template format error: Parameter name {name} is non alphanumeric."),
                );
            }
            let Some(def_map) = def.as_map() else {
                diags.error(
                    def.span,
                    format!("Template format error: Parameter {name} must be a map"),
                );
                continue;
            };
            for entry in def_map.iter() {
                if !PARAMETER_ATTRIBUTES.contains(&entry.key.as_str()) {
                    diags.error(
                        entry.key_span,
                        format!(
                            "Template format error: Invalid template parameter property '{}'",
                            entry.key
                        ),
                    );
                }
            }
            let Some(type_node) = def_map.get("Type") else {
                diags.error(
                    span,
                    "Template format error: Every Parameters object must contain a Type member.",
                );
                continue;
            };
            let type_name = type_node.scalar_text().unwrap_or_default();
            let Some(ty) = ParamType::parse(&type_name) else {
                diags.error(
                    type_node.span,
                    format!("Template format error: Unrecognized parameter type: {type_name}"),
                );
                continue;
            };
            let text = |key: &str| def_map.get(key).and_then(Node::scalar_text);
            let number = |key: &str, diags: &mut Diagnostics| -> Option<f64> {
                let node = def_map.get(key)?;
                match node.scalar_text().and_then(|t| t.trim().parse::<f64>().ok()) {
                    Some(v) => Some(v),
                    None => {
                        diags.error(
                            node.span,
                            format!(
                                "Template format error: {key} of parameter {name} must be a number"
                            ),
                        );
                        None
                    }
                }
            };
            let count = |key: &str, diags: &mut Diagnostics| -> Option<u64> {
                let v = number(key, diags)?;
                (v >= 0.0).then_some(v as u64)
            };
            let allowed_values = def_map.get("AllowedValues").map(|n| match &n.kind {
                Kind::Seq(items) => (items.iter().filter_map(Node::scalar_text).collect(), n.span),
                _ => {
                    diags.error(n.span, format!("Template format error: AllowedValues of parameter {name} must be a list"));
                    (Vec::new(), n.span)
                }
            });
            let allowed_pattern = def_map.get("AllowedPattern").and_then(|n| {
                let pattern = n.scalar_text()?;
                if let Err(e) = crate::params::compile_pattern(&pattern) {
                    // AWS uses Java regular expressions; what ours cannot compile is not checked.
                    let first = e.to_string().lines().last().unwrap_or_default().to_string();
                    diags.warning(
                        n.span,
                        format!(
                            "AllowedPattern of parameter {name} is not checked locally: {first}"
                        ),
                    );
                }
                Some((pattern, n.span))
            });
            let no_echo = def_map
                .get("NoEcho")
                .and_then(|n| match &n.kind {
                    Kind::Bool(b) => Some(*b),
                    _ => n.scalar_text().map(|t| t.eq_ignore_ascii_case("true")),
                })
                .unwrap_or(false);
            let parameter = Parameter {
                name: name.clone(),
                span,
                ty,
                type_name,
                type_span: type_node.span,
                default: def_map.get("Default").cloned(),
                allowed_values,
                allowed_pattern,
                min_length: count("MinLength", diags),
                max_length: count("MaxLength", diags),
                min_value: number("MinValue", diags),
                max_value: number("MaxValue", diags),
                no_echo,
                description: text("Description"),
                constraint_description: text("ConstraintDescription"),
            };
            self.parameters.insert(name, parameter);
        }
    }

    fn read_mappings(&mut self, node: &Node, diags: &mut Diagnostics) {
        for (name, _span, map) in section_entries(node, "Mappings", diags) {
            match map.as_map() {
                Some(top) => {
                    for entry in top.iter() {
                        if entry.value.as_map().is_none() {
                            diags.error(
                                entry.value.span,
                                format!("Template format error: Every Mappings attribute of {name} must be a map"),
                            );
                        }
                    }
                }
                None => diags.error(
                    map.span,
                    format!("Template format error: Every Mappings member {name} must be a map"),
                ),
            }
            self.mappings.insert(name, map.clone());
        }
    }

    fn read_rules(&mut self, node: &Node, diags: &mut Diagnostics) {
        for (name, span, def) in section_entries(node, "Rules", diags) {
            let Some(def_map) = def.as_map() else {
                diags.error(def.span, format!("Template format error: Rule {name} must be a map"));
                continue;
            };
            let mut assertions = Vec::new();
            match def_map.get("Assertions") {
                Some(Node { kind: Kind::Seq(items), .. }) => {
                    for item in items {
                        let Some(a) = item.as_map().and_then(|m| m.get("Assert")) else {
                            diags.error(item.span, format!("Template format error: every assertion of rule {name} needs an Assert"));
                            continue;
                        };
                        let description = item
                            .as_map()
                            .and_then(|m| m.get("AssertDescription"))
                            .and_then(Node::scalar_text);
                        assertions.push(Assertion { assert: a.clone(), description });
                    }
                }
                Some(other) => diags.error(
                    other.span,
                    format!("Template format error: Assertions of rule {name} must be a list"),
                ),
                None => diags
                    .error(span, format!("Template format error: Rule {name} has no Assertions")),
            }
            let rule_condition = def_map.get("RuleCondition").cloned();
            self.rules.insert(name.clone(), Rule { name, span, rule_condition, assertions });
        }
    }

    fn read_resources(&mut self, node: &Node, diags: &mut Diagnostics) {
        let entries = section_entries(node, "Resources", diags);
        if entries.is_empty() {
            diags.error(
                node.span,
                "Template format error: At least one Resources member must be defined.",
            );
        }
        for (name, span, def) in entries {
            if name.starts_with("Fn::ForEach") {
                diags.error(span, "Template format error: Fn::ForEach (AWS::LanguageExtensions) is not supported by Cumulo");
                continue;
            }
            if !is_alphanumeric(&name) {
                diags.error(
                    span,
                    format!("Template format error: Resource name {name} is non alphanumeric."),
                );
            }
            let Some(def_map) = def.as_map() else {
                diags.error(def.span, format!("Template format error: [/Resources/{name}] Every Resources object must be a map"));
                continue;
            };
            for entry in def_map.iter() {
                if !RESOURCE_ATTRIBUTES.contains(&entry.key.as_str()) {
                    diags.error(
                        entry.key_span,
                        format!(
                            "Template format error: Invalid template resource property '{}'",
                            entry.key
                        ),
                    );
                }
            }
            let Some(type_node) = def_map.get("Type") else {
                diags.error(span, format!("Template format error: [/Resources/{name}] Every Resources object must contain a Type member."));
                continue;
            };
            let Some(type_name) = type_node.as_str().map(str::to_string) else {
                diags.error(
                    type_node.span,
                    format!(
                        "Template format error: [/Resources/{name}/Type] Type must be a string"
                    ),
                );
                continue;
            };
            let properties = def_map.get("Properties").cloned();
            if let Some(p) = &properties
                && !matches!(p.kind, Kind::Map(_))
                && p.as_intrinsic().is_none()
            {
                diags.error(p.span, format!("Template format error: [/Resources/{name}/Properties] Properties must be a map"));
            }
            let mut depends_on = Vec::new();
            if let Some(d) = def_map.get("DependsOn") {
                match &d.kind {
                    Kind::String(s) => depends_on.push((s.clone(), d.span)),
                    Kind::Seq(items) => {
                        for item in items {
                            match item.as_str() {
                                Some(s) => depends_on.push((s.to_string(), item.span)),
                                None => diags.error(item.span, "Template format error: DependsOn must be a string or a list of strings"),
                            }
                        }
                    }
                    _ => diags.error(
                        d.span,
                        "Template format error: DependsOn must be a string or a list of strings",
                    ),
                }
            }
            let string_attr = |key: &str, diags: &mut Diagnostics| -> Option<(String, Span)> {
                let n = def_map.get(key)?;
                match n.as_str() {
                    Some(s) => Some((s.to_string(), n.span)),
                    None => {
                        diags.error(n.span, format!("Template format error: [/Resources/{name}/{key}] {key} must be a string"));
                        None
                    }
                }
            };
            let condition = string_attr("Condition", diags);
            let deletion_policy = string_attr("DeletionPolicy", diags);
            let update_replace_policy = string_attr("UpdateReplacePolicy", diags);
            for (policy, allowed) in [
                (&deletion_policy, &["Delete", "Retain", "RetainExceptOnCreate", "Snapshot"][..]),
                (&update_replace_policy, &["Delete", "Retain", "Snapshot"][..]),
            ] {
                if let Some((value, span)) = policy
                    && !allowed.contains(&value.as_str())
                {
                    diags.error(*span, format!("Template format error: Unrecognized policy '{value}' for resource {name}; expected one of {}", allowed.join(", ")));
                }
            }
            let resource = Resource {
                name: name.clone(),
                span,
                type_name,
                type_span: type_node.span,
                properties,
                depends_on,
                condition,
                metadata: def_map.get("Metadata").cloned(),
                creation_policy: def_map.get("CreationPolicy").cloned(),
                update_policy: def_map.get("UpdatePolicy").cloned(),
                deletion_policy,
                update_replace_policy,
            };
            self.resources.insert(name, resource);
        }
    }

    fn read_outputs(&mut self, node: &Node, diags: &mut Diagnostics) {
        for (name, span, def) in section_entries(node, "Outputs", diags) {
            if !is_alphanumeric(&name) {
                diags.error(
                    span,
                    format!("Template format error: Output name {name} is non alphanumeric."),
                );
            }
            let Some(def_map) = def.as_map() else {
                diags
                    .error(def.span, format!("Template format error: Output {name} must be a map"));
                continue;
            };
            for entry in def_map.iter() {
                if !["Value", "Description", "Export", "Condition"].contains(&entry.key.as_str()) {
                    diags.error(
                        entry.key_span,
                        format!(
                            "Template format error: Invalid template output property '{}'",
                            entry.key
                        ),
                    );
                }
            }
            let Some(value) = def_map.get("Value") else {
                diags.error(
                    span,
                    "Template format error: Every Outputs member must contain a Value object",
                );
                continue;
            };
            let export_name = match def_map.get("Export") {
                Some(e) => {
                    match e.as_map().and_then(|m| m.get("Name")) {
                        Some(n) => Some(n.clone()),
                        None => {
                            diags.error(e.span, format!("Template format error: Export of output {name} must contain a Name"));
                            None
                        }
                    }
                }
                None => None,
            };
            let condition = def_map.get("Condition").and_then(|c| match c.as_str() {
                Some(s) => Some((s.to_string(), c.span)),
                None => {
                    diags.error(
                        c.span,
                        "Template format error: an output's Condition must be a string",
                    );
                    None
                }
            });
            self.outputs.insert(
                name.clone(),
                Output {
                    name,
                    span,
                    value: value.clone(),
                    description: def_map.get("Description").cloned(),
                    export_name,
                    condition,
                },
            );
        }
    }

    fn check_limits(&self, diags: &mut Diagnostics) {
        let span = self.root.span;
        for (what, n, max) in [
            ("resources", self.resources.len(), 500),
            ("parameters", self.parameters.len(), 200),
            ("outputs", self.outputs.len(), 200),
            ("mappings", self.mappings.len(), 200),
        ] {
            if n > max {
                diags.error(span, format!("Template format error: Number of {what}, {n}, is greater than maximum allowed, {max}"));
            }
        }
    }
}

/// The entries of a section that must be a mapping of names to definitions.
fn section_entries<'a>(
    node: &'a Node,
    section: &str,
    diags: &mut Diagnostics,
) -> Vec<(String, Span, &'a Node)> {
    match node.as_map() {
        Some(map) => map.iter().map(|e| (e.key.clone(), e.key_span, &e.value)).collect(),
        None if matches!(node.kind, Kind::Null) => Vec::new(),
        None => {
            diags.error(node.span, format!("Template format error: {section} must be a map"));
            Vec::new()
        }
    }
}

fn read_transforms(node: &Node, diags: &mut Diagnostics) -> Vec<(String, Span)> {
    let mut out = Vec::new();
    let mut one =
        |n: &Node, diags: &mut Diagnostics| match (&n.kind, n.as_map().and_then(|m| m.get("Name")))
        {
            (Kind::String(s), _) => out.push((s.clone(), n.span)),
            (Kind::Map(_), Some(name)) => {
                out.push((name.scalar_text().unwrap_or_default(), n.span))
            }
            _ => diags.error(
                n.span,
                "Template format error: Transform must be a name or a list of names",
            ),
        };
    match &node.kind {
        Kind::Seq(items) => items.iter().for_each(|n| one(n, diags)),
        _ => one(node, diags),
    }
    for (name, span) in &out {
        if name != SERVERLESS_TRANSFORM && name != LANGUAGE_EXTENSIONS {
            diags.error(*span, format!("Transform {name} is not supported by Cumulo"));
        }
    }
    out
}
