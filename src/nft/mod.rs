//! nftables: the ruleset that makes a Linux host detect a knock sequence in
//! the kernel (`knockr nft rules`: pure text generation on `core` alone; it
//! never runs `nft` and never reads config, the caller prints the text), and
//! the netlink client that puts knockers in nftables sets (`netlink`, the
//! `[door.nftables]` action's kernel side; it never logs and never reads
//! config).

#[cfg(feature = "server")]
pub mod netlink;
pub mod rules;
