//! Link settings for the smartnb binary.
//!
//! On x86_64 Linux with glibc 2.36 or newer, the binary is linked with packed relative
//! relocations (DT_RELR). The binary carries the Rust evaluator, and its classic relocation
//! table alone is 2.6 MB that the loader reads at every start; packed, it is 30 kB, which
//! keeps the idle kernel's resident memory under 20 MB (benches/README.md). Older glibc
//! cannot load such a binary, so the build checks the version of the glibc it runs on.

use std::process::Command;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    let target = std::env::var("TARGET").unwrap_or_default();
    let host = std::env::var("HOST").unwrap_or_default();
    // rust-lld is the default linker there, and it understands the option.
    if target == host && target == "x86_64-unknown-linux-gnu" && glibc_at_least(2, 36) {
        println!("cargo:rustc-link-arg-bins=-Wl,-z,pack-relative-relocs");
    }
}

/// Whether the build machine's glibc (`getconf GNU_LIBC_VERSION`) is at least `major.minor`.
fn glibc_at_least(major: u32, minor: u32) -> bool {
    let Ok(output) = Command::new("getconf").arg("GNU_LIBC_VERSION").output() else {
        return false;
    };
    let text = String::from_utf8_lossy(&output.stdout);
    let Some(version) = text.split_whitespace().nth(1) else {
        return false;
    };
    let mut parts = version.split('.').map(|p| p.parse::<u32>().unwrap_or(0));
    let found = (parts.next().unwrap_or(0), parts.next().unwrap_or(0));
    found >= (major, minor)
}
