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
        "invalid-free" => {
            // One invalid free: counted and ignored whatever SHOW_ERRORS
            // says (the parent checks what was printed).
            let before = oxmalloc::stats().errors;
            let wild = std::ptr::without_provenance_mut::<u8>(0x5a5a_5a5a_5000);
            // SAFETY: deliberate invalid free of an address oxmalloc never
            // handed out: the default build reports it and ignores it.
            unsafe { oxmalloc::raw::free(wild) };
            assert_eq!(oxmalloc::stats().errors, before + 1, "the invalid free was not counted");
            let v: Vec<u64> = (0..10_000).collect();
            assert_eq!(v.iter().sum::<u64>(), 49_995_000, "the heap stopped working");
        }
        "vmflags" => {
            // The VmFlags of a chunk (the one holding a small block) and of
            // a huge block's mapping, for the parent to check.
            let small = Box::new([7u8; 100]);
            let huge = vec![1u8; 16 << 20];
            let chunk_flags = vma_of(&*small as *const u8 as usize).flags;
            let huge_flags = vma_of(huge.as_ptr() as usize).flags;
            println!("chunk-flags: {}", chunk_flags.join(" "));
            println!("huge-flags: {}", huge_flags.join(" "));
            drop((small, huge));
        }
        "huge-fill-next" | "huge-fill-free" | "huge-fill-grow" => huge_fill_case(&case),
        "purge-lazy" => {
            // A large block, every byte written, freed and purged at once:
            // the parent compares the process's LazyFree (pages purged with
            // MADV_FREE that the kernel has not reclaimed yet).
            const SIZE: usize = 2 << 20;
            let Some(before) = lazy_free_bytes() else {
                println!("skipped: /proc/self/smaps_rollup has no LazyFree field (kernel older than 4.12?)");
                return;
            };
            let p = oxmalloc::raw::malloc(SIZE);
            assert!(!p.is_null());
            // SAFETY: a fresh block of SIZE bytes.
            unsafe { p.write_bytes(0xC3, SIZE) };
            // SAFETY: a live block of raw::malloc.
            unsafe { oxmalloc::raw::free(p) };
            let purged_before = oxmalloc::stats().purged_bytes;
            oxmalloc::collect(true);
            let purged = oxmalloc::stats().purged_bytes - purged_before;
            assert!(purged >= SIZE as u64, "collect(true) purged only {purged} bytes");
            let after = lazy_free_bytes().unwrap();
            println!("lazy-free-before: {before}");
            println!("lazy-free-after: {after}");
            // Whatever the advice, memory handed out zeroed reads as zero:
            // MADV_FREE keeps the old bytes until the kernel reclaims them.
            let q = oxmalloc::raw::zalloc(SIZE);
            assert!(!q.is_null());
            // SAFETY: a fresh block of SIZE bytes.
            let bytes = unsafe { std::slice::from_raw_parts(q, SIZE) };
            if let Some(i) = bytes.iter().position(|&b| b != 0) {
                panic!("byte {i} of a zeroed block after a purge is {:#x}", bytes[i]);
            }
            // SAFETY: a live block of raw::zalloc.
            unsafe { oxmalloc::raw::free(q) };
        }
        "reserve" => {
            // Before this test allocates anything much (the harness has
            // made a few small blocks).
            let s = oxmalloc::stats();
            println!("reserved: {}", s.reserved.current);
            println!("chunks: {}", s.chunks);
        }
        "prof-sample" => {
            use oxmalloc::profile;
            if !profile::active() {
                println!("skipped: heap profiling is off (no _Unwind_Backtrace from libgcc_s?)");
                return;
            }
            // A fixed sequence: 200,000 blocks of 256 bytes (51.2 MB),
            // each freed at once so that the sample table never fills.
            let (taken, _, dropped) = profile::counts();
            for i in 0..200_000u32 {
                let b = std::hint::black_box(Box::new([i as u8; 256]));
                drop(b);
            }
            let (taken_after, _, dropped_after) = profile::counts();
            println!("samples: {}", (taken_after - taken) + (dropped_after - dropped));
        }
        other => panic!("unknown case {other}"),
    }
    println!("case {case}: ok");
}

/// One mapping of `/proc/self/smaps`.
struct Vma {
    start: usize,
    end: usize,
    /// The two-letter `VmFlags` (`hg`: MADV_HUGEPAGE, `nh`: MADV_NOHUGEPAGE).
    flags: Vec<String>,
}

/// The child side of `huge_pages_wait_for_a_filled_huge_block`: prints
/// the `VmFlags` of a huge block made while nothing filled was seen
/// (`sparse-flags`), and of one made or grown after a block was filled and
/// then asked past (`next`), freed (`free`) or grown (`grow`)
/// (`filled-flags`).
fn huge_fill_case(case: &str) {
    const SIZE: usize = 16 << 20;
    let flags = |p: *mut u8| vma_of(p as usize).flags.join(" ");
    let a = oxmalloc::raw::malloc(SIZE);
    assert!(!a.is_null());
    // SAFETY: a live block of SIZE bytes; one byte of it touched.
    unsafe { a.write(1) };
    // Looks at `a`, one page of 4,096 resident: not filled.
    let b = oxmalloc::raw::malloc(SIZE);
    assert!(!b.is_null());
    println!("sparse-flags: {}", flags(b));
    let filled = match case {
        "huge-fill-next" => {
            // SAFETY: a live block of SIZE bytes.
            unsafe { b.write_bytes(2, SIZE) };
            // Looks at `b`, every page written.
            let c = oxmalloc::raw::malloc(SIZE);
            assert!(!c.is_null());
            println!("filled-flags: {}", flags(c));
            c
        }
        "huge-fill-free" => {
            // SAFETY: a live block of SIZE bytes, then freed.
            unsafe {
                a.write_bytes(2, SIZE);
                oxmalloc::raw::free(a);
            }
            // Looks at `b` (untouched); `a`'s free was the proof.
            let c = oxmalloc::raw::malloc(SIZE);
            assert!(!c.is_null());
            println!("filled-flags: {}", flags(c));
            c
        }
        _ => {
            // SAFETY: a live block of SIZE bytes, then grown.
            let grown = unsafe {
                a.write_bytes(2, SIZE);
                oxmalloc::raw::realloc(a, 2 * SIZE)
            };
            assert!(!grown.is_null());
            // SAFETY: the grown block keeps its first SIZE bytes.
            assert!(unsafe { std::slice::from_raw_parts(grown, SIZE) }
                .iter()
                .all(|&x| x == 2));
            println!("filled-flags: {}", flags(grown));
            grown
        }
    };
    // SAFETY: live blocks of raw::malloc / raw::realloc (`a` was freed or
    // grown into `filled` in the last two cases).
    unsafe {
        oxmalloc::raw::free(filled);
        oxmalloc::raw::free(b);
        if case == "huge-fill-next" {
            oxmalloc::raw::free(a);
        }
    }
}

/// The mapping that holds `addr` (the test fails if there is none).
fn vma_of(addr: usize) -> Vma {
    let smaps = std::fs::read_to_string("/proc/self/smaps").expect("read /proc/self/smaps");
    let mut current: Option<Vma> = None;
    for line in smaps.lines() {
        let first = line.split_whitespace().next().unwrap_or("");
        if let Some((lo, hi)) = first.split_once('-') {
            if let (Ok(lo), Ok(hi)) = (usize::from_str_radix(lo, 16), usize::from_str_radix(hi, 16)) {
                if current.as_ref().is_some_and(|v| (v.start..v.end).contains(&addr)) {
                    break;
                }
                current = Some(Vma {
                    start: lo,
                    end: hi,
                    flags: Vec::new(),
                });
                continue;
            }
        }
        if let (Some(flags), Some(vma)) = (line.strip_prefix("VmFlags:"), current.as_mut()) {
            vma.flags = flags.split_whitespace().map(str::to_string).collect();
        }
    }
    let vma = current.filter(|v| (v.start..v.end).contains(&addr));
    vma.unwrap_or_else(|| panic!("no mapping holds {addr:#x} in /proc/self/smaps"))
}

/// The process's `LazyFree` in bytes (`/proc/self/smaps_rollup`); `None`
/// when the kernel does not report it.
fn lazy_free_bytes() -> Option<u64> {
    let rollup = std::fs::read_to_string("/proc/self/smaps_rollup").ok()?;
    let line = rollup.lines().find(|l| l.starts_with("LazyFree:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
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

/// The value of a `name: value` line the child printed.
fn printed(out: &std::process::Output, name: &str) -> Option<String> {
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let prefix = format!("{name}: ");
    // The harness prints "test child ... " on the line of the first output.
    stdout
        .lines()
        .find_map(|l| l.split(&prefix).nth(1).map(|v| v.trim().to_string()))
}

fn printed_number(out: &std::process::Output, name: &str) -> u64 {
    let value = printed(out, name).unwrap_or_else(|| {
        panic!(
            "the child printed no `{name}:` line: {}",
            String::from_utf8_lossy(&out.stdout)
        )
    });
    value
        .parse()
        .unwrap_or_else(|_| panic!("`{name}: {value}` is not a number"))
}

/// Prints the child's skip line and returns true when it skipped.
fn child_skipped(out: &std::process::Output) -> bool {
    let stdout = String::from_utf8_lossy(&out.stdout);
    match stdout.lines().find_map(|l| l.split("skipped: ").nth(1)) {
        Some(why) => {
            println!("skipped: {why}");
            true
        }
        None => false,
    }
}

#[test]
fn show_errors_zero_silences_the_report_but_the_free_is_still_ignored() {
    if oxmalloc::HARDENED {
        println!("skipped: the hardened build aborts on an invalid free (tests/hardened.rs)");
        return;
    }
    let error_lines = |out: &std::process::Output| -> Vec<String> {
        String::from_utf8_lossy(&out.stderr)
            .lines()
            .filter(|l| l.starts_with("oxmalloc: error:"))
            .map(str::to_string)
            .collect()
    };
    // The default prints one line (so the silent case below is a real difference).
    let loud = run_case("invalid-free", &[]);
    let lines = error_lines(&loud);
    assert_eq!(lines.len(), 1, "the default should print one error line: {lines:?}");
    assert!(
        lines[0].starts_with("oxmalloc: error: invalid free of 0x5a5a5a5a5000"),
        "{lines:?}"
    );
    // SHOW_ERRORS=0: the same free, counted and ignored (the child checks), silent.
    let quiet = run_case("invalid-free", &[("OXMALLOC_SHOW_ERRORS", "0")]);
    let err = String::from_utf8_lossy(&quiet.stderr);
    assert!(!err.contains("oxmalloc: error"), "SHOW_ERRORS=0 still printed: {err}");
}

/// Whether the kernel has transparent huge pages (else `madvise` refuses
/// MADV_HUGEPAGE / MADV_NOHUGEPAGE and no flag can show).
fn thp_available() -> bool {
    std::path::Path::new("/sys/kernel/mm/transparent_hugepage/enabled").exists()
}

/// The chunk's and the huge block's `VmFlags` in a child run with `env`.
fn vmflags(env: &[(&str, &str)]) -> (Vec<String>, Vec<String>) {
    let out = run_case("vmflags", env);
    let split = |name| -> Vec<String> {
        printed(&out, name)
            .unwrap_or_else(|| panic!("no {name} line: {}", String::from_utf8_lossy(&out.stdout)))
            .split_whitespace()
            .map(str::to_string)
            .collect()
    };
    (split("chunk-flags"), split("huge-flags"))
}

#[test]
fn allow_thp_and_huge_pages_show_in_the_mappings_vmflags() {
    if !thp_available() {
        println!("skipped: no /sys/kernel/mm/transparent_hugepage (kernel without THP): no hg/nh VmFlags to see");
        return;
    }
    let has = |flags: &[String], f: &str| flags.iter().any(|x| x == f);
    // Defaults: HUGE_PAGES=1 asks for huge pages on huge blocks once one
    // was seen filled, which the child's first is not; chunks are left to
    // the system.
    let (chunk, huge) = vmflags(&[]);
    assert!(!has(&huge, "hg"), "default: the first huge block has `hg`: {huge:?}");
    assert!(!has(&chunk, "nh"), "default: the chunk has `nh`: {chunk:?}");
    // HUGE_PAGES=2: from the first huge block.
    let (chunk, huge) = vmflags(&[("OXMALLOC_HUGE_PAGES", "2")]);
    assert!(has(&huge, "hg"), "HUGE_PAGES=2: the huge block lacks `hg`: {huge:?}");
    assert!(!has(&chunk, "nh"), "HUGE_PAGES=2: the chunk has `nh`: {chunk:?}");
    // ALLOW_THP=0: chunks refuse huge pages, and huge blocks do not ask.
    let (chunk, huge) = vmflags(&[("OXMALLOC_ALLOW_THP", "0")]);
    assert!(has(&chunk, "nh"), "ALLOW_THP=0: the chunk lacks `nh`: {chunk:?}");
    assert!(!has(&huge, "hg"), "ALLOW_THP=0: the huge block has `hg`: {huge:?}");
    // HUGE_PAGES=0: huge blocks do not ask; chunks as by default.
    let (chunk, huge) = vmflags(&[("OXMALLOC_HUGE_PAGES", "0")]);
    assert!(!has(&huge, "hg"), "HUGE_PAGES=0: the huge block has `hg`: {huge:?}");
    assert!(!has(&chunk, "nh"), "HUGE_PAGES=0: the chunk has `nh`: {chunk:?}");
}

/// By default a huge block gets huge pages only once the program was seen
/// filling one: a block it touched in one page is no proof, one whose
/// every page was written is, when the next huge block is asked for, when
/// it is freed, or when it is grown by `realloc` (docs/PERFORMANCE.md E71).
#[test]
fn huge_pages_wait_for_a_filled_huge_block() {
    if !thp_available() {
        println!("skipped: no /sys/kernel/mm/transparent_hugepage (kernel without THP): no hg VmFlags to see");
        return;
    }
    for case in ["huge-fill-next", "huge-fill-free", "huge-fill-grow"] {
        let out = run_case(case, &[]);
        let line = |name| printed(&out, name).unwrap_or_else(|| panic!("{case}: no {name} line"));
        let has_hg = |flags: &str| flags.split_whitespace().any(|f| f == "hg");
        let sparse = line("sparse-flags");
        assert!(
            !has_hg(&sparse),
            "{case}: huge pages after a block touched in one page: {sparse}"
        );
        let filled = line("filled-flags");
        assert!(has_hg(&filled), "{case}: no huge pages after a filled block: {filled}");
    }
}

/// PURGE_DECOMMITS=0 purges with MADV_FREE: the purged pages stay mapped
/// as `LazyFree` until the kernel needs them; the default (MADV_DONTNEED)
/// drops them at once, so nothing is lazily free. (Under heavy memory
/// pressure the kernel may reclaim lazily freed pages before the child
/// reads smaps_rollup; the first case would then fail.)
#[test]
fn purge_decommits_zero_purges_with_madv_free() {
    let lazy = run_case(
        "purge-lazy",
        &[("OXMALLOC_PURGE_DECOMMITS", "0"), ("OXMALLOC_BACKGROUND_PURGE", "0")],
    );
    if child_skipped(&lazy) {
        return;
    }
    let (before, after) = (
        printed_number(&lazy, "lazy-free-before"),
        printed_number(&lazy, "lazy-free-after"),
    );
    // At least half: the child's own allocations between the purge and
    // its reading of smaps_rollup may take a page on the purged span and
    // write to it (no longer lazily free): `collect(true)` dropped every
    // page, so reading the file makes new ones.
    assert!(
        after >= before + (1 << 20),
        "PURGE_DECOMMITS=0: LazyFree went from {before} to {after} bytes after purging a written 2 MiB block"
    );
    let eager = run_case("purge-lazy", &[("OXMALLOC_BACKGROUND_PURGE", "0")]);
    let after = printed_number(&eager, "lazy-free-after");
    assert_eq!(after, 0, "default (MADV_DONTNEED): {after} bytes lazily free");
}

#[test]
fn reserve_maps_chunks_at_start_up() {
    let out = run_case("reserve", &[("OXMALLOC_RESERVE", "64M")]);
    let (reserved, chunks) = (printed_number(&out, "reserved"), printed_number(&out, "chunks"));
    assert!(reserved >= 64 << 20, "RESERVE=64M: {reserved} bytes reserved at start");
    assert!(chunks >= 16, "RESERVE=64M: {chunks} chunks at start");
    // Without it, the start is small (so the check above means something).
    let out = run_case("reserve", &[]);
    let (reserved, chunks) = (printed_number(&out, "reserved"), printed_number(&out, "chunks"));
    assert!(reserved < 32 << 20, "default: {reserved} bytes reserved at start");
    assert!(chunks < 8, "default: {chunks} chunks at start");
}

/// About one sample per PROF_SAMPLE bytes: each interval is drawn in
/// [rate/2, 3*rate/2), so 51.2 MB of allocation gives between about
/// 51.2 MB / (1.5 rate) and 51.2 MB / (0.5 rate) samples. The bounds
/// below leave a wide margin and do not overlap.
#[test]
fn prof_sample_sets_the_sampling_rate() {
    let path = std::env::temp_dir().join(format!("oxmalloc-prof-sample-{}.heap", std::process::id()));
    let path_text = path.to_str().unwrap().to_string();
    let samples = |rate: Option<&str>| -> Option<u64> {
        let mut env = vec![("OXMALLOC_PROF", path_text.as_str())];
        if let Some(rate) = rate {
            env.push(("OXMALLOC_PROF_SAMPLE", rate));
        }
        let out = run_case("prof-sample", &env);
        let _ = std::fs::remove_file(&path);
        (!child_skipped(&out)).then(|| printed_number(&out, "samples"))
    };
    let Some(fine) = samples(Some("16K")) else { return };
    let Some(default) = samples(None) else { return };
    let Some(coarse) = samples(Some("4M")) else { return };
    println!("samples: 16K {fine}, default (512K) {default}, 4M {coarse}");
    // 51.2 MB / 16 KiB = 3125: expected within [2083, 6250].
    assert!((1500..=7000).contains(&fine), "PROF_SAMPLE=16K: {fine} samples");
    // 51.2 MB / 512 KiB = 98: expected within [65, 196].
    assert!((40..=250).contains(&default), "default PROF_SAMPLE: {default} samples");
    // 51.2 MB / 4 MiB = 12: expected within [8, 25].
    assert!((4..=32).contains(&coarse), "PROF_SAMPLE=4M: {coarse} samples");
}
