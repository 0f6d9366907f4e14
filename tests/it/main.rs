//! The integration tests, one binary (as ripgrep's): the real `knockr`
//! binary run against loopback listeners, capture files, the RouterOS
//! emulator, and network namespaces the tests make themselves. One binary
//! links once instead of eleven times; the modules are named by area.

mod support;

mod cli;
mod client;
mod client_one_time;
mod icmp;
mod interop;
mod knockd_boundary;
mod knockd_check;
mod knockd_commands;
mod knockd_convert;
mod knockd_faults;
mod knockd_files;
mod knockd_live;
mod knockd_nftables;
mod knockd_offline;
mod knockd_ops;
mod knockd_otp;
mod knockd_scale;
mod knockd_signals;
mod knockd_state;
mod layers;
mod nft_rules;
mod resolve;
mod routeros;
mod routeros_apply;
mod routeros_emulator;
mod routeros_rules;
