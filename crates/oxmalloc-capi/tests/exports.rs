//! The export list of the built library: every name a drop-in replacement
//! of the C allocator must define (the malloc family, glibc's aliases and
//! extras, every C++ operator new/delete, jemalloc's own API) and every function declared in
//! `include/oxmalloc.h` must be a defined global symbol of
//! `liboxmalloc.so` (its dynamic symbol table, `nm -D --defined-only`) and
//! of `liboxmalloc.a`. The C++ names are checked against the compiler's:
//! `tests/c/new_forms.cpp` calls every replaceable form, and the mangled
//! names its object needs must be exactly the list below.

mod common;

use common::*;
use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

const LIMIT: Duration = Duration::from_secs(120);

/// The C library's allocator names, glibc's aliases and extras.
const C_NAMES: &[&str] = &[
    "malloc",
    "free",
    "calloc",
    "realloc",
    "reallocarray",
    "posix_memalign",
    "aligned_alloc",
    "memalign",
    "valloc",
    "pvalloc",
    "malloc_usable_size",
    "cfree",
    "free_sized",
    "free_aligned_sized",
    "__libc_malloc",
    "__libc_calloc",
    "__libc_realloc",
    "__libc_free",
    "__libc_memalign",
    "__libc_valloc",
    "__libc_pvalloc",
    "__posix_memalign",
    "malloc_trim",
    "malloc_stats",
    "mallopt",
    "mallinfo",
    "mallinfo2",
];

/// jemalloc's own API (`src/jemalloc_api.rs`): what a program built
/// against jemalloc calls besides the malloc family, which must reach
/// oxmalloc when it is preloaded.
const JEMALLOC_NAMES: &[&str] = &[
    "mallocx",
    "rallocx",
    "xallocx",
    "sallocx",
    "dallocx",
    "sdallocx",
    "nallocx",
    "mallctl",
    "mallctlnametomib",
    "mallctlbymib",
    "malloc_stats_print",
];

/// Every replaceable global operator new/delete (Itanium names, 64-bit
/// `size_t`): plain, nothrow, sized, aligned, aligned+nothrow,
/// sized+aligned, and the array forms of each.
const CXX_NAMES: &[&str] = &[
    "_Znwm",
    "_Znam",
    "_ZnwmRKSt9nothrow_t",
    "_ZnamRKSt9nothrow_t",
    "_ZnwmSt11align_val_t",
    "_ZnamSt11align_val_t",
    "_ZnwmSt11align_val_tRKSt9nothrow_t",
    "_ZnamSt11align_val_tRKSt9nothrow_t",
    "_ZdlPv",
    "_ZdaPv",
    "_ZdlPvm",
    "_ZdaPvm",
    "_ZdlPvRKSt9nothrow_t",
    "_ZdaPvRKSt9nothrow_t",
    "_ZdlPvSt11align_val_t",
    "_ZdaPvSt11align_val_t",
    "_ZdlPvmSt11align_val_t",
    "_ZdaPvmSt11align_val_t",
    "_ZdlPvSt11align_val_tRKSt9nothrow_t",
    "_ZdaPvSt11align_val_tRKSt9nothrow_t",
];

/// The functions `include/oxmalloc.h` declares: each `ox_NAME(` outside
/// comments (the comments also mention calls such as `ox_realloc(p, 0)`,
/// which must not count, nor hide a declaration that is missing).
fn header_functions() -> BTreeSet<String> {
    let path = include_dir().join("oxmalloc.h");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    let mut code = String::new();
    let mut rest = text.as_str();
    while let Some(start) = rest.find("/*") {
        code.push_str(&rest[..start]);
        let end = rest[start..].find("*/").expect("unterminated comment in oxmalloc.h");
        rest = &rest[start + end + 2..];
    }
    code.push_str(rest);
    let code: String = code
        .lines()
        .map(|l| l.split("//").next().unwrap_or_default())
        .collect::<Vec<_>>()
        .join("\n");
    let mut names = BTreeSet::new();
    let bytes = code.as_bytes();
    let is_ident = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    let mut i = 0;
    while let Some(pos) = code[i..].find("ox_") {
        let start = i + pos;
        let mut end = start;
        while end < bytes.len() && is_ident(bytes[end]) {
            end += 1;
        }
        let starts_word = start == 0 || !is_ident(bytes[start - 1]);
        if starts_word && code[end..].trim_start().starts_with('(') {
            names.insert(code[start..end].to_string());
        }
        i = end.max(start + 3);
    }
    // The parse must have found the API, not nothing.
    for known in [
        "ox_malloc",
        "ox_free",
        "ox_stats_get",
        "ox_heap_new",
        "ox_version",
        "ox_prof_dump",
    ] {
        assert!(
            names.contains(known),
            "{known} not found in {}: {names:?}",
            path.display()
        );
    }
    assert!(
        names.len() >= 25,
        "only {} functions found in oxmalloc.h: {names:?}",
        names.len()
    );
    names
}

/// The defined global symbols `nm ARGS FILE` lists (types T, W, i, V, D, B
/// and R: code, weak, indirect and data; lowercase types are local).
fn defined_globals(nm: &Path, args: &[&str], file: &Path) -> BTreeSet<String> {
    let mut cmd = Command::new(nm);
    cmd.args(args).arg(file);
    let out = run(cmd, LIMIT);
    assert_success(&out, &format!("nm {args:?} {}", file.display()));
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            match fields.as_slice() {
                [_, kind, name] if matches!(*kind, "T" | "W" | "i" | "V" | "D" | "B" | "R") => {
                    Some(name.split('@').next().unwrap_or(name).to_string())
                }
                _ => None,
            }
        })
        .collect()
}

fn required() -> BTreeSet<String> {
    let mut names: BTreeSet<String> = C_NAMES
        .iter()
        .chain(CXX_NAMES)
        .chain(JEMALLOC_NAMES)
        .map(|s| s.to_string())
        .collect();
    names.extend(header_functions());
    names
}

fn assert_exports(defined: &BTreeSet<String>, what: &str) {
    let required = required();
    let missing: Vec<&String> = required.iter().filter(|n| !defined.contains(*n)).collect();
    assert!(
        missing.is_empty(),
        "{what} does not define {} required symbol(s): {missing:?}",
        missing.len()
    );
    println!("{what}: all {} required symbols defined", required.len());
}

#[test]
fn shared_library_exports_every_required_symbol() {
    let Some(nm) = find_program("nm") else {
        return skip("nm (binutils)");
    };
    let so = lib_so();
    let defined = defined_globals(&nm, &["-D", "--defined-only"], &so);
    assert_exports(&defined, "liboxmalloc.so (dynamic symbols)");
}

#[test]
fn static_library_defines_every_required_symbol() {
    let Some(nm) = find_program("nm") else {
        return skip("nm (binutils)");
    };
    let archive = lib_a();
    let defined = defined_globals(&nm, &["--defined-only"], &archive);
    assert_exports(&defined, "liboxmalloc.a");
}

#[test]
fn cxx_names_are_the_compilers() {
    let Some(nm) = find_program("nm") else {
        return skip("nm (binutils)");
    };
    if !have("c++") {
        return skip("c++ (g++)");
    }
    let dir = TempDir::new("exports-cxx");
    let object = dir.join("new_forms.o");
    let source = c_source("new_forms.cpp");
    let mut cmd = Command::new("c++");
    cmd.args(["-std=c++17", "-O0", "-c", "-o"]).arg(&object).arg(&source);
    assert_success(&run(cmd, LIMIT), "c++ -c new_forms.cpp");
    let mut cmd = Command::new(&nm);
    cmd.arg("-u").arg(&object);
    let out = run(cmd, LIMIT);
    assert_success(&out, "nm -u new_forms.o");
    let used: BTreeSet<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_whitespace().last())
        .filter(|n| n.starts_with("_Znw") || n.starts_with("_Zna") || n.starts_with("_Zdl") || n.starts_with("_Zda"))
        .map(str::to_string)
        .collect();
    let listed: BTreeSet<String> = CXX_NAMES.iter().map(|s| s.to_string()).collect();
    assert_eq!(
        used, listed,
        "the operator new/delete names g++ emits for new_forms.cpp differ from CXX_NAMES"
    );
    println!("the {} operator new/delete names are g++'s", used.len());
}
