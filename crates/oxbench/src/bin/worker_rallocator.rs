//! oxbench worker with rallocator as the global allocator.

#[global_allocator]
static A: rallocator::Rallocator = rallocator::Rallocator;

fn main() {
    oxbench::worker::main("rallocator", false)
}
