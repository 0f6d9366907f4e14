//! Files -> validated values: the client's profiles file, the server's
//! configuration (knockr TOML or a classic knockd.conf, and its lint), secret
//! and password files, one-time sequence files.
//!
//! Reads (and for one-time files, rewrites) files only: it never resolves
//! names, sends or captures packets, or runs commands.

pub mod onetime;
pub mod profiles;
pub mod routeros;
pub mod secret;
pub mod server;
mod value;
