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

/// The kernel-side filter: coarse on purpose (ports and protocols only, with
/// and without a VLAN tag); flags, order and addresses are checked in
/// userspace, where IPv6 works too. A strict door needs every TCP and UDP packet.
///
/// `extra` clauses are let in too, such as a time-based door's
/// `udp dst portrange 20000-29999`. They go inside the same VLAN wrapping:
/// after `vlan`, libpcap reads every later clause at the tagged offsets, so
/// untagged clauses must all come before it.
pub(crate) fn bpf_filter(doors: &[&Door], extra: &[String]) -> String {
    let ports = |proto: Proto| -> Vec<String> {
        let mut ports: Vec<u16> = doors
            .iter()
            .flat_map(|d| d.sequence.knocks())
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
            // No door has a sequence (all one-time files used up): let nothing
            // in. No packet is shorter than 2 bytes; libpcap refuses to compile
            // a filter it can prove rejects everything (`tcp and udp`).
            return "less 1".to_string();
        }
        parts.join(" or ")
    };
    format!("({base}) or (vlan and ({base}))")
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

/// The most instructions the kernel takes in a classic BPF filter
/// (`BPF_MAXINSNS`); a longer program is refused with EINVAL when attached.
const KERNEL_MAX_INSTRUCTIONS: usize = 4096;

/// Why `filter` could not be the kernel filter, found without a capture:
/// libpcap must compile it, and the program must fit the kernel's limit.
/// `knockr knockd --check` asks this of the filter a start would attach.
pub(crate) fn filter_compiles(filter: &str) -> Result<(), String> {
    let dead = Capture::dead(Linktype::ETHERNET).map_err(|err| err.to_string())?;
    let program = dead
        .compile(filter, true)
        .map_err(|err| format!("libpcap cannot compile it: {err}"))?;
    let length = program.get_instructions().len();
    if length > KERNEL_MAX_INSTRUCTIONS {
        return Err(format!(
            "it compiles to {length} instructions, more than the kernel takes \
             ({KERNEL_MAX_INSTRUCTIONS})"
        ));
    }
    Ok(())
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
    capture
        .filter(filter, true)
        .with_context(|| format!("libpcap refused the filter {filter:?}"))?;
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
    /// [`REOPEN_FOR`]; `notice` hears of the failure and of the recovery.
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
                        if let Err(err) = self.capture.filter(&filter, true) {
                            break Some(anyhow!(
                                "libpcap refused the new filter {filter:?}: {err}"
                            ));
                        }
                        self.filter = filter;
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
        );
        assert_eq!(
            passes_udp_7000(&with).map_err(|e| format!("{with}: {e}")),
            Ok(true)
        );
        // Every one-time line used: the door has no sequence, and knockd must
        // still start (and reload) with a filter that lets nothing in.
        let none = bpf_filter(&[&door(Vec::new())], &[]);
        assert_eq!(
            passes_udp_7000(&none).map_err(|e| format!("{none}: {e}")),
            Ok(false)
        );
    }

    #[test]
    fn filter_compiles_refuses_what_libpcap_or_the_kernel_would() {
        assert_eq!(filter_compiles("udp dst port 7000"), Ok(()));
        let err = filter_compiles("udp dst port 70000").unwrap_err();
        assert!(err.starts_with("libpcap cannot compile it: "), "{err}");
        // A comparison each, at least: more than 4096 instructions.
        let long: Vec<String> = (1..=5000).map(|p| format!("udp dst port {p}")).collect();
        let err = filter_compiles(&long.join(" or ")).unwrap_err();
        assert!(err.contains("more than the kernel takes (4096)"), "{err}");
    }
}
