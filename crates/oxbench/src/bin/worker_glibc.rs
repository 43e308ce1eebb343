//! oxbench worker with glibc as the global allocator.
//! It is also the worker run under LD_PRELOAD for every preloaded library.

#[global_allocator]
static A: std::alloc::System = std::alloc::System;

fn main() {
    oxbench::worker::main("glibc", true)
}
