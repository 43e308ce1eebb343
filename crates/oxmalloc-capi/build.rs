//! Writes `oxmalloc.pc` (pkg-config) next to the built library, i.e. into
//! `target/<profile>/oxmalloc.pc`, describing the library where cargo left
//! it: `-I<crate>/include`, `-L<target>/<profile>`. `scripts/capi/install.sh`
//! installs the library, the header and a `.pc` for an installation prefix.

use std::path::PathBuf;

fn main() {
    println!("cargo:rerun-if-changed=oxmalloc.pc.in");
    println!("cargo:rerun-if-changed=build.rs");
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("CARGO_MANIFEST_DIR"));
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("OUT_DIR"));
    // OUT_DIR is <target>/<profile>/build/<pkg>-<hash>/out.
    let Some(profile_dir) = out.ancestors().nth(3) else {
        return;
    };
    let template = std::fs::read_to_string(manifest.join("oxmalloc.pc.in")).expect("read oxmalloc.pc.in");
    let pc = template
        .replace("@LIBDIR@", &profile_dir.display().to_string())
        .replace("@INCLUDEDIR@", &manifest.join("include").display().to_string())
        .replace(
            "@VERSION@",
            &std::env::var("CARGO_PKG_VERSION").expect("CARGO_PKG_VERSION"),
        );
    // Best effort: a read-only target directory must not fail the build.
    let _ = std::fs::write(profile_dir.join("oxmalloc.pc"), pc);
}
