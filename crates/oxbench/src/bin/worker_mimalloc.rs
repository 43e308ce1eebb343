//! oxbench worker with mimalloc as the global allocator.

#[global_allocator]
static A: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    oxbench::worker::main("mimalloc", false)
}
