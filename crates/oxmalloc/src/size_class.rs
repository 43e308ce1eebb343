//! Size classes: which block size serves a request.
//!
//! Classes 0..8 are the exact 8-byte steps 8, 16, ..., 64. Above 64 bytes
//! every power-of-two interval `(2^k, 2^(k+1)]` is split into eight equal
//! steps, so a request never wastes more than 1/8 (12.5%) of its size.
//! The largest class is [`MAX_CLASS_SIZE`] (64 KiB); bigger requests are
//! *large* (a run of whole slices) or *huge* (their own mapping).
//!
//! Requests up to [`DIRECT_MAX`] (1 KiB) are mapped with one table lookup,
//! indexed by `(size + 7) / 8`; the table is built at compile time from the
//! same function that maps larger sizes, and the tests check they agree.

/// Bytes in a machine word; the unit of the smallest classes.
pub const WORD: usize = 8;
/// The largest request served from the direct table.
pub const DIRECT_MAX: usize = 1024;
/// Entries in the direct table: one per word count `0..=DIRECT_MAX/8`.
pub const DIRECT_ENTRIES: usize = DIRECT_MAX / WORD + 1;
/// The largest class the direct table serves.
pub const LAST_DIRECT_CLASS: Class = class_of(DIRECT_MAX);
/// The largest block size that has a size class.
pub const MAX_CLASS_SIZE: usize = 64 * 1024;
/// Number of size classes.
pub const CLASS_COUNT: usize = 8 + 8 * 10;
/// Blocks up to this size live in one-slice (64 KiB) pages; larger class
/// blocks live in [`MEDIUM_PAGE_SLICES`]-slice pages.
pub const SMALL_PAGE_MAX_BLOCK: usize = 8 * 1024;
/// Slices in a page of medium blocks (8 KiB < block ≤ 64 KiB).
pub const MEDIUM_PAGE_SLICES: usize = 8;

/// Index of a size class, `0..CLASS_COUNT`.
pub type Class = usize;

/// The class serving `size` bytes (`size <= MAX_CLASS_SIZE`; 0 counts as 8).
#[inline]
pub const fn class_of(size: usize) -> Class {
    if size <= 64 {
        if size == 0 {
            0
        } else {
            size.div_ceil(8) - 1
        }
    } else {
        // 2^k < size <= 2^(k+1)
        let k = (usize::BITS - 1 - (size - 1).leading_zeros()) as usize;
        let step_shift = k - 3;
        let j = (size - (1 << k) + (1 << step_shift) - 1) >> step_shift; // 1..=8
        8 + (k - 6) * 8 + (j - 1)
    }
}

/// The block size of class `class`.
#[inline]
pub const fn class_size(class: Class) -> usize {
    if class < 8 {
        (class + 1) * 8
    } else {
        let k = 6 + (class - 8) / 8;
        let j = (class - 8) % 8 + 1;
        (1 << k) + (j << (k - 3))
    }
}

/// Slices (64 KiB each) in a page of class `class`.
#[inline]
pub const fn page_slices(class: Class) -> usize {
    if class_size(class) <= SMALL_PAGE_MAX_BLOCK {
        1
    } else {
        MEDIUM_PAGE_SLICES
    }
}

const fn build_direct_table() -> [u8; DIRECT_ENTRIES] {
    let mut table = [0u8; DIRECT_ENTRIES];
    let mut words = 0;
    while words < DIRECT_ENTRIES {
        table[words] = class_of(words * WORD) as u8;
        words += 1;
    }
    table
}

/// Class of every request of up to [`DIRECT_MAX`] bytes, indexed by `(size + 7) / 8`.
pub static DIRECT_CLASS: [u8; DIRECT_ENTRIES] = build_direct_table();

const fn build_size_table() -> [u32; CLASS_COUNT] {
    let mut table = [0u32; CLASS_COUNT];
    let mut class = 0;
    while class < CLASS_COUNT {
        table[class] = class_size(class) as u32;
        class += 1;
    }
    table
}

/// Block size of every class (a table, so hot paths need no arithmetic).
pub static CLASS_SIZE: [u32; CLASS_COUNT] = build_size_table();

/// The class for `size` bytes at alignment `align` (a power of two): the
/// smallest class at least `size` whose block size is a multiple of `align`.
/// Pages start on 64 KiB boundaries, so every block of such a class is
/// naturally aligned and no interior pointer is ever handed out. `None` when
/// no class fits (the request is large).
#[inline]
pub fn class_for_aligned(size: usize, align: usize) -> Option<Class> {
    let size = size.max(align);
    if size > MAX_CLASS_SIZE {
        return None;
    }
    if align <= 16 {
        // Every class of a multiple of 16 is itself a multiple of 16 (up to
        // 128 the class is the size; above, classes step by 16 or more).
        let rounded = (size + align - 1) & !(align - 1);
        return Some(if rounded <= DIRECT_MAX {
            DIRECT_CLASS[rounded.div_ceil(WORD)] as usize
        } else {
            class_of(rounded)
        });
    }
    let mut class = class_of(size);
    while class < CLASS_COUNT {
        if CLASS_SIZE[class] as usize & (align - 1) == 0 {
            return Some(class);
        }
        class += 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Exhaustive loops step through every size natively, and through a
    /// sample under Miri (which interprets every instruction).
    const STEP: usize = if cfg!(miri) { 37 } else { 1 };

    #[test]
    fn every_size_fits_its_class_within_the_waste_bound() {
        for size in (1..=MAX_CLASS_SIZE).step_by(STEP) {
            let class = class_of(size);
            assert!(class < CLASS_COUNT, "size {size}");
            let block = class_size(class);
            assert!(block >= size, "size {size} class {class} block {block}");
            if size <= 64 {
                assert!(block - size < 8, "size {size}: exact 8-byte steps up to 64");
            } else {
                // waste / size <= 12.5%
                assert!((block - size) * 8 <= size, "size {size} -> {block}: waste over 12.5%");
            }
            // Tightest: the class below does not fit.
            if class > 0 {
                assert!(
                    class_size(class - 1) < size,
                    "size {size} could use class {}",
                    class - 1
                );
            }
        }
    }

    #[test]
    fn classes_are_strictly_increasing_and_end_at_the_maximum() {
        for class in 1..CLASS_COUNT {
            assert!(class_size(class) > class_size(class - 1));
            assert_eq!(class_size(class) % WORD, 0);
        }
        assert_eq!(class_size(CLASS_COUNT - 1), MAX_CLASS_SIZE);
        assert_eq!(class_of(MAX_CLASS_SIZE), CLASS_COUNT - 1);
    }

    #[test]
    fn mapping_is_monotonic() {
        let mut prev = 0;
        for size in (0..=MAX_CLASS_SIZE).step_by(STEP) {
            let class = class_of(size);
            assert!(class >= prev, "size {size}");
            prev = class;
        }
    }

    #[test]
    fn direct_table_agrees_with_computed_mapping() {
        for size in 0..=DIRECT_MAX {
            assert_eq!(
                DIRECT_CLASS[size.div_ceil(WORD)] as usize,
                class_of(size),
                "size {size}"
            );
        }
        for (class, &size) in CLASS_SIZE.iter().enumerate() {
            assert_eq!(size as usize, class_size(class));
        }
    }

    #[test]
    fn small_pages_hold_enough_blocks() {
        for class in 0..CLASS_COUNT {
            let blocks = page_slices(class) * 65536 / class_size(class);
            assert!(blocks >= 8, "class {class} has only {blocks} blocks per page");
        }
    }

    #[test]
    fn aligned_classes_are_multiples_of_the_alignment() {
        for align in [1usize, 2, 4, 8, 16, 32, 64, 128, 256, 4096, 65536] {
            for size in (1..=MAX_CLASS_SIZE).step_by(61 * STEP) {
                match class_for_aligned(size, align) {
                    Some(class) => {
                        let block = class_size(class);
                        assert!(block >= size && block % align == 0, "size {size} align {align}");
                    }
                    None => assert!(size.max(align) > MAX_CLASS_SIZE / 2, "size {size} align {align}"),
                }
            }
        }
    }
}
