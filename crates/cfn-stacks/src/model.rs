//! The records CloudFormation keeps: stacks, resources, events, change sets, exports.
//! They are what the store holds and what the API describes.

use indexmap::IndexMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
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
    pub status: StackStatus,
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
    pub status: ResourceStatus,
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

/// A stack event: about the stack itself (its physical id is the stack id) or one of its
/// resources.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", try_from = "StoredEvent")]
pub struct StackEvent {
    pub event_id: String,
    pub stack_id: String,
    pub stack_name: String,
    pub logical_id: String,
    #[serde(default)]
    pub physical_id: Option<String>,
    pub resource_type: String,
    pub timestamp: String,
    pub status: EventStatus,
    #[serde(default)]
    pub status_reason: Option<String>,
    #[serde(default)]
    pub properties: Option<String>,
}

impl StackEvent {
    /// Whether the event is about the stack itself rather than one of its resources.
    pub fn is_stack_event(&self) -> bool {
        self.physical_id.as_deref() == Some(self.stack_id.as_str())
    }
}

/// A stack event as stored: its status text is read as a stack or a resource status by what
/// the event is about.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct StoredEvent {
    event_id: String,
    stack_id: String,
    stack_name: String,
    logical_id: String,
    #[serde(default)]
    physical_id: Option<String>,
    resource_type: String,
    timestamp: String,
    status: String,
    #[serde(default)]
    status_reason: Option<String>,
    #[serde(default)]
    properties: Option<String>,
}

impl TryFrom<StoredEvent> for StackEvent {
    type Error = UnknownStatus;

    fn try_from(e: StoredEvent) -> Result<StackEvent, UnknownStatus> {
        let of_stack = e.physical_id.as_deref() == Some(e.stack_id.as_str());
        Ok(StackEvent {
            status: EventStatus::parse(&e.status, of_stack)?,
            event_id: e.event_id,
            stack_id: e.stack_id,
            stack_name: e.stack_name,
            logical_id: e.logical_id,
            physical_id: e.physical_id,
            resource_type: e.resource_type,
            timestamp: e.timestamp,
            status_reason: e.status_reason,
            properties: e.properties,
        })
    }
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
    pub status: ChangeSetStatus,
    #[serde(default)]
    pub status_reason: Option<String>,
    pub execution_status: ExecutionStatus,
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

/// A status text that is not one of AWS's values for its kind.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{text:?} is not a {kind}")]
pub struct UnknownStatus {
    pub kind: &'static str,
    pub text: String,
}

/// Declares a status enum whose text (serde, `Display`, `FromStr`, `as_str`) is AWS's spelling.
macro_rules! status_enum {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident = $text:literal,)* }) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum $name {
            $($(#[$vmeta])* $variant,)*
        }

        impl $name {
            /// Every value, in AWS's order.
            pub const ALL: &[$name] = &[$($name::$variant,)*];

            /// AWS's spelling.
            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text,)*
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.pad(self.as_str())
            }
        }

        impl std::str::FromStr for $name {
            type Err = UnknownStatus;

            fn from_str(text: &str) -> Result<$name, UnknownStatus> {
                match text {
                    $($text => Ok($name::$variant),)*
                    _ => Err(UnknownStatus { kind: stringify!($name), text: text.to_string() }),
                }
            }
        }

        /// Compares with AWS's spelling (what a response carries).
        impl PartialEq<&str> for $name {
            fn eq(&self, text: &&str) -> bool {
                self.as_str() == *text
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<$name, D::Error> {
                String::deserialize(d)?.parse().map_err(serde::de::Error::custom)
            }
        }
    };
}

status_enum! {
    /// A stack's status (AWS's `StackStatus`; the `IMPORT_*` statuses are not used here).
    StackStatus {
        CreateInProgress = "CREATE_IN_PROGRESS",
        CreateFailed = "CREATE_FAILED",
        CreateComplete = "CREATE_COMPLETE",
        RollbackInProgress = "ROLLBACK_IN_PROGRESS",
        RollbackFailed = "ROLLBACK_FAILED",
        RollbackComplete = "ROLLBACK_COMPLETE",
        DeleteInProgress = "DELETE_IN_PROGRESS",
        DeleteFailed = "DELETE_FAILED",
        DeleteComplete = "DELETE_COMPLETE",
        UpdateInProgress = "UPDATE_IN_PROGRESS",
        UpdateCompleteCleanupInProgress = "UPDATE_COMPLETE_CLEANUP_IN_PROGRESS",
        UpdateComplete = "UPDATE_COMPLETE",
        UpdateFailed = "UPDATE_FAILED",
        UpdateRollbackInProgress = "UPDATE_ROLLBACK_IN_PROGRESS",
        UpdateRollbackFailed = "UPDATE_ROLLBACK_FAILED",
        UpdateRollbackCompleteCleanupInProgress = "UPDATE_ROLLBACK_COMPLETE_CLEANUP_IN_PROGRESS",
        UpdateRollbackComplete = "UPDATE_ROLLBACK_COMPLETE",
        /// Created by a CREATE change set that has not been executed.
        ReviewInProgress = "REVIEW_IN_PROGRESS",
    }
}

status_enum! {
    /// A resource's status, and the status of a resource's events (AWS's `ResourceStatus`; the
    /// `IMPORT_*` and `EXPORT_*` statuses are not used here).
    ResourceStatus {
        CreateInProgress = "CREATE_IN_PROGRESS",
        CreateFailed = "CREATE_FAILED",
        CreateComplete = "CREATE_COMPLETE",
        DeleteInProgress = "DELETE_IN_PROGRESS",
        DeleteFailed = "DELETE_FAILED",
        DeleteComplete = "DELETE_COMPLETE",
        /// Kept by its `DeletionPolicy: Retain` (or `UpdateReplacePolicy`).
        DeleteSkipped = "DELETE_SKIPPED",
        UpdateInProgress = "UPDATE_IN_PROGRESS",
        UpdateFailed = "UPDATE_FAILED",
        UpdateComplete = "UPDATE_COMPLETE",
    }
}

status_enum! {
    /// A change set's status (AWS's `ChangeSetStatus`, without the `DELETE_*` values).
    ChangeSetStatus {
        CreatePending = "CREATE_PENDING",
        CreateInProgress = "CREATE_IN_PROGRESS",
        CreateComplete = "CREATE_COMPLETE",
        Failed = "FAILED",
    }
}

status_enum! {
    /// Whether a change set can be executed, and how its execution went.
    ExecutionStatus {
        Unavailable = "UNAVAILABLE",
        Available = "AVAILABLE",
        ExecuteInProgress = "EXECUTE_IN_PROGRESS",
        ExecuteComplete = "EXECUTE_COMPLETE",
        ExecuteFailed = "EXECUTE_FAILED",
        Obsolete = "OBSOLETE",
    }
}

impl StackStatus {
    /// Whether no operation is running in this status.
    pub fn is_terminal(self) -> bool {
        use StackStatus::*;
        match self {
            CreateInProgress
            | RollbackInProgress
            | DeleteInProgress
            | UpdateInProgress
            | UpdateCompleteCleanupInProgress
            | UpdateRollbackInProgress
            | UpdateRollbackCompleteCleanupInProgress
            | ReviewInProgress => false,
            CreateFailed
            | CreateComplete
            | RollbackFailed
            | RollbackComplete
            | DeleteFailed
            | DeleteComplete
            | UpdateComplete
            | UpdateFailed
            | UpdateRollbackFailed
            | UpdateRollbackComplete => true,
        }
    }

    /// The status a stack takes when its operation cannot finish (Cumulo stopped, or the
    /// store failed): `None` when no operation is running, or for a stack in review (no
    /// operation has started).
    pub fn interrupted(self) -> Option<StackStatus> {
        use StackStatus::*;
        match self {
            CreateInProgress | RollbackInProgress => Some(RollbackFailed),
            DeleteInProgress => Some(DeleteFailed),
            UpdateInProgress
            | UpdateCompleteCleanupInProgress
            | UpdateRollbackInProgress
            | UpdateRollbackCompleteCleanupInProgress => Some(UpdateRollbackFailed),
            ReviewInProgress => None,
            CreateFailed
            | CreateComplete
            | RollbackFailed
            | RollbackComplete
            | DeleteFailed
            | DeleteComplete
            | UpdateComplete
            | UpdateFailed
            | UpdateRollbackFailed
            | UpdateRollbackComplete => None,
        }
    }
}

impl ResourceStatus {
    /// Whether the resource's last operation has ended (complete, failed or skipped).
    pub fn is_terminal(self) -> bool {
        use ResourceStatus::*;
        match self {
            CreateInProgress | DeleteInProgress | UpdateInProgress => false,
            CreateFailed | CreateComplete | DeleteFailed | DeleteComplete | DeleteSkipped
            | UpdateFailed | UpdateComplete => true,
        }
    }
}

/// The status an event reports: a stack's for events about the stack, a resource's otherwise
/// (on the wire both are `ResourceStatus`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum EventStatus {
    Stack(StackStatus),
    Resource(ResourceStatus),
}

impl EventStatus {
    /// AWS's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            EventStatus::Stack(s) => s.as_str(),
            EventStatus::Resource(s) => s.as_str(),
        }
    }

    /// Reads an event's status text: a stack status when the event is about the stack itself.
    pub fn parse(text: &str, of_stack: bool) -> Result<EventStatus, UnknownStatus> {
        if of_stack {
            text.parse().map(EventStatus::Stack)
        } else {
            text.parse().map(EventStatus::Resource)
        }
    }

    /// Whether the stack or resource reached the end of an operation.
    pub fn is_terminal(self) -> bool {
        match self {
            EventStatus::Stack(s) => s.is_terminal(),
            EventStatus::Resource(s) => s.is_terminal(),
        }
    }
}

impl std::fmt::Display for EventStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(self.as_str())
    }
}

impl Serialize for EventStatus {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl From<StackStatus> for EventStatus {
    fn from(s: StackStatus) -> EventStatus {
        EventStatus::Stack(s)
    }
}

impl From<ResourceStatus> for EventStatus {
    fn from(s: ResourceStatus) -> EventStatus {
        EventStatus::Resource(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_read_and_write_as_aws_spells_them() {
        for s in StackStatus::ALL {
            assert_eq!(serde_json::to_value(s).unwrap(), Json::String(s.as_str().into()));
            assert_eq!(s.as_str().parse::<StackStatus>(), Ok(*s));
            assert_eq!(s.is_terminal(), !s.as_str().ends_with("_IN_PROGRESS"), "{s}");
        }
        for s in ResourceStatus::ALL {
            assert_eq!(serde_json::from_value::<ResourceStatus>(s.as_str().into()).unwrap(), *s);
            assert_eq!(s.is_terminal(), !s.as_str().ends_with("_IN_PROGRESS"), "{s}");
        }
        assert_eq!(
            StackStatus::UpdateRollbackCompleteCleanupInProgress.to_string(),
            "UPDATE_ROLLBACK_COMPLETE_CLEANUP_IN_PROGRESS"
        );
        assert_eq!(ExecutionStatus::ExecuteFailed.as_str(), "EXECUTE_FAILED");
        assert!("DELETE_SKIPPED".parse::<StackStatus>().is_err());
        assert!("IN_PROGRESS".parse::<ResourceStatus>().is_err());
    }

    #[test]
    fn an_event_is_about_the_stack_when_its_physical_id_is_the_stack() {
        let stored = |physical: &str, status: &str| {
            serde_json::json!({
                "eventId": "e", "stackId": "arn:stack", "stackName": "s", "logicalId": "s",
                "physicalId": physical, "resourceType": "AWS::CloudFormation::Stack",
                "timestamp": "t", "status": status,
            })
        };
        let own: StackEvent =
            serde_json::from_value(stored("arn:stack", "CREATE_COMPLETE")).unwrap();
        assert_eq!(own.status, EventStatus::Stack(StackStatus::CreateComplete));
        assert!(own.is_stack_event());
        let nested: StackEvent =
            serde_json::from_value(stored("arn:child", "CREATE_COMPLETE")).unwrap();
        assert_eq!(nested.status, EventStatus::Resource(ResourceStatus::CreateComplete));
        let again: StackEvent =
            serde_json::from_value(serde_json::to_value(&nested).unwrap()).unwrap();
        assert_eq!(again, nested);
        assert!(
            serde_json::from_value::<StackEvent>(stored("arn:child", "REVIEW_IN_PROGRESS"))
                .is_err()
        );
    }
}
