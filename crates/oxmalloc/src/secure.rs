//! Hardened mode hooks (cargo feature `secure`).
//!
//! In the default build every hook here compiles to nothing: links are
//! stored as plain pointers. The hardened build is described in
//! `docs/HARDENING.md` once it lands; until then `ENABLED` only switches
//! error reports from "report and ignore" to "report and abort".

use crate::page::{Block, Page};

/// Whether this build is hardened.
pub const ENABLED: bool = cfg!(feature = "secure");

/// The key a new page mixes into its free-list links (0: no encoding).
#[inline(always)]
pub fn page_key() -> usize {
    0
}

/// Encodes a free-list link before it is stored in `block`.
#[inline(always)]
pub fn encode_link(_page: &Page, _block: *mut Block, next: *mut Block) -> *mut Block {
    next
}

/// Decodes a free-list link read from `block`.
#[inline(always)]
pub fn decode_link(_page: &Page, _block: *mut Block, raw: *mut Block) -> *mut Block {
    raw
}

/// Draws the process secrets (process initialisation).
pub fn init() {}

/// Draws fresh secrets in the child of `fork`.
pub fn reseed() {}
