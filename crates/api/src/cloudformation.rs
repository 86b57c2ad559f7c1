//! The CloudFormation Query API (version 2010-05-15) over the stack engine.

use cfn_stacks::model::{ChangeSetRecord, ResourceRecord, StackEvent, StackRecord, StackStatus};
use cfn_stacks::{ChangeSetInput, Engine, ParamInput, StackInput};
use indexmap::IndexMap;

use crate::error::ApiError;
use crate::query::QueryInput;
use crate::xml::XmlOut;

pub const XMLNS: &str = "http://cloudformation.amazonaws.com/doc/2010-05-15/";
pub const VERSION: &str = "2010-05-15";

/// Whether `action` is a CloudFormation action this region answers.
/// CloudFormation in the endpoint's registry.
pub struct Api(pub std::sync::Arc<Engine>);

crate::registry::query_service!("cloudformation", |api, action, q, request_id| handle(
    &api.0, action, q, request_id
));

/// Every action it answers (COVERAGE.md).
pub fn actions() -> &'static [&'static str] {
    ACTIONS
}

pub fn handles(action: &str) -> bool {
    ACTIONS.contains(&action)
}

const ACTIONS: &[&str] = &[
    "CreateStack",
    "UpdateStack",
    "DeleteStack",
    "DescribeStacks",
    "ListStacks",
    "DescribeStackEvents",
    "DescribeStackResources",
    "DescribeStackResource",
    "ListStackResources",
    "GetTemplate",
    "ValidateTemplate",
    "GetTemplateSummary",
    "CreateChangeSet",
    "DescribeChangeSet",
    "ExecuteChangeSet",
    "DeleteChangeSet",
    "ListChangeSets",
    "ListExports",
    "ListImports",
    "SignalResource",
];

/// Runs one action; returns the XML response body.
pub fn handle(
    engine: &Engine,
    action: &str,
    q: &QueryInput,
    request_id: &str,
) -> Result<String, ApiError> {
    let mut x = XmlOut::new();
    x.open(&format!("{action}Response"), Some(XMLNS));
    let result = &format!("{action}Result");
    match action {
        "CreateStack" => {
            let id = engine.create_stack(stack_input(engine, q, true)?)?;
            x.open(result, None).text("StackId", &id).close();
        }
        "UpdateStack" => {
            let id = engine.update_stack(stack_input(engine, q, false)?)?;
            x.open(result, None).text("StackId", &id).close();
        }
        "DeleteStack" => {
            engine.delete_stack(q.required("StackName").map_err(ApiError::validation)?)?;
        }
        "DescribeStacks" => {
            let stacks = engine.describe_stacks(q.get("StackName"))?;
            x.open(result, None);
            x.members("Stacks", &stacks, write_stack);
            x.close();
        }
        "ListStacks" => {
            let stacks = engine.list_stacks(&status_filter(q)?)?;
            x.open(result, None);
            x.members("StackSummaries", &stacks, |x, s| {
                x.text("StackId", &s.stack_id)
                    .text("StackName", &s.name)
                    .opt("TemplateDescription", s.description.as_deref());
                x.text("CreationTime", &s.creation_time)
                    .opt("LastUpdatedTime", s.last_updated_time.as_deref());
                x.opt("DeletionTime", s.deletion_time.as_deref())
                    .text("StackStatus", s.status.as_str());
                x.opt("StackStatusReason", s.status_reason.as_deref())
                    .opt("ParentId", s.parent_id.as_deref());
                drift(x, "DriftInformation");
            });
            x.close();
        }
        "DescribeStackEvents" => {
            let events =
                engine.stack_events(q.required("StackName").map_err(ApiError::validation)?)?;
            x.open(result, None);
            x.members("StackEvents", &events, write_event);
            x.close();
        }
        "DescribeStackResources" => {
            let resources = match (q.get("StackName"), q.get("PhysicalResourceId")) {
                (Some(name), _) => engine.stack_resources(name)?,
                (None, Some(physical)) => {
                    engine.find_by_physical_id(physical)?.into_iter().collect()
                }
                (None, None) => {
                    return Err(ApiError::validation(
                        "Either StackName or PhysicalResourceId must be specified.",
                    ));
                }
            };
            let logical = q.get("LogicalResourceId");
            let resources: Vec<&ResourceRecord> =
                resources.iter().filter(|r| logical.is_none_or(|l| l == r.logical_id)).collect();
            x.open(result, None);
            x.members("StackResources", resources, |x, r| {
                let stack = engine.find_stack(&r.stack_id).map(|s| s.name).unwrap_or_default();
                x.text("StackName", &stack)
                    .text("StackId", &r.stack_id)
                    .text("LogicalResourceId", &r.logical_id);
                x.opt("PhysicalResourceId", r.physical_id.as_deref())
                    .text("ResourceType", &r.type_name);
                x.text("Timestamp", &r.last_updated).text("ResourceStatus", r.status.as_str());
                x.opt("ResourceStatusReason", r.status_reason.as_deref());
                drift(x, "DriftInformation");
            });
            x.close();
        }
        "DescribeStackResource" => {
            let stack = q.required("StackName").map_err(ApiError::validation)?;
            let logical = q.required("LogicalResourceId").map_err(ApiError::validation)?;
            let r = engine.stack_resource(stack, logical)?;
            let s = engine.find_stack(&r.stack_id)?;
            x.open(result, None).open("StackResourceDetail", None);
            x.text("StackName", &s.name)
                .text("StackId", &r.stack_id)
                .text("LogicalResourceId", &r.logical_id);
            x.opt("PhysicalResourceId", r.physical_id.as_deref())
                .text("ResourceType", &r.type_name);
            x.text("LastUpdatedTimestamp", &r.last_updated)
                .text("ResourceStatus", r.status.as_str());
            x.opt("ResourceStatusReason", r.status_reason.as_deref());
            x.opt("Metadata", r.metadata.as_ref().map(|m| m.to_string()).as_deref());
            drift(&mut x, "DriftInformation");
            x.close().close();
        }
        "ListStackResources" => {
            let resources =
                engine.stack_resources(q.required("StackName").map_err(ApiError::validation)?)?;
            x.open(result, None);
            x.members("StackResourceSummaries", &resources, |x, r| {
                x.text("LogicalResourceId", &r.logical_id)
                    .opt("PhysicalResourceId", r.physical_id.as_deref());
                x.text("ResourceType", &r.type_name).text("LastUpdatedTimestamp", &r.last_updated);
                x.text("ResourceStatus", r.status.as_str())
                    .opt("ResourceStatusReason", r.status_reason.as_deref());
                drift(x, "DriftInformation");
            });
            x.close();
        }
        "GetTemplate" => {
            let body = match q.get("ChangeSetName") {
                Some(cs) => engine.describe_change_set(cs, q.get("StackName"))?.template_body,
                None => {
                    engine
                        .find_stack(q.required("StackName").map_err(ApiError::validation)?)?
                        .template_body
                }
            };
            x.open(result, None).text("TemplateBody", &body);
            x.strings("StagesAvailable", &["Original".to_string(), "Processed".to_string()]);
            x.close();
        }
        "ValidateTemplate" => {
            let body = template_body(engine, q)?.ok_or_else(|| {
                ApiError::validation("Either Template URL or Template Body must be specified.")
            })?;
            let summary = engine.validate_template(&body)?;
            x.open(result, None);
            x.members(
                "Parameters",
                &summary.parameters,
                |x, (name, default, no_echo, description)| {
                    x.text("ParameterKey", name)
                        .opt("DefaultValue", default.as_deref())
                        .bool("NoEcho", *no_echo);
                    x.opt("Description", description.as_deref());
                },
            );
            x.opt("Description", summary.description.as_deref());
            x.strings("Capabilities", &summary.capabilities);
            x.opt("CapabilitiesReason", summary.capabilities_reason.as_deref());
            x.close();
        }
        "GetTemplateSummary" => {
            let body = match template_body(engine, q)? {
                Some(b) => b,
                None => match q.get("StackName") {
                    Some(stack) => engine.find_stack(stack)?.template_body,
                    None => {
                        return Err(ApiError::validation(
                            "Either Template URL or Template Body or StackName must be specified.",
                        ));
                    }
                },
            };
            let summary = engine.validate_template(&body)?;
            x.open(result, None);
            x.members(
                "Parameters",
                summary.parameters.iter().zip(&summary.parameter_types),
                |x, ((name, default, no_echo, description), (ty, allowed))| {
                    x.text("ParameterKey", name)
                        .opt("DefaultValue", default.as_deref())
                        .text("ParameterType", ty);
                    x.bool("NoEcho", *no_echo).opt("Description", description.as_deref());
                    x.open("ParameterConstraints", None).strings("AllowedValues", allowed).close();
                },
            );
            x.opt("Description", summary.description.as_deref());
            x.strings("Capabilities", &summary.capabilities);
            x.opt("CapabilitiesReason", summary.capabilities_reason.as_deref());
            x.strings("ResourceTypes", &summary.resource_types);
            x.text("Version", "2010-09-09");
            x.close();
        }
        "CreateChangeSet" => {
            let input = ChangeSetInput {
                stack: stack_input(engine, q, q.get("ChangeSetType") == Some("CREATE"))?,
                change_set_name: q
                    .required("ChangeSetName")
                    .map_err(ApiError::validation)?
                    .to_string(),
                change_set_type: q.get("ChangeSetType").unwrap_or("UPDATE").to_string(),
                description: q.get("Description").map(str::to_string),
            };
            let (id, stack_id) = engine.create_change_set(input)?;
            x.open(result, None).text("Id", &id).text("StackId", &stack_id).close();
        }
        "DescribeChangeSet" => {
            let cs = engine.describe_change_set(
                q.required("ChangeSetName").map_err(ApiError::validation)?,
                q.get("StackName"),
            )?;
            x.open(result, None);
            write_change_set(&mut x, &cs);
            x.close();
        }
        "ExecuteChangeSet" => {
            engine.execute_change_set(
                q.required("ChangeSetName").map_err(ApiError::validation)?,
                q.get("StackName"),
            )?;
            x.open(result, None).close();
        }
        "DeleteChangeSet" => {
            engine.delete_change_set(
                q.required("ChangeSetName").map_err(ApiError::validation)?,
                q.get("StackName"),
            )?;
            x.open(result, None).close();
        }
        "ListChangeSets" => {
            let stack =
                engine.find_stack(q.required("StackName").map_err(ApiError::validation)?)?;
            let sets = engine.list_change_sets(&stack.stack_id)?;
            x.open(result, None);
            x.members("Summaries", &sets, |x, c| {
                x.text("StackId", &c.stack_id)
                    .text("StackName", &c.stack_name)
                    .text("ChangeSetId", &c.change_set_id);
                x.text("ChangeSetName", &c.name)
                    .text("ExecutionStatus", c.execution_status.as_str())
                    .text("Status", c.status.as_str());
                x.opt("StatusReason", c.status_reason.as_deref())
                    .text("CreationTime", &c.creation_time);
                x.opt("Description", c.description.as_deref());
            });
            x.close();
        }
        "ListExports" => {
            let exports = engine.list_exports()?;
            x.open(result, None);
            x.members("Exports", &exports, |x, e| {
                x.text("ExportingStackId", &e.stack_id)
                    .text("Name", &e.name)
                    .text("Value", &e.value);
            });
            x.close();
        }
        "ListImports" => {
            let imports =
                engine.list_imports(q.required("ExportName").map_err(ApiError::validation)?)?;
            x.open(result, None).strings("Imports", &imports).close();
        }
        "SignalResource" => {
            engine.signal_resource(
                q.required("StackName").map_err(ApiError::validation)?,
                q.required("LogicalResourceId").map_err(ApiError::validation)?,
                q.required("UniqueId").map_err(ApiError::validation)?,
                q.required("Status").map_err(ApiError::validation)?,
            )?;
        }
        other => return Err(ApiError::invalid_action(other)),
    }
    x.open("ResponseMetadata", None).text("RequestId", request_id).close();
    Ok(x.finish())
}

/// ListStacks' `StackStatusFilter`: AWS's stack statuses only.
fn status_filter(q: &QueryInput) -> Result<Vec<StackStatus>, ApiError> {
    let given = q.list("StackStatusFilter");
    given
        .iter()
        .map(|s| {
            s.parse().map_err(|_| {
                let allowed: Vec<&str> = StackStatus::ALL.iter().map(|s| s.as_str()).collect();
                ApiError::validation(format!(
                    "1 validation error detected: Value '[{}]' at 'stackStatusFilter' failed to satisfy constraint: Member must satisfy constraint: [Member must satisfy enum value set: [{}]]",
                    given.join(", "),
                    allowed.join(", ")
                ))
            })
        })
        .collect()
}

fn template_body(engine: &Engine, q: &QueryInput) -> Result<Option<String>, ApiError> {
    if let Some(body) = q.get("TemplateBody") {
        return Ok(Some(body.to_string()));
    }
    match q.get("TemplateURL") {
        Some(url) => Ok(Some(engine.load_template(url).map_err(ApiError::validation)?)),
        None => Ok(None),
    }
}

fn stack_input(engine: &Engine, q: &QueryInput, creating: bool) -> Result<StackInput, ApiError> {
    let body = template_body(engine, q)?;
    if body.is_none() && (creating || !q.bool("UsePreviousTemplate")) {
        return Err(ApiError::validation(
            "Either Template URL or Template Body must be specified.",
        ));
    }
    let mut parameters = IndexMap::new();
    for p in q.structs("Parameters") {
        let Some(key) = p.get("ParameterKey") else { continue };
        let value = if p.get("UsePreviousValue").is_some_and(|v| v.eq_ignore_ascii_case("true")) {
            ParamInput::UsePrevious
        } else {
            ParamInput::Value(p.get("ParameterValue").cloned().unwrap_or_default())
        };
        parameters.insert(key.clone(), value);
    }
    Ok(StackInput {
        stack_name: q.required("StackName").map_err(ApiError::validation)?.to_string(),
        template_body: body,
        parameters,
        disable_rollback: q.bool("DisableRollback"),
        on_failure: q.get("OnFailure").map(str::to_string),
        tags: q
            .structs("Tags")
            .into_iter()
            .filter_map(|t| {
                Some((t.get("Key")?.clone(), t.get("Value").cloned().unwrap_or_default()))
            })
            .collect(),
        capabilities: q.list("Capabilities"),
        notification_arns: q.list("NotificationARNs"),
        parent_id: None,
    })
}

fn drift(x: &mut XmlOut, name: &str) {
    x.open(name, None)
        .text(
            if name == "DriftInformation" {
                "StackResourceDriftStatus"
            } else {
                "StackDriftStatus"
            },
            "NOT_CHECKED",
        )
        .close();
}

fn write_stack(x: &mut XmlOut, s: &StackRecord) {
    x.text("StackId", &s.stack_id)
        .text("StackName", &s.name)
        .opt("Description", s.description.as_deref());
    x.members("Parameters", &s.parameters, |x, (k, v)| {
        let shown = if s.no_echo.contains(k) { "*****" } else { v.as_str() };
        x.text("ParameterKey", k).text("ParameterValue", shown);
    });
    x.text("CreationTime", &s.creation_time).opt("LastUpdatedTime", s.last_updated_time.as_deref());
    x.opt("DeletionTime", s.deletion_time.as_deref());
    x.text("StackStatus", s.status.as_str()).opt("StackStatusReason", s.status_reason.as_deref());
    x.bool("DisableRollback", s.disable_rollback);
    x.strings("NotificationARNs", &s.notification_arns);
    x.strings("Capabilities", &s.capabilities);
    x.members("Outputs", &s.outputs, |x, o| {
        x.text("OutputKey", &o.key)
            .text("OutputValue", &o.value)
            .opt("Description", o.description.as_deref());
        x.opt("ExportName", o.export_name.as_deref());
    });
    x.members("Tags", &s.tags, |x, (k, v)| {
        x.text("Key", k).text("Value", v);
    });
    x.bool("EnableTerminationProtection", false);
    x.opt("ParentId", s.parent_id.as_deref()).opt("RootId", s.parent_id.as_deref());
    x.open("DriftInformation", None).text("StackDriftStatus", "NOT_CHECKED").close();
}

fn write_event(x: &mut XmlOut, e: &StackEvent) {
    x.text("StackId", &e.stack_id).text("EventId", &e.event_id).text("StackName", &e.stack_name);
    x.text("LogicalResourceId", &e.logical_id).opt("PhysicalResourceId", e.physical_id.as_deref());
    x.text("ResourceType", &e.resource_type)
        .text("Timestamp", &e.timestamp)
        .text("ResourceStatus", e.status.as_str());
    x.opt("ResourceStatusReason", e.status_reason.as_deref())
        .opt("ResourceProperties", e.properties.as_deref());
}

fn write_change_set(x: &mut XmlOut, cs: &ChangeSetRecord) {
    x.text("ChangeSetName", &cs.name)
        .text("ChangeSetId", &cs.change_set_id)
        .text("StackId", &cs.stack_id);
    x.text("StackName", &cs.stack_name).opt("Description", cs.description.as_deref());
    x.members("Parameters", &cs.parameters, |x, (k, v)| {
        let shown = if cs.no_echo.contains(k) { "*****" } else { v.as_str() };
        x.text("ParameterKey", k).text("ParameterValue", shown);
    });
    x.text("CreationTime", &cs.creation_time)
        .text("ExecutionStatus", cs.execution_status.as_str())
        .text("Status", cs.status.as_str());
    x.opt("StatusReason", cs.status_reason.as_deref());
    x.strings("NotificationARNs", &[]).strings("Capabilities", &cs.capabilities);
    x.members("Tags", &cs.tags, |x, (k, v)| {
        x.text("Key", k).text("Value", v);
    });
    x.members("Changes", &cs.changes, |x, c| {
        x.text("Type", "Resource").open("ResourceChange", None);
        x.text("Action", &c.action)
            .text("LogicalResourceId", &c.logical_id)
            .opt("PhysicalResourceId", c.physical_id.as_deref());
        x.text("ResourceType", &c.resource_type).opt("Replacement", c.replacement.as_deref());
        x.strings("Scope", &c.scope);
        x.members("Details", &c.details, |x, d| {
            x.open("Target", None).text("Attribute", &d.attribute).opt("Name", d.name.as_deref());
            x.text("RequiresRecreation", &d.requires_recreation).close();
            x.text("Evaluation", &d.evaluation).text("ChangeSource", &d.change_source);
            x.opt("CausingEntity", d.causing_entity.as_deref());
        });
        x.close();
    });
    x.bool("IncludeNestedStacks", false);
}
