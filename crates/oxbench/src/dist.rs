//! Random numbers and the size distributions of the workloads.

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

/// A fast generator for thread `tid` of a run seeded with `seed`.
pub fn rng(seed: u64, tid: usize) -> SmallRng {
    SmallRng::seed_from_u64(seed ^ (tid as u64).wrapping_add(1).wrapping_mul(0x9E37_79B9_7F4A_7C15))
}

/// Uniform in `lo..=hi`.
#[inline]
pub fn uniform(rng: &mut SmallRng, lo: usize, hi: usize) -> usize {
    rng.random_range(lo..=hi)
}

/// In `lo..=hi` with a linearly falling density (the minimum of two uniforms).
#[inline]
pub fn linear_falling(rng: &mut SmallRng, lo: usize, hi: usize) -> usize {
    let a = rng.random_range(lo..=hi);
    let b = rng.random_range(lo..=hi);
    a.min(b)
}

/// In `lo..=hi` with density proportional to `x^-2` (inverse transform).
#[inline]
pub fn power_law_2(rng: &mut SmallRng, lo: usize, hi: usize) -> usize {
    let u: f64 = rng.random();
    let (a, b) = (1.0 / lo as f64, 1.0 / hi as f64);
    let x = 1.0 / (a - u * (a - b));
    (x as usize).clamp(lo, hi)
}

/// In `lo..=hi` (powers of two apart) where each doubling of the size is half
/// as likely: a bucket `[lo·2^k, lo·2^(k+1))` is picked with probability
/// proportional to `2^-k`, then a size uniformly inside it.
#[inline]
pub fn halving_doublings(rng: &mut SmallRng, lo: usize, hi: usize) -> usize {
    let buckets = (usize::BITS - (hi / lo).leading_zeros()) as usize; // log2(hi/lo)+1
    let mut k = (rng.random::<u32>() | (1 << (buckets - 1))).trailing_zeros() as usize;
    k = k.min(buckets - 1);
    let start = lo << k;
    let end = ((lo << (k + 1)) - 1).min(hi);
    rng.random_range(start..=end.max(start))
}

/// An index in `0..n` by the 80/20 rule, applied recursively: 80% of picks
/// fall in the first 20% of the range, and so on inside it.
#[inline]
pub fn pareto_index(rng: &mut SmallRng, n: usize) -> usize {
    let mut len = n;
    while len > 5 && rng.random_bool(0.8) {
        len /= 5;
    }
    // Inside the chosen prefix, pick uniformly; the hot prefix is at the start.
    rng.random_range(0..len.max(1))
}

/// A size in `1..=max` on a geometric ladder (`1.5^k`), where step `k+1` is
/// half as likely as step `k`.
#[inline]
pub fn geometric_ladder(rng: &mut SmallRng, max: usize) -> usize {
    let k = (rng.random::<u32>() | (1 << 20)).trailing_zeros() as i32;
    let size = 1.5f64.powi(k).ceil() as usize;
    let jitter = rng.random_range(0..=size / 4);
    (size + jitter).clamp(1, max)
}

/// True with probability `p`.
#[inline]
pub fn chance(rng: &mut SmallRng, p: f64) -> bool {
    rng.random_bool(p)
}

/// Index uniform in `0..n`.
#[inline]
pub fn index(rng: &mut SmallRng, n: usize) -> usize {
    rng.random_range(0..n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distributions_stay_in_range_and_are_skewed() {
        let mut r = rng(1, 0);
        let mut small = 0;
        for _ in 0..100_000 {
            let s = linear_falling(&mut r, 8, 16_000);
            assert!((8..=16_000).contains(&s));
            small += (s < 8000) as u32;
            let p = power_law_2(&mut r, 4, 32_768);
            assert!((4..=32_768).contains(&p));
            let h = halving_doublings(&mut r, 16, 1024);
            assert!((16..=1024).contains(&h), "{h}");
            assert!(pareto_index(&mut r, 1000) < 1000);
            assert!((1..=1000).contains(&geometric_ladder(&mut r, 1000)));
        }
        assert!(small > 70_000, "falling density: {small}");
        let hot = (0..100_000).filter(|_| pareto_index(&mut r, 1000) < 200).count();
        assert!(hot > 75_000, "80/20: {hot}");
        let tiny = (0..100_000)
            .filter(|_| halving_doublings(&mut r, 16, 1024) < 32)
            .count();
        assert!((45_000..55_000).contains(&tiny), "halving: {tiny}");
    }
}
