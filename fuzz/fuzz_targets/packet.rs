//! The packet parser on any bytes, for every link type: the first input byte
//! picks the link type, the rest is the captured frame. It must not panic, and
//! the IPv4 shortcut must give the same answer as etherparse alone.

#![no_main]

use knockr::core::packet::{LinkType, parse, parse_general};
use knockr::core::knock::Transport;
use libfuzzer_sys::fuzz_target;

const LINKS: [LinkType; 8] = [
    LinkType::Ethernet,
    LinkType::LinuxSll,
    LinkType::LinuxSll2,
    LinkType::Raw,
    LinkType::Null,
    LinkType::Loop,
    LinkType::Ipv4,
    LinkType::Ipv6,
];

fuzz_target!(|data: &[u8]| {
    let Some((&pick, frame)) = data.split_first() else {
        return;
    };
    let link = LINKS[usize::from(pick) % LINKS.len()];
    let hit = parse(link, frame);
    assert_eq!(hit, parse_general(link, frame), "{link:?} {frame:02x?}");
    if let Some(hit) = hit {
        if hit.transport == Transport::Udp {
            assert_eq!(hit.flags, 0, "a UDP hit carries no TCP flags");
        }
    }
});
