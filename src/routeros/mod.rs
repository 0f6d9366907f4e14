//! MikroTik RouterOS: the native knock-rule generator (`knockr routeros
//! rules`), the timeout syntax, and (with the `server` feature) the REST
//! client that puts knockers on address lists, the per-router worker that
//! sends a door's updates, `knockr routeros check`, and `knockr routeros
//! apply`, which installs the rules over REST.
//!
//! Uses [`crate::core`] only: the configuration's types stay in `config`,
//! and the server hands the worker what it needs.

#[cfg(feature = "server")]
pub mod apply;
#[cfg(feature = "server")]
pub mod check;
#[cfg(feature = "server")]
pub mod rest;
pub mod rules;
pub mod timeout;
#[cfg(feature = "server")]
pub mod tls;
#[cfg(feature = "server")]
pub mod worker;
