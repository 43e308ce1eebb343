//! `oxbench prof`: turns a heap profile written by oxmalloc
//! (`OXMALLOC_PROF`, `oxmalloc::profile::dump`, `ox_prof_dump`) into a
//! table of allocation sites, collapsed stacks and a flame graph.
//!
//! The file is the legacy text heap-profile format:
//!
//! ```text
//! heap profile: 12: 6291456 [12: 6291456] @ heapprofile
//! # oxmalloc: samples taken 40, live 12, dropped 0
//! 1: 524288 [1: 524288] @ 0x55d0c1a2b3c4 0x55d0c1a2b000 ...
//! ...
//!
//! MAPPED_LIBRARIES:
//! 55d0c1a00000-55d0c1a2a000 r--p 00000000 08:01 1234 /usr/bin/prog
//! ...
//! ```
//!
//! Each sample line holds the (already scaled) count and bytes and the call
//! stack, innermost frame first, as return addresses. Every address is
//! mapped through the memory map to a file and an offset in it, the offset
//! to the file's own virtual address (its `PT_LOAD` segments, read with
//! `object`), and that address to functions, inlined ones included, and
//! file:line with `addr2line` (DWARF through gimli; the ELF symbol table
//! when there is no debug information). Rust and C++ names are demangled.
//! Frames of the allocator itself (anything in `liboxmalloc*.so`, the
//! engine's `oxmalloc::` functions, `__rust_alloc`, the `alloc` crate's
//! allocation machinery, `malloc` and `operator new`) are dropped from the
//! top of each stack, so that the innermost frame left is the allocation
//! site in the caller's code (`--raw` keeps them).

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::io::Write as _;
use std::path::{Path, PathBuf};

/// One sample: the bytes it stands for and its stack (innermost first).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sample {
    /// Objects this sample stands for.
    pub count: u64,
    /// Bytes this sample stands for.
    pub bytes: u64,
    /// Return addresses, innermost frame first.
    pub stack: Vec<u64>,
}

/// One line of `/proc/self/maps`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mapping {
    /// First address.
    pub start: u64,
    /// One past the last address.
    pub end: u64,
    /// Offset in the file of `start`.
    pub offset: u64,
    /// The file (or `[vdso]`, `[heap]`, ...); empty for anonymous memory.
    pub path: String,
}

/// A parsed heap profile.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Profile {
    /// Objects and bytes of the header line.
    pub total_count: u64,
    /// See `total_count`.
    pub total_bytes: u64,
    /// The samples, in file order.
    pub samples: Vec<Sample>,
    /// The memory map of the process when the profile was written.
    pub mappings: Vec<Mapping>,
}

/// A malformed profile: what is wrong, and on which line (1-based).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParseError {
    /// Line number, 1-based (0: the file as a whole).
    pub line: usize,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            write!(f, "not a heap profile: {}", self.message)
        } else {
            write!(f, "line {}: {}", self.line, self.message)
        }
    }
}

impl std::error::Error for ParseError {}

fn err(line: usize, message: impl Into<String>) -> ParseError {
    ParseError {
        line,
        message: message.into(),
    }
}

fn parse_u64(text: &str, line: usize, what: &str) -> Result<u64, ParseError> {
    text.trim()
        .parse()
        .map_err(|_| err(line, format!("{what} {:?} is not a number", text.trim())))
}

fn parse_hex(text: &str, line: usize, what: &str) -> Result<u64, ParseError> {
    let digits = text.strip_prefix("0x").unwrap_or(text);
    u64::from_str_radix(digits, 16).map_err(|_| err(line, format!("{what} {text:?} is not a hexadecimal number")))
}

/// `N: B` (the first pair of a header or sample line).
fn parse_pair(text: &str, line: usize) -> Result<(u64, u64), ParseError> {
    let (n, b) = text
        .split_once(':')
        .ok_or_else(|| err(line, format!("expected \"count: bytes\", found {:?}", text.trim())))?;
    Ok((parse_u64(n, line, "count")?, parse_u64(b, line, "bytes")?))
}

impl Profile {
    /// Parses the text of a profile.
    pub fn parse(text: &str) -> Result<Profile, ParseError> {
        let mut lines = text.lines().enumerate().map(|(i, l)| (i + 1, l));
        let (_, header) = lines.next().ok_or_else(|| err(0, "the file is empty"))?;
        let rest = header.strip_prefix("heap profile:").ok_or_else(|| {
            err(
                0,
                format!("the first line should start with \"heap profile:\", found {header:?}"),
            )
        })?;
        let (totals, kind) = rest
            .split_once('@')
            .ok_or_else(|| err(1, "the header has no \"@ heapprofile\""))?;
        if kind.trim() != "heapprofile" {
            return Err(err(
                1,
                format!("unsupported profile type {:?} (expected heapprofile)", kind.trim()),
            ));
        }
        let first = totals.split('[').next().unwrap_or(totals);
        let (total_count, total_bytes) = parse_pair(first, 1)?;
        let mut profile = Profile {
            total_count,
            total_bytes,
            ..Profile::default()
        };
        let mut in_maps = false;
        for (n, line) in lines {
            if in_maps {
                if let Some(m) = parse_mapping(line, n)? {
                    profile.mappings.push(m);
                }
                continue;
            }
            let trimmed = line.trim();
            // Blank lines, and comments (`pprof` skips `#` lines too; oxmalloc
            // writes its sampler's counts in one).
            if trimmed.is_empty() || trimmed.starts_with('#') {
                continue;
            }
            if trimmed == "MAPPED_LIBRARIES:" {
                in_maps = true;
                continue;
            }
            profile.samples.push(parse_sample(trimmed, n)?);
        }
        if !in_maps {
            return Err(err(
                0,
                "no MAPPED_LIBRARIES: section (the file is truncated?); addresses cannot be symbolised",
            ));
        }
        Ok(profile)
    }

    /// Reads and parses a profile file.
    pub fn load(path: &Path) -> Result<Profile, String> {
        let bytes = std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        let text = String::from_utf8_lossy(&bytes);
        Profile::parse(&text).map_err(|e| format!("{}: {e}", path.display()))
    }

    /// The mapping that holds `addr`.
    pub fn mapping_of(&self, addr: u64) -> Option<&Mapping> {
        self.mappings.iter().find(|m| m.start <= addr && addr < m.end)
    }
}

fn parse_sample(line: &str, n: usize) -> Result<Sample, ParseError> {
    let (counts, stack) = line.split_once('@').ok_or_else(|| {
        err(
            n,
            format!("a sample line needs \"count: bytes [...] @ addresses\", found {line:?}"),
        )
    })?;
    let first = counts.split('[').next().unwrap_or(counts);
    let (count, bytes) = parse_pair(first, n)?;
    let stack = stack
        .split_whitespace()
        .map(|a| parse_hex(a, n, "address"))
        .collect::<Result<Vec<_>, _>>()?;
    if stack.is_empty() {
        return Err(err(n, "a sample with no addresses"));
    }
    Ok(Sample { count, bytes, stack })
}

/// The next space-separated field of `rest`, which moves past it.
fn next_field<'a>(rest: &mut &'a str) -> Option<&'a str> {
    let (f, r) = rest.split_once(' ').unwrap_or((rest, ""));
    *rest = r.trim_start();
    (!f.is_empty()).then_some(f)
}

/// One line of the maps section; `None` for a line to skip (blank).
fn parse_mapping(line: &str, n: usize) -> Result<Option<Mapping>, ParseError> {
    let line = line.trim_end();
    if line.trim().is_empty() {
        return Ok(None);
    }
    // START-END PERMS OFFSET DEV INODE [PATH]; the path may contain spaces.
    let mut rest = line.trim_start();
    let mut field = |what: &str| next_field(&mut rest).ok_or_else(|| err(n, format!("mapping line without {what}")));
    let range = field("an address range")?;
    let _perms = field("permissions")?;
    let offset = field("an offset")?;
    let _dev = field("a device")?;
    let _inode = field("an inode")?;
    let (start, end) = range
        .split_once('-')
        .ok_or_else(|| err(n, format!("a mapping starts with START-END, found {range:?}")))?;
    let start = parse_hex(start, n, "mapping start")?;
    let end = parse_hex(end, n, "mapping end")?;
    if end < start {
        return Err(err(n, "mapping ends before it starts"));
    }
    let offset = parse_hex(offset, n, "mapping offset")?;
    let path = rest.trim();
    let path = path.strip_suffix(" (deleted)").unwrap_or(path).to_string();
    Ok(Some(Mapping {
        start,
        end,
        offset,
        path,
    }))
}

/// One symbolised frame.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Frame {
    /// Demangled function name (or `object+0xoffset` when unknown).
    pub function: String,
    /// Source file, when the debug information says.
    pub file: Option<String>,
    /// Source line.
    pub line: Option<u32>,
    /// The file the code is in (its base name), when known.
    pub object: Option<String>,
}

impl Frame {
    /// `file:line`, or `?`.
    pub fn location(&self) -> String {
        match (&self.file, self.line) {
            (Some(f), Some(l)) => format!("{f}:{l}"),
            (Some(f), None) => f.clone(),
            _ => self.object.clone().unwrap_or_else(|| "?".into()),
        }
    }
}

/// Demangles a Rust (legacy or v0) or C++ symbol; other names as they are.
pub fn demangle(name: &str) -> String {
    if let Ok(d) = rustc_demangle::try_demangle(name) {
        // `{:#}` leaves out the hash suffix.
        return format!("{d:#}");
    }
    if name.starts_with("_Z") {
        if let Ok(sym) = cpp_demangle::Symbol::new(name) {
            if let Ok(d) = sym.demangle(&cpp_demangle::DemangleOptions::default()) {
                return d;
            }
        }
    }
    name.to_string()
}

/// An object file and what is needed to symbolise addresses in it.
struct Object {
    loader: Option<addr2line::Loader>,
    /// `(file offset, file size, virtual address)` of each loadable segment.
    segments: Vec<(u64, u64, u64)>,
}

impl Object {
    fn open(path: &str) -> Result<Object, String> {
        let data = std::fs::read(path).map_err(|e| e.to_string())?;
        let file = object::File::parse(&*data).map_err(|e| e.to_string())?;
        use object::{Object as _, ObjectSegment as _};
        let segments = file
            .segments()
            .map(|s| {
                let (off, size) = s.file_range();
                (off, size, s.address())
            })
            .collect();
        let loader = addr2line::Loader::new(path).ok();
        Ok(Object { loader, segments })
    }

    /// The address in the file's own address space of a file offset.
    fn svma(&self, file_offset: u64) -> u64 {
        self.segments
            .iter()
            .find(|&&(off, size, _)| off <= file_offset && file_offset < off + size)
            .map_or(file_offset, |&(off, _, vaddr)| vaddr + (file_offset - off))
    }
}

/// Symbolises addresses of one profile (caching objects and addresses).
pub struct Symbolizer<'p> {
    profile: &'p Profile,
    objects: HashMap<String, Option<Object>>,
    cache: HashMap<u64, Vec<Frame>>,
    /// Files that could not be opened, with the reason (reported once).
    pub missing: BTreeMap<String, String>,
}

fn base_name(path: &str) -> String {
    Path::new(path)
        .file_name()
        .map_or_else(|| path.to_string(), |n| n.to_string_lossy().into_owned())
}

impl<'p> Symbolizer<'p> {
    /// A symboliser for the addresses of `profile`.
    pub fn new(profile: &'p Profile) -> Self {
        Symbolizer {
            profile,
            objects: HashMap::new(),
            cache: HashMap::new(),
            missing: BTreeMap::new(),
        }
    }

    /// The frames at return address `addr`, innermost (inlined) first.
    pub fn frames(&mut self, addr: u64) -> Vec<Frame> {
        if let Some(f) = self.cache.get(&addr) {
            return f.clone();
        }
        let frames = self.resolve(addr);
        self.cache.insert(addr, frames.clone());
        frames
    }

    fn resolve(&mut self, addr: u64) -> Vec<Frame> {
        let unknown = |name: String, object: Option<String>| {
            vec![Frame {
                function: name,
                file: None,
                line: None,
                object,
            }]
        };
        let Some(m) = self.profile.mapping_of(addr) else {
            return unknown(format!("{addr:#x}"), None);
        };
        let file_offset = addr - m.start + m.offset;
        let object_name = if m.path.is_empty() {
            "[anon]".to_string()
        } else {
            base_name(&m.path)
        };
        let fallback = format!("{object_name}+{file_offset:#x}");
        if !m.path.starts_with('/') {
            return unknown(fallback, Some(object_name));
        }
        let path = m.path.clone();
        let missing = &mut self.missing;
        let object = self
            .objects
            .entry(path.clone())
            .or_insert_with(|| match Object::open(&path) {
                Ok(o) => Some(o),
                Err(e) => {
                    missing.insert(path.clone(), e);
                    None
                }
            });
        let Some(object) = object else {
            return unknown(fallback, Some(object_name));
        };
        // A return address points after the call: look up the call itself.
        let probe = object.svma(file_offset).saturating_sub(1);
        let Some(loader) = &object.loader else {
            return unknown(fallback, Some(object_name));
        };
        let mut frames = Vec::new();
        if let Ok(mut iter) = loader.find_frames(probe) {
            while let Ok(Some(frame)) = iter.next() {
                let name = frame
                    .function
                    .as_ref()
                    .and_then(|f| f.raw_name().ok())
                    .map(|n| demangle(&n));
                let (file, line) = match &frame.location {
                    Some(loc) => (loc.file.map(short_path), loc.line),
                    None => (None, None),
                };
                frames.push(Frame {
                    function: name.unwrap_or_default(),
                    file,
                    line,
                    object: Some(object_name.clone()),
                });
            }
        }
        // Without DWARF names: the symbol table.
        if frames.iter().all(|f| f.function.is_empty()) {
            let symbol = loader.find_symbol(probe).map(|s| demangle(&Cow::from(s)));
            match (symbol, frames.last_mut()) {
                (Some(s), Some(last)) => last.function = s,
                (Some(s), None) => frames.push(Frame {
                    function: s,
                    file: None,
                    line: None,
                    object: Some(object_name.clone()),
                }),
                (None, _) => {}
            }
        }
        for f in &mut frames {
            if f.function.is_empty() {
                f.function.clone_from(&fallback);
            }
        }
        if frames.is_empty() {
            return unknown(fallback, Some(object_name));
        }
        frames
    }
}

/// Source paths shortened for the table: the part after `/src/` of a
/// registry or toolchain path stays recognisable, the rest as it is.
fn short_path(path: &str) -> String {
    for marker in ["/rustc/", "/.cargo/registry/src/"] {
        if let Some(i) = path.find(marker) {
            // Keep the crate directory and below: `.../library/alloc/src/vec/mod.rs`.
            let rest = &path[i + marker.len()..];
            let rest = rest.split_once('/').map_or(rest, |(_, r)| r);
            return rest.to_string();
        }
    }
    path.to_string()
}

/// Whether a frame belongs to the allocator or to the standard library's
/// allocation machinery (dropped from the top of the stacks).
pub fn is_allocator_frame(f: &Frame) -> bool {
    if f.object.as_deref().is_some_and(|o| o.starts_with("liboxmalloc")) {
        return true;
    }
    let name = f.function.as_str();
    const PREFIXES: [&str; 13] = [
        "oxmalloc::",
        "__rustc::",
        "<oxmalloc::",
        "__rust_alloc",
        "__rust_realloc",
        "__rust_dealloc",
        "__rdl_",
        "__rg_",
        "alloc::",
        "<alloc::",
        "operator new",
        "std::alloc::",
        "<std::alloc::",
    ];
    const C_NAMES: [&str; 13] = [
        "malloc",
        "calloc",
        "realloc",
        "reallocarray",
        "aligned_alloc",
        "posix_memalign",
        "memalign",
        "valloc",
        "pvalloc",
        "__libc_malloc",
        "__libc_calloc",
        "__libc_realloc",
        "__libc_memalign",
    ];
    // `<u8 as alloc::vec::spec_from_elem::SpecFromElem>::from_elem`: an
    // implementation of the alloc crate's traits.
    let alloc_trait = name.starts_with('<') && name.contains(" as alloc::");
    PREFIXES.iter().any(|p| name.starts_with(p)) || alloc_trait || C_NAMES.contains(&name)
}

/// An allocation site: the innermost frame kept, and its bytes.
#[derive(Clone, Debug, PartialEq)]
pub struct Site {
    /// The frame.
    pub frame: Frame,
    /// Bytes of the samples whose innermost kept frame this is.
    pub bytes: u64,
    /// Objects of those samples.
    pub count: u64,
    /// Share of all bytes (0..1).
    pub share: f64,
}

/// The analysis of a profile.
#[derive(Clone, Debug, Default)]
pub struct Analysis {
    /// Sites, most bytes first.
    pub sites: Vec<Site>,
    /// Collapsed stacks (`outer;...;inner bytes`), sorted.
    pub collapsed: Vec<String>,
    /// Bytes in all samples.
    pub total_bytes: u64,
    /// Samples read.
    pub samples: usize,
    /// Files that could not be read, with the reason.
    pub missing: BTreeMap<String, String>,
}

/// A frame name as a collapsed-stack element (no `;`, no line breaks).
fn collapsed_name(f: &Frame) -> String {
    f.function.replace(';', ",").replace(['\n', '\r'], " ")
}

/// Symbolises every sample; with `raw`, keeps the allocator's frames.
pub fn analyse(profile: &Profile, raw: bool) -> Analysis {
    let mut sym = Symbolizer::new(profile);
    let mut sites: HashMap<Frame, (u64, u64)> = HashMap::new();
    let mut stacks: BTreeMap<String, u64> = BTreeMap::new();
    let mut total = 0u64;
    for s in &profile.samples {
        let mut frames: Vec<Frame> = s.stack.iter().flat_map(|&a| sym.frames(a)).collect();
        if !raw {
            let keep_from = frames.iter().position(|f| !is_allocator_frame(f)).unwrap_or(0);
            frames.drain(..keep_from);
        }
        total += s.bytes;
        if let Some(top) = frames.first() {
            let e = sites.entry(top.clone()).or_default();
            e.0 += s.bytes;
            e.1 += s.count;
        }
        let line: Vec<String> = frames.iter().rev().map(collapsed_name).collect();
        *stacks.entry(line.join(";")).or_default() += s.bytes;
    }
    let mut sites: Vec<Site> = sites
        .into_iter()
        .map(|(frame, (bytes, count))| Site {
            frame,
            bytes,
            count,
            share: if total == 0 { 0.0 } else { bytes as f64 / total as f64 },
        })
        .collect();
    sites.sort_by(|a, b| b.bytes.cmp(&a.bytes).then_with(|| a.frame.cmp(&b.frame)));
    Analysis {
        sites,
        collapsed: stacks
            .into_iter()
            .filter(|(stack, _)| !stack.is_empty())
            .map(|(stack, bytes)| format!("{stack} {bytes}"))
            .collect(),
        total_bytes: total,
        samples: profile.samples.len(),
        missing: sym.missing,
    }
}

/// Bytes for people: `12.3 MiB`.
pub fn human(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = bytes as f64;
    let mut unit = 0;
    while v >= 1024.0 && unit < UNITS.len() - 1 {
        v /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{v:.1} {}", UNITS[unit])
    }
}

/// The table of the `top` sites with the most bytes.
pub fn render_table(a: &Analysis, top: usize, title: &str) -> String {
    let mut out = format!(
        "{title}: {} samples, {} live ({} bytes, scaled by the sampling), {} stacks\n",
        a.samples,
        human(a.total_bytes),
        a.total_bytes,
        a.collapsed.len()
    );
    out += &format!("{:>12}  {:>6}  {:<48}  {}\n", "bytes", "share", "function", "location");
    for s in a.sites.iter().take(top) {
        out += &format!(
            "{:>12}  {:>5.1}%  {:<48}  {}\n",
            human(s.bytes),
            s.share * 100.0,
            s.frame.function,
            s.frame.location()
        );
    }
    if a.sites.len() > top {
        let rest: u64 = a.sites[top..].iter().map(|s| s.bytes).sum();
        out += &format!(
            "{:>12}  {:>5.1}%  ({} more sites)\n",
            human(rest),
            share(rest, a.total_bytes),
            a.sites.len() - top
        );
    }
    out
}

fn share(part: u64, total: u64) -> f64 {
    if total == 0 {
        0.0
    } else {
        part as f64 * 100.0 / total as f64
    }
}

/// Writes the flame graph of collapsed stacks as SVG.
pub fn write_flamegraph(collapsed: &[String], title: &str, out: &Path) -> Result<(), String> {
    let mut opts = inferno::flamegraph::Options::default();
    opts.title = title.to_string();
    opts.count_name = "bytes".into();
    opts.colors = inferno::flamegraph::color::Palette::Basic(inferno::flamegraph::color::BasicPalette::Mem);
    opts.deterministic = true;
    let file = std::fs::File::create(out).map_err(|e| format!("cannot create {}: {e}", out.display()))?;
    let mut w = std::io::BufWriter::new(file);
    if collapsed.is_empty() {
        // inferno refuses empty input: a picture that says so.
        let title = title.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;");
        write!(
            w,
            "<?xml version=\"1.0\" standalone=\"no\"?>\n\
             <svg version=\"1.1\" width=\"1200\" height=\"60\" xmlns=\"http://www.w3.org/2000/svg\">\n\
             <text x=\"600\" y=\"24\" text-anchor=\"middle\">{title}</text>\n\
             <text x=\"600\" y=\"48\" text-anchor=\"middle\">no live samples</text>\n</svg>\n"
        )
        .and_then(|()| w.flush())
        .map_err(|e| format!("writing {}: {e}", out.display()))?;
        return Ok(());
    }
    inferno::flamegraph::from_lines(&mut opts, collapsed.iter().map(String::as_str), &mut w)
        .map_err(|e| format!("flame graph: {e}"))?;
    w.flush().map_err(|e| format!("writing {}: {e}", out.display()))
}

/// Settings of `oxbench prof`.
#[derive(Clone, Debug)]
pub struct ProfSettings {
    /// The profile.
    pub file: PathBuf,
    /// Directory for the default output names (default: the profile's).
    pub out: Option<PathBuf>,
    /// Collapsed stacks file (default: OUT/NAME.collapsed).
    pub collapsed: Option<PathBuf>,
    /// Flame graph (default: OUT/NAME.svg).
    pub svg: Option<PathBuf>,
    /// Sites in the table.
    pub top: usize,
    /// Keep the allocator's frames.
    pub raw: bool,
}

/// Runs `oxbench prof`: prints the table, writes the collapsed stacks and
/// the flame graph; returns the paths written.
pub fn run(s: &ProfSettings) -> Result<(PathBuf, PathBuf), String> {
    let profile = Profile::load(&s.file)?;
    let analysis = analyse(&profile, s.raw);
    for (file, why) in &analysis.missing {
        eprintln!("oxbench: warning: cannot read {file} ({why}): its addresses stay unresolved");
    }
    let stem = s
        .file
        .file_stem()
        .map_or_else(|| "profile".into(), |n| n.to_string_lossy().into_owned());
    let dir = match &s.out {
        Some(d) => d.clone(),
        None => s.file.parent().map_or_else(|| PathBuf::from("."), Path::to_path_buf),
    };
    if !dir.as_os_str().is_empty() {
        std::fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    }
    let collapsed = s
        .collapsed
        .clone()
        .unwrap_or_else(|| dir.join(format!("{stem}.collapsed")));
    let svg = s.svg.clone().unwrap_or_else(|| dir.join(format!("{stem}.svg")));
    let title = format!("Heap profile {}", s.file.display());
    print!("{}", render_table(&analysis, s.top, &title));
    if analysis.samples == 0 {
        println!("(no live samples: blocks freed before the dump are not in a profile)");
    }
    let mut text = analysis.collapsed.join("\n");
    if !text.is_empty() {
        text.push('\n');
    }
    std::fs::write(&collapsed, text).map_err(|e| format!("cannot write {}: {e}", collapsed.display()))?;
    write_flamegraph(&analysis.collapsed, &title, &svg)?;
    println!("\nWrote {} and {}", collapsed.display(), svg.display());
    Ok((collapsed, svg))
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = "heap profile: 3: 1536 [3: 1536] @ heapprofile\n\
        2: 1024 [2: 1024] @ 0x1010 0x2020\n\
        1: 512 [1: 512] @ 0x1011\n\
        \n\
        MAPPED_LIBRARIES:\n\
        00001000-00002000 r-xp 00000000 08:01 42 /nonexistent/prog with space\n\
        00002000-00003000 r-xp 00001000 08:01 43 /nonexistent/lib.so (deleted)\n\
        7ffc0000-7ffc1000 r-xp 00000000 00:00 0                          [vdso]\n\
        7ffd0000-7ffd1000 rw-p 00000000 00:00 0 \n";

    #[test]
    fn parses_a_profile() {
        let p = Profile::parse(GOOD).unwrap();
        assert_eq!((p.total_count, p.total_bytes), (3, 1536));
        assert_eq!(p.samples.len(), 2);
        assert_eq!(
            p.samples[0],
            Sample {
                count: 2,
                bytes: 1024,
                stack: vec![0x1010, 0x2020]
            }
        );
        assert_eq!(p.mappings.len(), 4);
        assert_eq!(p.mappings[0].path, "/nonexistent/prog with space");
        assert_eq!(p.mappings[1].path, "/nonexistent/lib.so");
        assert_eq!(p.mappings[1].offset, 0x1000);
        assert_eq!(p.mappings[2].path, "[vdso]");
        assert_eq!(p.mappings[3].path, "");
        assert_eq!(p.mapping_of(0x2fff).unwrap().path, "/nonexistent/lib.so");
        assert!(p.mapping_of(0x5000).is_none());
    }

    #[test]
    fn comment_lines_are_skipped() {
        let with_comment = GOOD.replacen(
            "@ heapprofile\n",
            "@ heapprofile\n# oxmalloc: samples taken 9, live 3, dropped 1 (the sample table was full)\n",
            1,
        );
        assert_ne!(with_comment, GOOD);
        assert_eq!(Profile::parse(&with_comment).unwrap(), Profile::parse(GOOD).unwrap());
    }

    #[test]
    fn malformed_profiles_are_errors_not_panics() {
        let cases: &[(&str, &str)] = &[
            ("", "empty"),
            ("hello\n", "heap profile:"),
            ("heap profile: 1: 2 [1: 2] @ growthz\n\nMAPPED_LIBRARIES:\n", "unsupported"),
            ("heap profile: x: 2 [1: 2] @ heapprofile\n", "count"),
            ("heap profile: 1: 2 [1: 2]\n", "@ heapprofile"),
            ("heap profile: 1: 2 [1: 2] @ heapprofile\n1: 2 [1: 2] @ 0xzz\n\nMAPPED_LIBRARIES:\n", "line 2"),
            ("heap profile: 1: 2 [1: 2] @ heapprofile\n1 2 @ 0x10\n\nMAPPED_LIBRARIES:\n", "count: bytes"),
            ("heap profile: 1: 2 [1: 2] @ heapprofile\n1: 2 [1: 2] @\n\nMAPPED_LIBRARIES:\n", "no addresses"),
            ("heap profile: 1: 2 [1: 2] @ heapprofile\n1: 2 [1: 2] 0x10\n\nMAPPED_LIBRARIES:\n", "line 2"),
            ("heap profile: 1: 2 [1: 2] @ heapprofile\n1: 2 [1: 2] @ 0x10\n", "MAPPED_LIBRARIES"),
            ("heap profile: 1: 2 [1: 2] @ heapprofile\n\nMAPPED_LIBRARIES:\nzzz r-xp 0 0 0 /x\n", "line 4"),
            ("heap profile: 1: 2 [1: 2] @ heapprofile\n\nMAPPED_LIBRARIES:\n2000-1000 r-xp 0 0 0 /x\n", "ends before"),
            ("heap profile: 1: 2 [1: 2] @ heapprofile\n\nMAPPED_LIBRARIES:\n1000-2000\n", "permissions"),
            (
                "heap profile: 1: 2 [1: 2] @ heapprofile\n99999999999999999999999: 2 [1: 2] @ 0x1\n\nMAPPED_LIBRARIES:\n",
                "count",
            ),
        ];
        for (text, expect) in cases {
            let e = Profile::parse(text).expect_err(text);
            let msg = e.to_string();
            assert!(msg.contains(expect), "{text:?}: {msg:?} should mention {expect:?}");
        }
    }

    #[test]
    fn unresolvable_addresses_keep_object_and_offset() {
        let p = Profile::parse(GOOD).unwrap();
        let a = analyse(&p, false);
        assert_eq!(a.total_bytes, 1536);
        assert_eq!(a.samples, 2);
        // Both files are missing: named by object and file offset.
        assert!(a.missing.contains_key("/nonexistent/prog with space"));
        assert_eq!(a.sites[0].frame.function, "prog with space+0x10");
        assert_eq!(a.sites[0].bytes, 1024);
        assert!((a.sites[0].share - 2.0 / 3.0).abs() < 1e-9);
        assert_eq!(a.sites[1].frame.function, "prog with space+0x11");
        // Outermost first: lib.so's frame, then prog's.
        assert_eq!(
            a.collapsed,
            vec![
                "lib.so+0x1020;prog with space+0x10 1024".to_string(),
                "prog with space+0x11 512".to_string()
            ]
        );
        let table = render_table(&a, 1, "t");
        assert!(table.contains("66.7%"), "{table}");
        assert!(table.contains("(1 more sites)"), "{table}");
    }

    #[test]
    fn demangles_rust_and_cpp() {
        assert_eq!(
            demangle("_ZN4core3ptr13drop_in_place17h0123456789abcdefE"),
            "core::ptr::drop_in_place"
        );
        assert_eq!(demangle("_ZN3foo3barEv"), "foo::bar()");
        assert_eq!(demangle("main"), "main");
        assert_eq!(demangle("_Znwm"), "operator new(unsigned long)");
    }

    #[test]
    fn allocator_frames() {
        let f = |name: &str, object: &str| Frame {
            function: name.into(),
            file: None,
            line: None,
            object: Some(object.into()),
        };
        assert!(is_allocator_frame(&f("anything", "liboxmalloc.so")));
        assert!(is_allocator_frame(&f("oxmalloc::alloc::alloc_generic", "prog")));
        assert!(is_allocator_frame(&f(
            "<oxmalloc::OxMalloc as core::alloc::global::GlobalAlloc>::alloc",
            "prog"
        )));
        assert!(is_allocator_frame(&f("__rust_alloc", "prog")));
        assert!(is_allocator_frame(&f("__rustc::__rust_alloc_zeroed", "prog")));
        assert!(is_allocator_frame(&f(
            "<u8 as alloc::vec::spec_from_elem::SpecFromElem>::from_elem",
            "prog"
        )));
        assert!(is_allocator_frame(&f(
            "alloc::raw_vec::RawVecInner<A>::with_capacity_in",
            "prog"
        )));
        assert!(is_allocator_frame(&f("operator new(unsigned long)", "libstdc++.so.6")));
        assert!(is_allocator_frame(&f("malloc", "prog")));
        assert!(!is_allocator_frame(&f("my::alloc::thing", "prog")));
        assert!(!is_allocator_frame(&f("main", "prog")));
        assert!(!is_allocator_frame(&f("malloc_wrapper", "prog")));
    }

    #[test]
    fn human_sizes() {
        assert_eq!(human(512), "512 B");
        assert_eq!(human(1536), "1.5 KiB");
        assert_eq!(human(9 << 20), "9.0 MiB");
    }
}
