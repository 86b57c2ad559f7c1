//! EC2 records: instances, launch templates and configurations, key pairs, IAM roles and
//! instance profiles.

use std::collections::BTreeMap;
use std::path::PathBuf;

use indexmap::IndexMap;
use serde::{Deserialize, Serialize};
use serde_json::Value as Json;

pub(crate) const INSTANCES: &str = "ec2/instance";
pub const LAUNCH_TEMPLATES: &str = "ec2/launch-template";
pub(crate) const LAUNCH_CONFIGURATIONS: &str = "autoscaling/launch-configuration";
pub(crate) const KEY_PAIRS: &str = "ec2/key-pair";
pub(crate) const ROLES: &str = "iam/role";
pub(crate) const INSTANCE_PROFILES: &str = "iam/instance-profile";
pub(crate) const IMAGES: &str = "ec2/image";

/// An image made from an instance (CreateImage): its launch data and a copy of its files,
/// which instances launched from it start from.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ImageRecord {
    pub id: String,
    pub name: String,
    #[serde(default)]
    pub description: Option<String>,
    pub source_instance: String,
    /// The source instance's user data (base64), run by instances launched with none.
    #[serde(default)]
    pub user_data: Option<String>,
    /// The ports the source instance's app answered on.
    #[serde(default)]
    pub ports: Vec<u16>,
    /// The copy of the instance's files.
    pub files: PathBuf,
    pub created: String,
    #[serde(default)]
    pub tags: IndexMap<String, String>,
}

/// EC2 instance states and their codes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum InstanceState {
    Pending,
    Running,
    ShuttingDown,
    Terminated,
    Stopping,
    Stopped,
}

impl InstanceState {
    pub fn code(self) -> u16 {
        match self {
            InstanceState::Pending => 0,
            InstanceState::Running => 16,
            InstanceState::ShuttingDown => 32,
            InstanceState::Terminated => 48,
            InstanceState::Stopping => 64,
            InstanceState::Stopped => 80,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            InstanceState::Pending => "pending",
            InstanceState::Running => "running",
            InstanceState::ShuttingDown => "shutting-down",
            InstanceState::Terminated => "terminated",
            InstanceState::Stopping => "stopping",
            InstanceState::Stopped => "stopped",
        }
    }
}

/// Where an instance's configuration came from (what Auto Scaling's termination policies and
/// instance refresh compare).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", tag = "kind")]
pub enum LaunchSource {
    Template { id: String, name: String, version: u32 },
    Configuration { name: String },
    Properties,
}

/// A host port standing for a port the instance's app is expected to listen on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortMap {
    /// The port the template speaks of (target group port, security group rule).
    pub expected: u16,
    /// The loopback port the app really listens on (`PORT_<expected>`).
    pub host: u16,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InstanceRecord {
    pub id: String,
    pub state: InstanceState,
    #[serde(default)]
    pub state_reason: Option<String>,
    pub subnet_id: String,
    pub vpc_id: String,
    pub zone: String,
    pub private_ip: String,
    #[serde(default)]
    pub public_ip: Option<String>,
    pub image_id: String,
    pub instance_type: String,
    #[serde(default)]
    pub key_name: Option<String>,
    #[serde(default)]
    pub security_groups: Vec<String>,
    #[serde(default)]
    pub role: Option<String>,
    #[serde(default)]
    pub instance_profile_arn: Option<String>,
    /// The user data as given (base64).
    #[serde(default)]
    pub user_data: Option<String>,
    pub launch: LaunchSource,
    pub ports: Vec<PortMap>,
    pub launch_time: String,
    #[serde(default)]
    pub tags: IndexMap<String, String>,
    pub dir: PathBuf,
    /// `required` makes IMDS refuse tokenless requests (IMDSv2 only).
    #[serde(default = "optional")]
    pub http_tokens: String,
    /// What a shutdown from inside does: `stop` (default) or `terminate`.
    #[serde(default = "stop")]
    pub shutdown_behavior: String,
    /// The overrides applied (by launch template, configuration or instance logical id).
    #[serde(default)]
    pub command: Option<Vec<String>>,
    #[serde(default)]
    pub extra_env: BTreeMap<String, String>,
    /// The Auto Scaling group that launched it, if any.
    #[serde(default)]
    pub group: Option<String>,
}

fn optional() -> String {
    "optional".into()
}

fn stop() -> String {
    "stop".into()
}

impl InstanceRecord {
    /// The loopback port that stands for `expected` (target groups route there).
    pub fn host_port(&self, expected: u16) -> Option<u16> {
        self.ports.iter().find(|p| p.expected == expected).map(|p| p.host)
    }

    pub fn primary_port(&self) -> Option<u16> {
        self.ports.first().map(|p| p.host)
    }

    pub fn private_dns_name(&self) -> String {
        format!("ip-{}.ec2.internal", self.private_ip.replace('.', "-"))
    }

    pub fn public_dns_name(&self) -> Option<String> {
        self.public_ip
            .as_ref()
            .map(|ip| format!("ec2-{}.compute-1.amazonaws.com", ip.replace('.', "-")))
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LaunchTemplateRecord {
    pub id: String,
    pub name: String,
    /// When each version was made, and its description.
    #[serde(default)]
    pub created: BTreeMap<u32, (String, Option<String>)>,
    #[serde(default)]
    pub tags: IndexMap<String, String>,
    /// LaunchTemplateData by version number.
    pub versions: BTreeMap<u32, Json>,
    pub default_version: u32,
    /// The template's logical id in its stack (what overrides files name).
    #[serde(default)]
    pub logical_id: Option<String>,
}

impl LaunchTemplateRecord {
    pub fn latest(&self) -> u32 {
        self.versions.keys().last().copied().unwrap_or(1)
    }

    /// A version as Auto Scaling and RunInstances name them: a number, `$Latest` or `$Default`.
    pub fn resolve_version(&self, version: Option<&str>) -> Option<u32> {
        match version.map(str::trim) {
            None | Some("") | Some("$Default") => Some(self.default_version),
            Some("$Latest") => Some(self.latest()),
            Some(n) => n.parse().ok().filter(|n| self.versions.contains_key(n)),
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct LaunchConfigurationRecord {
    pub name: String,
    /// The properties in CloudFormation's shape (ImageId, InstanceType, UserData, ...), which
    /// CreateLaunchConfiguration's parameters are too.
    pub data: Json,
    #[serde(default)]
    pub logical_id: Option<String>,
    #[serde(default)]
    pub arn: String,
    #[serde(default)]
    pub created: String,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct KeyPairRecord {
    pub name: String,
    pub id: String,
    pub fingerprint: String,
    /// `rsa` or `ed25519`.
    #[serde(default = "rsa")]
    pub key_type: String,
    /// The public key as an OpenSSH line (`ssh-ed25519 AAAA...`).
    #[serde(default)]
    pub public_key: String,
    #[serde(default)]
    pub created: String,
    #[serde(default)]
    pub tags: IndexMap<String, String>,
}

fn rsa() -> String {
    "rsa".into()
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct RoleRecord {
    pub name: String,
    pub arn: String,
    #[serde(default)]
    pub id: String,
    #[serde(default = "root_path")]
    pub path: String,
    /// The trust policy, as JSON text.
    #[serde(default)]
    pub assume_role_policy: String,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub created: String,
    /// Managed policies attached (ARNs).
    #[serde(default)]
    pub attached: Vec<String>,
    /// Inline policies: name → document (JSON text).
    #[serde(default)]
    pub inline: BTreeMap<String, String>,
    #[serde(default)]
    pub tags: IndexMap<String, String>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct InstanceProfileRecord {
    pub name: String,
    pub arn: String,
    pub id: String,
    pub roles: Vec<String>,
    #[serde(default = "root_path")]
    pub path: String,
    #[serde(default)]
    pub created: String,
}

fn root_path() -> String {
    "/".into()
}
