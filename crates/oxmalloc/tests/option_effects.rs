//! Options have their effect: each case re-runs this test binary with an
//! `OXMALLOC_*` variable set (options are read from the environment when
//! the process starts) and checks what the allocator then does.

use std::process::Command;

#[global_allocator]
static GLOBAL: oxmalloc::OxMalloc = oxmalloc::OxMalloc;

/// Runs `case` in a child process with `env` set; returns its output.
fn run_case(case: &str, env: &[(&str, &str)]) -> std::process::Output {
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.args(["--exact", "child", "--nocapture", "--test-threads=1"])
        .env("OX_OPTION_CASE", case);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("run the child");
    assert!(
        out.status.success(),
        "case {case} failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// The child side: does nothing unless `OX_OPTION_CASE` is set.
#[test]
fn child() {
    let Ok(case) = std::env::var("OX_OPTION_CASE") else {
        return;
    };
    match case.as_str() {
        "purge-now" => {
            // Fill and empty some pages: with PURGE_DELAY=0 their memory
            // goes back at once, nothing waits for a purge.
            let before = oxmalloc::stats();
            let blocks: Vec<Box<[u8; 4000]>> = (0..20_000).map(|i| Box::new([i as u8; 4000])).collect();
            drop(blocks);
            let after = oxmalloc::stats();
            assert_eq!(after.purge_pending, 0, "memory waits for a purge despite PURGE_DELAY=0");
            assert!(
                after.purged_bytes > before.purged_bytes + (32 << 20),
                "nothing was purged: {after:?}"
            );
        }
        "purge-later" => {
            // The default delay: freed pages wait for their purge.
            let blocks: Vec<Box<[u8; 4000]>> = (0..20_000).map(|i| Box::new([i as u8; 4000])).collect();
            drop(blocks);
            let after = oxmalloc::stats();
            assert!(
                after.purge_pending > (16 << 20),
                "freed pages were purged at once: {after:?}"
            );
        }
        "limit" => {
            // OXMALLOC_LIMIT=64M: allocation fails with ENOMEM past the cap.
            let mut got = 0usize;
            let mut blocks = Vec::with_capacity(10_000);
            loop {
                let p = oxmalloc::raw::malloc(1 << 20);
                if p.is_null() {
                    // SAFETY: reading this thread's errno.
                    let errno = unsafe { *libc::__errno_location() };
                    assert_eq!(errno, libc::ENOMEM, "errno after a refused allocation");
                    break;
                }
                blocks.push(p);
                got += 1 << 20;
                assert!(got <= 64 << 20, "allocated {got} bytes past a 64 MiB limit");
            }
            assert!(got >= 32 << 20, "the limit refused too early ({got} bytes)");
            assert!(oxmalloc::stats().reserved.current <= 64 << 20);
            for p in blocks {
                // SAFETY: blocks from raw::malloc.
                unsafe { oxmalloc::raw::free(p) };
            }
            // Memory is usable again once freed.
            oxmalloc::collect(true);
            let p = oxmalloc::raw::malloc(1 << 20);
            assert!(!p.is_null(), "allocation still refused after freeing");
        }
        "bad-value" => {
            // A bad value: the default is kept (the warning is checked by the parent).
            assert_eq!(oxmalloc::options::get(oxmalloc::options::Opt::PurgeDelay), 10);
            assert_eq!(oxmalloc::options::get(oxmalloc::options::Opt::Limit), 0);
        }
        "verbose" => {
            let v: Vec<u8> = vec![1; 10];
            assert_eq!(v.len(), 10);
        }
        "text" => text_options_own_their_bytes(),
        other => panic!("unknown case {other}"),
    }
    println!("case {case}: ok");
}

/// Text options keep a copy of their value: the buffer it came from may be
/// overwritten and freed right after (the child side of
/// `text_options_are_copies`).
fn text_options_own_their_bytes() {
    use oxmalloc::options::{self, Opt, SetError, TEXT_MAX};
    let prof = |what: &str| {
        options::text(Opt::Prof)
            .unwrap_or_else(|| panic!("PROF unset {what}"))
            .as_bytes()
            .to_vec()
    };
    // From the environment (the parent set OXMALLOC_PROF), then the
    // environment entry is changed and removed.
    assert_eq!(prof("from the environment"), b"/nonexistent-dir/env.heap");
    assert_eq!(options::get(Opt::Prof), 1);
    std::env::set_var("OXMALLOC_PROF", "/nonexistent-dir/XXXXXXXXXXXXXXXX");
    std::env::remove_var("OXMALLOC_PROF");
    assert_eq!(prof("after the environment changed"), b"/nonexistent-dir/env.heap");

    // set_text from a stack buffer, which is then overwritten.
    let mut stack = [0u8; 64];
    let path = b"/nonexistent-dir/stack.%p.heap";
    stack[..path.len()].copy_from_slice(path);
    assert_eq!(options::set_text(Opt::Prof, &stack[..path.len()]), Ok(()));
    stack.fill(b'Z');
    std::hint::black_box(&mut stack);
    assert_eq!(prof("after its buffer was overwritten"), path);
    assert_eq!(
        options::text(Opt::Prof).unwrap().as_c_str().to_bytes(),
        path,
        "as a C string"
    );

    // apply_env_entry from a heap buffer, overwritten, then freed.
    let mut entry = b"OXMALLOC_PROF=/nonexistent-dir/heap.heap".to_vec();
    options::apply_env_entry(&entry);
    entry.iter_mut().for_each(|b| *b = b'Y');
    drop(entry);
    // Reuse the freed memory for something else.
    let other = vec![b'Q'; 40];
    assert_eq!(prof("after its entry was freed"), b"/nonexistent-dir/heap.heap");
    drop(other);

    // The numeric setter refuses a text option and leaves it alone.
    assert_eq!(options::set(Opt::Prof, 1), Err(SetError::TextOption));
    assert_eq!(options::set(Opt::Prof, 0x7fff_0000_1000), Err(SetError::TextOption));
    assert_eq!(prof("after set(Prof, n)"), b"/nonexistent-dir/heap.heap");
    assert_eq!(options::get(Opt::Prof), 1);
    // ... and set_text refuses a numeric option.
    assert_eq!(options::set_text(Opt::PurgeDelay, b"25"), Err(SetError::NotText));
    assert_eq!(options::get(Opt::PurgeDelay), 10);
    assert!(options::text(Opt::PurgeDelay).is_none());

    // Too long (a warning naming the option), or with a NUL: refused, the
    // value kept. Exactly TEXT_MAX bytes fit.
    let long = vec![b'a'; TEXT_MAX + 1];
    assert_eq!(options::set_text(Opt::Prof, &long), Err(SetError::TooLong));
    assert_eq!(options::set_text(Opt::Prof, b"/a\0b"), Err(SetError::Nul));
    assert_eq!(prof("after refused values"), b"/nonexistent-dir/heap.heap");
    assert_eq!(options::set_text(Opt::Prof, &long[..TEXT_MAX]), Ok(()));
    assert_eq!(prof("at the longest").len(), TEXT_MAX);
    assert_eq!(options::text(Opt::Prof).unwrap().as_c_str().to_bytes().len(), TEXT_MAX);

    // Empty: unset.
    assert_eq!(options::set_text(Opt::Prof, b""), Ok(()));
    assert!(options::text(Opt::Prof).is_none());
    assert_eq!(options::get(Opt::Prof), 0);
}

#[test]
fn text_options_are_copies() {
    let out = run_case("text", &[("OXMALLOC_PROF", "/nonexistent-dir/env.heap")]);
    let err = String::from_utf8_lossy(&out.stderr);
    let warnings: Vec<&str> = err.lines().filter(|l| l.starts_with("oxmalloc: warning:")).collect();
    assert!(
        warnings
            .iter()
            .any(|l| l.contains("OXMALLOC_PROF is 256 bytes long") && l.contains("at most 255")),
        "no warning naming OXMALLOC_PROF for the long value: {err}"
    );
    // The profile written at exit goes where OXMALLOC_PROF named at
    // start-up (a directory that does not exist: a warning with the path),
    // although the environment and the option changed since.
    assert!(
        err.contains("cannot write the heap profile to /nonexistent-dir/env.heap\n"),
        "the profile at exit did not go to the start-up path: {err}"
    );
}

#[test]
fn purge_delay_zero_releases_at_once() {
    run_case(
        "purge-now",
        &[("OXMALLOC_PURGE_DELAY", "0"), ("OXMALLOC_BACKGROUND_PURGE", "0")],
    );
    run_case(
        "purge-later",
        &[("OXMALLOC_PURGE_DELAY", "60000"), ("OXMALLOC_BACKGROUND_PURGE", "0")],
    );
}

#[test]
fn limit_makes_allocation_fail_with_enomem() {
    run_case("limit", &[("OXMALLOC_LIMIT", "64M")]);
}

#[test]
fn a_bad_value_gets_one_warning_and_the_default() {
    let out = run_case(
        "bad-value",
        &[("OXMALLOC_PURGE_DELAY", "soon"), ("OXMALLOC_LIMIT", "12X")],
    );
    let err = String::from_utf8_lossy(&out.stderr);
    let warnings: Vec<&str> = err.lines().filter(|l| l.starts_with("oxmalloc: warning:")).collect();
    assert_eq!(warnings.len(), 2, "one warning per bad option: {err}");
    assert!(
        warnings
            .iter()
            .any(|l| l.contains("OXMALLOC_PURGE_DELAY=soon") && l.contains("default 10")),
        "{err}"
    );
    assert!(warnings.iter().any(|l| l.contains("OXMALLOC_LIMIT=12X")), "{err}");
}

#[test]
fn verbose_lists_every_option() {
    let out = run_case(
        "verbose",
        &[
            ("OXMALLOC_VERBOSE", "1"),
            ("OXMALLOC_PURGE_DELAY", "25"),
            ("OXMALLOC_PROF", "/nonexistent-dir/verbose.heap"),
        ],
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.matches("oxmalloc 0.").count(), 1, "one banner: {err}");
    for info in oxmalloc::options::OPTIONS.iter() {
        assert!(
            err.contains(&format!("OXMALLOC_{}=", info.name)),
            "{} missing from the banner: {err}",
            info.name
        );
    }
    assert!(err.contains("OXMALLOC_PURGE_DELAY=25"), "{err}");
    assert!(err.contains("OXMALLOC_PROF=/nonexistent-dir/verbose.heap "), "{err}");
}
