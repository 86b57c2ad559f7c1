//! `cumulo ca`: the local CA certificate that HTTPS listeners' certificates chain to, for trust
//! stores (`curl --cacert`, `REQUESTS_CA_BUNDLE`, a browser's authorities).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;

use crate::common::EndpointArgs;
use crate::render::say;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Read the CA of this data directory instead of asking the running region.
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// Write the certificate (PEM) to this file instead of printing it.
    #[arg(long, short, value_name = "FILE")]
    out: Option<PathBuf>,
    #[command(flatten)]
    endpoint: EndpointArgs,
}

pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    let pem = match &args.data_dir {
        Some(dir) => {
            let path = dir.join("ca").join("ca.pem");
            std::fs::read_to_string(&path).with_context(|| {
                format!(
                    "cannot read {} (has a region run with this data directory?)",
                    path.display()
                )
            })?
        }
        None => args.endpoint.client().get_text("/_cumulo/ca.pem").await?,
    };
    match &args.out {
        Some(file) => {
            std::fs::write(file, &pem)
                .with_context(|| format!("cannot write {}", file.display()))?;
            eprintln!(
                "Wrote the Cumulo local CA to {} (e.g. curl --cacert {} https://...)",
                file.display(),
                file.display()
            );
        }
        None => say!("{}", pem.trim_end()),
    }
    Ok(ExitCode::SUCCESS)
}
