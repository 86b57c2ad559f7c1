//! The AWS APIs over HTTP. Requests arrive in AWS's wire protocols (awsQuery's form parameters,
//! awsJson, smithy-rpc-v2-cbor), are routed to their service (by the SigV4 credential scope,
//! API version and action; by `X-Amz-Target`; by the CBOR path), their signatures checked when
//! the region has credentials, and answered in the request's protocol, errors included. A
//! client speaks the Query protocol for Cumulo's own commands.
//!
//! Architecture Invariant: only this crate knows the wire formats (XML, form encoding, and the
//! JSON and CBOR protocols as they arrive). Services get typed inputs and return records.

pub mod autoscaling;
pub mod cfn_client;
pub mod client;
pub mod cloudformation;
pub mod cloudwatch;
pub mod cloudwatch_client;
pub mod coverage;
pub mod ec2;
pub mod ec2_client;
pub mod elb_classic;
pub mod elbv2;
pub mod error;
pub mod guard;
pub mod iam;
pub mod logs;
pub mod protocol;
pub mod query;
pub mod registry;
pub mod server;
pub mod sigv4;
pub mod sns;
pub mod ssm;
pub mod sts;
pub mod xml;

pub use client::{Client, ClientError};
pub use error::ApiError;
pub use server::{Services, router};
pub use xml::XmlNode;
