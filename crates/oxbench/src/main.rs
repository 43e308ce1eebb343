//! The `oxbench` command: see `oxbench --help` and the crate docs.

fn main() {
    std::process::exit(oxbench::cli::main());
}
