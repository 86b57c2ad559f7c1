//! Nested stacks (`AWS::CloudFormation::Stack`): a child stack created, updated and deleted by
//! the parent's operations, its outputs the parent's `Outputs.X` attributes.

use std::sync::{Arc, Weak};

use async_trait::async_trait;
use indexmap::IndexMap;
use serde_json::Value as Json;

use crate::engine::{CfnError, Engine, ParamInput, StackInput};
use crate::model::{ResourceRecord, StackStatus};
use crate::provider::{Provided, ProviderError, ResourceProvider, ResourceRequest};

/// Reads a template from a local path or a `file://` URL.
pub fn load_local_template(url: &str) -> Result<String, String> {
    let path = url.strip_prefix("file://").unwrap_or(url);
    if path.starts_with("http://") || path.starts_with("https://") || path.starts_with("s3://") {
        return Err(format!(
            "TemplateURL {url} is not a local file; map it to one in the overrides file (templates: {{\"{url}\": ./local.yaml}})"
        ));
    }
    std::fs::read_to_string(path).map_err(|e| format!("cannot read TemplateURL {url}: {e}"))
}

pub struct NestedStacks {
    engine: std::sync::OnceLock<Weak<Engine>>,
}

impl NestedStacks {
    pub fn new() -> Arc<NestedStacks> {
        Arc::new(NestedStacks { engine: std::sync::OnceLock::new() })
    }

    /// Connects the provider to its engine (the engine holds the provider, so this comes after).
    pub fn attach(&self, engine: &Arc<Engine>) {
        let _ = self.engine.set(Arc::downgrade(engine));
    }

    fn engine(&self) -> Result<Arc<Engine>, ProviderError> {
        self.engine
            .get()
            .and_then(Weak::upgrade)
            .ok_or_else(|| ProviderError::new("nested stacks are not available"))
    }

    fn input(
        &self,
        engine: &Engine,
        request: &ResourceRequest<'_>,
        name: String,
    ) -> Result<StackInput, ProviderError> {
        let url = request
            .properties
            .get("TemplateURL")
            .and_then(Json::as_str)
            .ok_or_else(|| ProviderError::new("TemplateURL is required"))?;
        let body = (engine.config.template_loader)(url).map_err(ProviderError)?;
        let parameters: IndexMap<String, ParamInput> = request
            .properties
            .get("Parameters")
            .and_then(Json::as_object)
            .map(|m| {
                m.iter()
                    .map(|(k, v)| {
                        (
                            k.clone(),
                            ParamInput::Value(
                                v.as_str().map(str::to_string).unwrap_or_else(|| v.to_string()),
                            ),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();
        let parent =
            engine.lookup_stack(request.stack_id).map_err(|e| ProviderError::new(e.to_string()))?;
        Ok(StackInput {
            stack_name: name,
            template_body: Some(body),
            parameters,
            disable_rollback: false,
            on_failure: Some("ROLLBACK".into()),
            tags: IndexMap::new(),
            capabilities: parent.map(|p| p.capabilities).unwrap_or_default(),
            notification_arns: Vec::new(),
            parent_id: Some(request.stack_id.to_string()),
        })
    }

    fn provided(engine: &Engine, stack_id: &str) -> Result<Provided, ProviderError> {
        let stack = engine.find_stack(stack_id).map_err(|e| ProviderError::new(e.to_string()))?;
        let mut attributes = IndexMap::new();
        for o in &stack.outputs {
            attributes.insert(format!("Outputs.{}", o.key), Json::String(o.value.clone()));
        }
        attributes.insert("StackId".into(), Json::String(stack.stack_id.clone()));
        Ok(Provided { physical_id: stack.stack_id, attributes, modelled: false })
    }
}

#[async_trait]
impl ResourceProvider for NestedStacks {
    async fn create(&self, request: &ResourceRequest<'_>) -> Result<Provided, ProviderError> {
        let engine = self.engine()?;
        let name = aws_ids::physical_name(request.stack_name, request.logical_id, 128);
        let input = self.input(&engine, request, name)?;
        let id = engine.create_stack(input).map_err(|e| ProviderError::new(e.to_string()))?;
        let child =
            engine.wait_terminal(&id).await.map_err(|e| ProviderError::new(e.to_string()))?;
        if child.status != StackStatus::CreateComplete {
            return Err(ProviderError::new(format!(
                "Embedded stack {id} was not successfully created: {}",
                child.status_reason.unwrap_or_else(|| child.status.to_string())
            )));
        }
        NestedStacks::provided(&engine, &id)
    }

    async fn update(
        &self,
        request: &ResourceRequest<'_>,
        current: &ResourceRecord,
    ) -> Result<Provided, ProviderError> {
        let engine = self.engine()?;
        let id = current.physical_id.clone().unwrap_or_default();
        let mut input = self.input(&engine, request, id.clone())?;
        input.stack_name = id.clone();
        match engine.update_stack(input) {
            Ok(_) => {
                let child = engine
                    .wait_terminal(&id)
                    .await
                    .map_err(|e| ProviderError::new(e.to_string()))?;
                if child.status != StackStatus::UpdateComplete {
                    return Err(ProviderError::new(format!(
                        "Embedded stack {id} was not successfully updated. Currently in {}.",
                        child.status
                    )));
                }
            }
            Err(CfnError::Validation(m)) if m == "No updates are to be performed." => {}
            Err(e) => return Err(ProviderError::new(e.to_string())),
        }
        NestedStacks::provided(&engine, &id)
    }

    async fn delete(
        &self,
        _: &ResourceRequest<'_>,
        current: &ResourceRecord,
    ) -> Result<(), ProviderError> {
        let engine = self.engine()?;
        let Some(id) = &current.physical_id else { return Ok(()) };
        engine.delete_stack(id).map_err(|e| ProviderError::new(e.to_string()))?;
        let child =
            engine.wait_terminal(id).await.map_err(|e| ProviderError::new(e.to_string()))?;
        if child.status != StackStatus::DeleteComplete {
            return Err(ProviderError::new(format!(
                "Embedded stack {id} could not be deleted: {}",
                child.status_reason.unwrap_or_default()
            )));
        }
        Ok(())
    }
}
