//! oxbench worker with rpmalloc as the global allocator.

#[global_allocator]
static A: rpmalloc::RpMalloc = rpmalloc::RpMalloc;

fn main() {
    oxbench::worker::main("rpmalloc", false)
}
