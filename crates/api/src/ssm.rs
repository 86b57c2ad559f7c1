//! SSM Parameter Store over awsJson 1.1 (`X-Amz-Target: AmazonSSM.<Operation>`): the
//! region's parameter store (the `ssm` crate), the same one templates read.

use std::sync::Arc;

use ::ssm::{Filter, Page, Parameter, ParameterType, PutInput, Ssm, SsmError};
use base64::Engine as _;

use crate::error::ApiError;
use crate::protocol::Value;
use crate::registry::{Context, JsonVersion, RpcService, Wire};

const OPERATIONS: &[&str] = &[
    "GetParameter",
    "GetParameters",
    "GetParametersByPath",
    "PutParameter",
    "DeleteParameter",
    "DeleteParameters",
    "DescribeParameters",
];

/// Every operation it answers (COVERAGE.md).
pub fn actions() -> &'static [&'static str] {
    OPERATIONS
}

/// SSM in the endpoint's registry.
pub struct Api {
    ssm: Arc<Ssm>,
    wire: Wire,
}

impl Api {
    pub fn new(ssm: Arc<Ssm>) -> Api {
        let wire = Wire {
            signing_name: "ssm",
            json: Some(("AmazonSSM", JsonVersion::V1_1)),
            ..Wire::default()
        };
        Api { ssm, wire }
    }
}

#[async_trait::async_trait]
impl RpcService for Api {
    fn wire(&self) -> &Wire {
        &self.wire
    }

    fn handles(&self, operation: &str) -> bool {
        OPERATIONS.contains(&operation)
    }

    async fn call(
        &self,
        operation: &str,
        input: &Value,
        _: &Context<'_>,
    ) -> Result<Value, ApiError> {
        call(&self.ssm, operation, input)
    }
}

impl From<SsmError> for ApiError {
    fn from(e: SsmError) -> ApiError {
        let status = if e.is_client_error() { 400 } else { 500 };
        ApiError::new(e.code(), e.to_string(), status)
    }
}

fn required<'a>(input: &'a Value, key: &str) -> Result<&'a str, ApiError> {
    input.str(key).ok_or_else(|| {
        ApiError::new(
            "ValidationException",
            format!(
                "1 validation error detected: Value null at '{}' failed to satisfy constraint: Member must not be null",
                lower_first(key)
            ),
            400,
        )
    })
}

fn lower_first(s: &str) -> String {
    let mut c = s.chars();
    c.next().map_or_else(String::new, |f| f.to_lowercase().collect::<String>() + c.as_str())
}

fn flag(input: &Value, key: &str) -> bool {
    input.get(key).and_then(Value::as_bool).unwrap_or(false)
}

/// `MaxResults`, between 1 and `max` (default `max`).
fn max_results(input: &Value, max: i64) -> Result<usize, ApiError> {
    match input.get("MaxResults").and_then(Value::as_i64) {
        None => Ok(max as usize),
        Some(n) if (1..=max).contains(&n) => Ok(n as usize),
        Some(n) => Err(ApiError::new(
            "ValidationException",
            format!(
                "1 validation error detected: Value '{n}' at 'maxResults' failed to satisfy constraint: Member must have value {}",
                if n < 1 {
                    "greater than or equal to 1".to_string()
                } else {
                    format!("less than or equal to {max}")
                }
            ),
            400,
        )),
    }
}

pub fn call(ssm: &Ssm, operation: &str, input: &Value) -> Result<Value, ApiError> {
    let mut out = Value::map();
    match operation {
        "GetParameter" => {
            let name = required(input, "Name")?;
            let p = ssm.get(name)?;
            out.set("Parameter", parameter(ssm, &p, name, flag(input, "WithDecryption")));
        }
        "GetParameters" => {
            let names = input.strings("Names");
            if names.is_empty() {
                required(input, "Names")?;
            }
            let decrypt = flag(input, "WithDecryption");
            let mut found = Vec::new();
            let mut invalid = Vec::new();
            for name in names {
                match ssm.get(&name) {
                    Ok(p) => found.push(parameter(ssm, &p, &name, decrypt)),
                    Err(SsmError::NotFound(_) | SsmError::VersionNotFound(..)) => {
                        invalid.push(Value::from(name))
                    }
                    Err(e) => return Err(e.into()),
                }
            }
            out.set("Parameters", Value::List(found))
                .set("InvalidParameters", Value::List(invalid));
        }
        "GetParametersByPath" => {
            let path = required(input, "Path")?;
            let page = ssm.by_path(
                path,
                flag(input, "Recursive"),
                max_results(input, 10)?,
                input.str("NextToken"),
            )?;
            let decrypt = flag(input, "WithDecryption");
            let list =
                page.parameters.iter().map(|p| parameter(ssm, p, &p.name, decrypt)).collect();
            out.set("Parameters", Value::List(list))
                .set("NextToken", page.next_token.map(Value::from));
        }
        "PutParameter" => {
            let kind = match input.str("Type") {
                None => None,
                Some(t) => Some(ParameterType::parse(t).ok_or_else(|| {
                    ApiError::new(
                        "ValidationException",
                        format!("1 validation error detected: Value '{t}' at 'type' failed to satisfy constraint: Member must satisfy enum value set: [SecureString, StringList, String]"),
                        400,
                    )
                })?),
            };
            let p = ssm.put(PutInput {
                name: required(input, "Name")?.to_string(),
                value: required(input, "Value")?.to_string(),
                kind,
                description: input.str("Description").map(str::to_string),
                overwrite: flag(input, "Overwrite"),
            })?;
            out.set("Version", Value::Int(p.version as i64)).set("Tier", Value::from("Standard"));
        }
        "DeleteParameter" => {
            ssm.delete(required(input, "Name")?)?;
        }
        "DeleteParameters" => {
            let names = input.strings("Names");
            if names.is_empty() {
                required(input, "Names")?;
            }
            let mut deleted = Vec::new();
            let mut invalid = Vec::new();
            for name in names {
                match ssm.delete(&name) {
                    Ok(()) => deleted.push(Value::from(name)),
                    Err(SsmError::NotFound(_)) => invalid.push(Value::from(name)),
                    Err(e) => return Err(e.into()),
                }
            }
            out.set("DeletedParameters", Value::List(deleted))
                .set("InvalidParameters", Value::List(invalid));
        }
        "DescribeParameters" => {
            let filters = filters(input)?;
            let Page { parameters, next_token } =
                ssm.describe(&filters, max_results(input, 50)?, input.str("NextToken"))?;
            let list = parameters.iter().map(|p| metadata(ssm, p)).collect();
            out.set("Parameters", Value::List(list)).set("NextToken", next_token.map(Value::from));
        }
        other => {
            return Err(ApiError::new(
                "UnknownOperationException",
                format!("The operation {other} is not known to ssm."),
                400,
            ));
        }
    }
    Ok(out)
}

/// `Parameter`: a SecureString's value is its ciphertext unless `WithDecryption` (locally,
/// the value base64-encoded: not secret, but not the plain text either).
fn parameter(ssm: &Ssm, p: &Parameter, selector: &str, decrypt: bool) -> Value {
    let value = if p.kind() == ParameterType::SecureString && !decrypt {
        base64::engine::general_purpose::STANDARD.encode(&p.value)
    } else {
        p.value.clone()
    };
    let mut v = Value::map();
    v.set("Name", Value::from(p.name.as_str()))
        .set("Type", Value::from(p.kind().as_str()))
        .set("Value", Value::from(value))
        .set("Version", Value::Int(p.version as i64))
        .set(
            "Selector",
            selector.strip_prefix(p.name.as_str()).filter(|s| !s.is_empty()).map(Value::from),
        )
        .set("LastModifiedDate", Value::Timestamp(p.last_modified_ms as f64 / 1000.0))
        .set("ARN", Value::from(ssm.arn(&p.name)))
        .set("DataType", Value::from(p.data_type.as_str()));
    v
}

fn metadata(ssm: &Ssm, p: &Parameter) -> Value {
    let mut v = Value::map();
    v.set("Name", Value::from(p.name.as_str()))
        .set("ARN", Value::from(ssm.arn(&p.name)))
        .set("Type", Value::from(p.kind().as_str()))
        .set(
            "KeyId",
            (p.kind() == ParameterType::SecureString).then(|| Value::from("alias/aws/ssm")),
        )
        .set("LastModifiedDate", Value::Timestamp(p.last_modified_ms as f64 / 1000.0))
        .set("Description", p.description.as_deref().map(Value::from))
        .set("Version", Value::Int(p.version as i64))
        .set("Tier", Value::from("Standard"))
        .set("Policies", Value::List(Vec::new()))
        .set("DataType", Value::from(p.data_type.as_str()));
    v
}

/// `ParameterFilters` (Key Name/Type/Path with Option Equals/BeginsWith/Recursive/OneLevel)
/// and the older `Filters` (Key Name/Type, Values).
fn filters(input: &Value) -> Result<Vec<Filter>, ApiError> {
    let invalid = |what: String| ApiError::new("InvalidFilterKey", what, 400);
    let mut out = Vec::new();
    for f in input.list("ParameterFilters") {
        let key = f.str("Key").unwrap_or("");
        let option = f.str("Option");
        let values = f.strings("Values");
        out.push(match (key, option) {
            ("Name", None | Some("Equals")) => Filter::NameEquals(values),
            ("Name", Some("BeginsWith")) => Filter::NameBeginsWith(values),
            ("Type", None | Some("Equals")) => Filter::TypeEquals(types(&values)?),
            ("Path", None | Some("OneLevel")) => Filter::Path { paths: values, recursive: false },
            ("Path", Some("Recursive")) => Filter::Path { paths: values, recursive: true },
            (key, option) => {
                return Err(ApiError::new(
                    "InvalidFilterOption",
                    format!(
                        "The filter option {:?} is not valid for the key {key}.",
                        option.unwrap_or("")
                    ),
                    400,
                ));
            }
        });
    }
    for f in input.list("Filters") {
        let values = f.strings("Values");
        out.push(match f.str("Key").unwrap_or("") {
            "Name" => Filter::NameBeginsWith(values),
            "Type" => Filter::TypeEquals(types(&values)?),
            other => return Err(invalid(format!("The filter key {other} is not valid."))),
        });
    }
    Ok(out)
}

fn types(values: &[String]) -> Result<Vec<ParameterType>, ApiError> {
    values
        .iter()
        .map(|v| {
            ParameterType::parse(v).ok_or_else(|| {
                ApiError::new(
                    "InvalidFilterValue",
                    format!("The filter value {v} is not valid."),
                    400,
                )
            })
        })
        .collect()
}
