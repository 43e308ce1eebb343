//! oxbench worker with jemalloc as the global allocator.

#[global_allocator]
static A: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() {
    oxbench::worker::main("jemalloc", false)
}
