//! Compiles rkube's pause binary (pause/pause.c) static, so the sandbox image the agent
//! imports at start is one file and needs no registry. gcc and glibc's static libc
//! (`libc6-dev`) are on every machine that builds Rust.

use std::path::PathBuf;
use std::process::Command;

fn main() {
    println!("cargo::rerun-if-changed=pause/pause.c");
    let out = PathBuf::from(std::env::var_os("OUT_DIR").unwrap_or_default()).join("pause");
    let cc = std::env::var("CC").unwrap_or_else(|_| "cc".to_owned());
    let status = Command::new(&cc)
        .args(["-static", "-Os", "-s", "-o"])
        .arg(&out)
        .arg("pause/pause.c")
        .status();
    match status {
        Ok(s) if s.success() => {}
        Ok(s) => {
            panic!("{cc} -static failed ({s}) building pause/pause.c: install gcc and libc6-dev")
        }
        Err(e) => panic!("cannot run {cc} to build pause/pause.c ({e}): install gcc and libc6-dev"),
    }
}
