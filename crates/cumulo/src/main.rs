//! The `cumulo` binary: everything lives in the `cli` crate and below.

fn main() -> std::process::ExitCode {
    cli::main()
}
