//! Link choices only, each measured at the start of every `knockr` run
//! (BENCHMARKS.md, "Start-up in instructions").
//!
//! - libc first: rustc names the libraries std needs as libgcc_s, libm,
//!   then libc, and the dynamic loader searches them in that order for
//!   every symbol an executable imports at start-up (full RELRO binds them
//!   all before `main`), nearly all of which are libc's. Naming libc first
//!   makes each of those lookups stop at the first library: about 19 k
//!   fewer instructions.
//! - The unwinder linked in (`libgcc_eh.a`, what `gcc -static-libgcc` and
//!   Rust's own `crt-static` builds use) instead of loaded (`libgcc_s.so`):
//!   one shared library fewer to map and relocate, about 20 k. Named here,
//!   ahead of std's `-lgcc_s`, it provides the `_Unwind_*` symbols, so the
//!   linker (`--as-needed`) leaves libgcc_s out. Panics unwind as before:
//!   the same unwinder, in the executable.
fn main() {
    println!("cargo:rustc-link-lib=dylib=c");
    let env = std::env::var("CARGO_CFG_TARGET_ENV").unwrap_or_default();
    let os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    let features = std::env::var("CARGO_CFG_TARGET_FEATURE").unwrap_or_default();
    let crt_static = features.split(',').any(|f| f == "crt-static");
    // A static build links libgcc_eh already; other targets have no libgcc_s.
    if os == "linux" && env == "gnu" && !crt_static {
        println!("cargo:rustc-link-lib=static:-bundle=gcc_eh");
    }
}
