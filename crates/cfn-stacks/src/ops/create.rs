//! Creation: each resource created (waiting for its signals where a CreationPolicy or a wait
//! condition asks), outputs and exports registered; on failure the stack rolls back.

use std::time::Duration;

use cfn_template::Value;
use serde_json::Value as Json;

use super::*;
use crate::engine::{CfnResult, resource_key};
use crate::model::*;
use crate::props;
use crate::provider::ResourceRequest;
use crate::signals::{SignalOutcome, parse_duration};

impl Op {
    /// Starts creating a resource (create operations, and resources new in an update).
    pub(super) fn begin_create(&mut self, logical_id: &str, replacing: bool) -> CfnResult<Begin> {
        let resource = &self.prepared.template.resources[logical_id];
        let type_name = resource.type_name.clone();
        let mut record =
            self.live.get(logical_id).cloned().unwrap_or_else(|| self.new_record(logical_id));
        if !replacing {
            self.event(logical_id, None, &type_name, ResourceStatus::CreateInProgress, None)?;
        }
        let (props, metadata, imports) = match self.resolve(logical_id)? {
            Ok(x) => x,
            Err(e) => return Ok(Begin::Failed(e)),
        };
        self.note_imports(imports);
        if replacing {
            self.event(
                logical_id,
                record.physical_id.as_deref(),
                &type_name,
                ResourceStatus::UpdateInProgress,
                Some("Requested update requires the creation of a new physical resource; hence creating one."),
            )?;
        } else {
            self.event(
                logical_id,
                None,
                &type_name,
                ResourceStatus::CreateInProgress,
                Some("Resource creation Initiated"),
            )?;
        }
        record.type_name = type_name.clone();
        record.properties = props.clone();
        record.metadata = metadata.clone();
        if replacing {
            record.attributes.clear();
        } else {
            // The resource exists (in progress) from now on: signals may come for it at once.
            record.status = ResourceStatus::CreateInProgress;
            record.last_updated = self.engine.now();
            self.engine.store.put(
                RESOURCES,
                &resource_key(&record.stack_id, logical_id),
                &record,
            )?;
        }
        self.live.insert(logical_id.to_string(), record);
        let wait = self.signal_wait(logical_id, &props);
        let engine = self.engine.clone();
        let stack_id = self.stack.stack_id.clone();
        let stack_name = self.stack.name.clone();
        let id = logical_id.to_string();
        let cancel = self.cancel.clone();
        let update_policy = self.resolved_policy(logical_id, "UpdatePolicy");
        let creation_policy = self.resolved_policy(logical_id, "CreationPolicy");
        Ok(Begin::Started(Box::pin(async move {
            // A resource's own signals start afresh (a replacement waits for new ones); signals to
            // a wait-condition handle may have arrived before the wait began, and count.
            if wait.as_ref().is_some_and(|w| w.target == id) {
                engine.signals.reset(&stack_id, &id);
            }
            let account = engine.config.account.clone();
            let request = ResourceRequest {
                stack_id: &stack_id,
                stack_name: &stack_name,
                logical_id: &id,
                type_name: &type_name,
                properties: &props,
                metadata: metadata.as_ref(),
                account: &account,
                update_policy: update_policy.as_ref(),
                creation_policy: creation_policy.as_ref(),
                signals: &engine.signals,
            };
            let provided = tokio::select! {
                r = engine.providers.get(&type_name).create(&request) => r,
                _ = cancel.cancelled() => return TaskResult { provided: None, error: None, cancelled: true },
            };
            let mut provided = match provided {
                Ok(p) => p,
                Err(e) => return TaskResult { provided: None, error: Some(e.0), cancelled: false },
            };
            // A modelled resource runs nothing that could send its CreationPolicy signals.
            let wait = wait.filter(|w| {
                !(provided.modelled
                    && w.target == id
                    && type_name != "AWS::CloudFormation::WaitCondition")
            });
            if let Some(wait) = wait {
                let outcome = tokio::select! {
                    o = engine.signals.wait(&engine.clock, &stack_id, &wait.target, wait.count, wait.timeout) => o,
                    _ = cancel.cancelled() => return TaskResult { provided: Some(provided), error: None, cancelled: true },
                };
                match outcome {
                    SignalOutcome::Success => {
                        if type_name == "AWS::CloudFormation::WaitCondition" {
                            let data: serde_json::Map<String, Json> = engine
                                .signals
                                .data(&stack_id, &wait.target)
                                .into_iter()
                                .map(|(k, v)| (k, Json::String(v)))
                                .collect();
                            provided.attributes.insert(
                                "Data".into(),
                                Json::String(Json::Object(data).to_string()),
                            );
                        }
                    }
                    SignalOutcome::Failure { unique_id, reason } => {
                        let reason =
                            if reason.is_empty() { String::new() } else { format!(": {reason}") };
                        return TaskResult {
                            provided: Some(provided),
                            error: Some(format!(
                                "Received FAILURE signal with UniqueId {unique_id}{reason}"
                            )),
                            cancelled: false,
                        };
                    }
                    SignalOutcome::Timeout { .. } => {
                        let error = if type_name == "AWS::CloudFormation::WaitCondition" {
                            "WaitCondition timed out. Received 0 conditions when expecting 1"
                                .replace('1', &wait.count.to_string())
                        } else {
                            format!(
                                "Failed to receive {} resource signal(s) within the specified duration",
                                wait.count
                            )
                        };
                        return TaskResult {
                            provided: Some(provided),
                            error: Some(error),
                            cancelled: false,
                        };
                    }
                }
            }
            TaskResult { provided: Some(provided), error: None, cancelled: false }
        })))
    }

    /// A resource's policy attribute, resolved (`UpdatePolicy`, `CreationPolicy`).
    pub(super) fn resolved_policy(&self, logical_id: &str, which: &str) -> Option<Json> {
        let resource = &self.prepared.template.resources[logical_id];
        let node = match which {
            "UpdatePolicy" => resource.update_policy.as_ref()?,
            _ => resource.creation_policy.as_ref()?,
        };
        let live = Live::new(&self.engine, &self.live);
        self.prepared
            .resolve_node(node, &live, self.engine.ssm.as_ref())
            .ok()
            .flatten()
            .map(|v| v.to_json())
    }

    /// The signals a new resource must receive before it is complete: its CreationPolicy, or
    /// (for a wait condition without one) its handle's signals.
    fn signal_wait(&self, logical_id: &str, props: &Json) -> Option<SignalWait> {
        let resource = &self.prepared.template.resources[logical_id];
        if let Some(policy) = self.resolved_policy(logical_id, "CreationPolicy") {
            let signal = policy.get("ResourceSignal");
            let count = signal.and_then(|s| props::number(s, "Count")).unwrap_or(1) as usize;
            let timeout = signal
                .and_then(|s| props::text(s, "Timeout"))
                .and_then(|t| parse_duration(&t))
                .unwrap_or(Duration::from_secs(300));
            let percent = policy
                .get("AutoScalingCreationPolicy")
                .and_then(|p| props::number(p, "MinSuccessfulInstancesPercent"))
                .unwrap_or(100);
            let needed = (count as u64 * percent).div_ceil(100) as usize;
            if signal.is_some() || resource.type_name == "AWS::CloudFormation::WaitCondition" {
                return Some(SignalWait {
                    target: logical_id.into(),
                    count: needed.max(usize::from(count > 0)),
                    timeout,
                });
            }
        }
        if resource.type_name == "AWS::CloudFormation::WaitCondition" {
            let handle = props::text(props, "Handle")?;
            let target = self
                .live
                .values()
                .find(|r| r.physical_id.as_deref() == Some(handle.as_str()))?
                .logical_id
                .clone();
            let count = props::number(props, "Count").unwrap_or(1) as usize;
            let timeout = props::number(props, "Timeout")
                .map_or(Duration::from_secs(43_200), Duration::from_secs);
            return Some(SignalWait { target, count, timeout });
        }
        None
    }

    pub(super) async fn run_create(mut self, on_failure: String) {
        if let Err(e) = self.create(&on_failure).await {
            self.abandon(e).await;
        }
    }

    pub(super) async fn create(&mut self, on_failure: &str) -> CfnResult<()> {
        let (ids, deps) = self.present();
        let failures = self
            .schedule(
                &ids,
                &deps,
                |op, id| op.begin_create(id, false),
                |op, id, provided| {
                    let mut r = op.live.get(id).cloned().unwrap_or_else(|| op.new_record(id));
                    apply_provided(&mut r, provided);
                    op.record(r, ResourceStatus::CreateComplete, None)?;
                    op.stack.creation_order.push(id.to_string());
                    Ok(())
                },
                ResourceStatus::CreateFailed,
                "Resource creation cancelled",
            )
            .await?;
        let failures = if failures.is_empty() { self.finish_outputs()? } else { failures };
        if failures.is_empty() {
            return self.set_status(StackStatus::CreateComplete, None);
        }
        let reason = self.failure_reason(&failures, "create");
        if on_failure == "DO_NOTHING" {
            return self.set_status(StackStatus::CreateFailed, Some(reason));
        }
        self.set_status(
            StackStatus::RollbackInProgress,
            Some(format!("{reason}Rollback requested by user.")),
        )?;
        let ok = self.delete_all(false).await?;
        if !ok {
            return self.set_status(
                StackStatus::RollbackFailed,
                Some("The following resource(s) failed to delete during rollback.".into()),
            );
        }
        self.set_status(StackStatus::RollbackComplete, None)?;
        if on_failure == "DELETE" {
            self.set_status(StackStatus::DeleteInProgress, None)?;
            self.set_status(StackStatus::DeleteComplete, None)?;
        }
        Ok(())
    }

    /// The stack's status reason for failed resources (outputs and exports fail as the stack
    /// itself, with their own message).
    pub(super) fn failure_reason(&self, failures: &[(String, String)], verb: &str) -> String {
        if let [(id, message)] = failures
            && *id == self.stack.name
        {
            return if verb == "create" { format!("{message}. ") } else { message.clone() };
        }
        let names: Vec<&str> = failures.iter().map(|(id, _)| id.as_str()).collect();
        let tail = if verb == "create" { " " } else { "" };
        format!("The following resource(s) failed to {verb}: [{}].{tail}", names.join(", "))
    }

    /// Resolves outputs and registers exports. Returns a failure if an export clashes.
    pub(super) fn finish_outputs(&mut self) -> CfnResult<Vec<(String, String)>> {
        let live = Live::new(&self.engine, &self.live);
        let (outputs, errors) = self.prepared.resolve_outputs(&live, self.engine.ssm.as_ref());
        if let Some(e) = live.store_error() {
            return Err(e.into());
        }
        let imports = live.imports.into_inner();
        self.note_imports(imports);
        if let Some(e) = errors.first() {
            return Ok(vec![(self.stack.name.clone(), e.message.clone())]);
        }
        let records: Vec<OutputRecord> = outputs
            .into_iter()
            .map(|o| OutputRecord {
                key: o.name,
                value: output_text(&o.value),
                description: o.description,
                export_name: o.export_name,
            })
            .collect();
        // Exports: unique in the region; an export in use cannot change or go away.
        let old: Vec<ExportRecord> = self
            .engine
            .list_exports()?
            .into_iter()
            .filter(|e| e.stack_id == self.stack.stack_id)
            .collect();
        for o in &records {
            let Some(name) = &o.export_name else { continue };
            if let Some(existing) = self.engine.store.get::<ExportRecord>(EXPORTS, name)?
                && existing.stack_id != self.stack.stack_id
            {
                let owner = self
                    .engine
                    .lookup_stack(&existing.stack_id)?
                    .map_or(existing.stack_id, |s| s.name);
                return Ok(vec![(
                    o.key.clone(),
                    format!("Export with name {name} is already exported by stack {owner}"),
                )]);
            }
        }
        for e in &old {
            let new_value = records
                .iter()
                .find(|o| o.export_name.as_deref() == Some(&e.name))
                .map(|o| &o.value);
            if new_value == Some(&e.value) {
                continue;
            }
            let users = self.importers(&e.name)?;
            if !users.is_empty() {
                let message = match new_value {
                    Some(_) => format!(
                        "Cannot update export {} as it is in use by {}",
                        e.name,
                        users.join(", ")
                    ),
                    None => format!(
                        "Export {} cannot be deleted as it is in use by {}",
                        e.name,
                        users.join(", ")
                    ),
                };
                return Ok(vec![(self.stack.name.clone(), message)]);
            }
        }
        self.engine.store.batch(|b| {
            for e in &old {
                b.delete(EXPORTS, &e.name)?;
            }
            for o in &records {
                if let Some(name) = &o.export_name {
                    b.put(
                        EXPORTS,
                        name,
                        &ExportRecord {
                            name: name.clone(),
                            value: o.value.clone(),
                            stack_id: self.stack.stack_id.clone(),
                        },
                    )?;
                }
            }
            Ok(())
        })?;
        self.stack.outputs = records;
        Ok(Vec::new())
    }

    /// Names of the other stacks that import `export`.
    pub(super) fn importers(&self, export: &str) -> CfnResult<Vec<String>> {
        Ok(self
            .engine
            .describe_stacks(None)?
            .into_iter()
            .filter(|s| s.stack_id != self.stack.stack_id && s.imports.iter().any(|i| i == export))
            .map(|s| s.name)
            .collect())
    }
}

struct SignalWait {
    /// Whose signals count (the resource itself, or a wait condition's handle).
    target: String,
    count: usize,
    timeout: Duration,
}

/// An output's value as text: lists joined with commas.
fn output_text(v: &Value) -> String {
    match v {
        Value::List(items) => {
            items.iter().map(|i| i.as_text().unwrap_or_default()).collect::<Vec<_>>().join(",")
        }
        other => other.as_text().unwrap_or_default(),
    }
}
