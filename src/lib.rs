//! knockr: port knocking for MikroTik routers and Linux hosts.
//!
//! The rooms, and what each may use (ARCHITECTURE.md has the map):
//! [`core`] <- [`routeros`] <- [`config`] <- [`client`] | [`server`] <- [`app`].
//! The binary is a thin shell around [`app::run`].

#![warn(unreachable_pub)]

pub mod app;
pub mod cli;
mod client;
pub mod config;
pub mod core;
pub mod exit_codes;
pub mod nft;
pub mod routeros;
#[cfg(feature = "server")]
mod server;
