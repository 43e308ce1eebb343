//! malloc-large: on one thread, repeatedly replace one of 20 live buffers
//! with a new zero-initialised buffer of 5–25 MiB. Each new buffer is
//! checked for zeroes (one byte per page and both ends) and then gets a
//! pattern byte in every page, so every page is faulted in; the pattern is
//! checked before the buffer is freed.

use super::Params;
use crate::check::{self, Corruption, Coverage};
use crate::dist;
use crate::outcome::Outcome;
use crate::raw::{self, Block};
use std::time::Instant;

const NAME: &str = "malloc-large";
const LIVE: usize = 20;
const MIB: usize = 1 << 20;

fn release(p: &Params, (mut b, tag): (Block, u64)) -> Result<(), Corruption> {
    p.fault.strike(b.bytes_mut());
    check::verify(NAME, b.bytes(), tag, Coverage::Pages)?;
    b.free();
    Ok(())
}

/// Runs malloc-large (single-threaded).
pub fn run(p: &Params) -> Result<Outcome, Corruption> {
    let mut rng = dist::rng(p.seed, 0);
    let iterations = p.scaled(400.0, 25);
    let mut live: Vec<Option<(Block, u64)>> = (0..LIVE).map(|_| None).collect();
    let start = Instant::now();
    let mut peak_rss = 0;
    for it in 0..iterations {
        let i = dist::index(&mut rng, LIVE);
        if let Some(item) = live[i].take() {
            release(p, item)?;
        }
        let size = dist::uniform(&mut rng, 5 * MIB, 25 * MIB);
        let mut b = Block::zeroed(size, 16);
        check::verify_zeroed(NAME, b.bytes(), 4096)?;
        let tag = check::tag_of(b.addr(), size, it);
        check::fill(b.bytes_mut(), tag, Coverage::Pages);
        live[i] = Some((b, tag));
        if it % 64 == 0 {
            peak_rss = peak_rss.max(raw::rss_kib());
        }
    }
    for item in live.into_iter().flatten() {
        release(p, item)?;
    }
    let o = Outcome::per_second(iterations, start.elapsed().as_secs_f64(), "allocs/s");
    Ok(o.with("rss_sampled_peak_kib", peak_rss as f64))
}
