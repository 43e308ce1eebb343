//! Every workload at a tiny scale, in this process (oxmalloc is the global
//! allocator here) and in the glibc worker process; and with a deliberately
//! corrupted block, which each workload's check must catch.

#[global_allocator]
static A: oxmalloc::OxMalloc = oxmalloc::OxMalloc;

use oxbench::workloads::{self, Fault, Params};
use std::process::Command;

const TINY: f64 = 0.002;

fn params(threads: usize) -> Params {
    Params::new(threads, TINY)
}

#[test]
fn every_workload_passes_its_checks_on_oxmalloc() {
    for w in workloads::all() {
        let o = workloads::run(w.name, &params(2), "oxmalloc")
            .unwrap_or_else(|e| panic!("{} failed on oxmalloc: {e}", w.name));
        assert_eq!(o.bench, w.name);
        assert!(o.ops > 0, "{}: no operations", w.name);
        assert!(o.throughput > 0.0, "{}: no throughput", w.name);
        if w.name == "latency" {
            for op in [
                "malloc",
                "malloc-small",
                "malloc-big",
                "free",
                "request",
                "free-small",
                "free-big",
                "free-shared",
                "free-shared-own",
                "free-shared-remote",
            ] {
                let p = &o.latency[op];
                // At this scale the shared array (4,096 slots) may evict nothing,
                // and a block above 1 KiB (about one request in 128) may not come up.
                let may_be_empty = op.starts_with("free-shared") || op == "free-big" || op == "malloc-big";
                assert!(
                    (p.count > 0 || may_be_empty) && p.p50 <= p.p99 && p.p99 <= p.p999 && p.p999 <= p.max,
                    "{op}: {p:?}"
                );
            }
            // The split histograms partition the frees.
            let split: u64 = ["free-small", "free-big", "free-shared"]
                .iter()
                .map(|op| o.latency[*op].count)
                .sum();
            assert_eq!(split, o.latency["free"].count, "free-small + free-big + free-shared");
            assert_eq!(
                o.latency["free-shared-own"].count + o.latency["free-shared-remote"].count,
                o.latency["free-shared"].count,
                "free-shared-own + free-shared-remote"
            );
            assert_eq!(o.latency["malloc"].count, o.ops, "one malloc timed per operation");
            assert_eq!(
                o.latency["malloc-small"].count + o.latency["malloc-big"].count,
                o.ops,
                "malloc-small + malloc-big"
            );
        }
    }
}

#[test]
fn every_workload_detects_a_corrupted_block_on_oxmalloc() {
    for w in workloads::all() {
        let mut p = params(2);
        p.fault = Fault::armed();
        let err = match workloads::run(w.name, &p, "oxmalloc") {
            Ok(_) => panic!("{}: the corrupted block went unnoticed", w.name),
            Err(e) => e,
        };
        assert_eq!(err.workload.split('@').next(), Some(w.name), "{err}");
        assert!(err.to_string().starts_with("DATA CORRUPTION"), "{err}");
    }
}

fn glibc_worker(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_oxbench-worker-glibc"))
        .args(args)
        .output()
        .expect("run the glibc worker")
}

#[test]
fn every_workload_passes_and_detects_corruption_on_glibc() {
    let scale = TINY.to_string();
    for w in workloads::all() {
        let ok = glibc_worker(&["run", w.name, "2", &scale]);
        let stdout = String::from_utf8_lossy(&ok.stdout);
        assert!(
            ok.status.success(),
            "{} failed on glibc: {}",
            w.name,
            String::from_utf8_lossy(&ok.stderr)
        );
        let o = oxbench::outcome::Outcome::from_output(&stdout)
            .expect("a result line")
            .expect("a valid result line");
        assert_eq!((o.bench.as_str(), o.worker.as_str()), (w.name, "glibc"));

        let bad = glibc_worker(&["run", w.name, "2", &scale, "--inject-fault"]);
        let stderr = String::from_utf8_lossy(&bad.stderr);
        assert_eq!(
            bad.status.code(),
            Some(oxbench::worker::EXIT_CORRUPTION),
            "{}: {stderr}",
            w.name
        );
        assert!(stderr.contains("DATA CORRUPTION"), "{}: {stderr}", w.name);
    }
}

#[test]
fn worker_rejects_bad_arguments() {
    assert_eq!(
        glibc_worker(&["run", "no-such-workload", "1", "1"]).status.code(),
        Some(2)
    );
    assert_eq!(glibc_worker(&["bogus"]).status.code(), Some(2));
    assert!(glibc_worker(&["pairs", "1000"]).status.success());
}
