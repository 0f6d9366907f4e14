//! Files -> validated values: the client's profiles file, the server's
//! configuration (knockr TOML or a classic knockd.conf, and its lint), secret
//! and password files, one-time sequence files.
//!
//! Reads (and for one-time files, rewrites) files only: it never resolves
//! names, sends or captures packets, or runs commands.

pub mod onetime;
pub mod profiles;
// The server's configuration needs the RouterOS REST client's types, which
// only exist with the server.
#[cfg(feature = "server")]
pub mod routeros;
pub mod secret;
#[cfg(feature = "server")]
pub mod server;
