//! The rollback of a failed update: back to the previous template, in-place updates reverted,
//! replacements returned to the old physical resource, new resources deleted.

use tokio_util::sync::CancellationToken;

use super::*;
use crate::engine::CfnResult;
use crate::model::*;

impl Op {
    /// A failed update returns to the previous template: in-place updates are reverted,
    /// replacements go back to the old physical resource, new resources are deleted.
    pub(super) async fn rollback_update(&mut self) -> CfnResult<()> {
        // The failure cancelled the update's other work; the rollback's own must run.
        self.cancel = CancellationToken::new();
        let touched: Vec<(String, Touched)> =
            self.touched.iter().rev().map(|(k, v)| (k.clone(), v.clone())).collect();
        let mut to_delete: Vec<ResourceRecord> = Vec::new();
        for (id, t) in touched {
            match t {
                Touched::Created => {
                    if let Some(r) = self.live.get(&id).cloned() {
                        to_delete.push(r);
                    }
                }
                Touched::Replaced(old) => {
                    if let Some(new) = self.live.get(&id).cloned()
                        && new.physical_id != old.physical_id
                    {
                        to_delete.push(new);
                    }
                    self.record(old, ResourceStatus::UpdateComplete, None)?;
                }
                Touched::UpdatedInPlace(old) => {
                    let Some(current) = self.live.get(&id).cloned() else { continue };
                    if loose_json_eq(&current.properties, &old.properties)
                        && current.status != ResourceStatus::UpdateFailed
                    {
                        continue;
                    }
                    self.event(
                        &id,
                        old.physical_id.as_deref(),
                        &old.type_name,
                        ResourceStatus::UpdateInProgress,
                        None,
                    )?;
                    let result = self.update_future(old.clone(), current).await;
                    let mut restored = old.clone();
                    match result.provided {
                        Some(p) => {
                            apply_provided(&mut restored, p);
                            self.record(restored, ResourceStatus::UpdateComplete, None)?;
                        }
                        None => {
                            // The resource did not change: it is still what it was.
                            let status = if result.error.is_some() {
                                ResourceStatus::UpdateFailed
                            } else {
                                ResourceStatus::UpdateComplete
                            };
                            self.record(restored, status, result.error.as_deref())?;
                        }
                    }
                }
            }
        }
        // Back to the previous template and parameters.
        if let Some(prev) = self.stack.previous.take() {
            self.stack.template_body = prev.template_body;
            self.stack.parameters = prev.parameters;
        }
        self.set_status(StackStatus::UpdateRollbackCompleteCleanupInProgress, None)?;
        for r in to_delete {
            self.event(
                &r.logical_id,
                r.physical_id.as_deref(),
                &r.type_name,
                ResourceStatus::DeleteInProgress,
                None,
            )?;
            let result = self.delete_future(r.clone()).await;
            let status = if result.error.is_none() {
                ResourceStatus::DeleteComplete
            } else {
                ResourceStatus::DeleteFailed
            };
            self.event(
                &r.logical_id,
                r.physical_id.as_deref(),
                &r.type_name,
                status,
                result.error.as_deref(),
            )?;
            if matches!(self.touched.get(&r.logical_id), Some(Touched::Created)) {
                self.forget(&r.logical_id)?;
                self.stack.creation_order.retain(|c| c != &r.logical_id);
            }
        }
        self.set_status(StackStatus::UpdateRollbackComplete, None)
    }
}
