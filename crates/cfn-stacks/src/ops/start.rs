//! The API calls that start operations (CreateStack, UpdateStack, DeleteStack): checked and
//! recorded here, then run in the background as an `Op`.

use cfn_template::Prepared;
use indexmap::IndexMap;

use super::*;
use crate::engine::{CfnError, CfnResult, Engine, StackInput};
use crate::model::*;

impl Engine {
    /// CreateStack.
    pub fn create_stack(&self, input: StackInput) -> CfnResult<String> {
        check_stack_name(&input.stack_name)?;
        if self.lookup_stack(&input.stack_name)?.is_some() {
            return Err(CfnError::AlreadyExists(input.stack_name));
        }
        let body = input.template_body.clone().ok_or_else(|| {
            CfnError::Validation("Either Template URL or Template Body must be specified.".into())
        })?;
        let stack_id = self.new_stack_id(&input.stack_name);
        let params = self.merge_parameters(&body, &input.parameters, None)?;
        let prepared =
            self.prepare(&body, &params, &input.stack_name, &stack_id, &input.notification_arns)?;
        self.check_capabilities(&prepared, &input.capabilities)?;
        let stack = self.new_stack_record(
            &input,
            stack_id.clone(),
            body,
            &prepared,
            StackStatus::CreateInProgress,
        );
        self.save_stack_with_event(&stack, Some("User Initiated"))?;
        self.busy.lock().insert(stack_id.clone());
        self.start(
            stack,
            prepared,
            IndexMap::new(),
            Kind::Create { on_failure: on_failure(&input) },
        );
        Ok(stack_id)
    }

    pub(crate) fn new_stack_record(
        &self,
        input: &StackInput,
        stack_id: String,
        body: String,
        prepared: &Prepared,
        status: StackStatus,
    ) -> StackRecord {
        StackRecord {
            stack_id,
            name: input.stack_name.clone(),
            status,
            status_reason: None,
            description: prepared.template.description.clone(),
            template_body: body,
            parameters: prepared.parameters.given.clone(),
            no_echo: prepared.no_echo(),
            outputs: Vec::new(),
            creation_time: self.now(),
            last_updated_time: None,
            deletion_time: None,
            disable_rollback: input.disable_rollback,
            tags: input.tags.clone(),
            capabilities: input.capabilities.clone(),
            notification_arns: input.notification_arns.clone(),
            parent_id: input.parent_id.clone(),
            previous: None,
            imports: Vec::new(),
            creation_order: Vec::new(),
        }
    }

    /// UpdateStack: computes the changes and applies them at once.
    pub fn update_stack(&self, input: StackInput) -> CfnResult<String> {
        let stack = self.find_stack(&input.stack_name)?;
        if matches!(
            stack.status,
            StackStatus::RollbackComplete
                | StackStatus::RollbackFailed
                | StackStatus::CreateFailed
                | StackStatus::DeleteFailed
                | StackStatus::ReviewInProgress
        ) {
            return Err(CfnError::Validation(format!(
                "Stack:{} is in {} state and can not be updated.",
                stack.stack_id, stack.status
            )));
        }
        let (body, params, prepared) = self.prepare_update(&stack, &input)?;
        let live = self.live_map(&stack.stack_id)?;
        if body == stack.template_body && params == stack.parameters && input.tags.is_empty() {
            return Err(CfnError::Validation("No updates are to be performed.".into()));
        }
        self.claim(&stack, "updated")?;
        self.begin_update(stack, body, prepared, live, &input, |_| Ok(()))
    }

    /// Turns the inputs of an update into the new template, parameters and prepared stack.
    pub(crate) fn prepare_update(
        &self,
        stack: &StackRecord,
        input: &StackInput,
    ) -> CfnResult<(String, IndexMap<String, String>, Prepared)> {
        let body = input.template_body.clone().unwrap_or_else(|| stack.template_body.clone());
        let params = self.merge_parameters(&body, &input.parameters, Some(stack))?;
        let prepared =
            self.prepare(&body, &params, &stack.name, &stack.stack_id, &input.notification_arns)?;
        self.check_capabilities(&prepared, &input.capabilities)?;
        Ok((body, prepared.parameters.given.clone(), prepared))
    }

    /// Starts an update of a claimed stack (released again if it cannot start); `also` is
    /// written with the stack's new status.
    pub(crate) fn begin_update(
        &self,
        mut stack: StackRecord,
        body: String,
        prepared: Prepared,
        live: IndexMap<String, ResourceRecord>,
        input: &StackInput,
        also: impl FnOnce(&mut store::Batch<'_>) -> store::StoreResult<()>,
    ) -> CfnResult<String> {
        stack.previous = Some(PreviousVersion {
            template_body: stack.template_body.clone(),
            parameters: stack.parameters.clone(),
        });
        stack.template_body = body;
        stack.parameters = prepared.parameters.given.clone();
        stack.description = prepared.template.description.clone();
        stack.no_echo = prepared.no_echo();
        if !input.tags.is_empty() {
            stack.tags = input.tags.clone();
        }
        if !input.capabilities.is_empty() {
            stack.capabilities = input.capabilities.clone();
        }
        stack.disable_rollback = input.disable_rollback;
        stack.status = StackStatus::UpdateInProgress;
        stack.status_reason = None;
        stack.last_updated_time = Some(self.now());
        if let Err(e) = self.save_stack_with_event_and(&stack, Some("User Initiated"), also) {
            self.release(&stack.stack_id);
            return Err(e.into());
        }
        let id = stack.stack_id.clone();
        self.start(stack, prepared, live, Kind::Update);
        Ok(id)
    }

    /// DeleteStack. Deleting a stack that does not exist succeeds, as on AWS.
    pub fn delete_stack(&self, name_or_id: &str) -> CfnResult<()> {
        let Some(stack) = self.lookup_stack(name_or_id)? else { return Ok(()) };
        if stack.status == StackStatus::DeleteComplete {
            return Ok(());
        }
        if stack.status == StackStatus::DeleteInProgress {
            return Ok(());
        }
        self.claim(&stack, "deleted")?;
        let stack_id = stack.stack_id.clone();
        let (stack, prepared, live) = match self.begin_delete_stack(stack) {
            Ok(started) => started,
            Err(e) => {
                self.release(&stack_id);
                return Err(e);
            }
        };
        let engine = self.engine();
        self.tracker.spawn(async move {
            let stack_id = stack.stack_id.clone();
            let op = Op::new(engine.clone(), stack, prepared, live);
            op.run_delete().await;
            engine.release(&stack_id);
        });
        Ok(())
    }

    /// Marks a claimed stack DELETE_IN_PROGRESS; returns what its deletion needs.
    fn begin_delete_stack(
        &self,
        mut stack: StackRecord,
    ) -> CfnResult<(StackRecord, Prepared, IndexMap<String, ResourceRecord>)> {
        // A template that can no longer be analyzed is deleted by the recorded creation order.
        let prepared = match self.prepare(
            &stack.template_body,
            &stack.parameters,
            &stack.name,
            &stack.stack_id,
            &stack.notification_arns,
        ) {
            Ok(p) => p,
            Err(CfnError::Store(e)) => return Err(e.into()),
            Err(_) => empty_prepared(),
        };
        let live = self.live_map(&stack.stack_id)?;
        stack.status = StackStatus::DeleteInProgress;
        stack.status_reason = None;
        self.save_stack_with_event(&stack, Some("User Initiated"))?;
        Ok((stack, prepared, live))
    }

    pub(crate) fn live_map(&self, stack_id: &str) -> CfnResult<IndexMap<String, ResourceRecord>> {
        Ok(self.resources_of(stack_id)?.into_iter().map(|r| (r.logical_id.clone(), r)).collect())
    }

    pub(crate) fn start_create(&self, stack: StackRecord, prepared: Prepared, on_failure: &str) {
        self.start(
            stack,
            prepared,
            IndexMap::new(),
            Kind::Create { on_failure: on_failure.into() },
        );
    }

    fn start(
        &self,
        stack: StackRecord,
        prepared: Prepared,
        live: IndexMap<String, ResourceRecord>,
        kind: Kind,
    ) {
        let engine = self.engine();
        self.tracker.spawn(async move {
            let stack_id = stack.stack_id.clone();
            let op = Op::new(engine.clone(), stack, prepared, live);
            match kind {
                Kind::Create { on_failure } => op.run_create(on_failure).await,
                Kind::Update => op.run_update().await,
            }
            engine.release(&stack_id);
        });
    }
}

enum Kind {
    Create { on_failure: String },
    Update,
}

fn on_failure(input: &StackInput) -> String {
    match (&input.on_failure, input.disable_rollback) {
        (Some(o), _) => o.clone(),
        (None, true) => "DO_NOTHING".into(),
        (None, false) => "ROLLBACK".into(),
    }
}

fn check_stack_name(name: &str) -> CfnResult<()> {
    let ok = !name.is_empty()
        && name.len() <= 128
        && name.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
    if !ok {
        return Err(CfnError::Validation(format!(
            "1 validation error detected: Value '{name}' at 'stackName' failed to satisfy constraint: Member must satisfy regular expression pattern: [a-zA-Z][-a-zA-Z0-9]*"
        )));
    }
    Ok(())
}

/// A stand-in for a template that can no longer be analyzed (deletion then goes by the
/// recorded creation order).
fn empty_prepared() -> Prepared {
    let store = std::collections::BTreeMap::new();
    let analysis = cfn_template::analyze("Resources: {}", &cfn_template::Options::validate(&store));
    let mut prepared = analysis.stack.expect("a template with no resources still parses");
    prepared.template.resources.clear();
    prepared
}
