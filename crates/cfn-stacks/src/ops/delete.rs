//! Deletion: dependents first, `DeletionPolicy: Retain` skipped, exports in use blocking it.

use indexmap::{IndexMap, IndexSet};
use tokio_util::sync::CancellationToken;

use super::*;
use crate::engine::CfnResult;
use crate::model::*;
use crate::provider::{Provided, ResourceRequest};

impl Op {
    pub(super) async fn run_delete(mut self) {
        if let Err(e) = self.delete().await {
            self.abandon(e).await;
        }
    }

    pub(super) async fn delete(&mut self) -> CfnResult<()> {
        // Exports in use block the deletion.
        let mine: Vec<String> =
            self.stack.outputs.iter().filter_map(|o| o.export_name.clone()).collect();
        for name in &mine {
            let users = self.importers(name)?;
            if !users.is_empty() {
                let reason = format!(
                    "Export {name} cannot be deleted as it is in use by {}",
                    users.join(", ")
                );
                return self.set_status(StackStatus::DeleteFailed, Some(reason));
            }
        }
        if self.delete_all(true).await? {
            self.engine.store.batch(|b| {
                for name in &mine {
                    b.delete(EXPORTS, name)?;
                }
                Ok(())
            })?;
            self.stack.outputs.clear();
            self.set_status(StackStatus::DeleteComplete, None)
        } else {
            self.set_status(
                StackStatus::DeleteFailed,
                Some("The following resource(s) failed to delete.".into()),
            )
        }
    }

    /// Deletes every live resource, dependents first. Retain → DELETE_SKIPPED (stack deletion
    /// only; a rollback deletes, except `Retain` with no creation to undo). Returns success.
    pub(super) async fn delete_all(&mut self, honour_retain: bool) -> CfnResult<bool> {
        let ids: Vec<String> = self.live.keys().cloned().collect();
        let reverse = self.reverse_deps(&ids);
        let failures = self.delete_set(&ids, &reverse, honour_retain).await?;
        Ok(failures.is_empty())
    }

    /// Reversed dependencies among `ids`: a resource waits for its dependents to be deleted.
    pub(super) fn reverse_deps(&self, ids: &[String]) -> IndexMap<String, IndexSet<String>> {
        let mut reverse: IndexMap<String, IndexSet<String>> =
            ids.iter().map(|i| (i.clone(), IndexSet::new())).collect();
        let graph = &self.prepared.graph;
        let mut known = false;
        for (from, targets) in &graph.deps {
            for to in targets {
                if reverse.contains_key(to) && reverse.contains_key(from) {
                    reverse[to].insert(from.clone());
                    known = true;
                }
            }
        }
        if !known {
            // Without a usable template: the reverse of the creation order, one at a time.
            let order: Vec<&String> =
                self.stack.creation_order.iter().filter(|i| reverse.contains_key(*i)).collect();
            for pair in order.windows(2) {
                reverse[pair[0]].insert(pair[1].clone());
            }
        }
        reverse
    }

    pub(super) async fn delete_set(
        &mut self,
        ids: &[String],
        reverse: &IndexMap<String, IndexSet<String>>,
        honour_retain: bool,
    ) -> CfnResult<Vec<(String, String)>> {
        self.cancel = CancellationToken::new();
        self.schedule(
            ids,
            reverse,
            |op, id| op.begin_delete(id, honour_retain),
            |op, id, _| op.remove(id, ResourceStatus::DeleteComplete),
            ResourceStatus::DeleteFailed,
            "Resource deletion cancelled",
        )
        .await
    }

    pub(super) fn begin_delete(
        &mut self,
        logical_id: &str,
        honour_retain: bool,
    ) -> CfnResult<Begin> {
        let Some(record) = self.live.get(logical_id).cloned() else { return Ok(Begin::Done) };
        let policy = self
            .prepared
            .template
            .resources
            .get(logical_id)
            .and_then(|r| r.deletion_policy.as_ref())
            .map(|(p, _)| p.clone());
        if honour_retain && policy.as_deref() == Some("Retain") {
            self.remove(logical_id, ResourceStatus::DeleteSkipped)?;
            return Ok(Begin::Done);
        }
        self.event(
            logical_id,
            record.physical_id.as_deref(),
            &record.type_name,
            ResourceStatus::DeleteInProgress,
            None,
        )?;
        if record.physical_id.is_none() {
            self.remove(logical_id, ResourceStatus::DeleteComplete)?;
            return Ok(Begin::Done);
        }
        Ok(Begin::Started(self.delete_future(record)))
    }

    pub(super) fn delete_future(
        &self,
        record: ResourceRecord,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = TaskResult> + Send>> {
        let engine = self.engine.clone();
        let stack_id = self.stack.stack_id.clone();
        let stack_name = self.stack.name.clone();
        Box::pin(async move {
            let account = engine.config.account.clone();
            let request = ResourceRequest {
                stack_id: &stack_id,
                stack_name: &stack_name,
                logical_id: &record.logical_id,
                type_name: &record.type_name,
                properties: &record.properties,
                metadata: record.metadata.as_ref(),
                account: &account,
                update_policy: None,
                creation_policy: None,
                signals: &engine.signals,
            };
            match engine.providers.get(&record.type_name).delete(&request, &record).await {
                Ok(()) => TaskResult {
                    provided: Some(Provided::default()),
                    error: None,
                    cancelled: false,
                },
                Err(e) => TaskResult { provided: None, error: Some(e.0), cancelled: false },
            }
        })
    }
}
