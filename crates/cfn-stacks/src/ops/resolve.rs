//! The resolvers an operation gives `cfn-template`: exports only (checking a template before
//! an operation starts), or the stack's live resources.

use std::cell::RefCell;
use std::collections::BTreeSet;

use cfn_template::{Resolver, Value};
use indexmap::IndexMap;
use store::StoreError;

use crate::engine::Engine;
use crate::model::*;

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
