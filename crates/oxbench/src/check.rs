//! Content patterns written into blocks and checked before they are freed.
//!
//! A block's pattern is a stream of 64-bit words derived from a `tag` (chosen
//! by the workload, usually from the block's address, size and a counter):
//! word `k` is `tag ^ (k * GOLDEN)`. A block is either filled completely
//! ([`Coverage::Full`]) or only at both ends ([`Coverage::Ends`], for
//! workloads that "touch a couple of bytes"). [`verify`] compares the same
//! bytes and reports the first mismatch as a [`Corruption`].

use std::fmt;
use std::ops::Range;

const GOLDEN: u64 = 0x9E37_79B9_7F4A_7C15;
/// Bytes checked at each end of a block under [`Coverage::Ends`].
const END_BYTES: usize = 16;

/// How much of a block the pattern covers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Coverage {
    /// Every byte.
    Full,
    /// The first and last 16 bytes (the whole block when smaller).
    Ends,
    /// Both ends and one byte in every 4 KiB (touches every page).
    Pages,
}

/// A block did not hold the bytes written into it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Corruption {
    /// Which workload found it.
    pub workload: String,
    /// What was wrong, with the address, size and offset.
    pub detail: String,
}

impl fmt::Display for Corruption {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DATA CORRUPTION in {}: {}", self.workload, self.detail)
    }
}

impl std::error::Error for Corruption {}

impl Corruption {
    /// A corruption found by `workload`.
    pub fn new(workload: &str, detail: impl Into<String>) -> Self {
        Corruption {
            workload: workload.to_string(),
            detail: detail.into(),
        }
    }
}

/// Mixes an address, a size and a counter into a tag.
#[inline]
pub fn tag_of(addr: usize, size: usize, counter: u64) -> u64 {
    let mut x = (addr as u64) ^ ((size as u64) << 40) ^ counter.wrapping_mul(GOLDEN);
    x ^= x >> 31;
    x = x.wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x ^= x >> 29;
    x | 1
}

#[inline]
fn word(tag: u64, k: usize) -> u64 {
    tag ^ (k as u64).wrapping_mul(GOLDEN)
}

/// The pattern byte at offset `i`.
#[inline]
pub fn expected_byte(tag: u64, i: usize) -> u8 {
    word(tag, i / 8).to_le_bytes()[i % 8]
}

/// Writes the pattern into `block`.
pub fn fill(block: &mut [u8], tag: u64, coverage: Coverage) {
    match coverage {
        Coverage::Full => fill_range(block, tag, 0..block.len()),
        Coverage::Ends | Coverage::Pages => {
            for i in sparse_offsets(block.len(), coverage) {
                block[i] = expected_byte(tag, i);
            }
        }
    }
}

/// Writes the full pattern into `block[range]` (offsets stay relative to the
/// start of the block, so a block can be filled piecewise as it grows).
pub fn fill_range(block: &mut [u8], tag: u64, range: Range<usize>) {
    let (start, end) = (range.start, range.end.min(block.len()));
    if start >= end {
        return;
    }
    let first_word = start.div_ceil(8).min(end / 8);
    let last_word = end / 8;
    let head = start..(first_word * 8).clamp(start, end);
    for (b, i) in block[head.clone()].iter_mut().zip(head) {
        *b = expected_byte(tag, i);
    }
    if first_word < last_word {
        let words = block[first_word * 8..last_word * 8].chunks_exact_mut(8);
        for (j, chunk) in words.enumerate() {
            chunk.copy_from_slice(&word(tag, first_word + j).to_le_bytes());
        }
    }
    let tail = (last_word * 8).max(start)..end;
    for (b, i) in block[tail.clone()].iter_mut().zip(tail) {
        *b = expected_byte(tag, i);
    }
}

/// Checks the pattern written by [`fill`] with the same `tag` and `coverage`.
pub fn verify(workload: &str, block: &[u8], tag: u64, coverage: Coverage) -> Result<(), Corruption> {
    match coverage {
        Coverage::Full => verify_range(workload, block, tag, 0..block.len()),
        Coverage::Ends | Coverage::Pages => {
            match sparse_offsets(block.len(), coverage).find(|&i| block[i] != expected_byte(tag, i)) {
                None => Ok(()),
                Some(i) => Err(mismatch(workload, block, tag, i)),
            }
        }
    }
}

/// Checks the full pattern in `block[range]`.
pub fn verify_range(workload: &str, block: &[u8], tag: u64, range: Range<usize>) -> Result<(), Corruption> {
    let (start, end) = (range.start, range.end.min(block.len()));
    if start >= end {
        return Ok(());
    }
    let first_word = start.div_ceil(8).min(end / 8);
    let last_word = end / 8;
    let byte_ok = |i: usize| block[i] == expected_byte(tag, i);
    let bad = (start..(first_word * 8).min(end))
        .find(|&i| !byte_ok(i))
        .or_else(|| {
            if first_word >= last_word {
                return None;
            }
            block[first_word * 8..last_word * 8]
                .chunks_exact(8)
                .enumerate()
                .find(|(j, c)| *c != word(tag, first_word + j).to_le_bytes())
                .map(|(j, _)| {
                    let base = (first_word + j) * 8;
                    (base..base + 8).find(|&i| !byte_ok(i)).unwrap_or(base)
                })
        })
        .or_else(|| ((last_word * 8).max(start)..end).find(|&i| !byte_ok(i)));
    match bad {
        None => Ok(()),
        Some(i) => Err(mismatch(workload, block, tag, i)),
    }
}

fn mismatch(workload: &str, block: &[u8], tag: u64, i: usize) -> Corruption {
    Corruption::new(
        workload,
        format!(
            "block {:p} of {} bytes: byte at offset {} is {:#04x}, expected {:#04x}",
            block.as_ptr(),
            block.len(),
            i,
            block[i],
            expected_byte(tag, i)
        ),
    )
}

/// Checks that `block` is all zeroes (for `calloc`-style allocations),
/// looking at every `stride`-th byte plus 64 bytes at both ends.
pub fn verify_zeroed(workload: &str, block: &[u8], stride: usize) -> Result<(), Corruption> {
    let len = block.len();
    let bad = (0..len.min(64))
        .chain((0..len).step_by(stride.max(1)))
        .chain(len.saturating_sub(64)..len)
        .find(|&i| block[i] != 0);
    match bad {
        None => Ok(()),
        Some(i) => Err(Corruption::new(
            workload,
            format!(
                "zeroed block {:p} of {} bytes has {:#04x} at offset {}",
                block.as_ptr(),
                len,
                block[i],
                i
            ),
        )),
    }
}

const PAGE: usize = 4096;

/// Offsets covered by the sparse coverages, in increasing order.
fn sparse_offsets(len: usize, coverage: Coverage) -> impl Iterator<Item = usize> {
    let head = len.min(END_BYTES);
    let tail_start = len.saturating_sub(END_BYTES).max(head);
    let pages = coverage == Coverage::Pages;
    let middle = (PAGE.min(tail_start)..tail_start).step_by(PAGE).filter(move |_| pages);
    (0..head).chain(middle).chain(tail_start..len)
}

/// Size of the header of a self-describing block (see [`fill_tagged`]).
pub const TAGGED_HEADER: usize = 8;

fn tagged_header(addr: usize, size: usize) -> u64 {
    ((tag_of(addr, size, 0) >> 32) << 32) | size as u64
}

/// Makes `block` (at least 8 bytes, under 4 GiB) self-describing, for blocks
/// that travel through shared pointer arrays without their size: the first
/// word holds the size and a hash of address and size, the rest the full
/// pattern of that word.
pub fn fill_tagged(block: &mut [u8]) {
    let header = tagged_header(block.as_ptr() as usize, block.len());
    block[..TAGGED_HEADER].copy_from_slice(&header.to_le_bytes());
    fill_range(block, header, TAGGED_HEADER..block.len());
}

/// Reads the size of a self-describing block at `ptr` and checks it:
/// the header must match the address and be at most `max_size`.
///
/// # Safety
/// `ptr` must point to at least 8 readable bytes.
pub unsafe fn tagged_size(workload: &str, ptr: *const u8, max_size: usize) -> Result<usize, Corruption> {
    // SAFETY: the caller guarantees 8 readable bytes.
    let header = u64::from_le_bytes(unsafe { ptr.cast::<[u8; 8]>().read_unaligned() });
    let size = (header & 0xFFFF_FFFF) as usize;
    if size < TAGGED_HEADER || size > max_size || header != tagged_header(ptr as usize, size) {
        return Err(Corruption::new(
            workload,
            format!("self-describing block {ptr:p} has a corrupted header {header:#018x}"),
        ));
    }
    Ok(size)
}

/// Checks a block written by [`fill_tagged`] (its size already validated
/// by [`tagged_size`]).
pub fn verify_tagged(workload: &str, block: &[u8]) -> Result<(), Corruption> {
    let header = tagged_header(block.as_ptr() as usize, block.len());
    if block[..TAGGED_HEADER] != header.to_le_bytes() {
        return Err(mismatch(workload, block, header, 0));
    }
    verify_range(workload, block, header, TAGGED_HEADER..block.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_pattern_round_trips_and_detects_every_byte() {
        for len in [0usize, 1, 7, 8, 9, 31, 64, 1000] {
            let mut v = vec![0u8; len];
            let tag = tag_of(v.as_ptr() as usize, len, 3);
            fill(&mut v, tag, Coverage::Full);
            verify("t", &v, tag, Coverage::Full).unwrap();
            for i in 0..len {
                v[i] ^= 0x40;
                let err = verify("t", &v, tag, Coverage::Full).unwrap_err();
                assert!(err.detail.contains(&format!("offset {i} ")), "{err}");
                v[i] ^= 0x40;
            }
        }
    }

    #[test]
    fn ends_pattern_detects_ends_only() {
        let mut v = vec![0u8; 100];
        let tag = tag_of(1, 100, 0);
        fill(&mut v, tag, Coverage::Ends);
        verify("t", &v, tag, Coverage::Ends).unwrap();
        v[50] ^= 1; // the middle is not covered
        verify("t", &v, tag, Coverage::Ends).unwrap();
        v[99] ^= 1;
        assert!(verify("t", &v, tag, Coverage::Ends).is_err());
        v[99] ^= 1;
        v[0] ^= 1;
        assert!(verify("t", &v, tag, Coverage::Ends).is_err());
    }

    #[test]
    fn wrong_tag_is_detected() {
        let mut v = vec![0u8; 24];
        fill(&mut v, 5, Coverage::Full);
        assert!(verify("t", &v, 7, Coverage::Full).is_err());
    }

    #[test]
    fn ranges_compose_to_full() {
        let mut v = vec![0u8; 1000];
        let tag = 99;
        fill_range(&mut v, tag, 0..3);
        fill_range(&mut v, tag, 3..17);
        fill_range(&mut v, tag, 17..600);
        fill_range(&mut v, tag, 600..1000);
        // Ranges that start and end inside one word.
        fill_range(&mut v, tag, 65..70);
        fill_range(&mut v, tag, 71..71);
        verify("t", &v, tag, Coverage::Full).unwrap();
        verify_range("t", &v, tag, 5..13).unwrap();
        v[9] ^= 1;
        assert!(verify_range("t", &v, tag, 5..13).is_err());
        assert!(verify_range("t", &v, tag, 10..13).is_ok());
    }

    #[test]
    fn pages_coverage_touches_every_page() {
        let mut v = vec![0u8; 5 * 4096 + 10];
        fill(&mut v, 3, Coverage::Pages);
        for page in 0..6 {
            assert!(v[page * 4096..(page * 4096 + 4096).min(v.len())]
                .iter()
                .any(|&b| b != 0));
        }
        verify("t", &v, 3, Coverage::Pages).unwrap();
        v[3 * 4096] ^= 1;
        assert!(verify("t", &v, 3, Coverage::Pages).is_err());
    }

    #[test]
    fn tagged_blocks() {
        for len in [8usize, 9, 128, 1000] {
            let mut v = vec![0u8; len];
            fill_tagged(&mut v);
            // SAFETY: v has at least 8 bytes.
            assert_eq!(unsafe { tagged_size("t", v.as_ptr(), 1 << 20) }, Ok(len));
            verify_tagged("t", &v).unwrap();
            v[len - 1] ^= 1;
            if len > 8 {
                assert!(verify_tagged("t", &v).is_err());
            }
            v[len - 1] ^= 1;
            v[0] ^= 1;
            // SAFETY: as above.
            assert!(unsafe { tagged_size("t", v.as_ptr(), 1 << 20) }.is_err());
        }
    }

    #[test]
    fn zero_check() {
        let mut v = vec![0u8; 10_000];
        verify_zeroed("t", &v, 4096).unwrap();
        v[8192] = 1;
        assert!(verify_zeroed("t", &v, 4096).is_err());
        v[8192] = 0;
        v[9_999] = 1;
        assert!(verify_zeroed("t", &v, 4096).is_err());
    }
}
