//! The `cumulo` binary: everything lives in the `cli` crate and below.

// The proxy allocates a little per request on every worker thread; mimalloc's per-thread free
// lists cost about a tenth of glibc malloc's CPU there (see BENCHMARKS.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    cli::main()
}
