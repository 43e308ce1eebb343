//! Options: every tunable, read from `OXMALLOC_<NAME>` environment variables
//! at process start-up, or set through the API before first use.
//!
//! The environment is read from `environ` directly (`getenv` may not be
//! usable that early, and nothing here may allocate). Sizes take `K`, `M`,
//! `G` (or `KiB`, `MiB`, `GiB`) suffixes; booleans take 1/0, on/off,
//! true/false, yes/no. A bad value gets one warning naming the option, and
//! the default is kept.

use crate::fatal;
use crate::os::{Os, Platform};
use crate::sync::atomic::{AtomicI64, Ordering};
use core::ffi::CStr;

/// How an option's value is written.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Kind {
    /// 1/0, on/off, true/false, yes/no.
    Bool,
    /// Bytes, with an optional K/M/G suffix.
    Size,
    /// Milliseconds.
    Millis,
    /// A plain count.
    Count,
    /// Text (a path); the value is the address of the C string in the
    /// environment (0: unset).
    Text,
}

/// Description of one option.
pub struct OptionInfo {
    /// Name without the `OXMALLOC_` prefix.
    pub name: &'static str,
    /// Value syntax.
    pub kind: Kind,
    /// Default value.
    pub default: i64,
    /// One line of documentation.
    pub doc: &'static str,
}

/// The options, in the order of [`OPTIONS`].
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[repr(usize)]
pub enum Opt {
    /// Print statistics to stderr at exit.
    ShowStats = 0,
    /// Print a banner (version, options) at start-up.
    Verbose,
    /// Print detected heap errors (double free, invalid free, ...).
    ShowErrors,
    /// Milliseconds a free span stays backed before it is purged.
    PurgeDelay,
    /// Purge with `MADV_DONTNEED` (1) or the lazier `MADV_FREE` (0).
    PurgeDecommits,
    /// Leave transparent huge pages to the system (1) or refuse them (0).
    AllowThp,
    /// Bytes of chunks to map at start-up.
    Reserve,
    /// Cap on mapped memory; allocation beyond it fails with ENOMEM (0: none).
    Limit,
    /// Start a background thread to purge when much memory waits.
    BackgroundPurge,
    /// Request transparent huge pages (`MADV_HUGEPAGE`) for huge blocks.
    HugePages,
    /// Heap profiling: where to write the profile at exit (`%p`: the pid).
    Prof,
    /// Heap profiling: about one sample per this many bytes allocated.
    ProfSample,
}

/// Every option with its default and documentation.
pub const OPTIONS: [OptionInfo; 12] = [
    OptionInfo {
        name: "SHOW_STATS",
        kind: Kind::Bool,
        default: 0,
        doc: "print statistics to stderr at exit",
    },
    OptionInfo {
        name: "VERBOSE",
        kind: Kind::Bool,
        default: 0,
        doc: "print a banner with the version and options at start-up",
    },
    OptionInfo {
        name: "SHOW_ERRORS",
        kind: Kind::Bool,
        default: 1,
        doc: "print a line for each detected heap error",
    },
    OptionInfo {
        name: "PURGE_DELAY",
        kind: Kind::Millis,
        default: 10,
        doc: "milliseconds free memory stays backed before it is returned to the OS (0: at once)",
    },
    OptionInfo {
        name: "PURGE_DECOMMITS",
        kind: Kind::Bool,
        default: 1,
        doc: "purge with MADV_DONTNEED (1, memory reads as zero after) or MADV_FREE (0)",
    },
    OptionInfo {
        name: "ALLOW_THP",
        kind: Kind::Bool,
        default: 1,
        doc: "allow transparent huge pages (0: MADV_NOHUGEPAGE on chunks)",
    },
    OptionInfo {
        name: "RESERVE",
        kind: Kind::Size,
        default: 0,
        doc: "bytes of memory to reserve at start-up",
    },
    OptionInfo {
        name: "LIMIT",
        kind: Kind::Size,
        default: 0,
        doc: "cap on mapped memory; allocations beyond fail with ENOMEM (0: none)",
    },
    OptionInfo {
        name: "BACKGROUND_PURGE",
        kind: Kind::Bool,
        default: 1,
        doc: "purge from a background thread once over 4 MiB waits (so idle threads give memory back)",
    },
    OptionInfo {
        name: "HUGE_PAGES",
        kind: Kind::Bool,
        default: 0,
        doc: "ask for transparent huge pages on huge blocks (fewer faults; may stall on compaction)",
    },
    OptionInfo {
        name: "PROF",
        kind: Kind::Text,
        default: 0,
        doc: "heap profiling: write the live sampled allocations to this file at exit (%p: pid)",
    },
    OptionInfo {
        name: "PROF_SAMPLE",
        kind: Kind::Size,
        default: 512 * 1024,
        doc: "heap profiling: about one sample per this many bytes allocated",
    },
];

static VALUES: [AtomicI64; OPTIONS.len()] = {
    let mut values = [const { AtomicI64::new(0) }; OPTIONS.len()];
    let mut i = 0;
    while i < OPTIONS.len() {
        values[i] = AtomicI64::new(OPTIONS[i].default);
        i += 1;
    }
    values
};

/// The current value of an option.
#[inline]
pub fn get(opt: Opt) -> i64 {
    VALUES[opt as usize].load(Ordering::Relaxed)
}

/// The value of the option at `index` in [`OPTIONS`] (0 when out of range).
pub fn value_at(index: usize) -> i64 {
    VALUES.get(index).map_or(0, |v| v.load(Ordering::Relaxed))
}

/// Sets an option. Takes effect for what happens afterwards; options that
/// shape start-up (RESERVE, VERBOSE) only count before the first allocation.
pub fn set(opt: Opt, value: i64) {
    VALUES[opt as usize].store(value, Ordering::Relaxed);
}

/// `SHOW_ERRORS`.
#[inline]
pub fn show_errors() -> bool {
    get(Opt::ShowErrors) != 0
}

/// `VERBOSE`.
#[inline]
pub fn verbose() -> bool {
    get(Opt::Verbose) != 0
}

/// `PURGE_DELAY` in milliseconds.
#[inline]
pub fn purge_delay_ms() -> u64 {
    get(Opt::PurgeDelay).max(0) as u64
}

/// Whether purged memory reads as zero (`PURGE_DECOMMITS`).
#[inline]
pub fn purge_zeroes() -> bool {
    get(Opt::PurgeDecommits) != 0
}

/// `ALLOW_THP`.
#[inline]
pub fn allow_thp() -> bool {
    get(Opt::AllowThp) != 0
}

/// `HUGE_PAGES`.
#[inline]
pub fn huge_pages() -> bool {
    get(Opt::HugePages) != 0
}

/// `BACKGROUND_PURGE`.
#[inline]
pub fn background_purge() -> bool {
    get(Opt::BackgroundPurge) != 0
}

/// `LIMIT` in bytes (0: none).
#[inline]
pub fn limit() -> usize {
    get(Opt::Limit).max(0) as usize
}

/// Parses `text` as a value of `kind`; `None` when it is not one.
pub fn parse(kind: Kind, text: &[u8]) -> Option<i64> {
    let text = trim(text);
    match kind {
        Kind::Bool => {
            let mut lower = [0u8; 8];
            if text.len() > lower.len() {
                return None;
            }
            for (dst, src) in lower.iter_mut().zip(text) {
                *dst = src.to_ascii_lowercase();
            }
            match &lower[..text.len()] {
                b"1" | b"on" | b"true" | b"yes" => Some(1),
                b"0" | b"off" | b"false" | b"no" => Some(0),
                _ => None,
            }
        }
        Kind::Millis | Kind::Count => parse_number(text).filter(|&(_, rest)| rest.is_empty()).map(|(n, _)| n),
        // The caller stores the address of the string itself.
        Kind::Text => (!text.is_empty()).then_some(1),
        Kind::Size => {
            let (n, rest) = parse_number(text)?;
            let mut unit = [0u8; 4];
            if rest.len() > unit.len() {
                return None;
            }
            for (dst, src) in unit.iter_mut().zip(rest) {
                *dst = src.to_ascii_uppercase();
            }
            let shift = match &unit[..rest.len()] {
                b"" | b"B" => 0,
                b"K" | b"KB" | b"KIB" => 10,
                b"M" | b"MB" | b"MIB" => 20,
                b"G" | b"GB" | b"GIB" => 30,
                b"T" | b"TB" | b"TIB" => 40,
                _ => return None,
            };
            n.checked_mul(1i64 << shift)
        }
    }
}

fn trim(mut s: &[u8]) -> &[u8] {
    while let [first, rest @ ..] = s {
        if first.is_ascii_whitespace() {
            s = rest;
        } else {
            break;
        }
    }
    while let [rest @ .., last] = s {
        if last.is_ascii_whitespace() {
            s = rest;
        } else {
            break;
        }
    }
    s
}

/// Leading decimal digits as a number, and the rest.
fn parse_number(s: &[u8]) -> Option<(i64, &[u8])> {
    let digits = s.iter().take_while(|b| b.is_ascii_digit()).count();
    if digits == 0 {
        return None;
    }
    let mut n: i64 = 0;
    for &b in &s[..digits] {
        n = n.checked_mul(10)?.checked_add((b - b'0') as i64)?;
    }
    Some((n, trim(&s[digits..])))
}

fn kind_words(kind: Kind) -> &'static str {
    match kind {
        Kind::Bool => "a boolean (1/0, on/off, true/false, yes/no)",
        Kind::Size => "a size in bytes (with an optional K, M or G suffix)",
        Kind::Millis => "a number of milliseconds",
        Kind::Count => "a number",
        Kind::Text => "a non-empty text",
    }
}

/// Applies one `NAME=VALUE` environment entry if it is an oxmalloc option.
pub fn apply_env_entry(entry: &[u8]) {
    const PREFIX: &[u8] = b"OXMALLOC_";
    let Some(rest) = entry.strip_prefix(PREFIX) else {
        return;
    };
    let Some(eq) = rest.iter().position(|&b| b == b'=') else {
        return;
    };
    let (name, value) = (&rest[..eq], &rest[eq + 1..]);
    let Some(index) = OPTIONS
        .iter()
        .position(|o| o.name.as_bytes().eq_ignore_ascii_case(name))
    else {
        fatal::warn(&[b"unknown option OXMALLOC_", name, b" (ignored)"]);
        return;
    };
    let info = &OPTIONS[index];
    match parse(info.kind, value) {
        Some(_) if info.kind == Kind::Text => VALUES[index].store(value.as_ptr() as i64, Ordering::Relaxed),
        Some(v) => VALUES[index].store(v, Ordering::Relaxed),
        None => {
            let mut default = crate::util::Line::new();
            default.signed(info.default);
            fatal::warn(&[
                b"OXMALLOC_",
                info.name.as_bytes(),
                b"=",
                value,
                b" is not ",
                kind_words(info.kind).as_bytes(),
                b"; using the default ",
                default.as_bytes(),
            ]);
        }
    }
}

/// Reads every `OXMALLOC_*` variable from `environ`.
pub fn load_from_env() {
    let mut env = Os::environ();
    if env.is_null() {
        return;
    }
    // SAFETY: `environ` is a null-terminated array of NUL-terminated
    // strings owned by the C runtime; we only read it.
    unsafe {
        while !(*env).is_null() {
            let entry = CStr::from_ptr(*env).to_bytes();
            if entry.starts_with(b"OXMALLOC_") {
                apply_env_entry(entry);
            }
            env = env.add(1);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_booleans() {
        for t in ["1", "on", "ON", "true", "Yes", " 1 "] {
            assert_eq!(parse(Kind::Bool, t.as_bytes()), Some(1), "{t}");
        }
        for t in ["0", "off", "False", "no"] {
            assert_eq!(parse(Kind::Bool, t.as_bytes()), Some(0), "{t}");
        }
        for t in ["", "2", "maybe", "onn", "truetruetrue"] {
            assert_eq!(parse(Kind::Bool, t.as_bytes()), None, "{t}");
        }
    }

    #[test]
    fn parses_sizes_with_suffixes() {
        assert_eq!(parse(Kind::Size, b"0"), Some(0));
        assert_eq!(parse(Kind::Size, b"4096"), Some(4096));
        assert_eq!(parse(Kind::Size, b"64K"), Some(64 << 10));
        assert_eq!(parse(Kind::Size, b"64kib"), Some(64 << 10));
        assert_eq!(parse(Kind::Size, b"10M"), Some(10 << 20));
        assert_eq!(parse(Kind::Size, b"2 GiB"), Some(2 << 30));
        assert_eq!(parse(Kind::Size, b"1T"), Some(1 << 40));
        assert_eq!(parse(Kind::Size, b"12X"), None);
        assert_eq!(parse(Kind::Size, b"K"), None);
        assert_eq!(parse(Kind::Size, b"-5"), None);
        assert_eq!(parse(Kind::Size, b"99999999999999999999G"), None);
    }

    #[test]
    fn parses_millis() {
        assert_eq!(parse(Kind::Millis, b"250"), Some(250));
        assert_eq!(parse(Kind::Millis, b"250ms"), None);
        assert_eq!(parse(Kind::Millis, b""), None);
    }
}
