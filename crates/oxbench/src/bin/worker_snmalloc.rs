//! oxbench worker with snmalloc as the global allocator.

#[global_allocator]
static A: snmalloc_rs::SnMalloc = snmalloc_rs::SnMalloc;

fn main() {
    oxbench::worker::main("snmalloc", false)
}
