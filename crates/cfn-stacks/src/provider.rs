//! The resource-provider interface every service implements, and the registry that picks the
//! provider of a type (the generic, schema-modelled provider when no service claims it).

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use aws_ids::Account;
use indexmap::IndexMap;
use serde_json::Value as Json;

use crate::generic::Generic;
use crate::model::ResourceRecord;

/// What a provider is asked to create, update or delete.
#[derive(Clone, Debug)]
pub struct ResourceRequest<'a> {
    pub stack_id: &'a str,
    pub stack_name: &'a str,
    pub logical_id: &'a str,
    pub type_name: &'a str,
    /// The resolved properties (a JSON object; `{}` when the template gives none).
    pub properties: &'a Json,
    /// The resolved `Metadata` of the resource.
    pub metadata: Option<&'a Json>,
    pub account: &'a Account,
    /// The resolved `UpdatePolicy` (rolling updates of Auto Scaling groups).
    pub update_policy: Option<&'a Json>,
    /// The resolved `CreationPolicy`.
    pub creation_policy: Option<&'a Json>,
    /// The stack's resource signals (a rolling update waits for its new instances' signals).
    pub signals: &'a std::sync::Arc<crate::signals::Signals>,
}

/// What a provider made: the physical id (what `Ref` returns) and the `Fn::GetAtt` values.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Provided {
    pub physical_id: String,
    pub attributes: IndexMap<String, Json>,
    /// True when nothing runs behind the resource locally (schema-modelled).
    pub modelled: bool,
}

/// A provider's failure; the message becomes the resource event's reason.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ProviderError(pub String);

impl ProviderError {
    pub fn new(message: impl Into<String>) -> ProviderError {
        ProviderError(message.into())
    }

    /// A service's API error as CloudFormation reports it:
    /// `MESSAGE (Service: S, Status Code: 400, Error Code: CODE)` (500 for InternalFailure).
    pub fn service(service: &str, code: &str, message: impl std::fmt::Display) -> ProviderError {
        let status = if code == "InternalFailure" { 500 } else { 400 };
        ProviderError(format!(
            "{message} (Service: {service}, Status Code: {status}, Error Code: {code})"
        ))
    }
}

/// A service's implementation of a resource type.
#[async_trait]
pub trait ResourceProvider: Send + Sync {
    async fn create(&self, request: &ResourceRequest<'_>) -> Result<Provided, ProviderError>;

    /// Updates a resource in place (no replacement). The default re-creates the record's
    /// attributes the way `create` would, keeping the physical id.
    async fn update(
        &self,
        request: &ResourceRequest<'_>,
        current: &ResourceRecord,
    ) -> Result<Provided, ProviderError> {
        let mut provided = self.create(request).await?;
        if let Some(id) = &current.physical_id {
            provided.physical_id = id.clone();
        }
        Ok(provided)
    }

    async fn delete(
        &self,
        request: &ResourceRequest<'_>,
        current: &ResourceRecord,
    ) -> Result<(), ProviderError>;

    /// Top-level properties whose change forces replacement, beyond the schema's
    /// `createOnlyProperties` (for the few types where AWS's documentation says more).
    fn replacement_properties(&self, _type_name: &str) -> &[&str] {
        &[]
    }

    /// Whether this update replaces the resource because of its `UpdatePolicy` (an Auto
    /// Scaling group with `AutoScalingReplacingUpdate: {WillReplace: true}`).
    fn replaces_on_update(
        &self,
        _type_name: &str,
        _update_policy: Option<&Json>,
        _old: &Json,
        _new: &Json,
    ) -> bool {
        false
    }
}

/// The providers of a region, by resource type.
#[derive(Clone)]
pub struct Providers {
    by_type: HashMap<String, Arc<dyn ResourceProvider>>,
    generic: Arc<dyn ResourceProvider>,
}

impl Default for Providers {
    fn default() -> Providers {
        Providers { by_type: HashMap::new(), generic: Arc::new(Generic) }
    }
}

impl Providers {
    /// Makes `provider` handle `types`.
    pub fn register(&mut self, types: &[&str], provider: Arc<dyn ResourceProvider>) {
        for t in types {
            self.by_type.insert(t.to_string(), provider.clone());
        }
    }

    pub fn get(&self, type_name: &str) -> &Arc<dyn ResourceProvider> {
        self.by_type.get(type_name).unwrap_or(&self.generic)
    }

    /// Whether a real (not schema-modelled) provider handles `type_name`.
    pub fn is_real(&self, type_name: &str) -> bool {
        self.by_type.contains_key(type_name)
    }
}
