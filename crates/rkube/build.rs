//! Links the rkube binary with packed relative relocations (`-z pack-relative-relocs`,
//! DT_RELR; GNU ld 2.38 and glibc 2.36 on, as Debian 12 has).
//!
//! The binary is position-independent, and its ~54,000 relative relocations took 1.3 MB as
//! RELA entries, which the dynamic loader reads at every start: 1.3 MB of each rkube
//! process's resident memory (a node agent's too) that served once. Packed, they take 16 KB.

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    let os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    let env = std::env::var("CARGO_CFG_TARGET_ENV").unwrap_or_default();
    if os == "linux" && env == "gnu" {
        println!("cargo:rustc-link-arg-bins=-Wl,-z,pack-relative-relocs");
    }
}
