//! Options: every tunable, read from `OXMALLOC_<NAME>` environment variables
//! at process start-up, or set through the API before first use.
//!
//! The environment is read from `environ` directly (`getenv` may not be
//! usable that early, and nothing here may allocate). Sizes take `K`, `M`,
//! `G` (or `KiB`, `MiB`, `GiB`) suffixes; booleans take 1/0, on/off,
//! true/false, yes/no. A bad value gets one warning naming the option, and
//! the default is kept.
//!
//! Text options (a path) own their bytes: a value is copied into a fixed
//! buffer here (at most [`TEXT_MAX`] bytes; nothing is allocated), whatever
//! it came from (`environ`, [`set_text`], [`apply_env_entry`]), so no
//! option ever points into memory that its caller may free or reuse. See
//! `TEXTS` (private) for the invariant.

use crate::fatal;
use crate::os::{Os, Platform};
use crate::sync::atomic::{AtomicI64, AtomicU8, Ordering};
use crate::sync::Mutex;
use core::cell::UnsafeCell;
use core::ffi::{c_char, CStr};

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
    /// Text (a path) of at most [`TEXT_MAX`] bytes, read with [`text`] and
    /// set with [`set_text`]; its numeric value ([`get`]) is 1 when set,
    /// 0 when unset.
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
    /// Request transparent huge pages (`MADV_HUGEPAGE`) for huge blocks: 0
    /// never, 1 once a huge block is seen filled, 2 from the first.
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
        doc: "milliseconds free memory stays backed before it is returned to the OS (0: at once); doubled while purged memory is soon reused",
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
        kind: Kind::Count,
        default: 1,
        doc: "transparent huge pages on huge blocks (fewer faults; may stall on compaction): 0 never, 1 once the program is seen to fill a huge block (7/8 of its pages resident), 2 from the first",
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

/// The longest value of a text option, in bytes (without a terminating
/// NUL). Longer values are refused with a warning naming the option.
pub const TEXT_MAX: usize = 255;

/// Why setting an option was refused.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum SetError {
    /// A text option given a number ([`set`]): use [`set_text`].
    TextOption,
    /// A text given to an option that is not a text option ([`set_text`]).
    NotText,
    /// A text longer than [`TEXT_MAX`] bytes (a warning was printed).
    TooLong,
    /// A text with a NUL byte in it.
    Nul,
    /// No option has this index in [`OPTIONS`].
    NoSuchOption,
}

/// The value of a text option: a copy, NUL-terminated, owned by whoever
/// holds it (so it stays intact whatever happens to the option afterwards).
#[derive(Clone, Copy)]
pub struct Text {
    len: usize,
    /// `bytes[..len]` is the value, and `bytes[len..]` is all NUL (so the
    /// last byte always is, and the value has no NUL of its own).
    bytes: [u8; TEXT_MAX + 1],
}

impl Text {
    const EMPTY: Text = Text {
        len: 0,
        bytes: [0; TEXT_MAX + 1],
    };

    /// The value's bytes (without the NUL).
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..self.len]
    }

    /// The value as a C string.
    pub fn as_c_str(&self) -> &CStr {
        // Cannot fail: the last byte is NUL and the value holds none.
        CStr::from_bytes_until_nul(&self.bytes).unwrap_or(c"")
    }
}

/// Index of each text option among the text options (`usize::MAX`: not one).
const TEXT_SLOT: [usize; OPTIONS.len()] = {
    let mut slots = [usize::MAX; OPTIONS.len()];
    let (mut i, mut n) = (0, 0);
    while i < OPTIONS.len() {
        if matches!(OPTIONS[i].kind, Kind::Text) {
            slots[i] = n;
            n += 1;
        }
        i += 1;
    }
    slots
};

/// How many text options there are.
const TEXT_COUNT: usize = {
    let (mut i, mut n) = (0, 0);
    while i < OPTIONS.len() {
        if matches!(OPTIONS[i].kind, Kind::Text) {
            n += 1;
        }
        i += 1;
    }
    n
};

/// The values of the text options, one per text option (in the order of
/// [`OPTIONS`]).
///
/// Invariant: a text option's value lives only here, as a copy. Every
/// source (`environ` at start-up, [`set_text`], [`apply_env_entry`]) is
/// copied in under the lock, and every reader copies it out under the lock
/// ([`text`]); no pointer into these buffers is handed out, so changing a
/// value never races with a reader, and no value depends on the lifetime of
/// the memory it came from. Environment strings are copied too: a program
/// may change or free its environment (`putenv` with its own buffer,
/// `setenv`, `clearenv`) after start-up. The lock is a leaf (nothing else is
/// taken under it) and held only to copy at most [`TEXT_MAX`] bytes.
/// For the one reader that needs a pointer for the whole process (the
/// profile written at exit) there is [`pinned_text`].
static TEXTS: [Mutex<Text>; TEXT_COUNT] = [const { Mutex::new(Text::EMPTY) }; TEXT_COUNT];

/// Takes every text option's lock and keeps it (before `fork`; they are
/// leaves, so they come last in the order of `fork.rs`).
pub fn lock_texts_for_fork() {
    for text in &TEXTS {
        text.lock_for_fork();
    }
}

/// Releases the locks taken by [`lock_texts_for_fork`] (parent after `fork`).
///
/// # Safety
/// The calling thread must hold them through [`lock_texts_for_fork`].
pub unsafe fn unlock_texts_after_fork() {
    for text in TEXTS.iter().rev() {
        // SAFETY: caller's contract.
        unsafe { text.unlock_after_fork() };
    }
}

/// Frees the text options' locks in the child of `fork`.
///
/// # Safety
/// Only in the child of `fork`, while it is still single-threaded.
pub unsafe fn reset_texts_in_child() {
    for text in &TEXTS {
        // SAFETY: caller's contract.
        unsafe { text.reset_in_child() };
    }
}

/// The current value of an option (text options: 1 when set, 0 when unset;
/// read the text with [`text`]).
#[inline]
pub fn get(opt: Opt) -> i64 {
    VALUES[opt as usize].load(Ordering::Relaxed)
}

/// The value of the option at `index` in [`OPTIONS`] (0 when out of range;
/// text options: 1 when set, 0 when unset).
pub fn value_at(index: usize) -> i64 {
    VALUES.get(index).map_or(0, |v| v.load(Ordering::Relaxed))
}

/// Sets a numeric (or boolean) option. Takes effect for what happens
/// afterwards; options that shape start-up (RESERVE, VERBOSE) only count
/// before the first allocation. A text option is refused
/// ([`SetError::TextOption`]) and keeps its value: set it with [`set_text`].
pub fn set(opt: Opt, value: i64) -> Result<(), SetError> {
    set_at(opt as usize, value)
}

/// [`set`] for the option at `index` in [`OPTIONS`].
pub fn set_at(index: usize, value: i64) -> Result<(), SetError> {
    match OPTIONS.get(index) {
        None => Err(SetError::NoSuchOption),
        Some(info) if info.kind == Kind::Text => Err(SetError::TextOption),
        Some(_) => {
            VALUES[index].store(value, Ordering::Relaxed);
            Ok(())
        }
    }
}

/// Sets a text option to a copy of `value` (empty: unset). `value` may be
/// freed or overwritten as soon as this returns. Refused, and the option
/// keeps its value, when `opt` is not a text option, when `value` is
/// longer than [`TEXT_MAX`] bytes (with a warning naming the option), or
/// when it holds a NUL byte.
///
/// `PROF` set after start-up is the path of `ox_prof_dump(NULL)`; the
/// profile written at exit goes where `PROF` named at start-up.
pub fn set_text(opt: Opt, value: &[u8]) -> Result<(), SetError> {
    set_text_at(opt as usize, value)
}

/// [`set_text`] for the option at `index` in [`OPTIONS`].
pub fn set_text_at(index: usize, value: &[u8]) -> Result<(), SetError> {
    let Some(info) = OPTIONS.get(index) else {
        return Err(SetError::NoSuchOption);
    };
    let slot = TEXT_SLOT[index];
    if slot == usize::MAX {
        return Err(SetError::NotText);
    }
    if value.len() > TEXT_MAX {
        let mut lengths = crate::util::Line::new();
        lengths
            .dec(value.len() as u64)
            .str(" bytes long; at most ")
            .dec(TEXT_MAX as u64);
        fatal::warn(&[
            b"OXMALLOC_",
            info.name.as_bytes(),
            b" is ",
            lengths.as_bytes(),
            b" bytes are allowed (value ignored)",
        ]);
        return Err(SetError::TooLong);
    }
    if value.contains(&0) {
        return Err(SetError::Nul);
    }
    let mut text = TEXTS[slot].lock();
    text.bytes[..value.len()].copy_from_slice(value);
    text.bytes[value.len()..].fill(0);
    text.len = value.len();
    // Under the lock, so that the flag and the text change together.
    VALUES[index].store(!value.is_empty() as i64, Ordering::Relaxed);
    Ok(())
}

/// A copy of a text option's value; `None` when it is unset or `opt` is not
/// a text option.
pub fn text(opt: Opt) -> Option<Text> {
    text_at(opt as usize)
}

/// [`text`] for the option at `index` in [`OPTIONS`].
pub fn text_at(index: usize) -> Option<Text> {
    let slot = *TEXT_SLOT.get(index)?;
    if slot == usize::MAX {
        return None;
    }
    let text = *TEXTS[slot].lock();
    (text.len != 0).then_some(text)
}

/// A text option's value copied once into a buffer that is never written
/// again, for a reader that keeps a pointer for the rest of the process
/// (the profile written at exit). Null when `opt` is not a text option or
/// is unset at the first call. Every call returns the same pointer, to a
/// NUL-terminated string that is never written after the first call
/// returns and lives as long as the process (a thread that gets the
/// pointer from another needs the usual happens-before to read it, e.g.
/// process initialisation's Release store).
pub fn pinned_text(opt: Opt) -> *const c_char {
    let slot = TEXT_SLOT[opt as usize];
    if slot == usize::MAX {
        return core::ptr::null();
    }
    PINNED_TEXTS[slot].pin(|| text(opt))
}

/// A buffer written once, then only read ([`pinned_text`]).
struct Pinned {
    /// `UNPINNED`, `PINNING` (one thread is writing `text`), or `PINNED`.
    state: AtomicU8,
    text: UnsafeCell<Text>,
}

const UNPINNED: u8 = 0;
const PINNING: u8 = 1;
const PINNED: u8 = 2;

// SAFETY: `text` is written only by the one thread that moves `state` from
// UNPINNED to PINNING, before it stores PINNED with Release; it is read only
// after an Acquire load of PINNED, and never written again. So no access to
// it races.
unsafe impl Sync for Pinned {}

impl Pinned {
    /// Copies `value()` in on the first call; returns the C string (null:
    /// unset).
    fn pin(&self, value: impl FnOnce() -> Option<Text>) -> *const c_char {
        if self
            .state
            .compare_exchange(UNPINNED, PINNING, Ordering::Acquire, Ordering::Acquire)
            .is_ok()
        {
            if let Some(v) = value() {
                // SAFETY: we moved the state to PINNING, so we are the only
                // thread that ever writes `text`, and nobody reads it before
                // it becomes PINNED (see the `Sync` impl).
                unsafe { *self.text.get() = v };
            }
            self.state.store(PINNED, Ordering::Release);
        } else {
            while self.state.load(Ordering::Acquire) != PINNED {
                core::hint::spin_loop();
            }
        }
        // SAFETY: the state is PINNED (stored by us, or seen with Acquire),
        // so `text` is written for good and only read from now on.
        let text = unsafe { &*self.text.get() };
        if text.len == 0 {
            core::ptr::null()
        } else {
            text.bytes.as_ptr().cast()
        }
    }
}

/// The pinned copies, one per text option (see [`pinned_text`]).
static PINNED_TEXTS: [Pinned; TEXT_COUNT] = [const {
    Pinned {
        state: AtomicU8::new(UNPINNED),
        text: UnsafeCell::new(Text::EMPTY),
    }
}; TEXT_COUNT];

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

/// `HUGE_PAGES` not 0: huge blocks may get transparent huge pages.
#[inline]
pub fn huge_pages() -> bool {
    get(Opt::HugePages) != 0
}

/// `HUGE_PAGES` 2 (or more): from the first huge block, without waiting for
/// one to be seen filled.
#[inline]
pub fn huge_pages_eager() -> bool {
    get(Opt::HugePages) >= 2
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
        // The caller copies the text itself ([`set_text`]).
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

/// The index in [`OPTIONS`] of the option called `name` (without the
/// `OXMALLOC_` prefix, any case).
pub fn index_of(name: &[u8]) -> Option<usize> {
    // Not inlined: compared against each constant name in turn, the
    // comparison was unrolled into one specialised copy per option
    // (docs/PERFORMANCE.md E86).
    #[inline(never)]
    fn same(a: &[u8], b: &[u8]) -> bool {
        a.eq_ignore_ascii_case(b)
    }
    OPTIONS.iter().position(|o| same(o.name.as_bytes(), name))
}

/// Applies one `NAME=VALUE` environment entry if it is an oxmalloc option.
/// A text value is copied (see [`set_text`]): `entry` may be freed or
/// overwritten as soon as this returns.
pub fn apply_env_entry(entry: &[u8]) {
    const PREFIX: &[u8] = b"OXMALLOC_";
    let Some(rest) = entry.strip_prefix(PREFIX) else {
        return;
    };
    let Some(eq) = rest.iter().position(|&b| b == b'=') else {
        return;
    };
    let (name, value) = (&rest[..eq], &rest[eq + 1..]);
    let Some(index) = index_of(name) else {
        fatal::warn(&[b"unknown option OXMALLOC_", name, b" (ignored)"]);
        return;
    };
    let info = &OPTIONS[index];
    match parse(info.kind, value) {
        // Too long: `set_text_at` has warned. A NUL: not a text.
        Some(_) if info.kind == Kind::Text => match set_text_at(index, value) {
            Ok(()) | Err(SetError::TooLong) => {}
            Err(_) => fatal::warn(&[
                b"OXMALLOC_",
                info.name.as_bytes(),
                b" holds a NUL byte; it is not ",
                kind_words(info.kind).as_bytes(),
                b" (ignored)",
            ]),
        },
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
    fn every_option_is_found_by_its_name_in_any_case() {
        for (i, o) in OPTIONS.iter().enumerate() {
            assert_eq!(index_of(o.name.as_bytes()), Some(i), "{}", o.name);
            let lower = o.name.to_ascii_lowercase();
            assert_eq!(index_of(lower.as_bytes()), Some(i), "{lower}");
            let longer = std::format!("{}X", o.name);
            assert_eq!(index_of(longer.as_bytes()), None, "{longer}");
            assert_eq!(index_of(&o.name.as_bytes()[1..]), None, "{}", &o.name[1..]);
        }
        assert_eq!(index_of(b""), None);
        assert_eq!(
            index_of(b"OXMALLOC_SHOW_STATS"),
            None,
            "the prefix is the caller's to strip"
        );
    }

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
