//! Parses the arguments, runs, and maps the outcome to an exit status.
//!
//! `main` is C's, not std's (`#![no_main]`). std's own start-up asks glibc
//! for the main thread's stack (`pthread_getattr_np`, which reads and
//! `sscanf`s /proc/self/maps line by line): about 105 k instructions at
//! every start (BENCHMARKS.md, "Start-up in instructions"), only so that a
//! stack overflow on the main thread prints "has overflowed its stack"
//! before aborting. What else std's start-up does that knockr relies on is
//! done here instead, in the same order: descriptors 0-2 are opened on
//! /dev/null if closed, SIGPIPE is ignored (a write to a closed pipe is an
//! `EPIPE` error that `app::finish` turns into a quiet exit), a panic exits
//! 101, and stdout is flushed at the end.
//!
//! The trade-off: a stack overflow is a plain SIGSEGV without std's message,
//! and a panic message names the main thread `<unnamed>` instead of `main`.
//! A child still starts with SIGPIPE at its default (the server half that
//! `knockr knockd` execs, and the commands it runs): std resets it in every
//! process it starts unless the program was built with `-Zon-broken-pipe`,
//! which only std's start-up would record. std's `args_os` reads the
//! arguments glibc hands to `.init_array`, not `main`'s, so they are the
//! same either way. The server half keeps std's start-up.
#![cfg_attr(not(test), no_main)]

/// C's `main` and what it does. Not in a test build: the test harness
/// brings its own `main`.
#[cfg(not(test))]
mod start {
    use std::ffi::{c_char, c_int};
    use std::io::Write as _;

    use knockr::cli::Cli;

    #[unsafe(no_mangle)]
    extern "C" fn main(_argc: c_int, _argv: *const *const c_char) -> c_int {
        start_as_std_does();
        // As std's start-up: a panic (a bug) has printed its message; exit 101.
        let status = std::panic::catch_unwind(run).unwrap_or(101);
        let _ = std::io::stdout().flush();
        status
    }

    fn run() -> c_int {
        #[cfg(feature = "dynamic-completion")]
        clap_complete::CompleteEnv::with_factory(<Cli as clap::CommandFactory>::command).complete();

        // clap exits 2 on usage errors (a knocking flag before a subcommand
        // too) and 0 for --help and --version.
        let cli = Cli::parse_args();
        knockr::app::finish(knockr::app::run(cli)) as c_int
    }

    /// What std's start-up does before `main` that knockr depends on, but
    /// the main thread's stack guard.
    fn start_as_std_does() {
        // SAFETY: plain system calls on descriptors 0-2 and a signal
        // disposition; no Rust object owns those descriptors yet.
        unsafe {
            for fd in 0..=2 {
                if libc::fcntl(fd, libc::F_GETFD) == -1
                    && std::io::Error::last_os_error().raw_os_error() == Some(libc::EBADF)
                    // The lowest free descriptor: `fd` itself.
                    && libc::open(c"/dev/null".as_ptr(), libc::O_RDWR) != fd
                {
                    libc::abort();
                }
            }
            libc::signal(libc::SIGPIPE, libc::SIG_IGN);
        }
    }
}

/// The two functions of the C maths library the client calls (through
/// hickory's and tokio's `f64::exp` and `f64::powf`), defined in the
/// executable so that it does not load libm: a shared library fewer to map
/// and relocate, about 15 k instructions at every start (BENCHMARKS.md,
/// "Start-up in instructions"). The `libm` crate is musl's implementation;
/// a test compares it with glibc's. The server half loads libm as before.
mod maths {
    /// What glibc's `exp` computes.
    #[cfg(not(test))]
    #[unsafe(no_mangle)]
    extern "C" fn exp(x: f64) -> f64 {
        libm::exp(x)
    }

    /// What glibc's `pow` computes.
    #[cfg(not(test))]
    #[unsafe(no_mangle)]
    extern "C" fn pow(x: f64, y: f64) -> f64 {
        libm::pow(x, y)
    }

    #[cfg(test)]
    mod tests {
        /// The distance between two doubles in units in the last place.
        fn ulps(a: f64, b: f64) -> u64 {
            if a == b || (a.is_nan() && b.is_nan()) {
                return 0;
            }
            let key = |x: f64| {
                let bits = x.to_bits() as i64;
                if bits < 0 { i64::MIN - bits } else { bits }
            };
            key(a).abs_diff(key(b))
        }

        /// In a test build these are glibc's (the definitions above are
        /// not compiled): musl's agree within one unit in the last place
        /// over the ranges hickory's decay and tokio use and the edges.
        #[test]
        fn musl_exp_and_pow_agree_with_glibc() {
            let mut x = -745.0_f64;
            while x < 710.0 {
                assert!(ulps(libm::exp(x), x.exp()) <= 1, "exp({x})");
                x += 0.37;
            }
            for x in [
                0.0,
                -0.0,
                f64::INFINITY,
                f64::NEG_INFINITY,
                f64::NAN,
                1e-310,
                709.78,
            ] {
                assert!(ulps(libm::exp(x), x.exp()) <= 1, "exp({x})");
            }
            for base in [
                0.0,
                0.5,
                1.0,
                1.5,
                2.0,
                10.0,
                1e-300,
                1e300,
                -2.0,
                f64::INFINITY,
                f64::NAN,
            ] {
                for power in [
                    -3.0,
                    -0.5,
                    0.0,
                    0.25,
                    1.0,
                    2.0,
                    3.0,
                    30.0,
                    1e10,
                    f64::NEG_INFINITY,
                ] {
                    assert!(
                        ulps(libm::pow(base, power), base.powf(power)) <= 1,
                        "pow({base}, {power})"
                    );
                }
            }
        }
    }
}
