//! Netlink's framing and the nftables set reader on any bytes, as a kernel
//! reply could hold them: walking messages and (nested) attributes must
//! stay inside the buffer and end, and judging a set must not panic. What
//! is walked is written again with the same framing and must read back the
//! same.

#![no_main]

use knockr::core::netlink::{Writer, attrs, messages};
use knockr::nft::netlink::{Key, read_set};
use libfuzzer_sys::fuzz_target;

/// Every attribute at every depth, counted; bounded by the input's size.
fn walk(data: &[u8], depth: usize) -> usize {
    let mut seen = 0;
    for (_, value) in attrs(data) {
        assert!(value.len() <= data.len());
        seen += 1;
        if depth < 4 {
            seen += walk(value, depth + 1);
        }
    }
    seen
}

fuzz_target!(|data: &[u8]| {
    let mut count = 0;
    for message in messages(data) {
        assert!(message.payload.len() <= data.len());
        count += 1;
        let _ = message.error();
        let _ = walk(message.payload, 0);
        for key in [Key::Ipv4, Key::Ipv6] {
            let _ = read_set(message.payload.get(4..).unwrap_or_default(), key);
        }
        // The top-level attributes after a 4-byte family header, written
        // again, read back as they were.
        let Some(body) = message.payload.get(4..) else {
            continue;
        };
        let found: Vec<(u16, &[u8])> = attrs(body).collect();
        let mut w = Writer::default();
        w.begin(message.kind, 0, message.seq);
        w.header(&message.payload[..4]);
        for (kind, value) in &found {
            w.attr(*kind, value);
        }
        w.end();
        let bytes = w.into_bytes();
        let again = messages(&bytes).next().expect("one message");
        assert_eq!((again.kind, again.seq), (message.kind, message.seq));
        let back: Vec<(u16, &[u8])> = attrs(&again.payload[4..]).collect();
        assert_eq!(back, found);
    }
    assert!(count <= data.len() / 16);
});
