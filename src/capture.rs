//! The only module that touches libpcap: opening live captures and capture
//! files, the kernel filter generated from the doors, and a reader thread
//! per interface. Packets leave here already parsed by `packet::parse`.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::{Context, anyhow};
use pcap::{Active, Capture, Direction, Linktype};

use crate::matcher::Door;
use crate::packet::{self, Hit, LinkType};
use crate::sequence::Proto;

/// Bytes kept of each packet: whole packets, because the parser checks the
/// IP length against what was captured (a cut packet is not trusted).
const SNAPLEN: i32 = 65_535;

/// libpcap's read timeout: how long it may hold packets back to batch them
/// (immediate mode delivers each at once; stopping uses `pcap_breakloop`).
const READ_TIMEOUT_MS: i32 = 100;

/// A packet that could be a knock, and when it was captured (since the Unix epoch).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Seen {
    pub hit: Hit,
    pub at: Duration,
}

/// The kernel-side filter: coarse on purpose (ports and protocols only, with
/// and without a VLAN tag); flags, order and addresses are checked in
/// userspace, where IPv6 works too. A strict door needs every TCP and UDP packet.
pub fn bpf_filter(doors: &[Door]) -> String {
    bpf_filter_with(doors, &[])
}

/// [`bpf_filter`] that also lets in `extra` clauses, such as a time-based
/// door's `udp dst portrange 20000-29999`. They go inside the same VLAN
/// wrapping: after `vlan`, libpcap reads every later clause at the tagged
/// offsets, so untagged clauses must all come before it.
pub fn bpf_filter_with(doors: &[Door], extra: &[String]) -> String {
    let ports = |proto: Proto| -> Vec<String> {
        let mut ports: Vec<u16> = doors
            .iter()
            .flat_map(|d| d.sequence.iter())
            .filter(|k| k.proto == proto)
            .map(|k| k.port)
            .collect();
        ports.sort_unstable();
        ports.dedup();
        ports.iter().map(u16::to_string).collect()
    };
    let base = if doors.iter().any(|d| d.strict) {
        "tcp or udp".to_string()
    } else {
        let mut parts = Vec::new();
        for (name, list) in [("tcp", ports(Proto::Tcp)), ("udp", ports(Proto::Udp))] {
            if !list.is_empty() {
                parts.push(format!("({name} dst port ({}))", list.join(" or ")));
            }
        }
        parts.extend(extra.iter().map(|clause| format!("({clause})")));
        if parts.is_empty() {
            // No door has a sequence (all one-time files used up): capture nothing useful.
            return "tcp and udp".to_string();
        }
        parts.join(" or ")
    };
    format!("({base}) or (vlan and ({base}))")
}

/// An opened live capture, not yet reading: opened as root, read after
/// privileges are dropped.
pub struct Live {
    pub interface: String,
    capture: Capture<Active>,
    link: LinkType,
}

/// Opens `interface` ("any" for all) in immediate mode, inbound packets only.
pub fn open_live(interface: &str, filter: &str) -> anyhow::Result<Live> {
    let mut capture = Capture::from_device(interface)
        .and_then(|c| {
            c.immediate_mode(true)
                .promisc(false)
                .snaplen(SNAPLEN)
                .timeout(READ_TIMEOUT_MS)
                .open()
        })
        .with_context(|| {
            format!("cannot capture on interface {interface} (capturing needs root or CAP_NET_RAW)")
        })?;
    // Our own outgoing packets are not knocks (and `lo` shows each packet twice).
    capture
        .direction(Direction::In)
        .with_context(|| format!("cannot select inbound packets on {interface}"))?;
    let link = link_type(capture.get_datalink(), interface)?;
    capture
        .filter(filter, true)
        .with_context(|| format!("libpcap refused the filter {filter:?}"))?;
    Ok(Live {
        interface: interface.to_string(),
        capture,
        link,
    })
}

fn link_type(linktype: Linktype, source: &str) -> anyhow::Result<LinkType> {
    LinkType::from_dlt(linktype.0).ok_or_else(|| {
        anyhow!(
            "{source} has link type {} ({:?}), which knockr cannot read",
            linktype.0,
            linktype.get_name().ok()
        )
    })
}

/// Steers the reader threads from the run loop: stop them, or give them a new
/// kernel filter (after a reload). Either breaks each reader out of its
/// blocking read (libpcap's `pcap_breakloop` wakes a waiting reader on Linux).
#[derive(Clone, Default)]
pub struct Control {
    stopped: Arc<AtomicBool>,
    /// A filter each reader applies before its next read; bumped `generation` says which is new.
    filter: Arc<std::sync::Mutex<(u64, String)>>,
    readers: Arc<std::sync::Mutex<Vec<pcap::BreakLoop>>>,
}

impl Control {
    pub fn stop(&self) {
        self.stopped.store(true, Ordering::Relaxed);
        self.wake();
    }

    /// Replaces the kernel filter of every reader.
    pub fn set_filter(&self, filter: String) {
        {
            let mut current = self.filter.lock().unwrap_or_else(|p| p.into_inner());
            current.0 += 1;
            current.1 = filter;
        }
        self.wake();
    }

    fn wake(&self) {
        for reader in self
            .readers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
        {
            reader.breakloop();
        }
    }

    fn stopped(&self) -> bool {
        self.stopped.load(Ordering::Relaxed)
    }

    /// The filter to apply if it is newer than `seen`.
    fn new_filter(&self, seen: u64) -> Option<(u64, String)> {
        let current = self.filter.lock().unwrap_or_else(|p| p.into_inner());
        (current.0 > seen).then(|| current.clone())
    }
}

/// Counters from libpcap: packets the kernel dropped before we read them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Drops {
    pub received: u32,
    pub dropped: u32,
    pub if_dropped: u32,
}

impl Live {
    /// Reads in a thread of its own until `control` stops it, handing every possible knock
    /// to `deliver` (which may block: the kernel buffers meanwhile and counts
    /// what it drops). Returns why reading ended, if not because of `stop`.
    pub fn spawn(
        mut self,
        control: Control,
        deliver: impl Fn(Seen) -> bool + Send + 'static,
        on_end: impl FnOnce(String, Option<anyhow::Error>, Drops) + Send + 'static,
    ) -> std::thread::JoinHandle<()> {
        control
            .readers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(self.capture.breakloop_handle());
        // The filter given at open is current until `set_filter` says otherwise.
        let mut generation = control.new_filter(0).map_or(0, |(g, _)| g);
        std::thread::Builder::new()
            .name(format!("capture {}", self.interface))
            .spawn(move || {
                let error = loop {
                    if control.stopped() {
                        break None;
                    }
                    if let Some((newer, filter)) = control.new_filter(generation) {
                        generation = newer;
                        if let Err(err) = self.capture.filter(&filter, true) {
                            break Some(anyhow!(
                                "libpcap refused the new filter {filter:?}: {err}"
                            ));
                        }
                    }
                    match self.capture.next_packet() {
                        Ok(packet) => {
                            if let Some(hit) = packet::parse(self.link, packet.data) {
                                let at =
                                    timestamp(packet.header.ts.tv_sec, packet.header.ts.tv_usec);
                                if !deliver(Seen { hit, at }) {
                                    break None;
                                }
                            }
                        }
                        Err(pcap::Error::TimeoutExpired) => {}
                        // Woken by `Control` (libpcap reports it as an error): the loop's head says why.
                        Err(_) if control.stopped() || control.new_filter(generation).is_some() => {
                        }
                        Err(err) => {
                            break Some(anyhow!("capture on {} failed: {err}", self.interface));
                        }
                    }
                };
                let drops = self.capture.stats().map(|s| Drops {
                    received: s.received,
                    dropped: s.dropped,
                    if_dropped: s.if_dropped,
                });
                on_end(self.interface.clone(), error, drops.unwrap_or_default());
            })
            .expect("a thread can be started")
    }
}

/// Replays a capture file, calling `each` for every possible knock in file order.
pub fn read_file(path: &Path, mut each: impl FnMut(Seen)) -> anyhow::Result<u64> {
    let mut capture = Capture::from_file(path)
        .with_context(|| format!("cannot read capture file {}", path.display()))?;
    let link = link_type(capture.get_datalink(), &path.display().to_string())?;
    let mut packets = 0;
    loop {
        match capture.next_packet() {
            Ok(packet) => {
                packets += 1;
                if let Some(hit) = packet::parse(link, packet.data) {
                    each(Seen {
                        hit,
                        at: timestamp(packet.header.ts.tv_sec, packet.header.ts.tv_usec),
                    });
                }
            }
            Err(pcap::Error::NoMorePackets) => return Ok(packets),
            Err(err) => return Err(anyhow!("{}: {err} after {packets} packets", path.display())),
        }
    }
}

fn timestamp(sec: i64, usec: i64) -> Duration {
    Duration::from_secs(sec.max(0) as u64) + Duration::from_micros(usec.clamp(0, 999_999) as u64)
}

/// Writes frames to a capture file (for tests and benchmarks).
pub struct Writer {
    savefile: pcap::Savefile,
}

impl Writer {
    pub fn create(path: &Path, link: LinkType) -> anyhow::Result<Writer> {
        let dead = Capture::dead(Linktype(link.dlt())).context("cannot create a pcap writer")?;
        let savefile = dead
            .savefile(path)
            .with_context(|| format!("cannot write {}", path.display()))?;
        Ok(Writer { savefile })
    }

    /// Appends one frame captured at `at` (since the Unix epoch).
    pub fn write(&mut self, at: Duration, frame: &[u8]) {
        let len = u32::try_from(frame.len()).expect("a frame fits in u32");
        let header = pcap::PacketHeader {
            ts: libc_timeval(at),
            caplen: len,
            len,
        };
        self.savefile.write(&pcap::Packet::new(&header, frame));
    }

    pub fn finish(mut self) -> anyhow::Result<()> {
        self.savefile
            .flush()
            .context("cannot flush the capture file")
    }
}

fn libc_timeval(at: Duration) -> libc::timeval {
    libc::timeval {
        tv_sec: at.as_secs() as _,
        tv_usec: at.subsec_micros() as _,
    }
}
