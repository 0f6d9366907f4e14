//! Link order only. rustc names the libraries std needs as libgcc_s, libm,
//! then libc, and the dynamic loader searches them in that order for every
//! symbol an executable imports at start-up (full RELRO binds them all
//! before `main`), nearly all of which are libc's. Naming libc first makes
//! each of those lookups stop at the first library: about 19 k fewer
//! instructions at every start of `knockr` (BENCHMARKS.md, "Start-up in
//! instructions"). The same libraries are linked either way.
fn main() {
    println!("cargo:rustc-link-lib=dylib=c");
}
