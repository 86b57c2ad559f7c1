//! Updates: each resource unchanged, updated in place or replaced (the new one created first),
//! then the cleanup that deletes replaced and removed resources.

use std::collections::HashSet;

use indexmap::{IndexMap, IndexSet};
use serde_json::Value as Json;

use super::*;
use crate::engine::CfnResult;
use crate::model::*;
use crate::provider::ResourceRequest;

impl Op {
    pub(super) fn begin_update(&mut self, logical_id: &str) -> CfnResult<Begin> {
        let Some(current) = self.live.get(logical_id).cloned().filter(|r| r.physical_id.is_some())
        else {
            self.touched.insert(logical_id.to_string(), Touched::Created);
            return self.begin_create(logical_id, false);
        };
        let resource = &self.prepared.template.resources[logical_id];
        let type_name = resource.type_name.clone();
        let (props, metadata, imports) = match self.resolve(logical_id)? {
            Ok(x) => x,
            Err(e) => return Ok(Begin::Failed(e)),
        };
        self.note_imports(imports);
        let policies_changed = self.policies_changed(logical_id);
        if type_name == current.type_name
            && loose_json_eq(&props, &current.properties)
            && metadata == current.metadata
            && !policies_changed
        {
            return Ok(Begin::Done);
        }
        let replace = type_name != current.type_name
            || self.needs_replacement(&type_name, &current.properties, &props)
            || self.engine.providers.get(&type_name).replaces_on_update(
                &type_name,
                self.resolved_policy(logical_id, "UpdatePolicy").as_ref(),
                &current.properties,
                &props,
            );
        if replace {
            self.touched.insert(logical_id.to_string(), Touched::Replaced(current.clone()));
            // The new physical resource replaces the old one in the live map once made.
            return self.begin_create(logical_id, true);
        }
        self.touched.insert(logical_id.to_string(), Touched::UpdatedInPlace(current.clone()));
        self.event(
            logical_id,
            current.physical_id.as_deref(),
            &type_name,
            ResourceStatus::UpdateInProgress,
            None,
        )?;
        let mut next = current.clone();
        next.properties = props;
        next.metadata = metadata;
        self.live.insert(logical_id.to_string(), next.clone());
        Ok(Begin::Started(self.update_future(next, current)))
    }

    pub(super) fn update_future(
        &self,
        next: ResourceRecord,
        current: ResourceRecord,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = TaskResult> + Send>> {
        let engine = self.engine.clone();
        let stack_id = self.stack.stack_id.clone();
        let stack_name = self.stack.name.clone();
        let update_policy = self
            .prepared
            .template
            .resources
            .get(&next.logical_id)
            .and_then(|_| self.resolved_policy(&next.logical_id, "UpdatePolicy"));
        let creation_policy = self
            .prepared
            .template
            .resources
            .get(&next.logical_id)
            .and_then(|_| self.resolved_policy(&next.logical_id, "CreationPolicy"));
        let cancel = self.cancel.clone();
        Box::pin(async move {
            let account = engine.config.account.clone();
            let request = ResourceRequest {
                stack_id: &stack_id,
                stack_name: &stack_name,
                logical_id: &next.logical_id,
                type_name: &next.type_name,
                properties: &next.properties,
                metadata: next.metadata.as_ref(),
                account: &account,
                update_policy: update_policy.as_ref(),
                creation_policy: creation_policy.as_ref(),
                signals: &engine.signals,
            };
            let result = tokio::select! {
                r = engine.providers.get(&next.type_name).update(&request, &current) => r,
                _ = cancel.cancelled() => return TaskResult { provided: None, error: None, cancelled: true },
            };
            match result {
                Ok(p) => TaskResult { provided: Some(p), error: None, cancelled: false },
                Err(e) => TaskResult { provided: None, error: Some(e.0), cancelled: false },
            }
        })
    }

    pub(super) fn policies_changed(&self, logical_id: &str) -> bool {
        let Some(previous) = &self.stack.previous else { return false };
        let store = std::collections::BTreeMap::new();
        let old = cfn_template::analyze(
            &previous.template_body,
            &cfn_template::Options::validate(&store),
        );
        let Some(old_resource) =
            old.stack.as_ref().and_then(|s| s.template.resources.get(logical_id).cloned())
        else {
            return false;
        };
        let new_resource = &self.prepared.template.resources[logical_id];
        let strip = |n: &Option<cfn_template::Node>| n.as_ref().map(strip_spans);
        strip(&old_resource.update_policy) != strip(&new_resource.update_policy)
            || strip(&old_resource.creation_policy) != strip(&new_resource.creation_policy)
            || old_resource.deletion_policy.as_ref().map(|p| &p.0)
                != new_resource.deletion_policy.as_ref().map(|p| &p.0)
    }

    pub(super) fn needs_replacement(&self, type_name: &str, old: &Json, new: &Json) -> bool {
        let provider = self.engine.providers.get(type_name);
        let extra = provider.replacement_properties(type_name);
        let schema = cfn_schema::get(type_name);
        let create_only: Vec<String> = schema.map(|s| s.create_only.clone()).unwrap_or_default();
        create_only.iter().map(String::as_str).chain(extra.iter().copied()).any(|p| {
            let (a, b) = (old.get(p), new.get(p));
            match (a, b) {
                (None, None) => false,
                (Some(a), Some(b)) => !loose_json_eq(a, b),
                _ => true,
            }
        })
    }

    pub(super) async fn run_update(mut self) {
        if let Err(e) = self.update().await {
            self.abandon(e).await;
        }
    }

    pub(super) async fn update(&mut self) -> CfnResult<()> {
        let (ids, deps) = self.present();
        let failures = self
            .schedule(
                &ids,
                &deps,
                |op, id| op.begin_update(id),
                |op, id, provided| {
                    let touched = op.touched.get(id).cloned();
                    let mut r = op.live.get(id).cloned().unwrap_or_else(|| op.new_record(id));
                    apply_provided(&mut r, provided);
                    let status = if matches!(touched, Some(Touched::Created)) {
                        ResourceStatus::CreateComplete
                    } else {
                        ResourceStatus::UpdateComplete
                    };
                    op.record(r, status, None)?;
                    if matches!(touched, Some(Touched::Created)) {
                        op.stack.creation_order.push(id.to_string());
                    }
                    Ok(())
                },
                ResourceStatus::UpdateFailed,
                "Resource update cancelled",
            )
            .await?;
        let failures = if failures.is_empty() { self.finish_outputs()? } else { failures };
        if failures.is_empty() {
            self.set_status(StackStatus::UpdateCompleteCleanupInProgress, None)?;
            self.cleanup_after_update().await?;
            self.stack.previous = None;
            return self.set_status(StackStatus::UpdateComplete, None);
        }
        let reason = self.failure_reason(&failures, "update");
        self.set_status(StackStatus::UpdateRollbackInProgress, Some(reason))?;
        self.rollback_update().await
    }

    /// After a successful update: old physical resources of replacements, and removed
    /// resources, are deleted (dependents first).
    pub(super) async fn cleanup_after_update(&mut self) -> CfnResult<()> {
        let replaced: Vec<(String, ResourceRecord)> = self
            .touched
            .iter()
            .filter_map(|(id, t)| match t {
                Touched::Replaced(old) => Some((id.clone(), old.clone())),
                _ => None,
            })
            .collect();
        for (id, old) in replaced {
            let policy = self
                .prepared
                .template
                .resources
                .get(&id)
                .and_then(|r| r.update_replace_policy.as_ref())
                .map(|p| p.0.clone());
            if policy.as_deref() == Some("Retain") {
                self.event(
                    &id,
                    old.physical_id.as_deref(),
                    &old.type_name,
                    ResourceStatus::DeleteSkipped,
                    None,
                )?;
                continue;
            }
            self.event(
                &id,
                old.physical_id.as_deref(),
                &old.type_name,
                ResourceStatus::DeleteInProgress,
                None,
            )?;
            let result = self.delete_future(old.clone()).await;
            let status = if result.error.is_none() {
                ResourceStatus::DeleteComplete
            } else {
                ResourceStatus::DeleteFailed
            };
            self.event(
                &id,
                old.physical_id.as_deref(),
                &old.type_name,
                status,
                result.error.as_deref(),
            )?;
        }
        let present: HashSet<String> = self.present().0.into_iter().collect();
        let removed: Vec<String> =
            self.live.keys().filter(|k| !present.contains(*k)).cloned().collect();
        if removed.is_empty() {
            return Ok(());
        }
        // Dependencies among removed resources come from the previous template.
        let previous = self.stack.previous.clone();
        let mut reverse: IndexMap<String, IndexSet<String>> =
            removed.iter().map(|i| (i.clone(), IndexSet::new())).collect();
        if let Some(prev) = previous
            && let Ok(old) = self.engine.prepare(
                &prev.template_body,
                &prev.parameters,
                &self.stack.name,
                &self.stack.stack_id,
                &self.stack.notification_arns,
            )
        {
            for (from, targets) in &old.graph.deps {
                for to in targets {
                    if reverse.contains_key(to) && reverse.contains_key(from) {
                        reverse[to].insert(from.clone());
                    }
                }
            }
            // Deletion policies of removed resources come from the previous template too.
            for id in &removed {
                if let Some(r) = old.template.resources.get(id) {
                    self.prepared.template.resources.insert(id.clone(), r.clone());
                }
            }
        }
        // A removed resource that fails to delete does not fail the update (AWS leaves it,
        // with its DELETE_FAILED event).
        self.delete_set(&removed, &reverse, true).await?;
        for id in &removed {
            self.prepared.template.resources.shift_remove(id);
            self.stack.creation_order.retain(|c| c != id);
        }
        Ok(())
    }
}

/// A node without positions, to compare template fragments.
fn strip_spans(node: &cfn_template::Node) -> Json {
    use cfn_template::Kind;
    match &node.kind {
        Kind::Null => Json::Null,
        Kind::Bool(b) => Json::Bool(*b),
        Kind::Number(n) | Kind::String(n) => Json::String(n.clone()),
        Kind::Seq(items) => Json::Array(items.iter().map(strip_spans).collect()),
        Kind::Map(m) => {
            Json::Object(m.iter().map(|e| (e.key.clone(), strip_spans(&e.value))).collect())
        }
    }
}
