//! nftables: the ruleset that makes a Linux host detect a knock sequence in
//! the kernel (`knockr nft rules`). Pure text generation on `core` alone: it
//! never runs `nft` and never reads config; the caller prints the text.

pub mod rules;
