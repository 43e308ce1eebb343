//! Small helpers that must work without allocating: a fixed-size line
//! buffer for messages, and number parsing/formatting.

/// A line of text built on the stack (messages are written with one `write(2)`).
pub struct Line {
    buf: [u8; 512],
    len: usize,
}

impl Line {
    /// An empty line.
    pub const fn new() -> Self {
        Line { buf: [0; 512], len: 0 }
    }

    /// The bytes written so far.
    pub fn as_bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }

    /// Appends raw bytes, silently truncating at the buffer's end.
    ///
    /// Not inlined, nor are the formatters below: lines are built on cold
    /// paths only (reports, statistics, profiles), and inlined at each of
    /// their many call sites these loops were a large share of the
    /// library's code, which every process that preloads it holds resident
    /// (docs/PERFORMANCE.md E86).
    #[inline(never)]
    pub fn bytes(&mut self, s: &[u8]) -> &mut Self {
        let n = s.len().min(self.buf.len() - self.len);
        self.buf[self.len..self.len + n].copy_from_slice(&s[..n]);
        self.len += n;
        self
    }

    /// Appends a string.
    pub fn str(&mut self, s: &str) -> &mut Self {
        self.bytes(s.as_bytes())
    }

    /// Appends `n` in decimal.
    #[inline(never)]
    pub fn dec(&mut self, n: u64) -> &mut Self {
        let mut digits = [0u8; 20];
        self.bytes(decimal(n, &mut digits))
    }

    /// Appends `n` in decimal, with a sign.
    #[inline(never)]
    pub fn signed(&mut self, n: i64) -> &mut Self {
        if n < 0 {
            self.str("-").dec(n.unsigned_abs())
        } else {
            self.dec(n as u64)
        }
    }

    /// Appends `n` as `0x...` hexadecimal.
    #[inline(never)]
    pub fn hex(&mut self, n: usize) -> &mut Self {
        const DIGITS: &[u8; 16] = b"0123456789abcdef";
        let mut out = [0u8; 18];
        let mut i = out.len();
        let mut n = n;
        loop {
            i -= 1;
            out[i] = DIGITS[n & 15];
            n >>= 4;
            if n == 0 {
                break;
            }
        }
        i -= 1;
        out[i] = b'x';
        i -= 1;
        out[i] = b'0';
        self.bytes(&out[i..])
    }

    /// Appends a byte count in a readable unit (B, KiB, MiB, GiB) with one decimal.
    #[inline(never)]
    pub fn size(&mut self, bytes: u64) -> &mut Self {
        const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
        let mut unit = 0;
        let mut scaled = bytes * 10;
        while scaled >= 10 * 1024 && unit + 1 < UNITS.len() {
            scaled /= 1024;
            unit += 1;
        }
        self.dec(scaled / 10);
        if unit > 0 {
            self.str(".").dec(scaled % 10);
        }
        self.str(" ").str(UNITS[unit])
    }

    /// Pads with spaces up to column `col`.
    #[inline(never)]
    pub fn pad_to(&mut self, col: usize) -> &mut Self {
        while self.len < col && self.len < self.buf.len() {
            self.buf[self.len] = b' ';
            self.len += 1;
        }
        self
    }
}

/// Formats `n` in decimal into `buf`; the digits written.
#[inline(never)]
pub fn decimal(n: u64, buf: &mut [u8; 20]) -> &[u8] {
    let mut i = buf.len();
    let mut n = n;
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    &buf[i..]
}

impl Default for Line {
    fn default() -> Self {
        Self::new()
    }
}

/// Marks the path it is called on as rarely taken, so that the compiler
/// lays the other one out straight (what `core::hint::cold_path` does
/// from Rust 1.95, above this crate's minimum version): a call to a cold
/// function makes its block cold, and the call itself goes away when
/// inlined.
#[cold]
#[inline(always)]
pub fn cold_path() {}

/// Parses leading ASCII digits of `s` (stops at the first non-digit); 0 when none.
pub fn parse_decimal(s: &[u8]) -> u64 {
    let mut n: u64 = 0;
    for &b in s {
        if !b.is_ascii_digit() {
            break;
        }
        n = n.saturating_mul(10).saturating_add((b - b'0') as u64);
    }
    n
}

/// Whether the OS page holding `addr` is resident (`mincore`): for the
/// unit tests of what gives memory back (`heap`, `page`).
#[cfg(test)]
pub fn resident(addr: usize) -> bool {
    let mut vec = [0u8; 1];
    // SAFETY: one byte of `vec` for the one 4 KiB page asked about;
    // mincore only reads the page tables.
    let r = unsafe { libc::mincore((addr & !4095) as *mut libc::c_void, 4096, vec.as_mut_ptr()) };
    assert_eq!(r, 0, "mincore({addr:#x}) failed");
    vec[0] & 1 != 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_numbers() {
        let mut l = Line::new();
        l.str("a=")
            .dec(0)
            .str(" b=")
            .dec(1234567890123)
            .str(" c=")
            .hex(0xdead_beef)
            .str(" d=")
            .signed(-5);
        assert_eq!(l.as_bytes(), b"a=0 b=1234567890123 c=0xdeadbeef d=-5");
        let mut l = Line::new();
        l.hex(0).str(" ").size(512).str(" ").size(1536).str(" ").size(3 << 30);
        assert_eq!(l.as_bytes(), b"0x0 512 B 1.5 KiB 3.0 GiB");
    }

    #[test]
    fn truncates_instead_of_overflowing() {
        let mut l = Line::new();
        for _ in 0..100 {
            l.str("0123456789");
        }
        assert_eq!(l.as_bytes().len(), 512);
        // A piece that straddles the end keeps its head.
        let mut l = Line::new();
        l.bytes(&[b'a'; 510]).str("xyz").str("more");
        assert_eq!(&l.as_bytes()[508..], b"aaxy");
    }

    #[test]
    fn decimal_agrees_with_core_formatting() {
        let mut buf = [0u8; 20];
        let mut n = 1u64;
        for v in [0, 9, 10, 99, 100, u32::MAX as u64, u64::MAX - 1, u64::MAX] {
            assert_eq!(decimal(v, &mut buf), std::format!("{v}").as_bytes());
        }
        while n < u64::MAX / 7 {
            assert_eq!(decimal(n, &mut buf), std::format!("{n}").as_bytes());
            n = n * 7 + 3;
        }
    }

    #[test]
    fn parses_decimal_prefix() {
        assert_eq!(parse_decimal(b"1234 56"), 1234);
        assert_eq!(parse_decimal(b"x"), 0);
        assert_eq!(parse_decimal(b"99999999999999999999999"), u64::MAX);
    }
}
