//! oxbench: compare memory allocators on time, peak memory and latency.
//!
//! The crate has two halves:
//! - the workloads ([`workloads`]) and the worker entry point ([`worker`]):
//!   each allocator gets its own small worker binary (`src/bin/worker_*.rs`)
//!   that installs it as `#[global_allocator]` and calls [`worker::main`];
//!   the glibc worker also serves every `LD_PRELOAD`ed library;
//! - the runner, statistics, report and charts (feature `cli`), used by the
//!   `oxbench` binary, which starts one worker process per measurement.
//!
//! Every workload checks the data it wrote (see [`check`]) and fails with a
//! [`check::Corruption`] error when a block does not hold what was written.

// Unit tests run on oxmalloc too.
#[cfg(test)]
#[global_allocator]
static A: oxmalloc::OxMalloc = oxmalloc::OxMalloc;

pub mod check;
pub mod dist;
pub mod outcome;
pub mod raw;
pub mod worker;
pub mod workloads;

#[cfg(feature = "cli")]
pub mod allocs;
#[cfg(feature = "cli")]
pub mod callgrind;
#[cfg(feature = "cli")]
pub mod charts;
#[cfg(feature = "cli")]
pub mod cli;
#[cfg(feature = "cli")]
pub mod interval;
#[cfg(feature = "cli")]
pub mod prof;
#[cfg(feature = "cli")]
pub mod real;
#[cfg(feature = "cli")]
pub mod report;
#[cfg(feature = "cli")]
pub mod runner;
#[cfg(feature = "cli")]
pub mod sample;
#[cfg(feature = "cli")]
pub mod stats;
#[cfg(feature = "cli")]
pub mod warm;
