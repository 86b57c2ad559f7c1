//! Stack operations as they run: create (with rollback), update (with cleanup and rollback),
//! delete. Each runs as one background task per stack; resources whose dependencies are done
//! start at once, so independent resources are created in parallel.

use std::cell::RefCell;
use std::collections::{BTreeSet, HashSet};
use std::sync::Arc;
use std::time::Duration;

use cfn_template::{Prepared, Resolver, Value};
use indexmap::{IndexMap, IndexSet};
use serde_json::{Value as Json, json};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use store::StoreError;

use crate::engine::{CfnError, CfnResult, Engine, ParamInput, StackInput, resource_key};
use crate::model::*;
use crate::props;
use crate::provider::{Provided, ResourceRequest};
use crate::signals::{SignalOutcome, parse_duration};

/// Resolves only exports (resources are not created yet): the resolver used to check a
/// template before an operation starts.
pub(crate) struct ImportsOnly<'a> {
    engine: &'a Engine,
    /// The first store failure met while resolving (a resolver answers with text only): the
    /// caller's error, not a template's.
    pub store_error: RefCell<Option<StoreError>>,
}

impl<'a> ImportsOnly<'a> {
    pub(crate) fn new(engine: &'a Engine) -> ImportsOnly<'a> {
        ImportsOnly { engine, store_error: RefCell::new(None) }
    }
}

impl Resolver for ImportsOnly<'_> {
    fn resource_ref(&self, _: &str) -> Result<Value, String> {
        Ok(Value::Unknown)
    }
    fn resource_attr(&self, _: &str, _: &str) -> Result<Value, String> {
        Ok(Value::Unknown)
    }
    fn import_value(&self, name: &str) -> Result<Value, String> {
        match self.engine.store.get::<ExportRecord>(EXPORTS, name) {
            Ok(Some(e)) => Ok(Value::String(e.value)),
            Ok(None) => Err(format!("No export named {name} found.")),
            Err(e) => {
                let message = format!("cannot read export {name}: {e}");
                self.store_error.borrow_mut().get_or_insert(e);
                Err(message)
            }
        }
    }
}

/// Resolves against the stack's live resources (and the region's exports).
pub(crate) struct Live<'a> {
    pub resources: &'a IndexMap<String, ResourceRecord>,
    pub imports: RefCell<BTreeSet<String>>,
    pub exports: ImportsOnly<'a>,
}

impl<'a> Live<'a> {
    pub(crate) fn new(
        engine: &'a Engine,
        resources: &'a IndexMap<String, ResourceRecord>,
    ) -> Live<'a> {
        Live {
            resources,
            imports: RefCell::new(BTreeSet::new()),
            exports: ImportsOnly::new(engine),
        }
    }

    /// The store failure met while resolving, if any.
    pub(crate) fn store_error(&self) -> Option<StoreError> {
        self.exports.store_error.take()
    }
}

impl Resolver for Live<'_> {
    fn resource_ref(&self, logical_id: &str) -> Result<Value, String> {
        Ok(match self.resources.get(logical_id).and_then(|r| r.physical_id.clone()) {
            Some(id) => Value::String(id),
            None => Value::Unknown,
        })
    }

    fn resource_attr(&self, logical_id: &str, attribute: &str) -> Result<Value, String> {
        let Some(r) = self.resources.get(logical_id).filter(|r| r.physical_id.is_some()) else {
            return Ok(Value::Unknown);
        };
        if let Some(v) = r.attributes.get(attribute) {
            return Ok(Value::from_json(v));
        }
        // A property path (GetAtt of a settable property returns its value).
        let mut current = &r.properties;
        for part in attribute.split('.') {
            match current.get(part) {
                Some(v) => current = v,
                None => {
                    return Err(format!(
                        "Template error: resource {logical_id} does not support attribute type {attribute} in Fn::GetAtt"
                    ));
                }
            }
        }
        Ok(Value::from_json(current))
    }

    fn import_value(&self, name: &str) -> Result<Value, String> {
        self.imports.borrow_mut().insert(name.to_string());
        self.exports.import_value(name)
    }
}

/// A resource's resolved properties and metadata, and the exports it imports.
type Resolved = (Json, Option<Json>, BTreeSet<String>);

/// How one resource's task ended.
struct TaskResult {
    provided: Option<Provided>,
    error: Option<String>,
    cancelled: bool,
}

/// What the scheduler does for one resource.
enum Begin {
    /// Nothing to do (unchanged in an update).
    Done,
    /// Started; the future reports back.
    Started(std::pin::Pin<Box<dyn std::future::Future<Output = TaskResult> + Send>>),
    /// Failed before anything was started (properties did not resolve).
    Failed(String),
}

/// What an update did to a resource, for cleanup and rollback.
#[derive(Clone, Debug)]
enum Touched {
    Created,
    UpdatedInPlace(ResourceRecord),
    Replaced(ResourceRecord),
}

pub(crate) struct Op {
    engine: Arc<Engine>,
    stack: StackRecord,
    prepared: Prepared,
    live: IndexMap<String, ResourceRecord>,
    cancel: CancellationToken,
    touched: IndexMap<String, Touched>,
}

// === API entry points ===

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
            no_echo: prepared
                .template
                .parameters
                .values()
                .filter(|p| p.no_echo)
                .map(|p| p.name.clone())
                .collect(),
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
        stack.no_echo = prepared
            .template
            .parameters
            .values()
            .filter(|p| p.no_echo)
            .map(|p| p.name.clone())
            .collect();
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
            let op = Op {
                engine: engine.clone(),
                stack,
                prepared,
                live,
                cancel: CancellationToken::new(),
                touched: IndexMap::new(),
            };
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
            let op = Op {
                engine: engine.clone(),
                stack,
                prepared,
                live,
                cancel: CancellationToken::new(),
                touched: IndexMap::new(),
            };
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

// === impl Op ===

impl Op {
    fn resource_event(
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
    fn event(
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
    fn set_status(&mut self, status: StackStatus, reason: Option<String>) -> CfnResult<()> {
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
    fn record(
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
    fn remove(&mut self, logical_id: &str, status: ResourceStatus) -> CfnResult<()> {
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

    fn forget(&mut self, logical_id: &str) -> CfnResult<()> {
        self.engine.store.delete(RESOURCES, &resource_key(&self.stack.stack_id, logical_id))?;
        self.live.shift_remove(logical_id);
        Ok(())
    }

    /// The store failed during the operation: it stops (running work is cancelled), and the
    /// stack is marked failed with the store's error as its reason once the store takes the
    /// write. Nothing the store did not take was announced.
    async fn abandon(&mut self, error: CfnError) {
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

    fn new_record(&self, logical_id: &str) -> ResourceRecord {
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

    /// The resources that exist under the decided conditions, with their dependencies.
    fn present(&self) -> (Vec<String>, IndexMap<String, IndexSet<String>>) {
        let graph = &self.prepared.graph;
        let ids: Vec<String> = self
            .prepared
            .template
            .resources
            .keys()
            .filter(|k| graph.deps.contains_key(*k))
            .cloned()
            .collect();
        (ids, graph.deps.clone())
    }

    /// Resolves a resource's properties and metadata against the live resources: the
    /// template's error as text, or the store's failure as the outer error.
    fn resolve(&self, logical_id: &str) -> CfnResult<Result<Resolved, String>> {
        let live = Live::new(&self.engine, &self.live);
        let resolved = self.resolve_with(logical_id, &live);
        if let Some(e) = live.store_error() {
            return Err(e.into());
        }
        Ok(resolved.map(|(props, metadata)| (props, metadata, live.imports.into_inner())))
    }

    fn resolve_with(
        &self,
        logical_id: &str,
        live: &Live<'_>,
    ) -> Result<(Json, Option<Json>), String> {
        let props =
            self.prepared.resolve_properties(logical_id, live, self.engine.ssm.as_ref()).map_err(
                |errors| errors.iter().map(|d| d.message.clone()).collect::<Vec<_>>().join("; "),
            )?;
        if let Some(path) = props.as_ref().and_then(|p| find_unknown(p, "")) {
            return Err(format!(
                "Properties of {logical_id} could not be resolved: {path} is not known yet"
            ));
        }
        let resource = &self.prepared.template.resources[logical_id];
        let metadata = match &resource.metadata {
            Some(node) => self
                .prepared
                .resolve_node(node, live, self.engine.ssm.as_ref())
                .map_err(|d| d.message)?,
            None => None,
        };
        if let Some(path) = metadata.as_ref().and_then(|m| find_unknown(m, "")) {
            return Err(format!(
                "Metadata of {logical_id} could not be resolved: {path} is not known yet"
            ));
        }
        let props = props.map(|v| v.to_json()).unwrap_or_else(|| json!({}));
        Ok((props, metadata.map(|m| m.to_json())))
    }

    /// Starts creating a resource (create operations, and resources new in an update).
    fn begin_create(&mut self, logical_id: &str, replacing: bool) -> CfnResult<Begin> {
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
    fn resolved_policy(&self, logical_id: &str, which: &str) -> Option<Json> {
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

    fn note_imports(&mut self, imports: BTreeSet<String>) {
        for i in imports {
            if !self.stack.imports.contains(&i) {
                self.stack.imports.push(i);
            }
        }
    }

    /// Runs `begin` over `ids` in dependency order, in parallel where possible. Returns the
    /// resources that failed, with their reasons (empty on success); a store failure stops
    /// everything (running work is cancelled and reported as far as the store allows) and is
    /// the error.
    async fn schedule(
        &mut self,
        ids: &[String],
        deps: &IndexMap<String, IndexSet<String>>,
        mut begin: impl FnMut(&mut Op, &str) -> CfnResult<Begin>,
        mut complete: impl FnMut(&mut Op, &str, Provided) -> CfnResult<()>,
        failed_status: ResourceStatus,
        cancelled_reason: &str,
    ) -> CfnResult<Vec<(String, String)>> {
        let wanted: HashSet<&String> = ids.iter().collect();
        let mut remaining: IndexSet<String> = ids.iter().cloned().collect();
        let mut done: HashSet<String> = HashSet::new();
        let mut running: JoinSet<(String, TaskResult)> = JoinSet::new();
        let mut failures: Vec<(String, String)> = Vec::new();
        let mut store_error: Option<CfnError> = None;
        loop {
            if failures.is_empty() && store_error.is_none() {
                let mut progressed = true;
                while progressed {
                    progressed = false;
                    let ready: Vec<String> = remaining
                        .iter()
                        .filter(|id| {
                            deps.get(*id).is_none_or(|d| {
                                d.iter().all(|x| !wanted.contains(x) || done.contains(x))
                            })
                        })
                        .cloned()
                        .collect();
                    for id in ready {
                        remaining.shift_remove(&id);
                        match begin(self, &id) {
                            Err(e) => {
                                first_error(&mut store_error, e);
                                break;
                            }
                            Ok(Begin::Done) => {
                                done.insert(id);
                                progressed = true;
                            }
                            Ok(Begin::Started(fut)) => {
                                running.spawn(async move { (id, fut.await) });
                            }
                            Ok(Begin::Failed(reason)) => {
                                let mut r = self
                                    .live
                                    .get(&id)
                                    .cloned()
                                    .unwrap_or_else(|| self.new_record(&id));
                                r.type_name =
                                    self.prepared.template.resources[&id].type_name.clone();
                                if let Err(e) = self.record(r, failed_status, Some(&reason)) {
                                    first_error(&mut store_error, e);
                                    break;
                                }
                                failures.push((id, reason));
                            }
                        }
                    }
                    if !failures.is_empty() || store_error.is_some() {
                        break;
                    }
                }
                if !failures.is_empty() || store_error.is_some() {
                    self.cancel.cancel();
                }
            }
            let Some(joined) = running.join_next().await else { break };
            let Ok((id, result)) = joined else { continue };
            let mut record = self.live.get(&id).cloned().unwrap_or_else(|| self.new_record(&id));
            if record.type_name.is_empty() {
                record.type_name = self
                    .prepared
                    .template
                    .resources
                    .get(&id)
                    .map(|r| r.type_name.clone())
                    .unwrap_or_default();
            }
            match (result.provided, result.error, result.cancelled) {
                (Some(provided), None, false) => match complete(self, &id, provided) {
                    Ok(()) => {
                        done.insert(id);
                    }
                    Err(e) => {
                        first_error(&mut store_error, e);
                        self.cancel.cancel();
                    }
                },
                (provided, error, cancelled) => {
                    if let Some(p) = provided {
                        // Something was made: keep it so that the rollback removes it.
                        apply_provided(&mut record, p);
                        self.note_touched(&id);
                    }
                    let reason = if cancelled {
                        cancelled_reason.to_string()
                    } else {
                        error.unwrap_or_default()
                    };
                    // A resource new in an update fails to create, not to update.
                    let status = if failed_status == ResourceStatus::UpdateFailed
                        && matches!(self.touched.get(&id), Some(Touched::Created))
                    {
                        ResourceStatus::CreateFailed
                    } else {
                        failed_status
                    };
                    if let Err(e) = self.record(record, status, Some(&reason)) {
                        first_error(&mut store_error, e);
                    }
                    if !cancelled {
                        failures.push((id, reason));
                    }
                    self.cancel.cancel();
                }
            }
        }
        match store_error {
            Some(e) => Err(e),
            None => Ok(failures),
        }
    }

    fn note_touched(&mut self, logical_id: &str) {
        self.touched.entry(logical_id.to_string()).or_insert(Touched::Created);
    }

    // === create ===

    async fn run_create(mut self, on_failure: String) {
        if let Err(e) = self.create(&on_failure).await {
            self.abandon(e).await;
        }
    }

    async fn create(&mut self, on_failure: &str) -> CfnResult<()> {
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
    fn failure_reason(&self, failures: &[(String, String)], verb: &str) -> String {
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
    fn finish_outputs(&mut self) -> CfnResult<Vec<(String, String)>> {
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
    fn importers(&self, export: &str) -> CfnResult<Vec<String>> {
        Ok(self
            .engine
            .describe_stacks(None)?
            .into_iter()
            .filter(|s| s.stack_id != self.stack.stack_id && s.imports.iter().any(|i| i == export))
            .map(|s| s.name)
            .collect())
    }

    // === delete ===

    async fn run_delete(mut self) {
        if let Err(e) = self.delete().await {
            self.abandon(e).await;
        }
    }

    async fn delete(&mut self) -> CfnResult<()> {
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
    async fn delete_all(&mut self, honour_retain: bool) -> CfnResult<bool> {
        let ids: Vec<String> = self.live.keys().cloned().collect();
        let reverse = self.reverse_deps(&ids);
        let failures = self.delete_set(&ids, &reverse, honour_retain).await?;
        Ok(failures.is_empty())
    }

    /// Reversed dependencies among `ids`: a resource waits for its dependents to be deleted.
    fn reverse_deps(&self, ids: &[String]) -> IndexMap<String, IndexSet<String>> {
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

    async fn delete_set(
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

    fn begin_delete(&mut self, logical_id: &str, honour_retain: bool) -> CfnResult<Begin> {
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

    fn delete_future(
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

    // === update ===

    fn begin_update(&mut self, logical_id: &str) -> CfnResult<Begin> {
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

    fn update_future(
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

    fn policies_changed(&self, logical_id: &str) -> bool {
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

    fn needs_replacement(&self, type_name: &str, old: &Json, new: &Json) -> bool {
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

    async fn run_update(mut self) {
        if let Err(e) = self.update().await {
            self.abandon(e).await;
        }
    }

    async fn update(&mut self) -> CfnResult<()> {
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
    async fn cleanup_after_update(&mut self) -> CfnResult<()> {
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

    /// A failed update returns to the previous template: in-place updates are reverted,
    /// replacements go back to the old physical resource, new resources are deleted.
    async fn rollback_update(&mut self) -> CfnResult<()> {
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

/// Keeps the first store error of an operation (the one that stops it); later ones, met while
/// it winds down, are only logged.
fn first_error(first: &mut Option<CfnError>, error: CfnError) {
    match first {
        Some(_) => tracing::warn!("the store failed again while an operation stopped: {error}"),
        None => *first = Some(error),
    }
}

struct SignalWait {
    /// Whose signals count (the resource itself, or a wait condition's handle).
    target: String,
    count: usize,
    timeout: Duration,
}

fn apply_provided(record: &mut ResourceRecord, provided: Provided) {
    if !provided.physical_id.is_empty() {
        record.physical_id = Some(provided.physical_id);
    }
    for (k, v) in provided.attributes {
        record.attributes.insert(k, v);
    }
    record.modelled = provided.modelled;
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

/// Equality that ignores the scalar's JSON type (`80` equals `"80"`), as CloudFormation does
/// when it compares property values.
pub(crate) fn loose_json_eq(a: &Json, b: &Json) -> bool {
    match (a, b) {
        (Json::Object(x), Json::Object(y)) => {
            x.len() == y.len()
                && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| loose_json_eq(v, w)))
        }
        (Json::Array(x), Json::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(v, w)| loose_json_eq(v, w))
        }
        (Json::String(s), Json::Number(n)) | (Json::Number(n), Json::String(s)) => {
            s == &n.to_string()
        }
        (Json::String(s), Json::Bool(b)) | (Json::Bool(b), Json::String(s)) => {
            s.eq_ignore_ascii_case(&b.to_string())
        }
        _ => a == b,
    }
}

/// The path (`Tags.0.Value`) of the first value left unknown in a resolved value: a reference
/// to a resource that has no physical id (its provider gave none). Unchecked, it would reach
/// the provider as a JSON null.
fn find_unknown(value: &Value, path: &str) -> Option<String> {
    let inside =
        |key: &str| if path.is_empty() { key.to_string() } else { format!("{path}.{key}") };
    match value {
        Value::Unknown => Some(if path.is_empty() { "the value".into() } else { path.into() }),
        Value::List(items) => {
            items.iter().enumerate().find_map(|(i, v)| find_unknown(v, &inside(&i.to_string())))
        }
        Value::Map(map) => map.iter().find_map(|(k, v)| find_unknown(v, &inside(k))),
        Value::Null | Value::Bool(_) | Value::Number(_) | Value::String(_) => None,
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

/// The inputs of a change set to an update, reused by ExecuteChangeSet.
pub(crate) fn change_set_input(cs: &ChangeSetRecord) -> StackInput {
    StackInput {
        stack_name: cs.stack_name.clone(),
        template_body: Some(cs.template_body.clone()),
        parameters: cs
            .parameters
            .iter()
            .map(|(k, v)| (k.clone(), ParamInput::Value(v.clone())))
            .collect(),
        disable_rollback: cs.disable_rollback,
        on_failure: None,
        tags: cs.tags.clone(),
        capabilities: cs.capabilities.clone(),
        notification_arns: Vec::new(),
        parent_id: None,
    }
}
