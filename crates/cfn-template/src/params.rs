//! Parameter types, values and constraints.

use fancy_regex::Regex;
use indexmap::IndexMap;

use crate::diag::Diagnostics;
use crate::span::Span;
use crate::ssm::ParameterStore;
use crate::template::{Parameter, Template};
use crate::value::Value;

/// AWS-specific parameter types (validated against the account on AWS).
pub const AWS_TYPES: &[&str] = &[
    "AWS::EC2::AvailabilityZone::Name",
    "AWS::EC2::Image::Id",
    "AWS::EC2::Instance::Id",
    "AWS::EC2::KeyPair::KeyName",
    "AWS::EC2::SecurityGroup::GroupName",
    "AWS::EC2::SecurityGroup::Id",
    "AWS::EC2::Subnet::Id",
    "AWS::EC2::Volume::Id",
    "AWS::EC2::VPC::Id",
    "AWS::Route53::HostedZone::Id",
];

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ParamType {
    String,
    Number,
    NumberList,
    CommaDelimitedList,
    Aws(&'static str),
    AwsList(&'static str),
    SsmName,
    /// `AWS::SSM::Parameter::Value<T>`: the value given is a parameter name, resolved from the
    /// parameter store into a value of type T.
    Ssm(Box<ParamType>),
}

impl ParamType {
    pub fn parse(name: &str) -> Option<ParamType> {
        let aws = |n: &str| AWS_TYPES.iter().find(|t| **t == n).copied();
        Some(match name {
            "String" => ParamType::String,
            "Number" => ParamType::Number,
            "List<Number>" => ParamType::NumberList,
            "CommaDelimitedList" => ParamType::CommaDelimitedList,
            "AWS::SSM::Parameter::Name" => ParamType::SsmName,
            _ => {
                if let Some(inner) = name
                    .strip_prefix("AWS::SSM::Parameter::Value<")
                    .and_then(|s| s.strip_suffix('>'))
                {
                    let inner = match inner {
                        "String" => ParamType::String,
                        "List<String>" | "CommaDelimitedList" => ParamType::CommaDelimitedList,
                        other => match ParamType::parse(other)? {
                            t @ (ParamType::Aws(_) | ParamType::AwsList(_)) => t,
                            _ => return None,
                        },
                    };
                    ParamType::Ssm(Box::new(inner))
                } else if let Some(inner) =
                    name.strip_prefix("List<").and_then(|s| s.strip_suffix('>'))
                {
                    ParamType::AwsList(aws(inner)?)
                } else {
                    ParamType::Aws(aws(name)?)
                }
            }
        })
    }

    /// Whether values of this type are lists (a `Ref` gives a list).
    pub fn is_list(&self) -> bool {
        match self {
            ParamType::NumberList | ParamType::CommaDelimitedList | ParamType::AwsList(_) => true,
            ParamType::Ssm(inner) => inner.is_list(),
            _ => false,
        }
    }

    fn is_number(&self) -> bool {
        matches!(self, ParamType::Number | ParamType::NumberList)
    }

    /// Turns the text of a value into the value `Ref` gives (lists split on commas).
    pub fn to_value(&self, text: &str) -> Value {
        if self.is_list() {
            if text.is_empty() {
                return Value::List(Vec::new());
            }
            Value::List(text.split(',').map(|s| Value::String(s.trim().to_string())).collect())
        } else {
            Value::String(text.to_string())
        }
    }
}

/// Compiles an `AllowedPattern`, anchored at both ends as CloudFormation matches whole values.
pub fn compile_pattern(pattern: &str) -> Result<Regex, fancy_regex::Error> {
    fancy_regex::RegexBuilder::new(&format!("^(?:{pattern})$"))
        .backtrack_limit(100_000)
        .delegate_size_limit(1 << 20)
        .build()
}

/// Whether `re` matches all of `text`; a match that gives up (backtracking limit) counts as one.
pub fn full_match(re: &Regex, text: &str) -> bool {
    re.is_match(text).unwrap_or(true)
}

/// The values of a template's parameters.
#[derive(Clone, Debug, Default)]
pub struct ParameterValues {
    /// What `Ref` gives for each parameter (`Unknown` when it has no value yet).
    pub values: IndexMap<String, Value>,
    /// The value text the user gave or the default, before SSM resolution (what DescribeStacks
    /// shows), per parameter that has one.
    pub given: IndexMap<String, String>,
    /// For SSM-typed parameters, the value resolved from the parameter store.
    pub resolved: IndexMap<String, String>,
}

/// How strictly parameters are resolved.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// As ValidateTemplate: parameters without a given value stay unknown; defaults are not used.
    Validate,
    /// As CreateStack: every parameter needs a value (given or default), all are checked.
    Resolve,
}

/// Resolves parameter values from what the user gave, defaults and the parameter store, and
/// checks them against their constraints.
pub fn resolve_parameters(
    template: &Template,
    given: &IndexMap<String, String>,
    mode: Mode,
    store: &dyn ParameterStore,
    diags: &mut Diagnostics,
) -> ParameterValues {
    let mut out = ParameterValues::default();
    let unknown: Vec<&str> = given
        .keys()
        .filter(|k| !template.parameters.contains_key(*k))
        .map(String::as_str)
        .collect();
    if !unknown.is_empty() {
        diags.error(
            Span::default(),
            format!("Parameters: [{}] do not exist in the template", unknown.join(", ")),
        );
    }
    let mut missing = Vec::new();
    for (name, param) in &template.parameters {
        let text = match given.get(name) {
            Some(v) => Some(v.clone()),
            None if mode == Mode::Resolve => param.default.as_ref().map(default_text),
            None => None,
        };
        let Some(text) = text else {
            if mode == Mode::Resolve {
                missing.push(name.as_str());
            }
            out.values.insert(name.clone(), Value::Unknown);
            continue;
        };
        let span = if given.contains_key(name) {
            param.span
        } else {
            param.default.as_ref().map_or(param.span, |d| d.span)
        };
        for message in check_value(param, &text) {
            diags.error(span, message);
        }
        out.given.insert(name.clone(), text.clone());
        let value = match &param.ty {
            ParamType::Ssm(inner) => match store.get(&text, None) {
                Some(resolved) => {
                    out.resolved.insert(name.clone(), resolved.clone());
                    inner.to_value(&resolved)
                }
                None => {
                    if mode == Mode::Resolve {
                        diags.error(span, format!("Unable to fetch parameters [{text}] from parameter store for this account."));
                    }
                    Value::Unknown
                }
            },
            ty => ty.to_value(&text),
        };
        out.values.insert(name.clone(), value);
    }
    if !missing.is_empty() {
        diags.error(
            Span::default(),
            format!("Parameters: [{}] must have values", missing.join(", ")),
        );
    }
    out
}

/// A `Default` as text: lists (which some templates write for list types) are joined by commas.
fn default_text(node: &crate::node::Node) -> String {
    match node.as_seq() {
        Some(items) => {
            items.iter().filter_map(crate::node::Node::scalar_text).collect::<Vec<_>>().join(",")
        }
        None => node.scalar_text().unwrap_or_default(),
    }
}

/// Every constraint `text` breaks, as AWS words it.
pub fn check_value(param: &Parameter, text: &str) -> Vec<String> {
    let name = &param.name;
    let mut problems = Vec::new();
    let constraint = |default: String| match &param.constraint_description {
        Some(d) => format!("Parameter '{name}' failed to satisfy constraint: {d}"),
        None => default,
    };
    let items: Vec<&str> = if param.ty.is_list() {
        if text.is_empty() { Vec::new() } else { text.split(',').map(str::trim).collect() }
    } else {
        vec![text]
    };
    if param.ty.is_number() {
        for item in &items {
            match item.trim().parse::<f64>() {
                Ok(n) if n.is_finite() => {
                    if let Some(min) = param.min_value
                        && n < min
                    {
                        problems.push(constraint(format!(
                            "Parameter '{name}' must be a number not less than {}",
                            fmt_num(min)
                        )));
                    }
                    if let Some(max) = param.max_value
                        && n > max
                    {
                        problems.push(constraint(format!(
                            "Parameter '{name}' must be a number not greater than {}",
                            fmt_num(max)
                        )));
                    }
                }
                _ => problems.push(format!("Parameter '{name}' must be a number")),
            }
        }
    } else if matches!(param.ty, ParamType::String | ParamType::CommaDelimitedList)
        || param.ty == ParamType::SsmName
        || matches!(param.ty, ParamType::Aws(_) | ParamType::AwsList(_) | ParamType::Ssm(_))
    {
        let length = text.chars().count() as u64;
        if let Some(min) = param.min_length
            && length < min
        {
            problems.push(constraint(format!(
                "Parameter '{name}' must contain at least {min} characters"
            )));
        }
        if let Some(max) = param.max_length
            && length > max
        {
            problems.push(constraint(format!(
                "Parameter '{name}' must contain at most {max} characters"
            )));
        }
    }
    if let Some((allowed, _)) = &param.allowed_values
        && (items.iter().any(|i| !allowed.iter().any(|a| a == i))
            || (items.is_empty() && !allowed.iter().any(String::is_empty)))
    {
        problems.push(format!("Parameter '{name}' must be one of AllowedValues"));
    }
    if let Some((pattern, _)) = &param.allowed_pattern
        && let Ok(re) = compile_pattern(pattern)
    {
        let subjects: Vec<&str> = if param.ty.is_list() { items.clone() } else { vec![text] };
        if subjects.iter().any(|s| !full_match(&re, s)) {
            problems.push(match &param.constraint_description {
                Some(d) => format!("Malformed input-Parameter {name} {d}"),
                None => {
                    format!("Malformed input-Parameter {name} must match pattern {pattern}")
                }
            });
        }
    }
    problems
}

fn fmt_num(n: f64) -> String {
    if n.fract() == 0.0 && n.abs() < 1e15 { format!("{}", n as i64) } else { n.to_string() }
}
