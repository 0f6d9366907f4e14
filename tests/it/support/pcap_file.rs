//! Capture files of made-up frames: what the replay tests feed `knockr
//! knockd --read`, and what examples/gen_capture.rs writes for the
//! benchmark (it includes this file). The library only reads captures.

use std::path::Path;
use std::time::Duration;

/// A pcap file being written, Ethernet frames with their capture times.
pub struct Writer {
    /// libpcap's writer of the open file.
    savefile: pcap::Savefile,
}

impl Writer {
    /// Creates (or truncates) `path`.
    pub fn create(path: &Path) -> Result<Writer, pcap::Error> {
        let dead = pcap::Capture::dead(pcap::Linktype::ETHERNET)?;
        let savefile = dead.savefile(path)?;
        Ok(Writer { savefile })
    }

    /// Appends one frame captured at `at` (since the Unix epoch).
    pub fn write(&mut self, at: Duration, frame: &[u8]) {
        let len = u32::try_from(frame.len()).expect("a frame fits in u32");
        let header = pcap::PacketHeader {
            ts: libc::timeval {
                tv_sec: at.as_secs() as _,
                tv_usec: at.subsec_micros() as _,
            },
            caplen: len,
            len,
        };
        self.savefile.write(&pcap::Packet::new(&header, frame));
    }

    /// Flushes what is written to the file.
    pub fn finish(mut self) -> Result<(), pcap::Error> {
        self.savefile.flush()
    }
}
