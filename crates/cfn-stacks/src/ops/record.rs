//! What an operation writes: events, the stack's status, resource records, each stored before
//! it is announced; and what happens when the store fails.

use indexmap::IndexMap;
use serde_json::json;

use super::*;
use crate::engine::{CfnError, CfnResult, resource_key};
use crate::model::*;

impl Op {
    pub(super) fn resource_event(
        &self,
        logical_id: &str,
        physical_id: Option<&str>,
        type_name: &str,
        status: ResourceStatus,
        reason: Option<&str>,
    ) -> StackEvent {
        StackEvent {
            event_id: aws_ids::uuid(),
            stack_id: self.stack.stack_id.clone(),
            stack_name: self.stack.name.clone(),
            logical_id: logical_id.into(),
            physical_id: physical_id.map(str::to_string),
            resource_type: type_name.into(),
            timestamp: self.engine.now(),
            status: status.into(),
            status_reason: reason.map(str::to_string),
            properties: None,
        }
    }

    /// Records and announces a resource event that changes no record.
    pub(super) fn event(
        &self,
        logical_id: &str,
        physical_id: Option<&str>,
        type_name: &str,
        status: ResourceStatus,
        reason: Option<&str>,
    ) -> CfnResult<()> {
        let event = self.resource_event(logical_id, physical_id, type_name, status, reason);
        Ok(self.engine.emit(event)?)
    }

    /// Records the stack's new status with its event, then announces it. When the store
    /// refuses, the stack keeps its last stored status (and the error ends the operation).
    pub(super) fn set_status(
        &mut self,
        status: StackStatus,
        reason: Option<String>,
    ) -> CfnResult<()> {
        let before = self.stack.clone();
        self.stack.status = status;
        self.stack.status_reason = reason.clone();
        if status == StackStatus::DeleteComplete {
            self.stack.deletion_time = Some(self.engine.now());
        }
        if let Err(e) = self.engine.save_stack_with_event(&self.stack, reason.as_deref()) {
            self.stack.status = before.status;
            self.stack.status_reason = before.status_reason;
            self.stack.deletion_time = before.deletion_time;
            return Err(e.into());
        }
        Ok(())
    }

    /// Records a resource's new state with its event (store, then live map and subscribers).
    pub(super) fn record(
        &mut self,
        mut r: ResourceRecord,
        status: ResourceStatus,
        reason: Option<&str>,
    ) -> CfnResult<()> {
        r.status = status;
        r.status_reason = reason.map(str::to_string);
        r.last_updated = self.engine.now();
        let event = self.resource_event(
            &r.logical_id,
            r.physical_id.as_deref(),
            &r.type_name,
            status,
            reason,
        );
        self.engine.store.batch(|b| {
            b.put(RESOURCES, &resource_key(&r.stack_id, &r.logical_id), &r)?;
            b.append(EVENTS, &r.stack_id, &event)?;
            Ok(())
        })?;
        self.engine.announce(event);
        self.live.insert(r.logical_id.clone(), r);
        Ok(())
    }

    /// Removes a resource from the stack with its last event (`DELETE_COMPLETE`, or
    /// `DELETE_SKIPPED` for one retained), in one write.
    pub(super) fn remove(&mut self, logical_id: &str, status: ResourceStatus) -> CfnResult<()> {
        let Some(r) = self.live.get(logical_id) else { return Ok(()) };
        let event =
            self.resource_event(logical_id, r.physical_id.as_deref(), &r.type_name, status, None);
        self.engine.store.batch(|b| {
            b.delete(RESOURCES, &resource_key(&self.stack.stack_id, logical_id))?;
            b.append(EVENTS, &self.stack.stack_id, &event)?;
            Ok(())
        })?;
        self.engine.announce(event);
        self.live.shift_remove(logical_id);
        Ok(())
    }

    pub(super) fn forget(&mut self, logical_id: &str) -> CfnResult<()> {
        self.engine.store.delete(RESOURCES, &resource_key(&self.stack.stack_id, logical_id))?;
        self.live.shift_remove(logical_id);
        Ok(())
    }

    /// The store failed during the operation: it stops (running work is cancelled), and the
    /// stack is marked failed with the store's error as its reason once the store takes the
    /// write. Nothing the store did not take was announced.
    pub(super) async fn abandon(&mut self, error: CfnError) {
        tracing::error!(
            "stack {}: the operation stops, the store failed: {error}",
            self.stack.name
        );
        self.cancel.cancel();
        let Some(failed) = self.stack.status.interrupted() else { return };
        self.stack.status = failed;
        self.stack.status_reason = Some(format!("The state store failed: {error}"));
        let (engine, stack) = (self.engine.clone(), self.stack.clone());
        let what = format!("record that stack {} failed", stack.name);
        engine
            .retry_store(&what, || {
                let saved = engine.save_stack_with_event(&stack, stack.status_reason.as_deref());
                std::future::ready(saved.map_err(Into::into))
            })
            .await;
    }

    pub(super) fn new_record(&self, logical_id: &str) -> ResourceRecord {
        let type_name = self
            .prepared
            .template
            .resources
            .get(logical_id)
            .map(|r| r.type_name.clone())
            .unwrap_or_default();
        ResourceRecord {
            stack_id: self.stack.stack_id.clone(),
            logical_id: logical_id.into(),
            physical_id: None,
            type_name,
            status: ResourceStatus::CreateInProgress,
            status_reason: None,
            properties: json!({}),
            attributes: IndexMap::new(),
            metadata: None,
            modelled: false,
            last_updated: self.engine.now(),
        }
    }
}
