//! What runs inside instances, all in the cumulo binary: the CloudFormation helper scripts
//! (`cfn-signal`, `cfn-init`, `cfn-get-metadata`, `cfn-hup`, reached through links on every
//! instance's PATH) and `cumulo demo-app`.
//!
//! This crate is an edge, like `cli`: it runs inside instances as programs of their own, so it
//! learns everything from the instance's environment and metadata service (it reads environment
//! variables and uses `anyhow`), and its timers are real time (`tokio::time`,
//! `std::time::Instant`): it has no region `Clock`. Where it waits on an AWS duration (cfn-hup's
//! interval) it divides by `CUMULO_TIME_SCALE` itself.

pub mod cfn;
pub mod demo;
mod http;

use std::process::ExitCode;

/// Runs a helper when the binary was invoked under its name (`argv[0]`); `None` otherwise.
pub fn dispatch(args: &[String]) -> Option<ExitCode> {
    let name = std::path::Path::new(args.first()?).file_name()?.to_str()?.to_string();
    let helper = match name.as_str() {
        "cfn-signal" | "cfn-init" | "cfn-get-metadata" | "cfn-hup" => name,
        _ => return None,
    };
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().ok()?;
    let args = args.to_vec();
    Some(runtime.block_on(async move {
        match helper.as_str() {
            "cfn-signal" => cfn::signal(args).await,
            "cfn-init" => cfn::init(args).await,
            "cfn-get-metadata" => cfn::get_metadata(args).await,
            _ => cfn::hup(args).await,
        }
    }))
}
