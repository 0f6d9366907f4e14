//! The only module that touches libpcap: opening live captures and capture
//! files, the kernel filter generated from the doors, and a reader thread
//! per interface. Packets leave here already parsed by `packet::parse`.
//!
//! A reader whose interface goes away (deleted, or a driver reset) keeps
//! trying to re-open it for a bounded time ([`REOPEN_FOR`]) and then gives
//! up, so the server exits non-zero for its supervisor to restart it.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use anyhow::{Context, anyhow};
use pcap::{Active, Capture, Direction, Linktype};

use crate::core::knock::Proto;
use crate::core::matcher::Door;
use crate::core::packet::{self, Hit, LinkType};

/// Bytes kept of each packet: whole packets up to a 1500-byte MTU with a
/// VLAN tag, because the parser checks the IP length against what was
/// captured (a cut packet is not trusted). Bigger packets (jumbo frames,
/// offload aggregates) are cut and so ignored: a knock is a SYN or a small
/// datagram. Not 65,535: in immediate mode libpcap gives every packet a ring
/// slot of the snapshot length when the interface has offloads (veth, most
/// NICs), and its 2 MiB ring then holds 32 packets; a flood filled it in
/// well under a millisecond and the kernel dropped most packets, knocks too.
const SNAPLEN: i32 = 1600;

/// libpcap's read timeout: how long it may hold packets back to batch them
/// (immediate mode delivers each at once; stopping uses `pcap_breakloop`).
const READ_TIMEOUT_MS: i32 = 100;

/// How long a reader tries to re-open its capture after the interface went
/// away: long enough for a VPN or a veth to be recreated, short enough that
/// systemd restarts the server soon after an interface that stays gone.
pub(crate) const REOPEN_FOR: Duration = Duration::from_secs(20);

/// Pause between two attempts to re-open a capture.
const REOPEN_PAUSE: Duration = Duration::from_millis(250);

/// The kernel's capture ring: with [`SNAPLEN`] about two slots per 4 KiB
/// page, so 8 MiB hold about 4,000 packets, a 20 ms stall of the reader at
/// 200,000 packets/s. It is resident memory, counted against the 64 MiB goal.
const BUFFER_BYTES: i32 = 8 << 20;

/// A packet that could be a knock, and when it was captured (since the Unix epoch).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Seen {
    /// The packet, parsed.
    pub(crate) hit: Hit,
    /// Its capture time: the clock the matcher runs on.
    pub(crate) at: Duration,
}

/// The most port clauses (one port, or one range of ports, of one protocol)
/// the kernel filter names. libpcap's optimizer is super-linear in the
/// clauses of an `or` chain (40 doors x 32 knocks, 1,280 clauses, took 39 s
/// to compile, 600 doors ran it out of memory), and the kernel refuses a
/// program of over 4,096 instructions, after which libpcap filters in
/// userspace without a word. 64 clauses, twice over for the VLAN wrapping,
/// compile in milliseconds to well under that limit (see the tests).
pub(crate) const MAX_CLAUSES: usize = 64;

/// Ports `low..=high` of one protocol that the kernel filter lets in, such
/// as a time-based door's `otp_ports`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct PortRange {
    /// TCP or UDP (ICMP knocks have no port and reach no filter clause).
    pub(crate) proto: Proto,
    /// The first port let in.
    pub(crate) low: u16,
    /// The last port let in (`low` for a single port).
    pub(crate) high: u16,
}

impl PortRange {
    /// This range as one libpcap clause.
    fn clause(&self) -> String {
        let name = self.proto.as_str();
        if self.low == self.high {
            format!("{name} dst port {}", self.low)
        } else {
            format!("{name} dst portrange {}-{}", self.low, self.high)
        }
    }
}

/// `ranges` sorted, with those that overlap or touch merged into one, so
/// consecutive knock ports (or a door's ports next to a time-based range)
/// cost the filter one clause.
pub(crate) fn merge_ranges(mut ranges: Vec<PortRange>) -> Vec<PortRange> {
    ranges.sort_unstable_by_key(|r| (r.proto.as_str(), r.low, r.high));
    let mut merged: Vec<PortRange> = Vec::with_capacity(ranges.len());
    for range in ranges {
        match merged.last_mut() {
            Some(last)
                if last.proto == range.proto
                    && u32::from(range.low) <= u32::from(last.high) + 1 =>
            {
                last.high = last.high.max(range.high);
            }
            _ => merged.push(range),
        }
    }
    merged
}

/// The kernel filter for a set of doors, and whether it had to give up on ports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct KernelFilter {
    /// libpcap's expression for untagged packets; each capture sets it
    /// framed for its link type ([`framed`]).
    pub(crate) expression: String,
    /// How many port clauses the doors need, when that is more than
    /// [`MAX_CLAUSES`]: the expression then lets every TCP and UDP packet
    /// in, and the matcher alone picks the knocks.
    pub(crate) too_many: Option<usize>,
}

impl KernelFilter {
    /// Every TCP and UDP packet, tagged or not: what a strict door, a
    /// one-time door (its next ports are not known yet) and a config with
    /// too many port clauses need.
    pub(crate) fn every_tcp_and_udp() -> KernelFilter {
        KernelFilter {
            expression: "tcp or udp".to_string(),
            too_many: None,
        }
    }

    /// What to log once when the filter gave up on ports, so that a busy
    /// host's CPU use (every TCP and UDP packet reaches userspace) has a reason.
    pub(crate) fn notice(&self) -> Option<String> {
        self.too_many.map(|clauses| {
            format!(
                "capture filter: the doors' knocks need {clauses} port clauses, more than {MAX_CLAUSES}; \
                 the kernel lets every TCP and UDP packet through and the doors are matched in userspace"
            )
        })
    }
}

/// `filter` as a capture of `link` sets it. On Ethernet, `filter` and
/// `filter` inside a VLAN tag: after `vlan`, libpcap reads every later
/// clause at the tagged offsets, so the untagged clauses come first. Other
/// framings have no tags to match (on `any`, Linux cooked capture, the
/// kernel moves the tag out of the packet), and libpcap refuses `vlan` on
/// them: "no VLAN support for Linux cooked v1". The empty filter
/// (`less 1`) stays as it is.
pub(crate) fn framed(filter: &str, link: LinkType) -> String {
    if link == LinkType::Ethernet && filter != NOTHING {
        format!("({filter}) or (vlan and ({filter}))")
    } else {
        filter.to_string()
    }
}

/// The filter that lets nothing in. No packet is shorter than 2 bytes;
/// libpcap refuses to compile a filter it can prove rejects everything
/// (`tcp and udp`).
const NOTHING: &str = "less 1";

/// The kernel-side filter: coarse on purpose (ports and protocols only, with
/// and without a VLAN tag); flags, order and addresses are checked in
/// userspace, where IPv6 works too. A strict door needs every TCP and UDP packet.
///
/// `extra` ranges are let in too, such as a time-based door's `otp_ports`.
/// Ports are merged into ranges; when more than [`MAX_CLAUSES`] remain, the
/// filter is on protocol alone ([`KernelFilter::too_many`]).
pub(crate) fn bpf_filter(doors: &[&Door], extra: &[PortRange]) -> KernelFilter {
    if doors.iter().any(|d| d.strict) {
        return KernelFilter::every_tcp_and_udp();
    }
    let knocks = doors
        .iter()
        .flat_map(|d| d.sequence.knocks())
        .filter(|k| matches!(k.proto, Proto::Tcp | Proto::Udp))
        .map(|k| PortRange {
            proto: k.proto,
            low: k.port,
            high: k.port,
        });
    let ranges = merge_ranges(knocks.chain(extra.iter().copied()).collect());
    if ranges.is_empty() {
        // No door has a sequence (all one-time files used up): let nothing in.
        return KernelFilter {
            expression: NOTHING.to_string(),
            too_many: None,
        };
    }
    if ranges.len() > MAX_CLAUSES {
        return KernelFilter {
            too_many: Some(ranges.len()),
            ..KernelFilter::every_tcp_and_udp()
        };
    }
    let clauses: Vec<String> = ranges.iter().map(|r| format!("({})", r.clause())).collect();
    KernelFilter {
        expression: clauses.join(" or "),
        too_many: None,
    }
}

/// Whether libpcap compiles `filter` (a [`KernelFilter::expression`]) into
/// a program the kernel takes, as [`framed`] for an Ethernet interface, for
/// `any` and for a tunnel: the reason when not. Needs no privilege and opens
/// no interface (a "dead" capture), so `--check` can ask.
pub(crate) fn filter_compiles(filter: &str) -> Result<(), String> {
    // DLT_RAW is 12 on Linux (101 is its savefile number).
    let links = [
        (LinkType::Ethernet, Linktype::ETHERNET),
        (LinkType::LinuxSll, Linktype::LINUX_SLL),
        (LinkType::Raw, Linktype(12)),
    ];
    for (link, dlt) in links {
        let dead = Capture::dead(dlt)
            .map_err(|err| format!("libpcap cannot make a capture to compile with: {err}"))?;
        let filter = framed(filter, link);
        let program = dead
            .compile(&filter, true)
            .map_err(|err| format!("libpcap cannot compile the filter {filter:?}: {err}"))?;
        kernel_takes(&program).map_err(|err| {
            format!(
                "the kernel refuses the filter libpcap compiled from {filter:?} ({} instructions): {err}",
                program.get_instructions().len()
            )
        })?;
    }
    Ok(())
}

/// Whether the kernel takes `program` as a socket filter, asked by
/// attaching it to a UDP socket of our own: no privilege is needed and
/// nothing is bound or sent. When the kernel refuses a capture's filter,
/// libpcap only warns ("Kernel filter failed: Invalid argument") and
/// filters in userspace, a copy of every packet later; a compiled
/// program's length is not the test (454 instructions were refused).
fn kernel_takes(program: &pcap::BpfProgram) -> Result<(), String> {
    use socket2::{Domain, SockFilter, Socket, Type};
    let instructions = program
        .get_instructions()
        .iter()
        .map(|insn| {
            // The pcap crate shows an instruction's fields ("code jt jf k")
            // and keeps them private otherwise.
            let text = insn.to_string();
            let mut fields = text.split(' ');
            let mut next = || {
                fields
                    .next()
                    .ok_or_else(|| format!("unreadable instruction {text:?}"))
            };
            let code = next()?.parse::<u16>().map_err(|e| e.to_string())?;
            let jt = next()?.parse::<u8>().map_err(|e| e.to_string())?;
            let jf = next()?.parse::<u8>().map_err(|e| e.to_string())?;
            let k = next()?.parse::<u32>().map_err(|e| e.to_string())?;
            Ok(SockFilter::new(code, jt, jf, k))
        })
        .collect::<Result<Vec<_>, String>>()?;
    let socket = Socket::new(Domain::IPV4, Type::DGRAM, None)
        .map_err(|err| format!("no socket to try the filter on: {err}"))?;
    socket
        .attach_filter(&instructions)
        .map_err(|err| err.to_string())
}

/// An opened live capture, not yet reading: opened as root, read after
/// privileges are dropped.
pub(crate) struct Live {
    /// The interface, as given (`any` for all).
    pub(crate) interface: String,
    /// libpcap's handle, replaced when the capture is re-opened.
    capture: Capture<Active>,
    /// How its frames are framed, for the parser.
    link: LinkType,
    /// The kernel filter in force: a re-opened capture gets it again.
    filter: String,
}

/// Opens `interface` ("any" for all) in immediate mode, inbound packets only.
pub(crate) fn open_live(interface: &str, filter: &str) -> anyhow::Result<Live> {
    let mut capture = Capture::from_device(interface)
        .and_then(|c| {
            c.immediate_mode(true)
                .promisc(false)
                .snaplen(SNAPLEN)
                .timeout(READ_TIMEOUT_MS)
                .buffer_size(BUFFER_BYTES)
                .open()
        })
        .with_context(|| {
            format!("cannot capture on interface {interface} (capturing needs root or CAP_NET_RAW)")
        })?;
    // Our own outgoing packets are not knocks (and `lo` shows each packet twice).
    capture
        .direction(Direction::In)
        .with_context(|| format!("cannot select inbound packets on {interface}"))?;
    close_on_exec(&capture);
    let link = link_type(capture.get_datalink(), interface)?;
    let framed = framed(filter, link);
    capture
        .filter(&framed, true)
        .with_context(|| format!("libpcap refused the filter {framed:?}"))?;
    Ok(Live {
        interface: interface.to_string(),
        capture,
        link,
        filter: filter.to_string(),
    })
}

/// libpcap opens its socket without close-on-exec; commands must not get
/// it (they could send frames or change its filter). Commands are also
/// spawned with every descriptor above stderr marked (commands.rs); this
/// covers the socket should anything else ever exec.
fn close_on_exec(capture: &Capture<pcap::Active>) {
    use std::os::fd::AsRawFd as _;
    let fd = capture.as_raw_fd();
    // SAFETY: fcntl on a descriptor the capture owns, plain integers.
    unsafe {
        let flags = libc::fcntl(fd, libc::F_GETFD);
        if flags >= 0 {
            libc::fcntl(fd, libc::F_SETFD, flags | libc::FD_CLOEXEC);
        }
    }
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

/// Steers the reader threads from the run loop: stop them, give them a new
/// kernel filter (after a reload), or have them refresh their counters. Each
/// breaks the readers out of their blocking read (libpcap's `pcap_breakloop`
/// wakes a waiting reader on Linux).
#[derive(Clone, Default)]
pub(crate) struct Control {
    /// Set by `stop`; each reader checks it before each read.
    stopped: Arc<AtomicBool>,
    /// A filter each reader applies before its next read; bumped `generation` says which is new.
    filter: Arc<std::sync::Mutex<(u64, String)>>,
    /// One handle per reader, to wake it from a blocking read.
    readers: Arc<std::sync::Mutex<Vec<pcap::BreakLoop>>>,
    /// Each reader's latest libpcap counters, by interface; written by the
    /// readers when `refresh_drops` asks and when they end.
    drops: Arc<std::sync::Mutex<Vec<(String, Drops)>>>,
    /// Bumped by `refresh_drops`; a reader that has answered an older one refreshes.
    drops_wanted: Arc<AtomicU64>,
}

impl Control {
    pub(crate) fn stop(&self) {
        self.stopped.store(true, Ordering::Relaxed);
        self.wake();
    }

    /// Replaces the kernel filter of every reader.
    pub(crate) fn set_filter(&self, filter: String) {
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

    /// Asks every reader to refresh its counters in [`Control::drops`] (at
    /// once if it is waiting for packets, else after the packet in hand).
    pub(crate) fn refresh_drops(&self) {
        self.drops_wanted.fetch_add(1, Ordering::Relaxed);
        self.wake();
    }

    fn drops_wanted(&self) -> u64 {
        self.drops_wanted.load(Ordering::Relaxed)
    }

    /// Every reader's libpcap counters as last refreshed, by interface.
    pub(crate) fn drops(&self) -> Vec<(String, Drops)> {
        self.drops.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    fn set_drops(&self, interface: &str, drops: Drops) {
        let mut all = self.drops.lock().unwrap_or_else(|p| p.into_inner());
        match all.iter_mut().find(|(name, _)| name == interface) {
            Some(entry) => entry.1 = drops,
            None => all.push((interface.to_string(), drops)),
        }
    }

    /// The filter to apply if it is newer than `seen`.
    fn new_filter(&self, seen: u64) -> Option<(u64, String)> {
        let current = self.filter.lock().unwrap_or_else(|p| p.into_inner());
        (current.0 > seen).then(|| current.clone())
    }
}

/// A reader that stopped reading, as it tells the run loop.
#[derive(Debug)]
pub(crate) struct Ended {
    /// The interface it read.
    pub(crate) interface: String,
    /// Why it stopped, when not because it was told to.
    pub(crate) failure: Option<String>,
    /// Its libpcap counters at the end.
    pub(crate) drops: Drops,
}

impl Ended {
    /// Why reading ended, in one sentence.
    pub(crate) fn why(&self) -> String {
        match &self.failure {
            Some(failure) => failure.clone(),
            None => format!("capture on {} stopped", self.interface),
        }
    }
}

/// Counters from libpcap (`pcap_stats`) since the capture was opened:
/// packets the kernel dropped before we read them. On Linux libpcap keeps
/// them as 32-bit counters, which wrap.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Drops {
    /// Packets that passed the kernel filter (dropped ones included).
    pub(crate) received: u32,
    /// Packets the kernel dropped because the capture buffer was full: we read too slowly.
    pub(crate) dropped: u32,
    /// Packets the interface itself dropped (all of its traffic, not only ours).
    pub(crate) if_dropped: u32,
}

impl Live {
    fn drops(&mut self) -> Option<Drops> {
        self.capture.stats().ok().map(|s| Drops {
            received: s.received,
            dropped: s.dropped,
            if_dropped: s.if_dropped,
        })
    }

    /// Reads in a thread of its own until `control` stops it, handing every possible knock
    /// to `deliver` (which may block: the kernel buffers meanwhile and counts
    /// what it drops). A failed capture is re-opened if it can be within
    /// [`REOPEN_FOR`]; `notice` hears of the failure and of the recovery,
    /// and when a new filter (a reload's) is in force.
    /// `on_end` hears that reading ended, and why if not because of `stop`.
    pub(crate) fn spawn(
        mut self,
        control: Control,
        deliver: impl Fn(Seen) -> bool + Send + 'static,
        notice: impl Fn(String) + Send + 'static,
        on_end: impl FnOnce(Ended) + Send + 'static,
    ) -> std::thread::JoinHandle<()> {
        control
            .readers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(self.capture.breakloop_handle());
        // The filter given at open is current until `set_filter` says otherwise.
        let mut generation = control.new_filter(0).map_or(0, |(g, _)| g);
        // When the capture last failed, while no read has worked since: a
        // capture that re-opens but fails again at once shares the budget.
        let mut failing_since: Option<std::time::Instant> = None;
        std::thread::Builder::new()
            .name(format!("capture {}", self.interface))
            .spawn(move || {
                let mut drops_answered = control.drops_wanted();
                let error = loop {
                    if control.stopped() {
                        break None;
                    }
                    if control.drops_wanted() > drops_answered {
                        drops_answered = control.drops_wanted();
                        if let Some(drops) = self.drops() {
                            control.set_drops(&self.interface, drops);
                        }
                    }
                    if let Some((newer, filter)) = control.new_filter(generation) {
                        generation = newer;
                        let framed = framed(&filter, self.link);
                        if let Err(err) = self.capture.filter(&framed, true) {
                            break Some(anyhow!(
                                "libpcap refused the new filter {framed:?}: {err}"
                            ));
                        }
                        self.filter = filter;
                        // Said once it holds: knocks at a reload's new ports count from here.
                        notice(format!(
                            "capture on {}: the new kernel filter is in force",
                            self.interface
                        ));
                    }
                    let read = self.capture.next_packet();
                    if matches!(read, Ok(_) | Err(pcap::Error::TimeoutExpired)) {
                        failing_since = None;
                    }
                    match read {
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
                        Err(_)
                            if control.stopped()
                                || control.new_filter(generation).is_some()
                                || control.drops_wanted() > drops_answered => {}
                        Err(err) => {
                            let since = *failing_since.get_or_insert_with(std::time::Instant::now);
                            notice(format!(
                                "capture on {} failed: {err}; trying to re-open it for up to {}s",
                                self.interface,
                                REOPEN_FOR.as_secs()
                            ));
                            match self.reopen(&control, &mut generation, since + REOPEN_FOR) {
                                Ok(()) => notice(format!(
                                    "capture on {} re-opened: matching goes on",
                                    self.interface
                                )),
                                Err(None) => break None,
                                Err(Some(last)) => {
                                    let within = if lacks_permission() {
                                        String::new()
                                    } else {
                                        format!(" within {}s", REOPEN_FOR.as_secs())
                                    };
                                    break Some(anyhow!(
                                        "capture on {} failed ({err}) and could not be re-opened{within}; last attempt: {last:#}",
                                        self.interface,
                                    ));
                                }
                            }
                        }
                    }
                };
                let drops = self.drops().unwrap_or_default();
                control.set_drops(&self.interface, drops);
                on_end(Ended {
                    interface: self.interface.clone(),
                    failure: error.map(|err| format!("{err:#}")),
                    drops,
                });
            })
            .expect("a thread can be started")
    }
}

impl Live {
    /// Opens this capture's interface again, with the newest filter, until it
    /// works or `deadline` has passed. `Err(None)`: `control` stopped us
    /// meanwhile; `Err(Some(_))`: the last attempt's error.
    fn reopen(
        &mut self,
        control: &Control,
        generation: &mut u64,
        deadline: std::time::Instant,
    ) -> Result<(), Option<anyhow::Error>> {
        let mut last = None;
        while std::time::Instant::now() < deadline {
            // Sleep in slices so a stop is heard quickly.
            let until = std::time::Instant::now() + REOPEN_PAUSE;
            while std::time::Instant::now() < until {
                if control.stopped() {
                    return Err(None);
                }
                std::thread::sleep(Duration::from_millis(25));
            }
            if let Some((newer, filter)) = control.new_filter(*generation) {
                *generation = newer;
                self.filter = filter;
            }
            match open_live(&self.interface, &self.filter) {
                Ok(mut live) => {
                    control
                        .readers
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .push(live.capture.breakloop_handle());
                    self.capture = live.capture;
                    self.link = live.link;
                    return Ok(());
                }
                // Not something waiting mends: after a privilege drop
                // (`user =`) the capability to capture is gone for good.
                Err(err) if lacks_permission() => {
                    return Err(Some(err.context(
                        "re-opening a capture needs root or CAP_NET_RAW, given up when privileges were dropped",
                    )));
                }
                Err(err) => last = Some(err),
            }
        }
        Err(Some(last.unwrap_or_else(|| {
            anyhow!("it failed again as soon as it was re-opened")
        })))
    }
}

/// Whether this process lacks the privilege to capture at all (root or
/// CAP_NET_RAW), as opposed to an interface that is missing for now. The
/// kernel is asked with a packet socket, which is what libpcap opens: the
/// pcap crate keeps only libpcap's message of a failed activation, not its
/// status (`PCAP_ERROR_PERM_DENIED`), and messages are no interface.
fn lacks_permission() -> bool {
    use socket2::{Domain, Socket, Type};
    match Socket::new(Domain::PACKET, Type::RAW, None) {
        Ok(_) => false,
        Err(err) => err.kind() == std::io::ErrorKind::PermissionDenied,
    }
}

/// Replays a capture file, calling `each` for every possible knock in file order.
pub(crate) fn read_file(path: &Path, mut each: impl FnMut(Seen)) -> anyhow::Result<u64> {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::knock::Knock;
    use crate::core::matcher::FlagRule;

    fn door(sequence: Vec<Knock>) -> Door {
        Door {
            name: "d".into(),
            sequence: crate::core::matcher::Sequence::new(&sequence).unwrap(),
            seq_timeout: Duration::from_secs(5),
            flags: FlagRule::default(),
            target: None,
            strict: false,
            tolerate_repeats: false,
        }
    }

    /// What libpcap makes of `filter` on an Ethernet capture: whether it
    /// compiles, and whether a UDP datagram to 7000 passes.
    fn passes_udp_7000(filter: &str) -> Result<bool, pcap::Error> {
        let dead = Capture::dead(Linktype::ETHERNET)?;
        let program = dead.compile(filter, true)?;
        let mut frame = Vec::new();
        etherparse::PacketBuilder::ethernet2([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2])
            .ipv4([198, 51, 100, 7], [192, 0, 2, 1], 64)
            .udp(40_000, 7000)
            .write(&mut frame, &[0])
            .unwrap();
        Ok(program.filter(&frame))
    }

    /// Root (or CAP_NET_RAW) may capture and is told so; anyone else lacks
    /// permission, and libpcap agrees: opening `lo` fails for them too.
    #[test]
    fn lacking_permission_is_what_the_kernel_says_and_libpcap_agrees() {
        let may_capture = open_live("lo", "less 1").is_ok();
        assert_eq!(lacks_permission(), !may_capture);
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } == 0 {
            assert!(!lacks_permission(), "root may capture");
        }
    }

    #[test]
    fn the_filter_compiles_for_doors_with_and_without_sequences() {
        let knock = |port, proto| Knock { port, proto };
        let with = bpf_filter(
            &[&door(vec![
                knock(7000, Proto::Udp),
                knock(8000, Proto::Tcp),
            ])],
            &[],
        )
        .expression;
        assert_eq!(
            passes_udp_7000(&with).map_err(|e| format!("{with}: {e}")),
            Ok(true)
        );
        // Every one-time line used: the door has no sequence, and knockd must
        // still start (and reload) with a filter that lets nothing in.
        let none = bpf_filter(&[&door(Vec::new())], &[]).expression;
        assert_eq!(
            passes_udp_7000(&none).map_err(|e| format!("{none}: {e}")),
            Ok(false)
        );
    }

    fn range(proto: Proto, low: u16, high: u16) -> PortRange {
        PortRange { proto, low, high }
    }

    #[test]
    fn ports_that_touch_or_overlap_merge_and_protocols_stay_apart() {
        let merged = merge_ranges(vec![
            range(Proto::Udp, 7001, 7001),
            range(Proto::Tcp, 7002, 7002),
            range(Proto::Tcp, 7000, 7000),
            range(Proto::Tcp, 7001, 7001),
            range(Proto::Udp, 7000, 7000),
            range(Proto::Tcp, 7004, 7004),
            range(Proto::Tcp, 7003, 9000),
            range(Proto::Tcp, 8000, 8500),
            range(Proto::Udp, 65535, 65535),
            range(Proto::Udp, 65000, 65535),
        ]);
        assert_eq!(
            merged,
            vec![
                range(Proto::Tcp, 7000, 9000),
                range(Proto::Udp, 7000, 7001),
                range(Proto::Udp, 65000, 65535),
            ]
        );
    }

    /// `doors` doors of `knocks` knocks each, the n-th knock of all on port
    /// `first + spacing * n`, of protocol `proto(n)`.
    fn many_doors(
        doors: usize,
        knocks: usize,
        first: u32,
        spacing: u32,
        proto: fn(u32) -> Proto,
    ) -> Vec<Door> {
        (0..doors)
            .map(|d| {
                door(
                    (0..knocks)
                        .map(|k| {
                            let n = (d * knocks + k) as u32;
                            let port = u16::try_from(first + spacing * n).unwrap();
                            Knock {
                                port,
                                proto: proto(n),
                            }
                        })
                        .collect(),
                )
            })
            .collect()
    }

    /// An Ethernet frame of a TCP SYN or a UDP datagram to `port`.
    fn frame(proto: Proto, port: u16) -> Vec<u8> {
        let ip = etherparse::PacketBuilder::ethernet2([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2]).ipv4(
            [198, 51, 100, 7],
            [192, 0, 2, 1],
            64,
        );
        let mut out = Vec::new();
        match proto {
            Proto::Tcp => ip.tcp(40_000, port, 1, 64_240).syn().write(&mut out, &[]),
            _ => ip.udp(40_000, port).write(&mut out, &[0]),
        }
        .unwrap();
        out
    }

    /// TCP and UDP in turn.
    fn in_turn(n: u32) -> Proto {
        if n.is_multiple_of(2) {
            Proto::Tcp
        } else {
            Proto::Udp
        }
    }

    /// Before, 1000 doors x 32 knocks made an `or` chain of 32,000 ports
    /// that libpcap could not compile (out of memory after minutes).
    #[test]
    fn a_thousand_doors_of_scattered_ports_filter_on_protocol_and_say_so() {
        let doors = many_doors(1000, 32, 1024, 2, in_turn);
        let refs: Vec<&Door> = doors.iter().collect();
        let filter = bpf_filter(&refs, &[]);
        assert_eq!(filter.too_many, Some(32_000));
        assert_eq!(
            filter.expression,
            KernelFilter::every_tcp_and_udp().expression
        );
        assert_eq!(filter_compiles(&filter.expression), Ok(()));
        let notice = filter.notice().unwrap();
        assert!(notice.contains("32000 port clauses"), "{notice}");
        assert!(notice.contains("matched in userspace"), "{notice}");
        let program = Capture::dead(Linktype::ETHERNET)
            .unwrap()
            .compile(&filter.expression, true)
            .unwrap();
        assert!(program.filter(&frame(Proto::Udp, 64_999)));
        assert!(program.filter(&frame(Proto::Tcp, 1024)));
    }

    /// Consecutive ports (a generated config, a time-based range next to a
    /// door) become a handful of ranges: the filter stays on ports.
    #[test]
    fn a_thousand_doors_of_consecutive_ports_filter_on_a_few_ranges() {
        let doors = many_doors(1000, 32, 20_000, 1, |n| {
            if n < 16_000 { Proto::Tcp } else { Proto::Udp }
        });
        let refs: Vec<&Door> = doors.iter().collect();
        let otp = [range(Proto::Udp, 60_000, 61_000)];
        let filter = bpf_filter(&refs, &otp);
        assert_eq!(filter.too_many, None, "{}", filter.expression);
        assert_eq!(filter.notice(), None);
        assert_eq!(filter_compiles(&filter.expression), Ok(()));
        let program = Capture::dead(Linktype::ETHERNET)
            .unwrap()
            .compile(&filter.expression, true)
            .unwrap();
        // Knocks of the first and last doors, of each protocol, and the range.
        assert_eq!(filter.expression.matches("portrange").count(), 3);
        for (proto, port) in [
            (Proto::Tcp, 20_000),
            (Proto::Tcp, 35_999),
            (Proto::Udp, 36_000),
            (Proto::Udp, 51_999),
            (Proto::Udp, 60_500),
        ] {
            assert!(program.filter(&frame(proto, port)), "{proto:?} {port}");
        }
        for (proto, port) in [
            (Proto::Tcp, 19_999),
            (Proto::Udp, 35_999),
            (Proto::Tcp, 36_000),
            (Proto::Udp, 52_000),
            (Proto::Tcp, 60_500),
        ] {
            assert!(!program.filter(&frame(proto, port)), "{proto:?} {port}");
        }
    }

    /// The cap itself is safe: the longest filter on ports, [`MAX_CLAUSES`]
    /// lone ports of both protocols, compiles to a program the kernel takes,
    /// and one clause more gives up on ports.
    #[test]
    fn the_longest_filter_on_ports_compiles_within_the_kernels_limit() {
        let at_cap = many_doors(1, MAX_CLAUSES, 1024, 7, in_turn);
        let filter = bpf_filter(&[&at_cap[0]], &[]);
        assert_eq!(filter.too_many, None);
        assert_eq!(
            filter.expression.matches("dst port").count(),
            MAX_CLAUSES,
            "{}",
            filter.expression
        );
        assert_eq!(filter_compiles(&filter.expression), Ok(()));
        let over = many_doors(1, MAX_CLAUSES + 1, 1024, 7, in_turn);
        assert_eq!(bpf_filter(&[&over[0]], &[]).too_many, Some(MAX_CLAUSES + 1));
    }

    #[test]
    fn a_strict_door_still_lets_every_tcp_and_udp_packet_in_without_a_notice() {
        let mut strict = door(vec![Knock {
            port: 7000,
            proto: Proto::Tcp,
        }]);
        strict.strict = true;
        let filter = bpf_filter(&[&strict], &[]);
        assert_eq!(filter, KernelFilter::every_tcp_and_udp());
        assert_eq!(filter.notice(), None);
    }

    /// A filter libpcap cannot read is told apart from a good one, on every
    /// framing: before, the VLAN clause made every filter fail on `any`.
    #[test]
    fn filter_compiles_refuses_garbage_and_takes_the_filters_we_make_on_every_framing() {
        assert_eq!(filter_compiles("tcp or udp"), Ok(()));
        assert_eq!(filter_compiles(NOTHING), Ok(()));
        assert_eq!(
            filter_compiles("(tcp dst portrange 7000-7010) or (udp dst port 9)"),
            Ok(())
        );
        let garbage = filter_compiles("tcp dst port seventy").unwrap_err();
        assert!(garbage.contains("cannot compile"), "{garbage}");
        assert_eq!(framed("tcp", LinkType::LinuxSll), "tcp");
        assert_eq!(
            framed("tcp", LinkType::Ethernet),
            "(tcp) or (vlan and (tcp))"
        );
    }
}
