//! Change sets: the difference between a stack as it is and a template + parameters, per
//! resource (Add, Modify with Replacement and the properties that changed, Remove), then
//! executed as an update.

use cfn_template::{Prepared, Value};
use indexmap::IndexMap;

use crate::engine::{CfnError, CfnResult, ChangeSetInput, Engine};
use crate::model::*;
use crate::ops::{Live, change_set_input, loose_json_eq};

impl Engine {
    /// CreateChangeSet. Returns (change set id, stack id).
    pub fn create_change_set(&self, input: ChangeSetInput) -> CfnResult<(String, String)> {
        let name = &input.change_set_name;
        if name.is_empty()
            || !name.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
            || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        {
            return Err(CfnError::Validation(format!(
                "1 validation error detected: Value '{name}' at 'changeSetName' failed to satisfy constraint: Member must satisfy regular expression pattern: [a-zA-Z][-a-zA-Z0-9]*"
            )));
        }
        let kind = if input.change_set_type.is_empty() {
            "UPDATE".to_string()
        } else {
            input.change_set_type.clone()
        };
        // A CREATE change set for a new stack makes the stack (REVIEW_IN_PROGRESS).
        let mut new_stack: Option<StackRecord> = None;
        let (stack, prepared, body, params, changes) = match kind.as_str() {
            "CREATE" => {
                if let Some(existing) = self.lookup_stack(&input.stack.stack_name)?
                    && existing.status != StackStatus::ReviewInProgress
                {
                    return Err(CfnError::AlreadyExists(input.stack.stack_name.clone()));
                }
                let body = input.stack.template_body.clone().ok_or_else(|| {
                    CfnError::Validation(
                        "Either Template URL or Template Body must be specified.".into(),
                    )
                })?;
                let stack_id = match self.lookup_stack(&input.stack.stack_name)? {
                    Some(s) => s.stack_id,
                    None => self.new_stack_id(&input.stack.stack_name),
                };
                let params = self.merge_parameters(&body, &input.stack.parameters, None)?;
                let prepared = self.prepare(
                    &body,
                    &params,
                    &input.stack.stack_name,
                    &stack_id,
                    &input.stack.notification_arns,
                )?;
                self.check_capabilities(&prepared, &input.stack.capabilities)?;
                let stack = match self.lookup_stack(&stack_id)? {
                    Some(s) => s,
                    None => {
                        // Stored with the change set, below.
                        let s = self.new_stack_record(
                            &input.stack,
                            stack_id.clone(),
                            body.clone(),
                            &prepared,
                            StackStatus::ReviewInProgress,
                        );
                        new_stack = Some(s.clone());
                        s
                    }
                };
                let changes = prepared
                    .template
                    .resources
                    .values()
                    .filter(|r| prepared.graph.deps.contains_key(&r.name))
                    .map(|r| ResourceChange {
                        action: "Add".into(),
                        logical_id: r.name.clone(),
                        physical_id: None,
                        resource_type: r.type_name.clone(),
                        replacement: None,
                        scope: Vec::new(),
                        details: Vec::new(),
                    })
                    .collect();
                let params = prepared.parameters.given.clone();
                (stack, prepared, body, params, changes)
            }
            "UPDATE" => {
                let stack = self.find_stack(&input.stack.stack_name)?;
                if matches!(
                    stack.status,
                    StackStatus::ReviewInProgress
                        | StackStatus::RollbackInProgress
                        | StackStatus::RollbackComplete
                        | StackStatus::RollbackFailed
                        | StackStatus::CreateFailed
                ) {
                    return Err(CfnError::Validation(format!(
                        "Stack:{} is in {} state and can not be updated.",
                        stack.stack_id, stack.status
                    )));
                }
                let (body, params, prepared) = self.prepare_update(&stack, &input.stack)?;
                let live = self.live_map(&stack.stack_id)?;
                let changes = self.diff(&stack, &live, &prepared)?;
                (stack, prepared, body, params, changes)
            }
            other => {
                return Err(CfnError::Validation(format!(
                    "ChangeSetType {other} is not supported; use CREATE or UPDATE"
                )));
            }
        };
        if self.list_change_sets(&stack.stack_id)?.iter().any(|c| &c.name == name) {
            return Err(CfnError::AlreadyExists(format!("ChangeSet {name}")));
        }
        let unchanged = kind == "UPDATE"
            && body == stack.template_body
            && params == stack.parameters
            && input.stack.tags.is_empty();
        let (status, reason, execution) = if unchanged {
            (
                ChangeSetStatus::Failed,
                Some("The submitted information didn't contain changes. Submit different information to create a change set.".to_string()),
                ExecutionStatus::Unavailable,
            )
        } else {
            (ChangeSetStatus::CreateComplete, None, ExecutionStatus::Available)
        };
        let id = self
            .config
            .account
            .arn("cloudformation", &format!("changeSet/{name}/{}", aws_ids::uuid()));
        let record = ChangeSetRecord {
            change_set_id: id.clone(),
            name: name.clone(),
            stack_id: stack.stack_id.clone(),
            stack_name: stack.name.clone(),
            change_set_type: kind,
            status,
            status_reason: reason,
            execution_status: execution,
            description: input.description.clone(),
            template_body: body,
            parameters: params,
            no_echo: prepared.no_echo(),
            changes,
            creation_time: self.now(),
            disable_rollback: input.stack.disable_rollback,
            tags: input.stack.tags.clone(),
            capabilities: input.stack.capabilities.clone(),
        };
        match &new_stack {
            Some(s) => self.save_stack_with_event_and(s, Some("User Initiated"), |b| {
                b.put(CHANGE_SETS, &id, &record)
            })?,
            None => self.store.put(CHANGE_SETS, &id, &record)?,
        }
        Ok((id, stack.stack_id))
    }

    /// A change set by ARN, or by name within a stack.
    pub fn describe_change_set(
        &self,
        name_or_arn: &str,
        stack: Option<&str>,
    ) -> CfnResult<ChangeSetRecord> {
        let not_found =
            || CfnError::ChangeSetNotFound(format!("ChangeSet [{name_or_arn}] does not exist"));
        if name_or_arn.starts_with("arn:") {
            return self
                .store
                .get::<ChangeSetRecord>(CHANGE_SETS, name_or_arn)?
                .ok_or_else(not_found);
        }
        let stack = stack.ok_or_else(|| {
            CfnError::Validation(
                "StackName must be specified if ChangeSetName is not specified as an ARN.".into(),
            )
        })?;
        let stack = self.find_stack(stack)?;
        let mut named: Vec<ChangeSetRecord> = self
            .change_sets_of(&stack.stack_id)?
            .into_iter()
            .filter(|c| c.name == name_or_arn)
            .collect();
        // The newest of that name (an executed one may share it with a new one).
        named.pop().ok_or_else(not_found)
    }

    /// ListChangeSets: the stack's active change sets (executed ones are no longer listed).
    pub fn list_change_sets(&self, stack_id: &str) -> CfnResult<Vec<ChangeSetRecord>> {
        Ok(self
            .change_sets_of(stack_id)?
            .into_iter()
            .filter(|c| {
                !matches!(
                    c.execution_status,
                    ExecutionStatus::ExecuteInProgress
                        | ExecutionStatus::ExecuteComplete
                        | ExecutionStatus::ExecuteFailed
                )
            })
            .collect())
    }

    fn change_sets_of(&self, stack_id: &str) -> CfnResult<Vec<ChangeSetRecord>> {
        let mut sets: Vec<ChangeSetRecord> = self
            .store
            .list::<ChangeSetRecord>(CHANGE_SETS, "")?
            .into_iter()
            .map(|(_, c)| c)
            .filter(|c| c.stack_id == stack_id)
            .collect();
        sets.sort_by(|a, b| a.creation_time.cmp(&b.creation_time));
        Ok(sets)
    }

    pub fn delete_change_set(&self, name_or_arn: &str, stack: Option<&str>) -> CfnResult<()> {
        let cs = self.describe_change_set(name_or_arn, stack)?;
        if cs.execution_status == ExecutionStatus::ExecuteInProgress {
            return Err(CfnError::InvalidChangeSetStatus(format!(
                "Cannot delete ChangeSet in status {}",
                cs.execution_status
            )));
        }
        self.store.delete(CHANGE_SETS, &cs.change_set_id)?;
        Ok(())
    }

    /// ExecuteChangeSet: runs the change set as a create or an update; the stack's other change
    /// sets become OBSOLETE.
    pub fn execute_change_set(&self, name_or_arn: &str, stack: Option<&str>) -> CfnResult<()> {
        let mut cs = self.describe_change_set(name_or_arn, stack)?;
        if cs.execution_status != ExecutionStatus::Available {
            return Err(CfnError::InvalidChangeSetStatus(format!(
                "ChangeSet [{}] cannot be executed in its current execution status of [{}]",
                cs.change_set_id, cs.execution_status
            )));
        }
        let stack = self.find_stack(&cs.stack_id)?;
        let input = change_set_input(&cs);
        // The change set is marked executing, and the stack's other change sets removed (AWS:
        // they no longer apply), in the same write that starts the operation.
        cs.execution_status = ExecutionStatus::ExecuteInProgress;
        let others: Vec<String> = self
            .list_change_sets(&cs.stack_id)?
            .into_iter()
            .map(|c| c.change_set_id)
            .filter(|id| *id != cs.change_set_id)
            .collect();
        let also = |b: &mut store::Batch<'_>| {
            b.put(CHANGE_SETS, &cs.change_set_id, &cs)?;
            for other in &others {
                b.delete(CHANGE_SETS, other)?;
            }
            Ok(())
        };
        if cs.change_set_type == "CREATE" {
            // The REVIEW_IN_PROGRESS stack becomes a real one.
            let prepared =
                self.prepare(&cs.template_body, &cs.parameters, &stack.name, &stack.stack_id, &[])?;
            if stack.status != StackStatus::ReviewInProgress
                || !self.busy.lock().insert(stack.stack_id.clone())
            {
                return Err(CfnError::InvalidChangeSetStatus(format!(
                    "Stack {} is in {} state",
                    stack.name, stack.status
                )));
            }
            let mut record = self.new_stack_record(
                &input,
                stack.stack_id.clone(),
                cs.template_body.clone(),
                &prepared,
                StackStatus::CreateInProgress,
            );
            record.creation_time = stack.creation_time.clone();
            if let Err(e) = self.save_stack_with_event_and(&record, Some("User Initiated"), also) {
                self.release(&stack.stack_id);
                return Err(e.into());
            }
            self.start_create(
                record,
                prepared,
                if cs.disable_rollback { "DO_NOTHING" } else { "ROLLBACK" },
            );
        } else {
            let (body, _, prepared) = self.prepare_update(&stack, &input)?;
            let live = self.live_map(&stack.stack_id)?;
            self.claim(&stack, "updated")?;
            self.begin_update(stack.clone(), body, prepared, live, &input, also)?;
        }
        // The executed change set is marked complete when the operation ends.
        let engine = self.engine();
        let stack_id = cs.stack_id.clone();
        self.tracker.spawn(async move {
            let what = format!("read how change set {} ended", cs.name);
            let Some(done) = engine.retry_store(&what, || engine.wait_terminal(&stack_id)).await
            else {
                return;
            };
            cs.execution_status = match done.status {
                StackStatus::CreateComplete
                | StackStatus::UpdateComplete
                | StackStatus::DeleteComplete => ExecutionStatus::ExecuteComplete,
                _ => ExecutionStatus::ExecuteFailed,
            };
            let what = format!("record the end of change set {}", cs.name);
            engine
                .retry_store(&what, || {
                    std::future::ready(
                        engine.store.put(CHANGE_SETS, &cs.change_set_id, &cs).map_err(Into::into),
                    )
                })
                .await;
        });
        Ok(())
    }

    /// The changes from the live stack to `new`.
    pub(crate) fn diff(
        &self,
        stack: &StackRecord,
        live: &IndexMap<String, ResourceRecord>,
        new: &Prepared,
    ) -> CfnResult<Vec<ResourceChange>> {
        let resolver = Live::new(self, live);
        let old_params = &stack.parameters;
        let changed_params: Vec<&String> = new
            .parameters
            .given
            .iter()
            .filter(|(k, v)| old_params.get(*k) != Some(*v))
            .map(|(k, _)| k)
            .collect();
        let mut changes = Vec::new();
        for (id, resource) in &new.template.resources {
            if !new.graph.deps.contains_key(id) {
                continue;
            }
            let Some(current) = live.get(id) else {
                changes.push(ResourceChange {
                    action: "Add".into(),
                    logical_id: id.clone(),
                    physical_id: None,
                    resource_type: resource.type_name.clone(),
                    replacement: None,
                    scope: Vec::new(),
                    details: Vec::new(),
                });
                continue;
            };
            let (value, _) = new.resolve_properties_partial(id, &resolver, self.ssm.as_ref());
            let new_props = value.unwrap_or(Value::Map(Default::default()));
            let new_map = new_props.as_map().cloned().unwrap_or_default();
            let old_map = current.properties.as_object().cloned().unwrap_or_default();
            let schema = cfn_schema::get(&resource.type_name);
            let provider = self.providers.get(&resource.type_name);
            let mut details = Vec::new();
            let mut names: Vec<&String> = new_map.keys().collect();
            for k in old_map.keys() {
                if !new_map.contains_key(k) {
                    names.push(k);
                }
            }
            for name in names {
                let new_value = new_map.get(name);
                let old_value = old_map.get(name);
                let dynamic = new_value.is_some_and(Value::contains_unknown);
                let same = match (new_value, old_value) {
                    (Some(n), Some(o)) => !dynamic && loose_json_eq(&n.to_json(), o),
                    (None, None) => true,
                    _ => false,
                };
                if same {
                    continue;
                }
                let always = schema.as_ref().is_some_and(|s| s.create_only.contains(name))
                    || provider
                        .replacement_properties(&resource.type_name)
                        .contains(&name.as_str());
                let conditional =
                    schema.as_ref().is_some_and(|s| s.conditional_create_only.contains(name));
                let node =
                    resource.properties.as_ref().and_then(|p| p.as_map()).and_then(|m| m.get(name));
                let refs =
                    node.map(|n| cfn_template::refs::references(n, &|_| None)).unwrap_or_default();
                let param = refs.iter().find(|r| changed_params.contains(&&r.target));
                let res = refs.iter().find(|r| new.template.resources.contains_key(&r.target));
                let (source, entity) = match (param, res, dynamic) {
                    (Some(p), _, _) => ("ParameterReference", Some(p.target.clone())),
                    (_, Some(r), true) => match &r.attribute {
                        Some(a) => ("ResourceAttribute", Some(format!("{}.{a}", r.target))),
                        None => ("ResourceReference", Some(r.target.clone())),
                    },
                    _ => ("DirectModification", None),
                };
                details.push(ChangeDetail {
                    attribute: "Properties".into(),
                    name: Some(name.clone()),
                    requires_recreation: if always {
                        "Always"
                    } else if conditional {
                        "Conditionally"
                    } else {
                        "Never"
                    }
                    .into(),
                    evaluation: if dynamic { "Dynamic" } else { "Static" }.into(),
                    change_source: source.into(),
                    causing_entity: entity,
                });
            }
            let mut scope: Vec<String> =
                if details.is_empty() { Vec::new() } else { vec!["Properties".into()] };
            if let Some(meta) = &resource.metadata {
                let new_meta = new
                    .resolve_node(meta, &resolver, self.ssm.as_ref())
                    .ok()
                    .flatten()
                    .map(|v| v.to_json());
                if new_meta
                    .as_ref()
                    .is_some_and(|m| current.metadata.as_ref().is_none_or(|o| !loose_json_eq(m, o)))
                {
                    scope.push("Metadata".into());
                    details.push(ChangeDetail {
                        attribute: "Metadata".into(),
                        name: None,
                        requires_recreation: "Never".into(),
                        evaluation: "Static".into(),
                        change_source: "DirectModification".into(),
                        causing_entity: None,
                    });
                }
            }
            let type_changed = current.type_name != resource.type_name;
            if details.is_empty() && !type_changed {
                continue;
            }
            let replacement = if type_changed
                || details
                    .iter()
                    .any(|d| d.requires_recreation == "Always" && d.evaluation == "Static")
            {
                "True"
            } else if details.iter().any(|d| d.requires_recreation != "Never") {
                "Conditional"
            } else {
                "False"
            };
            changes.push(ResourceChange {
                action: "Modify".into(),
                logical_id: id.clone(),
                physical_id: current.physical_id.clone(),
                resource_type: resource.type_name.clone(),
                replacement: Some(replacement.into()),
                scope,
                details,
            });
        }
        for (id, current) in live {
            if new.graph.deps.contains_key(id) {
                continue;
            }
            changes.push(ResourceChange {
                action: "Remove".into(),
                logical_id: id.clone(),
                physical_id: current.physical_id.clone(),
                resource_type: current.type_name.clone(),
                replacement: None,
                scope: Vec::new(),
                details: Vec::new(),
            });
        }
        if let Some(e) = resolver.store_error() {
            return Err(e.into());
        }
        Ok(changes)
    }
}
