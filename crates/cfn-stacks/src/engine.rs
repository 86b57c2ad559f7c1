//! The engine: CloudFormation's API operations over the store. Each mutating call checks its
//! input the way AWS does, records the new state, and starts the operation in the background
//! (see `ops`), returning at once as the AWS API does.

use std::collections::HashSet;
use std::sync::{Arc, Weak};

use aws_ids::Account;
use cfn_template::{Analysis, Mode, Options, ParameterStore, Prepared, Pseudo, analyze};
use clock::Clock;
use indexmap::IndexMap;
use parking_lot::Mutex;
use store::{Batch, Store, StoreError, StoreResult};
use tokio::sync::broadcast;
use tokio_util::task::TaskTracker;

use crate::model::*;
use crate::provider::Providers;
use crate::signals::Signals;

/// Errors of CloudFormation API calls, with AWS's error codes.
#[derive(Debug, thiserror::Error)]
pub enum CfnError {
    #[error("{0}")]
    Validation(String),
    #[error("Stack [{0}] already exists")]
    AlreadyExists(String),
    #[error("{0}")]
    ChangeSetNotFound(String),
    #[error("{0}")]
    InvalidChangeSetStatus(String),
    #[error("{0}")]
    InsufficientCapabilities(String),
    #[error("{0}")]
    TokenAlreadyExists(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl CfnError {
    /// The AWS error code.
    pub fn code(&self) -> &'static str {
        match self {
            CfnError::Validation(_) => "ValidationError",
            CfnError::AlreadyExists(_) => "AlreadyExistsException",
            CfnError::ChangeSetNotFound(_) => "ChangeSetNotFound",
            CfnError::InvalidChangeSetStatus(_) => "InvalidChangeSetStatus",
            CfnError::InsufficientCapabilities(_) => "InsufficientCapabilitiesException",
            CfnError::TokenAlreadyExists(_) => "TokenAlreadyExistsException",
            CfnError::Store(_) => "InternalFailure",
        }
    }

    /// Whether the caller is at fault (HTTP 400) rather than the service (500).
    pub fn is_client_error(&self) -> bool {
        !matches!(self, CfnError::Store(_))
    }
}

pub type CfnResult<T> = Result<T, CfnError>;

/// Reads a nested stack's `TemplateURL` (local files, and URLs the overrides file maps).
pub type TemplateLoader = Arc<dyn Fn(&str) -> Result<String, String> + Send + Sync>;

/// What exists in the account: CloudFormation checks the values of AWS-specific parameter
/// types (`AWS::EC2::Subnet::Id`, `List<AWS::EC2::SecurityGroup::Id>`, ...) against it before
/// a stack operation starts.
pub trait AccountResources: Send + Sync {
    /// Whether `value` names an existing resource of the parameter type `ty` (the element
    /// type for lists); `Ok(None)` for a type it does not keep.
    fn exists(&self, ty: &str, value: &str) -> Result<Option<bool>, StoreError>;
}

pub struct EngineConfig {
    pub account: Account,
    /// The account's resources, for AWS-specific parameter types (`None`: not checked).
    pub account_resources: Option<Arc<dyn AccountResources>>,
    /// Where the API listens (wait-condition handle URLs point there).
    pub api_endpoint: String,
    pub template_loader: TemplateLoader,
}

impl Default for EngineConfig {
    fn default() -> EngineConfig {
        EngineConfig {
            account: Account::default(),
            account_resources: None,
            api_endpoint: "http://127.0.0.1:4566".into(),
            template_loader: Arc::new(crate::nested::load_local_template),
        }
    }
}

/// A parameter as given to CreateStack/UpdateStack/CreateChangeSet.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ParamInput {
    Value(String),
    UsePrevious,
}

#[derive(Clone, Debug, Default)]
pub struct StackInput {
    pub stack_name: String,
    /// `None` with UpdateStack means UsePreviousTemplate.
    pub template_body: Option<String>,
    pub parameters: IndexMap<String, ParamInput>,
    pub disable_rollback: bool,
    /// `ROLLBACK` (default), `DELETE` or `DO_NOTHING`.
    pub on_failure: Option<String>,
    pub tags: IndexMap<String, String>,
    pub capabilities: Vec<String>,
    pub notification_arns: Vec<String>,
    pub parent_id: Option<String>,
}

#[derive(Clone, Debug)]
pub struct ChangeSetInput {
    pub stack: StackInput,
    pub change_set_name: String,
    /// CREATE or UPDATE.
    pub change_set_type: String,
    pub description: Option<String>,
}

/// What ValidateTemplate returns.
#[derive(Clone, Debug)]
pub struct TemplateSummary {
    pub description: Option<String>,
    pub parameters: Vec<(String, Option<String>, bool, Option<String>)>,
    /// For GetTemplateSummary: each parameter's type and allowed values.
    pub parameter_types: Vec<(String, Vec<String>)>,
    pub resource_types: Vec<String>,
    pub capabilities: Vec<String>,
    pub capabilities_reason: Option<String>,
}

pub struct Engine {
    pub(crate) store: Arc<Store>,
    pub(crate) clock: Clock,
    pub(crate) config: EngineConfig,
    pub(crate) providers: Providers,
    pub(crate) ssm: Arc<dyn ParameterStore + Send + Sync>,
    pub(crate) events: broadcast::Sender<StackEvent>,
    pub(crate) busy: Mutex<HashSet<String>>,
    /// Woken whenever an operation ends (a stack is released).
    pub(crate) released: tokio::sync::Notify,
    pub signals: Arc<Signals>,
    pub(crate) tracker: TaskTracker,
    pub(crate) me: Weak<Engine>,
}

impl Engine {
    pub fn new(
        store: Arc<Store>,
        clock: Clock,
        config: EngineConfig,
        providers: Providers,
        ssm: Arc<dyn ParameterStore + Send + Sync>,
    ) -> Arc<Engine> {
        let (events, _) = broadcast::channel(4096);
        Arc::new_cyclic(|me| Engine {
            store,
            clock,
            config,
            providers,
            ssm,
            events,
            busy: Mutex::new(HashSet::new()),
            released: tokio::sync::Notify::new(),
            signals: Arc::default(),
            tracker: TaskTracker::new(),
            me: me.clone(),
        })
    }

    pub fn account(&self) -> &Account {
        &self.config.account
    }

    pub fn clock(&self) -> &Clock {
        &self.clock
    }

    /// Reads a template from a `TemplateURL` (local files, and URLs the overrides file maps).
    pub fn load_template(&self, url: &str) -> Result<String, String> {
        (self.config.template_loader)(url)
    }

    /// Live stack events, as they happen.
    pub fn subscribe(&self) -> broadcast::Receiver<StackEvent> {
        self.events.subscribe()
    }

    /// After a restart: operations that were running when Cumulo stopped cannot resume; their
    /// stacks are marked failed (with the resources' last known state kept), as AWS would mark
    /// an operation it could not finish.
    pub fn recover(&self) -> CfnResult<usize> {
        let mut n = 0;
        for (_, mut stack) in self.store.list::<StackRecord>(STACKS, "")? {
            let Some(failed) = stack.status.interrupted() else { continue };
            let reason = "Cumulo stopped while this operation was running".to_string();
            stack.status = failed;
            stack.status_reason = Some(reason.clone());
            self.save_stack_with_event(&stack, Some(&reason))?;
            n += 1;
        }
        Ok(n)
    }

    /// Waits for running operations to end, for at most `limit`; operations still running
    /// then are abandoned (a restart marks their stacks failed).
    ///
    /// `limit` is a *real* duration, not an AWS one: it is how long a region's shutdown may
    /// keep the person who pressed Ctrl-C waiting, whatever the time scale. It still goes
    /// through the clock (as the AWS duration it stands for), so paused-time tests see it.
    pub async fn drain(&self, limit: std::time::Duration) {
        self.tracker.close();
        let _ = self.clock.timeout(self.clock.aws_duration(limit), self.tracker.wait()).await;
        self.tracker.reopen();
    }

    // === lookups ===

    /// A stack by name (not deleted) or by stack id (deleted ones too).
    pub fn find_stack(&self, name_or_id: &str) -> CfnResult<StackRecord> {
        self.lookup_stack(name_or_id)?.ok_or_else(|| {
            CfnError::Validation(format!("Stack with id {name_or_id} does not exist"))
        })
    }

    /// Like [`Engine::find_stack`], with `None` for a stack that does not exist (a store
    /// failure stays an error).
    pub fn lookup_stack(&self, name_or_id: &str) -> CfnResult<Option<StackRecord>> {
        if name_or_id.starts_with("arn:") {
            return Ok(self.store.get::<StackRecord>(STACKS, name_or_id)?);
        }
        Ok(self
            .store
            .list::<StackRecord>(STACKS, "")?
            .into_iter()
            .map(|(_, s)| s)
            .filter(|s| s.name == name_or_id && s.status != StackStatus::DeleteComplete)
            .max_by(|a, b| a.creation_time.cmp(&b.creation_time)))
    }

    /// DescribeStacks: one stack, or every stack that is not deleted.
    pub fn describe_stacks(&self, name_or_id: Option<&str>) -> CfnResult<Vec<StackRecord>> {
        match name_or_id {
            Some(n) => Ok(vec![self.find_stack(n)?]),
            None => {
                let mut stacks: Vec<StackRecord> = self
                    .store
                    .list::<StackRecord>(STACKS, "")?
                    .into_iter()
                    .map(|(_, s)| s)
                    .filter(|s| s.status != StackStatus::DeleteComplete)
                    .collect();
                stacks.sort_by(|a, b| b.creation_time.cmp(&a.creation_time));
                Ok(stacks)
            }
        }
    }

    /// ListStacks: every stack (deleted ones too), optionally filtered by status.
    pub fn list_stacks(&self, statuses: &[StackStatus]) -> CfnResult<Vec<StackRecord>> {
        let mut stacks: Vec<StackRecord> = self
            .store
            .list::<StackRecord>(STACKS, "")?
            .into_iter()
            .map(|(_, s)| s)
            .filter(|s| statuses.is_empty() || statuses.contains(&s.status))
            .collect();
        stacks.sort_by(|a, b| b.creation_time.cmp(&a.creation_time));
        Ok(stacks)
    }

    /// DescribeStackEvents: newest first.
    pub fn stack_events(&self, name_or_id: &str) -> CfnResult<Vec<StackEvent>> {
        let stack = self.find_stack(name_or_id)?;
        let mut events: Vec<StackEvent> = self
            .store
            .read_log::<StackEvent>(EVENTS, &stack.stack_id, 0)?
            .into_iter()
            .map(|(_, e)| e)
            .collect();
        events.reverse();
        Ok(events)
    }

    /// The stack's resources in template order of creation.
    pub fn stack_resources(&self, name_or_id: &str) -> CfnResult<Vec<ResourceRecord>> {
        let stack = self.find_stack(name_or_id)?;
        self.resources_of(&stack.stack_id)
    }

    pub(crate) fn resources_of(&self, stack_id: &str) -> CfnResult<Vec<ResourceRecord>> {
        Ok(self
            .store
            .list::<ResourceRecord>(RESOURCES, &format!("{stack_id}|"))?
            .into_iter()
            .map(|(_, r)| r)
            .collect())
    }

    /// DescribeStackResource.
    pub fn stack_resource(&self, name_or_id: &str, logical_id: &str) -> CfnResult<ResourceRecord> {
        let stack = self.find_stack(name_or_id)?;
        self.store
            .get::<ResourceRecord>(RESOURCES, &resource_key(&stack.stack_id, logical_id))?
            .ok_or_else(|| {
                CfnError::Validation(format!(
                    "Resource {logical_id} does not exist for stack {}",
                    stack.name
                ))
            })
    }

    /// The stack and resource that own a physical id (DescribeStackResources by PhysicalResourceId).
    pub fn find_by_physical_id(&self, physical_id: &str) -> CfnResult<Option<ResourceRecord>> {
        Ok(self
            .store
            .list::<ResourceRecord>(RESOURCES, "")?
            .into_iter()
            .map(|(_, r)| r)
            .find(|r| r.physical_id.as_deref() == Some(physical_id)))
    }

    pub fn list_exports(&self) -> CfnResult<Vec<ExportRecord>> {
        Ok(self.store.list::<ExportRecord>(EXPORTS, "")?.into_iter().map(|(_, e)| e).collect())
    }

    /// Stacks that import `export_name` (ListImports).
    pub fn list_imports(&self, export_name: &str) -> CfnResult<Vec<String>> {
        if self.store.get::<ExportRecord>(EXPORTS, export_name)?.is_none() {
            return Err(CfnError::Validation(format!("Export '{export_name}' does not exist.")));
        }
        Ok(self
            .describe_stacks(None)?
            .into_iter()
            .filter(|s| s.imports.iter().any(|i| i == export_name))
            .map(|s| s.name)
            .collect())
    }

    // === validation ===

    /// Analyzes a template for a stack operation (CreateStack mode: every parameter needs a value).
    pub(crate) fn prepare(
        &self,
        body: &str,
        parameters: &IndexMap<String, String>,
        stack_name: &str,
        stack_id: &str,
        notification_arns: &[String],
    ) -> CfnResult<Prepared> {
        let pseudo = Pseudo {
            region: self.config.account.region.clone(),
            account_id: self.config.account.account_id.clone(),
            partition: self.config.account.partition.clone(),
            url_suffix: "amazonaws.com".into(),
            stack_name: Some(stack_name.into()),
            stack_id: Some(stack_id.into()),
            notification_arns: notification_arns.to_vec(),
        };
        let resolver = crate::ops::ImportsOnly::new(self);
        let options = Options {
            parameters: parameters.clone(),
            mode: Mode::Resolve,
            pseudo,
            store: self.ssm.as_ref(),
            resolver: &resolver,
        };
        let analysis = analyze(body, &options);
        if let Some(e) = resolver.store_error.take() {
            return Err(e.into());
        }
        let prepared = into_prepared(analysis)?;
        self.check_account_parameters(&prepared)?;
        Ok(prepared)
    }

    /// AWS-specific parameter values must name what exists, as CloudFormation checks them.
    fn check_account_parameters(&self, prepared: &Prepared) -> CfnResult<()> {
        let Some(account) = &self.config.account_resources else { return Ok(()) };
        for (name, param) in &prepared.template.parameters {
            let (ty, list) = match &param.ty {
                cfn_template::ParamType::Aws(t) => (*t, false),
                cfn_template::ParamType::AwsList(t) => (*t, true),
                cfn_template::ParamType::Ssm(inner) => match inner.as_ref() {
                    cfn_template::ParamType::Aws(t) => (*t, false),
                    cfn_template::ParamType::AwsList(t) => (*t, true),
                    _ => continue,
                },
                _ => continue,
            };
            let text = prepared
                .parameters
                .resolved
                .get(name)
                .or_else(|| prepared.parameters.given.get(name))
                .cloned()
                .unwrap_or_default();
            let values: Vec<&str> = if list {
                text.split(',').map(str::trim).filter(|v| !v.is_empty()).collect()
            } else {
                vec![text.as_str()].into_iter().filter(|v| !v.is_empty()).collect()
            };
            for value in values {
                if account.exists(ty, value)? == Some(false) {
                    return Err(CfnError::Validation(format!(
                        "Parameter validation failed: parameter value {value} for parameter name {name} does not exist"
                    )));
                }
            }
        }
        Ok(())
    }

    /// ValidateTemplate.
    pub fn validate_template(&self, body: &str) -> CfnResult<TemplateSummary> {
        let store = self.ssm.as_ref();
        let options = Options {
            pseudo: Pseudo { region: self.config.account.region.clone(), ..Pseudo::default() },
            ..Options::validate(store)
        };
        let analysis = analyze(body, &options);
        let prepared = into_prepared(analysis)?;
        let t = &prepared.template;
        let (capabilities, reason) = required_capabilities(&prepared);
        Ok(TemplateSummary {
            description: t.description.clone(),
            parameters: t
                .parameters
                .values()
                .map(|p| {
                    let default = p.default.as_ref().and_then(|d| d.scalar_text());
                    (p.name.clone(), default, p.no_echo, p.description.clone())
                })
                .collect(),
            parameter_types: t
                .parameters
                .values()
                .map(|p| {
                    (
                        p.type_name.clone(),
                        p.allowed_values.as_ref().map(|(v, _)| v.clone()).unwrap_or_default(),
                    )
                })
                .collect(),
            resource_types: {
                let mut types: Vec<String> =
                    t.resources.values().map(|r| r.type_name.clone()).collect();
                types.sort();
                types.dedup();
                types
            },
            capabilities,
            capabilities_reason: reason,
        })
    }

    /// Parameter values for an operation: given, previous (UsePreviousValue), or default.
    pub(crate) fn merge_parameters(
        &self,
        body: &str,
        given: &IndexMap<String, ParamInput>,
        previous: Option<&StackRecord>,
    ) -> CfnResult<IndexMap<String, String>> {
        let mut out = IndexMap::new();
        for (k, v) in given {
            match v {
                ParamInput::Value(v) => {
                    out.insert(k.clone(), v.clone());
                }
                ParamInput::UsePrevious => match previous.and_then(|p| p.parameters.get(k)) {
                    Some(v) => {
                        out.insert(k.clone(), v.clone());
                    }
                    None => {
                        return Err(CfnError::Validation(format!(
                            "Invalid input for parameter key {k}. Cannot specify usePreviousValue as true for a parameter key not in the previous template"
                        )));
                    }
                },
            }
        }
        // Parameters the new template declares that were given before and not now keep their
        // previous value only when asked (AWS: otherwise the default applies).
        let _ = body;
        Ok(out)
    }

    pub(crate) fn check_capabilities(
        &self,
        prepared: &Prepared,
        given: &[String],
    ) -> CfnResult<()> {
        let (needed, _) = required_capabilities(prepared);
        let named = needed.iter().any(|c| c == "CAPABILITY_NAMED_IAM");
        let ok = if named {
            given.iter().any(|c| c == "CAPABILITY_NAMED_IAM")
        } else if needed.is_empty() {
            true
        } else {
            given.iter().any(|c| c == "CAPABILITY_IAM" || c == "CAPABILITY_NAMED_IAM")
        };
        if !ok {
            let list = if named { "CAPABILITY_NAMED_IAM" } else { "CAPABILITY_IAM" };
            return Err(CfnError::InsufficientCapabilities(format!(
                "Requires capabilities : [{list}]"
            )));
        }
        Ok(())
    }

    // === events ===

    /// Records an event, then announces it: an event the store did not take is never
    /// broadcast.
    pub(crate) fn emit(&self, event: StackEvent) -> StoreResult<()> {
        self.store.append(EVENTS, &event.stack_id, &event)?;
        self.announce(event);
        Ok(())
    }

    /// Broadcasts a stored event (having no live subscriber is no error).
    pub(crate) fn announce(&self, event: StackEvent) {
        let _ = self.events.send(event);
    }

    /// Stores the stack and the event of its status together, then announces the event.
    pub(crate) fn save_stack_with_event(
        &self,
        stack: &StackRecord,
        reason: Option<&str>,
    ) -> StoreResult<()> {
        self.save_stack_with_event_and(stack, reason, |_| Ok(()))
    }

    /// [`Engine::save_stack_with_event`] with more writes (`also`) in the same transaction.
    pub(crate) fn save_stack_with_event_and(
        &self,
        stack: &StackRecord,
        reason: Option<&str>,
        also: impl FnOnce(&mut Batch<'_>) -> StoreResult<()>,
    ) -> StoreResult<()> {
        let event = self.stack_event(stack, stack.status, reason);
        self.store.batch(|b| {
            b.put(STACKS, &stack.stack_id, stack)?;
            b.append(EVENTS, &stack.stack_id, &event)?;
            also(b)
        })?;
        self.announce(event);
        Ok(())
    }

    /// Retries a store call on the clock until the store answers, for what must not be lost
    /// when no caller can be told (the end of a background operation). Gives up, saying so,
    /// after an hour of AWS time: a restart then recovers the stack.
    pub(crate) async fn retry_store<T, F: Future<Output = CfnResult<T>>>(
        &self,
        what: &str,
        mut f: impl FnMut() -> F,
    ) -> Option<T> {
        const PAUSE: std::time::Duration = std::time::Duration::from_secs(5);
        const ATTEMPTS: u32 = 720;
        for attempt in 1..=ATTEMPTS {
            match f().await {
                Ok(v) => return Some(v),
                Err(e) if attempt == 1 => {
                    tracing::error!("cannot {what}: {e}; retrying until the store answers")
                }
                Err(e) if attempt == ATTEMPTS => {
                    tracing::error!("cannot {what}: {e}; giving up (a restart recovers)")
                }
                Err(_) => {}
            }
            self.clock.sleep(PAUSE).await;
        }
        None
    }

    pub(crate) fn stack_event(
        &self,
        stack: &StackRecord,
        status: StackStatus,
        reason: Option<&str>,
    ) -> StackEvent {
        StackEvent {
            event_id: aws_ids::uuid(),
            stack_id: stack.stack_id.clone(),
            stack_name: stack.name.clone(),
            logical_id: stack.name.clone(),
            physical_id: Some(stack.stack_id.clone()),
            resource_type: "AWS::CloudFormation::Stack".into(),
            timestamp: clock::iso8601(self.clock.now()),
            status: status.into(),
            status_reason: reason.map(str::to_string),
            properties: None,
        }
    }

    pub(crate) fn now(&self) -> String {
        clock::iso8601(self.clock.now())
    }

    pub(crate) fn new_stack_id(&self, name: &str) -> String {
        self.config.account.arn("cloudformation", &format!("stack/{name}/{}", aws_ids::uuid()))
    }

    /// Marks a stack busy; errors if an operation is already running on it.
    pub(crate) fn claim(&self, stack: &StackRecord, verb: &str) -> CfnResult<()> {
        if !stack.status.is_terminal() || !self.busy.lock().insert(stack.stack_id.clone()) {
            return Err(CfnError::Validation(format!(
                "Stack:{} is in {} state and can not be {verb}.",
                stack.stack_id, stack.status
            )));
        }
        Ok(())
    }

    pub(crate) fn release(&self, stack_id: &str) {
        self.busy.lock().remove(stack_id);
        self.released.notify_waiters();
    }

    /// Waits until the stack reaches a terminal status; returns it.
    pub async fn wait_terminal(&self, stack_id: &str) -> CfnResult<StackRecord> {
        let mut events = self.subscribe();
        loop {
            let released = self.released.notified();
            tokio::pin!(released);
            released.as_mut().enable();
            let stack: StackRecord = self.store.get(STACKS, stack_id)?.ok_or_else(|| {
                CfnError::Validation(format!("Stack with id {stack_id} does not exist"))
            })?;
            if stack.status.is_terminal() && !self.busy.lock().contains(stack_id) {
                return Ok(stack);
            }
            tokio::select! {
                event = events.recv() => {
                    if let Err(broadcast::error::RecvError::Closed) = event {
                        return Ok(stack);
                    }
                }
                _ = &mut released => {}
            }
        }
    }

    /// SignalResource (cfn-signal).
    pub fn signal_resource(
        &self,
        name_or_id: &str,
        logical_id: &str,
        unique_id: &str,
        status: &str,
    ) -> CfnResult<()> {
        let stack = self.find_stack(name_or_id)?;
        let resource = self.stack_resource(&stack.stack_id, logical_id)?;
        let success = match status {
            "SUCCESS" => true,
            "FAILURE" => false,
            other => {
                return Err(CfnError::Validation(format!(
                    "Invalid signal status {other}; expected SUCCESS or FAILURE"
                )));
            }
        };
        if stack.status.is_terminal() && !self.busy.lock().contains(&stack.stack_id) {
            return Err(CfnError::Validation(format!(
                "Stack {} is in {} state and cannot be signaled",
                stack.name, stack.status
            )));
        }
        let reason = if success {
            format!("Received SUCCESS signal with UniqueId {unique_id}")
        } else {
            format!("Received FAILURE signal with UniqueId {unique_id}")
        };
        // A signal during an update (a rolling update's new instances) is to a resource being
        // updated, whatever its last recorded status.
        let updating = matches!(
            stack.status,
            StackStatus::UpdateInProgress
                | StackStatus::UpdateCompleteCleanupInProgress
                | StackStatus::UpdateRollbackInProgress
                | StackStatus::UpdateRollbackCompleteCleanupInProgress
        );
        let complete = matches!(
            resource.status,
            ResourceStatus::CreateComplete
                | ResourceStatus::UpdateComplete
                | ResourceStatus::DeleteComplete
        );
        let status =
            if updating && complete { ResourceStatus::UpdateInProgress } else { resource.status };
        self.emit(StackEvent {
            event_id: aws_ids::uuid(),
            stack_id: stack.stack_id.clone(),
            stack_name: stack.name.clone(),
            logical_id: logical_id.into(),
            physical_id: resource.physical_id.clone(),
            resource_type: resource.type_name.clone(),
            timestamp: self.now(),
            status: status.into(),
            status_reason: Some(reason),
            properties: None,
        })?;
        // Delivered once recorded: a signal whose event the store refused is an error the
        // sender retries.
        self.signals.signal(&stack.stack_id, logical_id, unique_id, success, "", "");
        Ok(())
    }

    /// A wait-condition handle signal (`cfn-signal URL` or a PUT to the handle URL).
    pub fn signal_wait_handle(
        &self,
        handle_url: &str,
        unique_id: &str,
        status: &str,
        reason: &str,
        data: &str,
    ) -> CfnResult<()> {
        let resource = self.find_by_physical_id(handle_url)?.ok_or_else(|| {
            CfnError::Validation(format!("No wait condition handle {handle_url}"))
        })?;
        self.signals.signal(
            &resource.stack_id,
            &resource.logical_id,
            unique_id,
            status == "SUCCESS",
            reason,
            data,
        );
        Ok(())
    }

    pub(crate) fn engine(&self) -> Arc<Engine> {
        // An `&Engine` only exists while the `Arc` does.
        self.me.upgrade().expect("engine alive")
    }
}

pub(crate) fn resource_key(stack_id: &str, logical_id: &str) -> String {
    format!("{stack_id}|{logical_id}")
}

/// The analysis as an operation's input: the prepared stack, or a ValidationError that carries
/// every error (one per line).
pub(crate) fn into_prepared(analysis: Analysis) -> CfnResult<Prepared> {
    let errors: Vec<String> = analysis
        .errors()
        .map(|d| {
            if d.span.start.line > 0 {
                format!("{} (line {}, column {})", d.message, d.span.start.line, d.span.start.col)
            } else {
                d.message.clone()
            }
        })
        .collect();
    if !errors.is_empty() {
        return Err(CfnError::Validation(errors.join("\n")));
    }
    analysis.stack.ok_or_else(|| {
        CfnError::Validation("Template format error: the template could not be read".into())
    })
}

/// Which IAM capabilities a template needs, and why.
fn required_capabilities(prepared: &Prepared) -> (Vec<String>, Option<String>) {
    const IAM: &[(&str, &str)] = &[
        ("AWS::IAM::Role", "RoleName"),
        ("AWS::IAM::InstanceProfile", "InstanceProfileName"),
        ("AWS::IAM::User", "UserName"),
        ("AWS::IAM::Group", "GroupName"),
        ("AWS::IAM::ManagedPolicy", "ManagedPolicyName"),
        ("AWS::IAM::Policy", ""),
        ("AWS::IAM::AccessKey", ""),
        ("AWS::IAM::UserToGroupAddition", ""),
    ];
    let mut iam = Vec::new();
    let mut named = false;
    for r in prepared.template.resources.values() {
        if let Some((_, name_prop)) = IAM.iter().find(|(t, _)| *t == r.type_name) {
            iam.push(r.name.clone());
            let has_name = !name_prop.is_empty()
                && r.properties
                    .as_ref()
                    .and_then(|p| p.as_map())
                    .is_some_and(|m| m.get(name_prop).is_some());
            named |= has_name;
        }
    }
    if iam.is_empty() {
        return (Vec::new(), None);
    }
    let cap = if named { "CAPABILITY_NAMED_IAM" } else { "CAPABILITY_IAM" };
    (
        vec![cap.to_string()],
        Some(format!("The following resource(s) require capabilities: [{}]", iam.join(", "))),
    )
}
