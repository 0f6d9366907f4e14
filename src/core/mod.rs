//! The pure core: host words, knock specs, units, TCP flag rules, the packet parser, the
//! matcher, OTP derivation, text sanitizing and netlink's framing.
//!
//! Nothing here touches files, sockets, the clock, clap, tokio or libpcap:
//! time and input are arguments, so every rule is tested without network or
//! root, and the fuzz targets reach it directly.

pub mod host;
pub mod knock;
pub mod matcher;
pub mod netlink;
pub mod otp;
pub mod packet;
pub mod protect;
pub mod secret;
pub mod text;
pub mod units;
