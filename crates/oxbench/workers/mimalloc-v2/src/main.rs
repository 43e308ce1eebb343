//! oxbench worker with mimalloc v2 (crate `mimalloc`, feature `v2`) as the
//! global allocator.

#[global_allocator]
static A: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    oxbench::worker::main("mimalloc-v2", false)
}
