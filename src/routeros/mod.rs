//! MikroTik RouterOS: the native knock-rule generator (`knockr routeros
//! rules`), the timeout syntax, and (with the `server` feature) the REST
//! client that puts knockers on address lists and `knockr routeros check`.

#[cfg(feature = "server")]
pub mod check;
#[cfg(feature = "server")]
pub mod rest;
pub mod rules;
pub mod timeout;
#[cfg(feature = "server")]
pub mod tls;
