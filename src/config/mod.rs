//! Files -> validated values: the client's profiles file, the server's
//! configuration (knockr TOML or a classic knockd.conf, its lint, and
//! the knockd.conf written as TOML by [`convert`]), secret
//! and password files, one-time sequence files, and which account may own
//! or rewrite them ([`account`], from the files' metadata).
//!
//! Reads (and for one-time files, the server's state and its pid file,
//! rewrites without following links: [`files`]) files only: it never resolves
//! names, sends or captures packets, or runs commands.

pub mod account;
#[cfg(feature = "server")]
pub mod convert;
pub mod files;
#[cfg(feature = "server")]
pub mod nftables;
pub mod onetime;
pub mod profiles;
// The server's configuration, with its RouterOS table, comes with the server:
// a client-only build has neither.
#[cfg(feature = "server")]
pub mod routeros;
pub mod secret;
#[cfg(feature = "server")]
pub mod server;
pub(crate) mod value;
