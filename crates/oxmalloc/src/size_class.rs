//! Size classes: which block size serves a request.
//!
//! Classes 0..8 are the exact 8-byte steps 8, 16, ..., 64. Above 64 bytes
//! every power-of-two interval `(2^k, 2^(k+1)]` is split into equal steps:
//! eight for `(64, 256]`, sixteen for `(256, 1024]` (steps of 16 and 32
//! bytes), four above 1 KiB. So a request up to 1 KiB never wastes more
//! than 1/8 (12.5%) of its size, at most 1/16 between 256 B and 1 KiB, and
//! a larger one less than 1/4.
//!
//! Why finer steps there: a program that touches the ends of its blocks
//! (a header at the start, a trailer or the last field at the end) touches
//! two lines of each block, unless a block's end shares a line with its
//! neighbour's start. With eight steps per doubling, every class from 512 B
//! to 1 KiB was a multiple of 64, so no two blocks there ever shared a
//! line, and a request was rounded up by 32 bytes on average. larson,
//! which checks the ends of 8-1,000 B blocks, touched 13% more distinct
//! lines with those classes than rpmalloc's 16-byte steps
//! (docs/PERFORMANCE.md E99). 16-byte steps all the way to 1 KiB would
//! make 72 classes up to 1 KiB, more than the small-class bitmask word
//! holds (`Heap::pinned_classes`), and each class keeps pages of its own:
//! that build peaked 15% higher on larson@8.
//!
//! But a class that holds a few blocks at a time pays for the finer steps
//! too: its page sits cold between two uses, and twice as many classes
//! share the same allocations, so more of them miss the cache (the latency
//! workload's small `malloc`s: docs/PERFORMANCE.md E100). And each class
//! with a page of its own keeps at least one OS page resident, however few
//! blocks it holds: sqlite's peak held about 20 classes of 80 B-1 KiB with
//! a handful of blocks each, a 4 KiB page for each (E112). So every class
//! from 64 B to 1 KiB that is not a power of two *borrows* ([`lender_of`]):
//! a heap serves it from the current page of its *lender*, the top class
//! of its doubling (128, 256, 512 or 1024 B), until one of its own slow
//! paths finds a page of the lender more than half used
//! (`Heap::take_block`). Classes busy enough to reach the slow path on a
//! crowded page get pages of their own; the rare ones share their
//! lender's, in blocks at most twice their size (E116; E100 began it with
//! the sixteen steps' odd classes, each borrowing the class a step above).
//!
//! Why coarser steps above 1 KiB: those classes share few allocations
//! between them (about one in 128 in the latency workload), so a class's
//! current page often empties between two of its uses, another
//! class takes its span (`Heap::retire_empty_current`), and the next use
//! makes a page again on lines gone cold: the allocations above 1 KiB set
//! `malloc`'s p99.9 at 2 threads (docs/PERFORMANCE.md E76, E107). With
//! four steps per doubling (mimalloc's and jemalloc's count) each class
//! gets twice the traffic: the latency workload's allocations above 1 KiB
//! took over 1 µs half as often (E108), and peaks stayed within their
//! run-to-run spread. A program that asks for one odd size over and over
//! still gets blocks of that size (`Heap::page_block_size`), so the
//! coarser rounding does not reach it.
//!
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
/// Number of size classes (80): 8 up to 64 B, 8 for each of the two
/// doublings up to 256 B, 16 for each of the two up to 1 KiB, and 4 for
/// each of the six up to 64 KiB.
pub const CLASS_COUNT: usize = class_of(MAX_CLASS_SIZE) + 1;
/// Blocks up to this size live in one-slice (64 KiB) pages; larger class
/// blocks live in [`MEDIUM_PAGE_SLICES`]-slice pages.
pub const SMALL_PAGE_MAX_BLOCK: usize = 8 * 1024;
/// Slices in a page of medium blocks (8 KiB < block ≤ 64 KiB).
pub const MEDIUM_PAGE_SLICES: usize = 8;

/// Index of a size class, `0..CLASS_COUNT`.
pub type Class = usize;

/// Log2 of the steps that the doubling `(2^k, 2^(k+1)]` is split into
/// (`k >= 6`): eight up to 256 B, sixteen from 256 B to 1 KiB, four above.
#[inline(always)]
const fn steps_log2(k: usize) -> usize {
    if k < 8 {
        3
    } else if k < 10 {
        4
    } else {
        2
    }
}

/// The first class of the doubling `(2^k, 2^(k+1)]` (`k >= 6`): the 8
/// exact classes, then as many as each doubling below `k` has.
#[inline(always)]
const fn first_class_of_doubling(k: usize) -> Class {
    if k <= 8 {
        8 + 8 * (k - 6)
    } else if k <= 10 {
        24 + 16 * (k - 8)
    } else {
        56 + 4 * (k - 10)
    }
}

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
        let step_shift = k - steps_log2(k);
        let j = (size - (1 << k) + (1 << step_shift) - 1) >> step_shift; // 1..=steps
        first_class_of_doubling(k) + (j - 1)
    }
}

/// `log2(DIRECT_MAX)`: the doubling `(2^k, 2^(k+1)]` with this `k` is the
/// first above the direct table's reach.
const DIRECT_MAX_LOG2: usize = DIRECT_MAX.ilog2() as usize;
/// The first class above [`DIRECT_MAX`], where the doublings of four steps
/// start.
const FIRST_ABOVE_DIRECT: Class = first_class_of_doubling(DIRECT_MAX_LOG2);

// Every doubling above the direct table's reach has four steps, which
// `class_above_direct` relies on (`steps_log2` is 2 for every `k` from here).
const _: () = assert!(DIRECT_MAX.is_power_of_two() && steps_log2(DIRECT_MAX_LOG2) == 2);
const _: () = assert!(FIRST_ABOVE_DIRECT == LAST_DIRECT_CLASS + 1);

/// [`class_of`] for `DIRECT_MAX < size <= MAX_CLASS_SIZE`, the sizes an
/// allocation maps at run time: there every doubling `(2^k, 2^(k+1)]` has
/// four steps, and `(size - 1) >> (k - 2)` is 4 plus the step's index.
/// `class_of` branches on the range three times, which the compiler does
/// not fold away from `size > DIRECT_MAX`: 36 instructions of a 2 KiB
/// `malloc` went there (docs/PERFORMANCE.md E109).
#[inline(always)]
pub const fn class_above_direct(size: usize) -> Class {
    debug_assert!(size > DIRECT_MAX && size <= MAX_CLASS_SIZE);
    let k = (usize::BITS - 1 - (size - 1).leading_zeros()) as usize;
    FIRST_ABOVE_DIRECT + 4 * (k - DIRECT_MAX_LOG2) + ((size - 1) >> (k - 2)) - 4
}

/// The block size of class `class` (at run time, read [`CLASS_SIZE`]).
#[inline]
pub const fn class_size(class: Class) -> usize {
    if class < 8 {
        return (class + 1) * 8;
    }
    // The doublings from 64 B: two of eight steps, two of sixteen, then
    // four steps each.
    let (k, j) = if class < first_class_of_doubling(8) {
        (6 + (class - 8) / 8, (class - 8) % 8 + 1)
    } else if class < first_class_of_doubling(10) {
        let i = class - first_class_of_doubling(8);
        (8 + i / 16, i % 16 + 1)
    } else {
        let i = class - first_class_of_doubling(10);
        (10 + i / 4, i % 4 + 1)
    };
    (1 << k) + (j << (k - steps_log2(k)))
}

/// The `k` of the first doubling `(2^k, 2^(k+1)]` whose classes borrow
/// (64-128 B), and of the doubling past the last one (above 1 KiB): the
/// direct table's doublings.
const FIRST_BORROWING_DOUBLING: usize = 6;
const END_BORROWING_DOUBLING: usize = DIRECT_MAX_LOG2;

/// The *lender* of `class` (see the module notes): the top class of its
/// doubling, whose page serves the class while it borrows, when `class`
/// is a direct class above 64 B that is not a power of two; else `class`
/// itself (it never borrows). A lender's blocks are a power of two in
/// size, so aligned to at least what the borrower's are (its size's
/// largest power-of-two factor is smaller), and they serve every request
/// of the borrower.
#[inline(always)]
pub const fn lender_of(class: Class) -> Class {
    if class < first_class_of_doubling(FIRST_BORROWING_DOUBLING) || class > LAST_DIRECT_CLASS {
        return class;
    }
    let mut k = FIRST_BORROWING_DOUBLING;
    while class >= first_class_of_doubling(k + 1) {
        k += 1;
    }
    first_class_of_doubling(k + 1) - 1
}

/// Whether `class` borrows its lender's page until it is busy
/// ([`lender_of`]).
#[inline(always)]
pub const fn borrows(class: Class) -> bool {
    lender_of(class) != class
}

/// The classes that borrow the page of `lender` (empty unless `lender` is
/// a lender): the rest of its doubling.
#[inline]
pub const fn borrowers_of(lender: Class) -> core::ops::Range<Class> {
    let mut k = FIRST_BORROWING_DOUBLING;
    while k < END_BORROWING_DOUBLING {
        if first_class_of_doubling(k + 1) - 1 == lender {
            return first_class_of_doubling(k)..lender;
        }
        k += 1;
    }
    0..0
}

/// The class whose block size an allocation of class `class` gets at most:
/// its lender. An allocation of exactly that class's size always gets a
/// block of exactly that size (a lender never borrows), which is what
/// `alloc::good_size` reports.
#[inline]
pub const fn largest_serving_class(class: Class) -> Class {
    lender_of(class)
}

/// The last class whose pages are one slice.
const LAST_ONE_SLICE_CLASS: Class = class_of(SMALL_PAGE_MAX_BLOCK);

/// Slices (64 KiB each) in a page of class `class`.
#[inline]
pub const fn page_slices(class: Class) -> usize {
    if class <= LAST_ONE_SLICE_CLASS {
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
            class_above_direct(rounded)
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
            } else if size > 256 && size <= 1024 {
                // waste / size <= 6.25%
                assert!((block - size) * 16 <= size, "size {size} -> {block}: waste over 6.25%");
            } else if size <= 1024 {
                // waste / size <= 12.5%
                assert!((block - size) * 8 <= size, "size {size} -> {block}: waste over 12.5%");
            } else {
                // waste / size < 25%
                assert!(
                    (block - size) * 4 < size,
                    "size {size} -> {block}: waste of 25% or more"
                );
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
        // As described: 8 up to 64 B, 8 in each of the two doublings to
        // 256 B, 16 in each of the two to 1 KiB, 4 in each of the six to
        // 64 KiB.
        assert_eq!(CLASS_COUNT, 8 + 8 * 2 + 16 * 2 + 4 * 6);
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
    fn closed_form_above_the_direct_table_agrees_with_class_of() {
        for size in DIRECT_MAX + 1..=MAX_CLASS_SIZE {
            assert_eq!(class_above_direct(size), class_of(size), "size {size}");
        }
    }

    #[test]
    fn pages_are_one_slice_exactly_up_to_the_small_page_maximum() {
        for class in 0..CLASS_COUNT {
            let one = class_size(class) <= SMALL_PAGE_MAX_BLOCK;
            assert_eq!(
                page_slices(class),
                if one { 1 } else { MEDIUM_PAGE_SLICES },
                "class {class}"
            );
        }
    }

    #[test]
    fn sixteen_steps_between_256_bytes_and_1_kib() {
        assert_eq!(class_of(257), class_of(256) + 1);
        assert_eq!(class_size(class_of(257)), 272);
        assert_eq!(class_size(class_of(513)), 544);
        assert_eq!(class_of(1024) - class_of(256), 32);
    }

    #[test]
    fn four_steps_per_doubling_above_1_kib() {
        assert_eq!(class_size(class_of(1025)), 1280);
        assert_eq!(class_of(1025), class_of(1024) + 1);
        assert_eq!(class_size(class_of(4097)), 5120);
        assert_eq!(class_size(class_of(8193)), 10240);
        for k in 10..16 {
            assert_eq!(
                class_of(2 << k) - class_of(1 << k),
                4,
                "the doubling above {} B",
                1 << k
            );
        }
    }

    #[test]
    fn the_classes_of_64_b_to_1_kib_borrow_the_top_of_their_doubling() {
        let mut borrowers = 0;
        for class in 0..CLASS_COUNT {
            let size = class_size(class);
            let lender = lender_of(class);
            let expected = size > 64 && size <= DIRECT_MAX && !size.is_power_of_two();
            assert_eq!(borrows(class), expected, "class {class} ({size} B)");
            assert_eq!(largest_serving_class(class), lender);
            if !expected {
                assert_eq!(lender, class);
                assert!(
                    borrowers_of(class).all(|b| lender_of(b) == class),
                    "class {class} lends to classes that borrow elsewhere"
                );
                continue;
            }
            borrowers += 1;
            let lender_size = class_size(lender);
            assert_eq!(
                lender_size,
                size.next_power_of_two(),
                "class {class}'s lender tops its doubling"
            );
            assert!(!borrows(lender), "class {class}'s lender {lender} borrows");
            assert!(lender <= LAST_DIRECT_CLASS, "class {class}'s lender is a direct class");
            assert!(
                lender_size.trailing_zeros() > size.trailing_zeros(),
                "class {class} ({size} B): blocks of {lender_size} B are less aligned"
            );
            assert!(
                borrowers_of(lender).contains(&class),
                "class {class} is not among {lender}'s borrowers"
            );
        }
        // 7 + 7 + 15 + 15: each doubling but its top.
        assert_eq!(borrowers, 44);
        assert_eq!(borrowers_of(0), 0..0);
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
