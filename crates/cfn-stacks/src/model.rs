//! The records CloudFormation keeps: stacks, resources, events, change sets, exports.
//! They are what the store holds and what the API describes.

use indexmap::IndexMap;
use serde::{Deserialize, Serialize};
use serde_json::Value as Json;

/// Store namespaces and logs.
pub(crate) const STACKS: &str = "cfn/stack";
pub(crate) const RESOURCES: &str = "cfn/resource";
pub(crate) const CHANGE_SETS: &str = "cfn/changeset";
pub(crate) const EXPORTS: &str = "cfn/export";
pub(crate) const EVENTS: &str = "cfn/events";

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StackRecord {
    pub stack_id: String,
    pub name: String,
    pub status: String,
    #[serde(default)]
    pub status_reason: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
    pub template_body: String,
    /// Parameter values as given or defaulted (text), in template order.
    pub parameters: IndexMap<String, String>,
    /// Names of NoEcho parameters (shown as `*****`).
    #[serde(default)]
    pub no_echo: Vec<String>,
    #[serde(default)]
    pub outputs: Vec<OutputRecord>,
    pub creation_time: String,
    #[serde(default)]
    pub last_updated_time: Option<String>,
    #[serde(default)]
    pub deletion_time: Option<String>,
    #[serde(default)]
    pub disable_rollback: bool,
    #[serde(default)]
    pub tags: IndexMap<String, String>,
    #[serde(default)]
    pub capabilities: Vec<String>,
    #[serde(default)]
    pub notification_arns: Vec<String>,
    /// For nested stacks: the parent's stack id.
    #[serde(default)]
    pub parent_id: Option<String>,
    /// The template and parameters before the update in progress (what a rollback returns to).
    #[serde(default)]
    pub previous: Option<PreviousVersion>,
    /// Exports this stack imports (`Fn::ImportValue`), by export name.
    #[serde(default)]
    pub imports: Vec<String>,
    /// Logical ids in the order their creation completed (deletion goes backwards).
    #[serde(default)]
    pub creation_order: Vec<String>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PreviousVersion {
    pub template_body: String,
    pub parameters: IndexMap<String, String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OutputRecord {
    pub key: String,
    pub value: String,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub export_name: Option<String>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ResourceRecord {
    pub stack_id: String,
    pub logical_id: String,
    #[serde(default)]
    pub physical_id: Option<String>,
    pub type_name: String,
    pub status: String,
    #[serde(default)]
    pub status_reason: Option<String>,
    /// The resolved properties last applied.
    #[serde(default)]
    pub properties: Json,
    /// `Fn::GetAtt` values, by attribute name (nested attributes dotted: `Endpoint.Address`).
    #[serde(default)]
    pub attributes: IndexMap<String, Json>,
    /// The resolved `Metadata` (what cfn-init reads).
    #[serde(default)]
    pub metadata: Option<Json>,
    /// Created from its schema only: no local behaviour behind it.
    #[serde(default)]
    pub modelled: bool,
    pub last_updated: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StackEvent {
    pub event_id: String,
    pub stack_id: String,
    pub stack_name: String,
    pub logical_id: String,
    #[serde(default)]
    pub physical_id: Option<String>,
    pub resource_type: String,
    pub timestamp: String,
    pub status: String,
    #[serde(default)]
    pub status_reason: Option<String>,
    #[serde(default)]
    pub properties: Option<String>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExportRecord {
    pub name: String,
    pub value: String,
    pub stack_id: String,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ChangeSetRecord {
    pub change_set_id: String,
    pub name: String,
    pub stack_id: String,
    pub stack_name: String,
    /// CREATE or UPDATE.
    pub change_set_type: String,
    pub status: String,
    #[serde(default)]
    pub status_reason: Option<String>,
    pub execution_status: String,
    #[serde(default)]
    pub description: Option<String>,
    pub template_body: String,
    pub parameters: IndexMap<String, String>,
    /// Names of NoEcho parameters (shown as `*****`).
    #[serde(default)]
    pub no_echo: Vec<String>,
    pub changes: Vec<ResourceChange>,
    pub creation_time: String,
    #[serde(default)]
    pub disable_rollback: bool,
    #[serde(default)]
    pub tags: IndexMap<String, String>,
    #[serde(default)]
    pub capabilities: Vec<String>,
}

/// One `Change` of a change set (`Type: Resource`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ResourceChange {
    /// Add, Modify, Remove.
    pub action: String,
    pub logical_id: String,
    #[serde(default)]
    pub physical_id: Option<String>,
    pub resource_type: String,
    /// True, False, Conditional (Modify only).
    #[serde(default)]
    pub replacement: Option<String>,
    /// Properties, Metadata, CreationPolicy, UpdatePolicy, DeletionPolicy, UpdateReplacePolicy, Tags.
    #[serde(default)]
    pub scope: Vec<String>,
    #[serde(default)]
    pub details: Vec<ChangeDetail>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ChangeDetail {
    /// Properties, Metadata, ...
    pub attribute: String,
    /// The property name (or path) for property changes.
    #[serde(default)]
    pub name: Option<String>,
    /// Never, Conditionally, Always.
    pub requires_recreation: String,
    /// Static or Dynamic.
    pub evaluation: String,
    /// ResourceReference, ParameterReference, ResourceAttribute, DirectModification, Automatic.
    pub change_source: String,
    #[serde(default)]
    pub causing_entity: Option<String>,
}

/// The stack statuses from which no operation is running.
pub fn is_terminal(status: &str) -> bool {
    !status.ends_with("_IN_PROGRESS")
}
