//! CloudFormation templates as data: parsing (YAML with every short-form tag, and JSON) with
//! source positions, the template model, parameter resolution, intrinsic and condition
//! functions, the resource dependency graph, and property validation against the published
//! resource schemas.
//!
//! Architecture Invariant: this crate does no I/O. What lies outside the template (resources'
//! physical ids and attributes, other stacks' exports, the parameter store) comes in through
//! the [`Resolver`] and [`ParameterStore`] traits. Every pass reports all the problems it finds
//! as [`Diagnostic`]s with positions; nothing panics on any input.

pub mod analysis;
pub mod cidr;
pub mod conditions;
pub mod diag;
pub mod eval;
pub mod graph;
pub mod node;
pub mod params;
pub mod parse;
pub mod refs;
pub mod rules;
pub mod schema_check;
pub mod span;
pub mod ssm;
pub mod sub;
pub mod template;
pub mod value;

pub use analysis::{Analysis, Options, Prepared, ResolvedOutput, analyze};
pub use diag::{Diagnostic, Severity};
pub use eval::{NoResources, Pseudo, Resolver, Truth, availability_zones};
pub use graph::Graph;
pub use node::{Kind, Node};
pub use params::{Mode, ParamType};
pub use span::{Pos, Span};
pub use ssm::{ParameterStore, public_parameters};
pub use template::Template;
pub use value::Value;

#[cfg(test)]
mod tests;
