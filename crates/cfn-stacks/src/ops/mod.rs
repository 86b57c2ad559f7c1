//! Stack operations as they run: create (with rollback), update (with cleanup and rollback),
//! delete. Each runs as one background task per stack; resources whose dependencies are done
//! start at once, so independent resources are created in parallel.
//!
//! `start` holds the API calls that begin operations; `schedule` runs resources in dependency
//! order; `record` is what an operation writes (stored, then announced); `create`, `update`,
//! `delete` and `rollback` are the operations; `resolve` the resolvers over exports and live
//! resources.

mod create;
mod delete;
mod record;
mod resolve;
mod rollback;
mod schedule;
mod start;
mod update;

use serde_json::Value as Json;
use tokio_util::sync::CancellationToken;

use cfn_template::Prepared;
use indexmap::IndexMap;
use std::sync::Arc;

use crate::engine::{Engine, ParamInput, StackInput};
use crate::model::*;
use crate::provider::Provided;

pub(crate) use resolve::{ImportsOnly, Live};

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

impl Op {
    /// An operation on `stack`, nothing touched yet.
    fn new(
        engine: Arc<Engine>,
        stack: StackRecord,
        prepared: Prepared,
        live: IndexMap<String, ResourceRecord>,
    ) -> Op {
        Op {
            engine,
            stack,
            prepared,
            live,
            cancel: CancellationToken::new(),
            touched: IndexMap::new(),
        }
    }
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
