//! realloc-growth: four vectors grown in turn by `realloc` ×1.5 from 16 B to
//! 64 MiB and shrunk back by the same factor, then sixteen strings grown by
//! small appends (1–64 B) to 256 KiB and shrunk back to 16 B by small
//! truncations (1–64 B). Each new tail is filled with the
//! block's position-dependent pattern; the kept part is checked (sparsely
//! after each step, fully at the peak and at the end). Reports how many
//! reallocs stayed in place ("moves avoided").

use super::Params;
use crate::check::{self, Corruption, Coverage};
use crate::dist;
use crate::outcome::Outcome;
use crate::raw::Block;
use std::time::Instant;

const NAME: &str = "realloc-growth";
const VECTORS: usize = 4;
const STRINGS: usize = 16;
const MIN: usize = 16;
const MAX_VEC: usize = 64 << 20;
const MAX_STRING: usize = 256 << 10;

struct Grown {
    block: Block,
    tag: u64,
}

#[derive(Default)]
struct Counts {
    reallocs: u64,
    in_place: u64,
}

impl Grown {
    fn new(tag: u64) -> Self {
        let mut block = Block::new(MIN, 8);
        check::fill(block.bytes_mut(), tag, Coverage::Full);
        Grown { block, tag }
    }

    /// Resizes, checks the kept bytes (sparsely) and fills any new tail.
    fn resize(&mut self, p: &Params, new_size: usize, c: &mut Counts) -> Result<(), Corruption> {
        let old = self.block.size();
        c.reallocs += 1;
        c.in_place += self.block.realloc(new_size) as u64;
        let kept = old.min(new_size);
        p.fault.strike(self.block.bytes_mut());
        check::verify(NAME, &self.block.bytes()[..kept], self.tag, Coverage::Pages)?;
        check::fill_range(self.block.bytes_mut(), self.tag, kept..new_size);
        Ok(())
    }

    fn verify_all(&self) -> Result<(), Corruption> {
        check::verify(NAME, self.block.bytes(), self.tag, Coverage::Full)
    }
}

/// Runs realloc-growth (single-threaded).
pub fn run(p: &Params) -> Result<Outcome, Corruption> {
    let cycles = p.scaled(4.0, 1);
    let max_vec = if p.scale < 0.1 { MAX_VEC / 64 } else { MAX_VEC };
    let mut rng = dist::rng(p.seed, 0);
    let mut c = Counts::default();
    let start = Instant::now();
    for cycle in 0..cycles {
        // Vectors: interleaved growth so that neighbours compete for room.
        let mut vs: Vec<Grown> = (0..VECTORS)
            .map(|i| Grown::new(check::tag_of(i, cycle as usize, 7)))
            .collect();
        while vs[0].block.size() < max_vec {
            for v in &mut vs {
                let next = (v.block.size() * 3 / 2).min(max_vec);
                v.resize(p, next, &mut c)?;
            }
        }
        for v in &vs {
            v.verify_all()?;
        }
        while vs[0].block.size() > MIN {
            for v in &mut vs {
                let next = (v.block.size() * 2 / 3).max(MIN);
                v.resize(p, next, &mut c)?;
            }
        }
        for v in vs {
            v.verify_all()?;
            v.block.free();
        }
        // Strings: many small appends.
        let mut ss: Vec<Grown> = (0..STRINGS)
            .map(|i| Grown::new(check::tag_of(i, cycle as usize, 11)))
            .collect();
        let max_string = if p.scale < 0.1 { MAX_STRING / 16 } else { MAX_STRING };
        while ss.iter().any(|s| s.block.size() < max_string) {
            for s in &mut ss {
                if s.block.size() < max_string {
                    let next = s.block.size() + dist::uniform(&mut rng, 1, 64);
                    s.resize(p, next, &mut c)?;
                }
            }
        }
        for s in &ss {
            s.verify_all()?;
        }
        // ... and shrunk back by small truncations (1-64 B) to 16 B.
        while ss.iter().any(|s| s.block.size() > MIN) {
            for s in &mut ss {
                if s.block.size() > MIN {
                    let next = s.block.size().saturating_sub(dist::uniform(&mut rng, 1, 64)).max(MIN);
                    s.resize(p, next, &mut c)?;
                }
            }
        }
        for s in ss {
            s.verify_all()?;
            s.block.free();
        }
    }
    let o = Outcome::per_second(c.reallocs, start.elapsed().as_secs_f64(), "reallocs/s");
    Ok(o.with("moves_avoided", c.in_place as f64)
        .with("in_place_fraction", c.in_place as f64 / c.reallocs.max(1) as f64))
}
