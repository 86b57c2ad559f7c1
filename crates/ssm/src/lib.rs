//! SSM Parameter Store locally. One store per region, read and written by the SSM API
//! (`PutParameter`, `GetParameter`, ...), by `AWS::SSM::Parameter` resources, and read by
//! templates (`AWS::SSM::Parameter::Value<...>` parameters, `{{resolve:ssm:...}}`). The public
//! parameters AWS publishes in every region (latest AMI ids) answer too, read-only.
//!
//! Only the latest version of a parameter is kept; its version number counts every write.

use std::collections::BTreeMap;
use std::sync::Arc;

use aws_ids::Account;
use clock::Clock;
use serde::{Deserialize, Serialize};
use store::Store;

const PARAMETERS: &str = "ssm/parameter";

#[derive(Debug, thiserror::Error)]
pub enum SsmError {
    #[error("the parameter store cannot be read or written: {0}")]
    Store(#[from] store::StoreError),
    #[error("Parameter {0} not found.")]
    NotFound(String),
    #[error("Version {1} of parameter {0} not found.")]
    VersionNotFound(String, String),
    #[error(
        "The parameter already exists. To overwrite this value, set the overwrite option in the request to true."
    )]
    AlreadyExists,
    #[error("{0}")]
    Validation(String),
}

impl SsmError {
    /// SSM's error code.
    pub fn code(&self) -> &'static str {
        match self {
            SsmError::Store(_) => "InternalFailure",
            SsmError::NotFound(_) => "ParameterNotFound",
            SsmError::VersionNotFound(..) => "ParameterVersionNotFound",
            SsmError::AlreadyExists => "ParameterAlreadyExists",
            SsmError::Validation(_) => "ValidationException",
        }
    }

    pub fn is_client_error(&self) -> bool {
        !matches!(self, SsmError::Store(_))
    }
}

/// `String`, `StringList` or `SecureString`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
pub enum ParameterType {
    #[default]
    String,
    StringList,
    SecureString,
}

impl ParameterType {
    pub fn parse(s: &str) -> Option<ParameterType> {
        match s {
            "String" => Some(ParameterType::String),
            "StringList" => Some(ParameterType::StringList),
            "SecureString" => Some(ParameterType::SecureString),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            ParameterType::String => "String",
            ParameterType::StringList => "StringList",
            ParameterType::SecureString => "SecureString",
        }
    }
}

/// One parameter as the store keeps it (the record `AWS::SSM::Parameter` resources wrote
/// before this crate existed reads the same: the newer fields default).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Parameter {
    pub name: String,
    pub value: String,
    pub version: u64,
    /// `String`, `StringList` or `SecureString` (a free string in older records).
    #[serde(default)]
    pub kind: String,
    #[serde(default)]
    pub description: Option<String>,
    /// Milliseconds since the epoch, on the region's clock.
    #[serde(default)]
    pub last_modified_ms: i64,
    #[serde(default = "text")]
    pub data_type: String,
}

fn text() -> String {
    "text".to_string()
}

impl Parameter {
    pub fn kind(&self) -> ParameterType {
        ParameterType::parse(&self.kind).unwrap_or_default()
    }
}

/// What `PutParameter` writes.
#[derive(Clone, Debug, Default)]
pub struct PutInput {
    pub name: String,
    pub value: String,
    pub kind: Option<ParameterType>,
    pub description: Option<String>,
    pub overwrite: bool,
}

/// Which parameters `DescribeParameters` lists.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Filter {
    NameEquals(Vec<String>),
    NameBeginsWith(Vec<String>),
    TypeEquals(Vec<ParameterType>),
    /// Under a path: every depth when recursive, else its direct children.
    Path {
        paths: Vec<String>,
        recursive: bool,
    },
}

/// One page of a listing, and where the next one starts.
#[derive(Clone, Debug, PartialEq)]
pub struct Page {
    pub parameters: Vec<Parameter>,
    pub next_token: Option<String>,
}

pub struct Ssm {
    store: Arc<Store>,
    clock: Clock,
    account: Account,
    public: BTreeMap<String, String>,
}

impl Ssm {
    pub fn new(store: Arc<Store>, clock: Clock, account: Account) -> Ssm {
        Ssm { store, clock, account, public: cfn_template::public_parameters() }
    }

    /// `arn:aws:ssm:REGION:ACCOUNT:parameter/NAME` (public ones are AWS's, account-less).
    pub fn arn(&self, name: &str) -> String {
        let path = name.strip_prefix('/').unwrap_or(name);
        let account =
            if self.public.contains_key(name) { "" } else { self.account.account_id.as_str() };
        format!("arn:aws:ssm:{}:{account}:parameter/{path}", self.account.region)
    }

    /// The parameter `name`, or `name:VERSION` (only the latest version is kept).
    pub fn get(&self, selector: &str) -> Result<Parameter, SsmError> {
        let (name, version) = match selector.rsplit_once(':') {
            Some((n, v))
                if !n.is_empty() && !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()) =>
            {
                (n, Some(v))
            }
            _ => (selector, None),
        };
        let found = self.find(name)?.ok_or_else(|| SsmError::NotFound(selector.to_string()))?;
        match version {
            Some(v) if v.parse::<u64>().ok() != Some(found.version) => {
                Err(SsmError::VersionNotFound(name.to_string(), v.to_string()))
            }
            _ => Ok(found),
        }
    }

    fn find(&self, name: &str) -> Result<Option<Parameter>, SsmError> {
        if let Some(p) = self.store.get::<Parameter>(PARAMETERS, name)? {
            return Ok(Some(p));
        }
        Ok(self.public.get(name).map(|value| public(name, value)))
    }

    /// Writes a parameter; returns its new version.
    pub fn put(&self, input: PutInput) -> Result<Parameter, SsmError> {
        check_name(&input.name)?;
        if self.public.contains_key(&input.name) || reserved(&input.name) {
            return Err(SsmError::Validation(format!(
                "Parameter name: can't be prefixed with \"aws\" or \"ssm\" (case-insensitive). If formed as a path, it can consist of sub-paths divided by slash symbol; each sub-path can be formed as a mix of letters, numbers and the following 3 symbols .-_ ({})",
                input.name
            )));
        }
        if input.value.is_empty() {
            return Err(SsmError::Validation(
                "1 validation error detected: Value '' at 'value' failed to satisfy constraint: Member must have length greater than or equal to 1".into(),
            ));
        }
        let previous = self.store.get::<Parameter>(PARAMETERS, &input.name)?;
        if previous.is_some() && !input.overwrite {
            return Err(SsmError::AlreadyExists);
        }
        let kind = match (input.kind, &previous) {
            (Some(k), _) => k,
            (None, Some(p)) => p.kind(),
            (None, None) => {
                return Err(SsmError::Validation(
                    "A parameter type is required when you create a parameter.".into(),
                ));
            }
        };
        let record = Parameter {
            name: input.name.clone(),
            value: input.value,
            version: previous.as_ref().map_or(1, |p| p.version + 1),
            kind: kind.as_str().to_string(),
            description: input.description.or_else(|| previous.and_then(|p| p.description)),
            last_modified_ms: self.clock.now().as_millisecond(),
            data_type: text(),
        };
        self.store.put(PARAMETERS, &record.name, &record)?;
        Ok(record)
    }

    /// Removes a parameter; `NotFound` when there was none (public ones cannot go).
    pub fn delete(&self, name: &str) -> Result<(), SsmError> {
        if self.store.delete(PARAMETERS, name)? {
            Ok(())
        } else {
            Err(SsmError::NotFound(name.to_string()))
        }
    }

    /// The parameters under `path` (`/a/b`), user and public, in name order, one page of at
    /// most `max` from `next_token` on.
    pub fn by_path(
        &self,
        path: &str,
        recursive: bool,
        max: usize,
        next_token: Option<&str>,
    ) -> Result<Page, SsmError> {
        if !path.starts_with('/') {
            return Err(SsmError::Validation(format!(
                "The parameter doesn't meet the parameter name requirements. The parameter name must begin with a forward slash \"/\". It can't be prefixed with \"aws\" or \"ssm\" (case-insensitive). It must use only letters, numbers, or the following symbols: . (period), - (hyphen), _ (underscore). Special characters are not allowed. All sub-paths, if specified, must use the forward slash symbol \"/\". Valid example: /get/parameters2-/by1./path0_. ({path})"
            )));
        }
        let mut all = self.user(path)?;
        all.extend(
            self.public.iter().filter(|(n, _)| n.starts_with(path)).map(|(n, v)| public(n, v)),
        );
        all.sort_by(|a, b| a.name.cmp(&b.name));
        all.retain(|p| under(&p.name, path, recursive));
        page(all, max, next_token)
    }

    /// The account's parameters (not the public ones) that every filter admits.
    pub fn describe(
        &self,
        filters: &[Filter],
        max: usize,
        next_token: Option<&str>,
    ) -> Result<Page, SsmError> {
        let mut all = self.user("")?;
        all.retain(|p| filters.iter().all(|f| admits(f, p)));
        page(all, max, next_token)
    }

    fn user(&self, prefix: &str) -> Result<Vec<Parameter>, SsmError> {
        Ok(self.store.list::<Parameter>(PARAMETERS, prefix)?.into_iter().map(|(_, p)| p).collect())
    }
}

impl cfn_template::ParameterStore for Ssm {
    fn get(&self, name: &str, version: Option<&str>) -> Option<String> {
        let selector = match version {
            Some(v) => format!("{name}:{v}"),
            None => name.to_string(),
        };
        Ssm::get(self, &selector).ok().map(|p| p.value)
    }
}

fn public(name: &str, value: &str) -> Parameter {
    Parameter {
        name: name.to_string(),
        value: value.to_string(),
        version: 1,
        kind: "String".into(),
        description: None,
        last_modified_ms: 0,
        data_type: if value.starts_with("ami-") { "aws:ec2:image".into() } else { text() },
    }
}

fn reserved(name: &str) -> bool {
    let first = name.trim_start_matches('/').to_ascii_lowercase();
    first.starts_with("aws") || first.starts_with("ssm")
}

fn check_name(name: &str) -> Result<(), SsmError> {
    let ok_chars = name.bytes().all(|b| b.is_ascii_alphanumeric() || b"/._-".contains(&b));
    if name.is_empty() || name.len() > 2048 || !ok_chars || name.contains("//") {
        return Err(SsmError::Validation(format!(
            "Parameter name: can't be prefixed with \"aws\" or \"ssm\" (case-insensitive). If formed as a path, it can consist of sub-paths divided by slash symbol; each sub-path can be formed as a mix of letters, numbers and the following 3 symbols .-_ ({name})"
        )));
    }
    Ok(())
}

/// Whether `name` is under `path`: at any depth, or (not recursive) directly.
fn under(name: &str, path: &str, recursive: bool) -> bool {
    let base = path.trim_end_matches('/');
    let Some(rest) = name.strip_prefix(base).and_then(|r| r.strip_prefix('/')) else {
        return false;
    };
    !rest.is_empty() && (recursive || !rest.contains('/'))
}

fn admits(filter: &Filter, p: &Parameter) -> bool {
    match filter {
        Filter::NameEquals(names) => names.contains(&p.name),
        Filter::NameBeginsWith(prefixes) => prefixes.iter().any(|n| p.name.starts_with(n.as_str())),
        Filter::TypeEquals(kinds) => kinds.contains(&p.kind()),
        Filter::Path { paths, recursive } => {
            paths.iter().any(|path| under(&p.name, path, *recursive))
        }
    }
}

/// The page after `next_token` (the name the previous page stopped before).
fn page(all: Vec<Parameter>, max: usize, next_token: Option<&str>) -> Result<Page, SsmError> {
    let start = match next_token {
        Some(t) => {
            let after = decode_token(t)
                .ok_or_else(|| SsmError::Validation("The specified token is not valid.".into()))?;
            all.iter().position(|p| p.name >= after).unwrap_or(all.len())
        }
        None => 0,
    };
    let max = max.max(1);
    let mut parameters: Vec<Parameter> = all.into_iter().skip(start).collect();
    let next_token = (parameters.len() > max).then(|| encode_token(&parameters[max].name));
    parameters.truncate(max);
    Ok(Page { parameters, next_token })
}

/// Tokens are opaque to callers: the next name, hex-encoded.
fn encode_token(name: &str) -> String {
    name.bytes().map(|b| format!("{b:02x}")).collect()
}

fn decode_token(token: &str) -> Option<String> {
    if !token.len().is_multiple_of(2) {
        return None;
    }
    let bytes: Option<Vec<u8>> = (0..token.len())
        .step_by(2)
        .map(|i| token.get(i..i + 2).and_then(|h| u8::from_str_radix(h, 16).ok()))
        .collect();
    String::from_utf8(bytes?).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ssm() -> Ssm {
        Ssm::new(Arc::new(Store::in_memory().unwrap()), Clock::new(1.0), Account::default())
    }

    fn put(ssm: &Ssm, name: &str, value: &str, overwrite: bool) -> Result<u64, String> {
        ssm.put(PutInput {
            name: name.into(),
            value: value.into(),
            kind: Some(ParameterType::String),
            overwrite,
            ..PutInput::default()
        })
        .map(|p| p.version)
        .map_err(|e| format!("{}: {e}", e.code()))
    }

    #[test]
    fn versions_count_writes_and_overwrite_is_asked_for() {
        let s = ssm();
        assert_eq!(put(&s, "/app/db/host", "a", false), Ok(1));
        assert_eq!(
            put(&s, "/app/db/host", "b", false),
            Err("ParameterAlreadyExists: The parameter already exists. To overwrite this value, set the overwrite option in the request to true.".into())
        );
        assert_eq!(put(&s, "/app/db/host", "c", true), Ok(2));
        assert_eq!(s.get("/app/db/host").unwrap().value, "c");
        assert_eq!(s.get("/app/db/host:2").unwrap().value, "c");
        assert_eq!(s.get("/app/db/host:1").unwrap_err().code(), "ParameterVersionNotFound");
        assert_eq!(s.get("/nope").unwrap_err().code(), "ParameterNotFound");
        assert!(
            put(&s, "/aws/service/x", "v", true).unwrap_err().starts_with("ValidationException")
        );
        assert!(put(&s, "bad name", "v", true).unwrap_err().starts_with("ValidationException"));
        s.delete("/app/db/host").unwrap();
        assert_eq!(s.delete("/app/db/host").unwrap_err().code(), "ParameterNotFound");
    }

    #[test]
    fn by_path_one_level_or_recursive_in_pages() {
        let s = ssm();
        for n in ["/app/a", "/app/b", "/app/x/c", "/app/x/y/d", "/application/e", "/other"] {
            put(&s, n, "v", false).unwrap();
        }
        let names = |p: &Page| p.parameters.iter().map(|p| p.name.clone()).collect::<Vec<_>>();
        let cases = [
            (s.by_path("/app", false, 10, None).unwrap(), vec!["/app/a", "/app/b"]),
            (
                s.by_path("/app/", true, 10, None).unwrap(),
                vec!["/app/a", "/app/b", "/app/x/c", "/app/x/y/d"],
            ),
        ];
        for (page, expected) in cases {
            assert_eq!(names(&page), expected);
        }
        let first = s.by_path("/app", true, 3, None).unwrap();
        assert_eq!(names(&first), ["/app/a", "/app/b", "/app/x/c"]);
        let second = s.by_path("/app", true, 3, first.next_token.as_deref()).unwrap();
        assert_eq!((names(&second), second.next_token), (vec!["/app/x/y/d".to_string()], None));
        let public = s.by_path("/aws/service/ami-amazon-linux-latest", false, 100, None).unwrap();
        assert_eq!(public.parameters.len(), 13);
        assert!(s.by_path("app", true, 10, None).is_err());
        assert!(s.by_path("/app", true, 10, Some("zz")).is_err());
    }

    #[test]
    fn describe_filters_the_accounts_parameters() {
        let s = ssm();
        put(&s, "/app/a", "v", false).unwrap();
        s.put(PutInput {
            name: "/app/secret".into(),
            value: "pw".into(),
            kind: Some(ParameterType::SecureString),
            ..PutInput::default()
        })
        .unwrap();
        let names = |f: &[Filter]| {
            s.describe(f, 50, None)
                .unwrap()
                .parameters
                .into_iter()
                .map(|p| p.name)
                .collect::<Vec<_>>()
        };
        assert_eq!(names(&[]), ["/app/a", "/app/secret"]);
        assert_eq!(
            names(&[Filter::TypeEquals(vec![ParameterType::SecureString])]),
            ["/app/secret"]
        );
        assert_eq!(names(&[Filter::NameBeginsWith(vec!["/app/s".into()])]), ["/app/secret"]);
        assert_eq!(names(&[Filter::NameEquals(vec!["/app/a".into()])]), ["/app/a"]);
    }

    #[test]
    fn public_parameters_answer_and_templates_read_the_same_store() {
        let s = ssm();
        let ami =
            s.get("/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-x86_64").unwrap();
        assert!(ami.value.starts_with("ami-"));
        assert_eq!(ami.data_type, "aws:ec2:image");
        assert_eq!(
            s.arn(&ami.name),
            "arn:aws:ssm:us-east-1::parameter/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-x86_64"
        );
        put(&s, "/app/a", "v1", false).unwrap();
        let store: &dyn cfn_template::ParameterStore = &s;
        assert_eq!(store.get("/app/a", None).as_deref(), Some("v1"));
        assert_eq!(store.get("/app/a", Some("1")).as_deref(), Some("v1"));
        assert_eq!(store.get("/app/a", Some("2")), None);
    }
}
