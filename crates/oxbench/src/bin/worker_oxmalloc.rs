//! oxbench worker with oxmalloc as the global allocator.

#[global_allocator]
static A: oxmalloc::OxMalloc = oxmalloc::OxMalloc;

fn main() {
    oxbench::worker::main("oxmalloc", false)
}
