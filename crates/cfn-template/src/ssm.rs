//! The local parameter store seen by templates: SSM parameter types and `{{resolve:ssm:...}}`.

use std::collections::BTreeMap;

/// Where SSM parameter values come from. The region implements it over its state store; the
/// engine only reads.
pub trait ParameterStore {
    /// The value of parameter `name` (latest version when `version` is `None`).
    fn get(&self, name: &str, version: Option<&str>) -> Option<String>;
}

impl ParameterStore for BTreeMap<String, String> {
    fn get(&self, name: &str, _version: Option<&str>) -> Option<String> {
        BTreeMap::get(self, name).cloned()
    }
}

/// The public parameters AWS publishes in every region that templates commonly read (latest AMI
/// ids and the like), with stable local values. A region's store starts with these.
pub fn public_parameters() -> BTreeMap<String, String> {
    const AMI_PARAMETERS: &[&str] = &[
        "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-6.1-arm64",
        "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-6.1-x86_64",
        "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-arm64",
        "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-x86_64",
        "/aws/service/ami-amazon-linux-latest/al2023-ami-minimal-kernel-default-arm64",
        "/aws/service/ami-amazon-linux-latest/al2023-ami-minimal-kernel-default-x86_64",
        "/aws/service/ami-amazon-linux-latest/amzn-ami-hvm-x86_64-ebs",
        "/aws/service/ami-amazon-linux-latest/amzn-ami-hvm-x86_64-gp2",
        "/aws/service/ami-amazon-linux-latest/amzn2-ami-hvm-arm64-gp2",
        "/aws/service/ami-amazon-linux-latest/amzn2-ami-hvm-x86_64-ebs",
        "/aws/service/ami-amazon-linux-latest/amzn2-ami-hvm-x86_64-gp2",
        "/aws/service/ami-amazon-linux-latest/amzn2-ami-kernel-5.10-hvm-arm64-gp2",
        "/aws/service/ami-amazon-linux-latest/amzn2-ami-kernel-5.10-hvm-x86_64-gp2",
        "/aws/service/ami-windows-latest/Windows_Server-2019-English-Full-Base",
        "/aws/service/ami-windows-latest/Windows_Server-2022-English-Full-Base",
        "/aws/service/canonical/ubuntu/server/20.04/stable/current/amd64/hvm/ebs-gp2/ami-id",
        "/aws/service/canonical/ubuntu/server/22.04/stable/current/amd64/hvm/ebs-gp2/ami-id",
        "/aws/service/canonical/ubuntu/server/24.04/stable/current/amd64/hvm/ebs-gp3/ami-id",
        "/aws/service/debian/release/12/latest/amd64",
        "/aws/service/ecs/optimized-ami/amazon-linux-2/recommended/image_id",
        "/aws/service/ecs/optimized-ami/amazon-linux-2023/recommended/image_id",
        "/aws/service/bottlerocket/aws-ecs-1/x86_64/latest/image_id",
    ];
    AMI_PARAMETERS.iter().map(|name| (name.to_string(), format!("ami-{}", hex17(name)))).collect()
}

/// 17 lowercase hex digits derived from `seed` (FNV-1a), the shape of modern EC2 ids.
pub fn hex17(seed: &str) -> String {
    let mut hash: u64 = 0xcbf29ce484222325;
    for b in seed.bytes() {
        hash ^= u64::from(b);
        hash = hash.wrapping_mul(0x100000001b3);
    }
    let mut second = hash.rotate_left(17) ^ 0x9e3779b97f4a7c15;
    second = second.wrapping_mul(0x100000001b3);
    format!("{:016x}{:x}", hash, second & 0xf)
}

/// A `{{resolve:service:reference}}` dynamic reference found in a string.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DynamicRef {
    pub service: String,
    pub name: String,
    pub version: Option<String>,
    /// Byte range of the whole `{{resolve:...}}` in the string.
    pub range: std::ops::Range<usize>,
}

/// Finds every dynamic reference in `s`.
pub fn dynamic_refs(s: &str) -> Vec<DynamicRef> {
    let mut out = Vec::new();
    let mut from = 0;
    while let Some(start) = s[from..].find("{{resolve:").map(|i| i + from) {
        let Some(end) = s[start..].find("}}").map(|i| i + start + 2) else { break };
        let inner = &s[start + "{{resolve:".len()..end - 2];
        let (service, rest) = inner.split_once(':').unwrap_or((inner, ""));
        let (name, version) = match service {
            "ssm" | "ssm-secure" => match rest.rsplit_once(':') {
                Some((n, v)) if !v.is_empty() && v.chars().all(|c| c.is_ascii_digit()) => {
                    (n.to_string(), Some(v.to_string()))
                }
                _ => (rest.to_string(), None),
            },
            _ => (rest.to_string(), None),
        };
        out.push(DynamicRef { service: service.to_string(), name, version, range: start..end });
        from = end;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ami_ids_have_aws_shape() {
        let params = public_parameters();
        let id = &params["/aws/service/ami-amazon-linux-latest/amzn2-ami-hvm-x86_64-gp2"];
        assert_eq!(id.len(), 4 + 17);
        assert!(id.starts_with("ami-"));
        assert!(id[4..].chars().all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()));
    }

    #[test]
    fn finds_dynamic_references() {
        let refs =
            dynamic_refs("a{{resolve:ssm:/x/y:3}}b{{resolve:secretsmanager:s:SecretString:pw}}");
        assert_eq!(refs.len(), 2);
        assert_eq!((refs[0].service.as_str(), refs[0].name.as_str()), ("ssm", "/x/y"));
        assert_eq!(refs[0].version.as_deref(), Some("3"));
        assert_eq!(refs[1].service, "secretsmanager");
    }
}
