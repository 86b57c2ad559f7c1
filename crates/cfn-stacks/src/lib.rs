//! CloudFormation's control loop: stacks created in dependency order (independent resources in
//! parallel), rolled back on failure, updated through change sets (replacements created before
//! the old resources are deleted), deleted in reverse order; events as AWS emits them; exports
//! and imports across stacks; nested stacks; resource signals. All state lives in the store, so
//! a restarted region gives back every stack as it was.
//!
//! Services plug in through [`ResourceProvider`]; every type without a provider is created from
//! its schema by the generic provider and marked modelled.
//!
//! Architecture Invariant: the engine never evaluates templates itself; it asks `cfn-template`,
//! giving it a resolver over the live resources. It knows no wire format (the API crate maps
//! its records and errors to AWS's XML).

mod changes;
mod engine;
pub mod generic;
pub mod model;
mod nested;
mod ops;
pub mod props;
pub mod provider;
pub mod signals;

pub use engine::{
    AccountResources, CfnError, CfnResult, ChangeSetInput, Engine, EngineConfig, ParamInput,
    StackInput, TemplateLoader, TemplateSummary,
};
pub use nested::{NestedStacks, load_local_template};
pub use provider::{Provided, ProviderError, Providers, ResourceProvider, ResourceRequest};

#[cfg(test)]
mod tests;
