//! Writes a synthetic capture for `bench/server.sh`, which times the knock
//! server's offline replay (`knockr knockd --read`). Nothing is sent: the
//! frames only go to the file.
//!
//! The door is 192.0.2.1 with the sequence 7000, 8000/udp, 9000. Noise comes
//! from `--sources` addresses (10.0.0.0/8, then 172.16.0.0/12, counting up):
//! half of it on the knock ports in an order that starts the sequence but can
//! never finish it, half on other ports. `--valid` knockers (100.64.0.0/10)
//! knock the whole sequence, 100 ms apart, spread through the file. The same
//! seed gives the same file, byte for byte.
//!
//!     cargo run --release --example gen_capture -- out.pcap --packets 1000000 --sources 100000 --valid 20
//!     cargo run --release --example gen_capture -- out.pcap --packets 1000000 --distinct-midsequence --seconds 1

use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::time::Duration;

use Packet::{Syn, Udp};
use clap::Parser;
use etherparse::PacketBuilder;
use pcap_file::Writer;

#[path = "../tests/it/support/pcap_file.rs"]
mod pcap_file;

/// The address every packet is sent to.
const DOOR: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
/// A fixed capture start (since the Unix epoch), so files are reproducible.
const START: Duration = Duration::from_secs(1_795_000_000);
/// Between two knocks of one valid knocker, as `knockr -d 100ms` sends them.
const KNOCK_GAP: Duration = Duration::from_millis(100);
/// The door's sequence, as a valid knocker sends it.
const SEQUENCE: [Packet; 3] = [Syn(7000), Udp(8000), Syn(9000)];
/// What a noise source sends on the knock ports, round and round: 7000 then
/// 8000/udp reaches stage 2, and the next knock is always a wrong one, so no
/// noise source ever opens the door, however its packets fall in time.
const NOISE_CYCLE: [Packet; 4] = [Syn(7000), Udp(8000), Syn(7000), Syn(9000)];
/// 10.0.0.0/8 then 172.16.0.0/12: the noise sources there are.
const MAX_SOURCES: u32 = (1 << 24) + (1 << 20);

/// Writes a pcap file of knock noise and valid knocks for the replay benchmark.
#[derive(Parser)]
struct Args {
    /// The pcap file to write
    out: PathBuf,
    /// Packets in the file, valid knocks included
    #[arg(long)]
    packets: u32,
    /// Distinct noise source addresses
    #[arg(long, required_unless_present = "distinct_midsequence")]
    sources: Option<u32>,
    /// Complete, valid knocks (3 packets each)
    #[arg(long, default_value_t = 0)]
    valid: u32,
    /// Capture time the packets are spread over
    #[arg(long, default_value_t = 60)]
    seconds: u64,
    /// Seed of the noise
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Every noise packet from a source of its own, each sending only the first
    /// knock: as many sources mid-sequence as packets (the memory question)
    #[arg(long, conflicts_with = "sources")]
    distinct_midsequence: bool,
}

#[derive(Clone, Copy)]
enum Packet {
    Syn(u16),
    Udp(u16),
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let valid_packets = args.valid * SEQUENCE.len() as u32;
    anyhow::ensure!(
        valid_packets <= args.packets,
        "--valid {} needs {valid_packets} packets, more than --packets {}",
        args.valid,
        args.packets
    );
    let noise = args.packets - valid_packets;
    let sources = args.sources.unwrap_or(noise);
    anyhow::ensure!(
        (1..=MAX_SOURCES).contains(&sources) || noise == 0,
        "--sources {sources}: expected 1..={MAX_SOURCES}"
    );
    let span = Duration::from_secs(args.seconds);

    // Valid knocks start evenly spread, each in the middle of its share of the span.
    let mut knocks: Vec<(Duration, Ipv4Addr, Packet)> = (0..args.valid)
        .flat_map(|j| {
            let begin = START + span * (2 * j + 1) / (2 * args.valid);
            let src = Ipv4Addr::from(u32::from(Ipv4Addr::new(100, 64, 0, 1)) + j);
            (0u32..)
                .zip(SEQUENCE)
                .map(move |(k, p)| (begin + KNOCK_GAP * k, src, p))
        })
        .collect();
    knocks.sort_by_key(|(at, _, _)| *at);
    let mut knocks = knocks.into_iter().peekable();

    let mut rng = SplitMix(args.seed);
    // Per noise source: whether it sent anything, and its place in NOISE_CYCLE
    // (a u8 wraps at 256, a multiple of the cycle's length).
    let mut seen = vec![false; sources as usize];
    let mut place = vec![0u8; sources as usize];
    let mut writer = Writer::create(&args.out)?;
    let mut frame = Vec::with_capacity(64);
    let mut write = |at: Duration, src: Ipv4Addr, packet: Packet, rng: &mut SplitMix| {
        let port = 32_768 + rng.below(28_232) as u16;
        build(&mut frame, src, port, packet);
        writer.write(at, &frame);
    };
    for i in 0..u64::from(noise) {
        let at = START
            + Duration::from_nanos((span.as_nanos() * u128::from(i) / u128::from(noise)) as u64);
        while let Some((when, src, packet)) = knocks.next_if(|(when, _, _)| *when <= at) {
            write(when, src, packet, &mut rng);
        }
        let (src, packet) = if args.distinct_midsequence {
            (i as usize, SEQUENCE[0])
        } else {
            let src = rng.below(u64::from(sources)) as usize;
            let packet = if rng.below(2) == 0 {
                place[src] = place[src].wrapping_add(1);
                NOISE_CYCLE[usize::from(place[src].wrapping_sub(1)) % NOISE_CYCLE.len()]
            } else {
                other_port(&mut rng)
            };
            (src, packet)
        };
        seen[src] = true;
        write(at, noise_source(src as u32), packet, &mut rng);
    }
    for (when, src, packet) in knocks {
        write(when, src, packet, &mut rng);
    }
    writer.finish()?;

    let bytes = std::fs::metadata(&args.out)?.len();
    let used = seen.iter().filter(|&&s| s).count();
    println!(
        "{}: {} packets over {} s ({noise} noise, {valid_packets} in {} valid knocks), {used} noise sources, {bytes} bytes",
        args.out.display(),
        args.packets,
        args.seconds,
        args.valid,
    );
    Ok(())
}

/// A TCP SYN or a UDP datagram to a port no door knocks on.
fn other_port(rng: &mut SplitMix) -> Packet {
    let port = match 1 + rng.below(65_535) as u16 {
        p @ (7000 | 8000 | 9000) => p + 1,
        p => p,
    };
    if rng.below(2) == 0 {
        Syn(port)
    } else {
        Udp(port)
    }
}

/// Noise source number `n`.
fn noise_source(n: u32) -> Ipv4Addr {
    let base = if n < 1 << 24 {
        u32::from(Ipv4Addr::new(10, 0, 0, 0)) + n
    } else {
        u32::from(Ipv4Addr::new(172, 16, 0, 0)) + (n - (1 << 24))
    };
    Ipv4Addr::from(base)
}

/// An Ethernet frame from `src:port` to the door, as tests/support builds them.
fn build(frame: &mut Vec<u8>, src: Ipv4Addr, port: u16, packet: Packet) {
    frame.clear();
    let ip = PacketBuilder::ethernet2([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2]).ipv4(
        src.octets(),
        DOOR.octets(),
        64,
    );
    let written = match packet {
        Syn(to) => ip.tcp(port, to, 1, 64_240).syn().write(frame, &[]),
        // One zero byte, as the C `knock` sends.
        Udp(to) => ip.udp(port, to).write(frame, &[0]),
    };
    written.expect("a frame this small can be built");
}

/// SplitMix64: a seeded, dependency-free generator; quality is not the point.
struct SplitMix(u64);

impl SplitMix {
    fn below(&mut self, n: u64) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        (z ^ (z >> 31)) % n
    }
}
