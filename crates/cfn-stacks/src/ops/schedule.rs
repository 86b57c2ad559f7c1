//! The scheduler: resources start as soon as their dependencies are done, each with its
//! properties resolved against the live resources at that moment.

use std::collections::{BTreeSet, HashSet};

use cfn_template::Value;
use indexmap::{IndexMap, IndexSet};
use serde_json::{Value as Json, json};
use tokio::task::JoinSet;

use super::*;
use crate::engine::{CfnError, CfnResult};
use crate::model::*;
use crate::provider::Provided;

/// A resource's resolved properties and metadata, and the exports it imports.
type Resolved = (Json, Option<Json>, BTreeSet<String>);

impl Op {
    /// The resources that exist under the decided conditions, with their dependencies.
    pub(super) fn present(&self) -> (Vec<String>, IndexMap<String, IndexSet<String>>) {
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
    pub(super) fn resolve(&self, logical_id: &str) -> CfnResult<Result<Resolved, String>> {
        let live = Live::new(&self.engine, &self.live);
        let resolved = self.resolve_with(logical_id, &live);
        if let Some(e) = live.store_error() {
            return Err(e.into());
        }
        Ok(resolved.map(|(props, metadata)| (props, metadata, live.imports.into_inner())))
    }

    pub(super) fn resolve_with(
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

    pub(super) fn note_imports(&mut self, imports: BTreeSet<String>) {
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
    pub(super) async fn schedule(
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

    pub(super) fn note_touched(&mut self, logical_id: &str) {
        self.touched.entry(logical_id.to_string()).or_insert(Touched::Created);
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
