//! The kernel's vDSO, read directly: the one function oxmalloc needs from
//! it, `clock_gettime`, found in its dynamic symbol table.
//!
//! Why not libc's `clock_gettime`, which calls the same code: the wrapper
//! sits in a part of libc's text that glibc's own `malloc` never touches.
//! Calling it maps a 64 KiB window of libc (the kernel maps the pages
//! around a faulting one), which then counts in every process's resident
//! set; in a small program that is 64 KiB of its peak
//! (docs/PERFORMANCE.md E95, E96). `getauxval`, which finds the vDSO, sits
//! next to `mmap`, which the engine calls anyway.
//!
//! Every address read here is checked to lie inside the vDSO's one
//! loadable segment before it is read; anything unexpected gives `None`,
//! and the caller goes through libc.

use core::ffi::{c_char, CStr};

/// `clock_gettime`'s signature.
pub type ClockGettime = unsafe extern "C" fn(libc::clockid_t, *mut libc::timespec) -> libc::c_int;

// The parts of the ELF64 format read here (the System V gABI's layouts).
#[repr(C)]
struct FileHeader {
    ident: [u8; 16],
    kind: u16,
    machine: u16,
    version: u32,
    entry: u64,
    program_headers: u64,
    section_headers: u64,
    flags: u32,
    header_size: u16,
    program_header_size: u16,
    program_header_count: u16,
}

#[repr(C)]
struct ProgramHeader {
    kind: u32,
    flags: u32,
    offset: u64,
    address: u64,
    physical_address: u64,
    file_size: u64,
    memory_size: u64,
    align: u64,
}

#[repr(C)]
struct Dynamic {
    tag: i64,
    value: u64,
}

#[repr(C)]
struct Symbol {
    name: u32,
    info: u8,
    other: u8,
    section: u16,
    value: u64,
    size: u64,
}

const PT_LOAD: u32 = 1;
const PT_DYNAMIC: u32 = 2;
const DT_NULL: i64 = 0;
const DT_HASH: i64 = 4;
const DT_STRTAB: i64 = 5;
const DT_SYMTAB: i64 = 6;
const STT_FUNC: u8 = 2;
const SHN_UNDEF: u16 = 0;

/// The vDSO's loadable segment as mapped: `[start, end)`, and the
/// difference between mapped and linked addresses.
struct Image {
    start: usize,
    end: usize,
    bias: usize,
}

impl Image {
    /// The address that the linked address `linked` (a `d_ptr` or a
    /// symbol's value) has in memory, if `size` bytes from there are
    /// inside the image.
    fn at(&self, linked: u64, size: usize) -> Option<usize> {
        let addr = self.bias.checked_add(linked as usize)?;
        (addr >= self.start && addr.checked_add(size)? <= self.end).then_some(addr)
    }

    /// Reads a `T` at mapped address `addr`, if it lies in the image.
    fn read<T>(&self, addr: usize) -> Option<T> {
        if addr < self.start || addr.checked_add(size_of::<T>())? > self.end || addr % align_of::<T>() != 0 {
            return None;
        }
        // SAFETY: inside the vDSO's mapped, readable segment and aligned
        // (checked just above); the types read are plain integers.
        Some(unsafe { (addr as *const T).read() })
    }
}

/// The vDSO's `__vdso_clock_gettime`, or `None` (no vDSO, or one this
/// reader does not understand).
pub fn clock_gettime() -> Option<ClockGettime> {
    let addr = lookup(c"__vdso_clock_gettime")?;
    // SAFETY: the vDSO's exported function of that name has the C
    // signature of `clock_gettime` (the kernel's ABI).
    Some(unsafe { core::mem::transmute::<usize, ClockGettime>(addr) })
}

/// The address of the vDSO's defined function `name`.
fn lookup(name: &CStr) -> Option<usize> {
    // SAFETY: `getauxval` only reads the auxiliary vector.
    let base = unsafe { libc::getauxval(libc::AT_SYSINFO_EHDR) } as usize;
    if base == 0 {
        return None;
    }
    // The file header is at the start of the mapping (one page at least).
    let header_image = Image {
        start: base,
        end: base + 4096,
        bias: base,
    };
    let header: FileHeader = header_image.read(base)?;
    if header.ident[..4] != *b"\x7fELF"
        || header.ident[4] != 2
        || header.program_header_size as usize != size_of::<ProgramHeader>()
    {
        return None;
    }
    let mut load = None;
    let mut dynamic = None;
    for i in 0..header.program_header_count as usize {
        let at = base + header.program_headers as usize + i * size_of::<ProgramHeader>();
        let ph: ProgramHeader = header_image.read(at)?;
        match ph.kind {
            PT_LOAD if load.is_none() => load = Some(ph),
            PT_DYNAMIC => dynamic = Some(ph),
            _ => {}
        }
    }
    let (load, dynamic) = (load?, dynamic?);
    let start = base.checked_add(load.offset as usize)?;
    let image = Image {
        start,
        end: start.checked_add(load.memory_size as usize)?,
        bias: start.wrapping_sub(load.address as usize),
    };
    let (mut hash, mut strings, mut symbols) = (None, None, None);
    let mut at = image.at(dynamic.address, size_of::<Dynamic>())?;
    loop {
        let entry: Dynamic = image.read(at)?;
        match entry.tag {
            DT_NULL => break,
            DT_HASH => hash = Some(entry.value),
            DT_STRTAB => strings = Some(entry.value),
            DT_SYMTAB => symbols = Some(entry.value),
            _ => {}
        }
        at += size_of::<Dynamic>();
    }
    // The symbol count is the hash table's chain count (its second word).
    let count: u32 = image.read(image.at(hash?, 8)? + 4)?;
    let (strings, symbols) = (image.at(strings?, 1)?, image.at(symbols?, size_of::<Symbol>())?);
    for i in 0..count as usize {
        let symbol: Symbol = image.read(symbols + i * size_of::<Symbol>())?;
        if symbol.section == SHN_UNDEF || symbol.info & 0xf != STT_FUNC {
            continue;
        }
        if names_match(&image, strings + symbol.name as usize, name) {
            return image.at(symbol.value, 1);
        }
    }
    None
}

/// Whether the NUL-terminated string at `addr` (inside the image) is `name`.
fn names_match(image: &Image, addr: usize, name: &CStr) -> bool {
    let wanted = name.to_bytes_with_nul();
    wanted
        .iter()
        .enumerate()
        .all(|(i, &byte)| image.read::<c_char>(addr + i) == Some(byte as c_char))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_clock_gettime_and_it_agrees_with_libc() {
        let clock = clock_gettime().expect("the vDSO's clock_gettime (Linux x86_64 has one)");
        let read = |f: &dyn Fn(*mut libc::timespec)| {
            let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
            f(&mut ts);
            ts.tv_sec as i128 * 1_000_000_000 + ts.tv_nsec as i128
        };
        // SAFETY: valid out-parameters.
        let before = read(&|ts| unsafe {
            libc::clock_gettime(libc::CLOCK_MONOTONIC, ts);
        });
        // SAFETY: as above; `clock` is the vDSO's clock_gettime.
        let ours = read(&|ts| unsafe {
            assert_eq!(clock(libc::CLOCK_MONOTONIC, ts), 0);
        });
        // SAFETY: as above.
        let after = read(&|ts| unsafe {
            libc::clock_gettime(libc::CLOCK_MONOTONIC, ts);
        });
        assert!(before <= ours && ours <= after, "{before} <= {ours} <= {after}");
    }

    #[test]
    fn unknown_names_are_not_found() {
        assert_eq!(lookup(c"__vdso_no_such_function"), None);
        assert_eq!(lookup(c"__vdso_clock_gettim"), None);
    }
}
