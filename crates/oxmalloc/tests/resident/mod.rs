//! Shared by the tests that watch which OS pages a heap makes resident:
//! `mincore` on one page at a time, in a process with transparent huge
//! pages off.

// Each test binary that includes this module uses only part of it.
#![allow(dead_code)]

/// Bytes in an OS page.
pub fn page_size() -> usize {
    // SAFETY: sysconf has no preconditions.
    unsafe { libc::sysconf(libc::_SC_PAGESIZE) as usize }
}

/// Whether the OS page holding `addr` is resident.
pub fn resident(addr: usize) -> bool {
    let page = page_size();
    let mut vec = [0u8; 1];
    // SAFETY: one byte of `vec` for the one page asked about; mincore only
    // reads the page tables.
    let r = unsafe { libc::mincore((addr & !(page - 1)) as *mut libc::c_void, page, vec.as_mut_ptr()) };
    assert_eq!(r, 0, "mincore({addr:#x}): {}", std::io::Error::last_os_error());
    vec[0] & 1 != 0
}

/// Turns transparent huge pages off for this process: a huge page under a
/// chunk would make all of it resident at the first write anywhere in it.
pub fn without_huge_pages() {
    // SAFETY: prctl with these arguments only sets a flag of this process.
    let r = unsafe { libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0) };
    assert_eq!(r, 0, "PR_SET_THP_DISABLE: {}", std::io::Error::last_os_error());
}
