//! Cumulo's command line. `main` parses arguments and runs one command; each command lives in
//! its own module. Errors are reported here, at the edge, with `anyhow`.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod inputs;
mod render;
mod validate;

#[derive(Parser, Debug)]
#[command(name = "cumulo", version, about = "A local AWS region for highly available web apps")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Check a template: every problem, each at file:line:column, or a summary.
    Validate(validate::Args),
}

/// Output format for commands that print results.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum OutputFormat {
    #[default]
    Table,
    Json,
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Validate(args) => validate::run(args),
    };
    match result {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}
