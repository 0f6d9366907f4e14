//! Pure: `(link type, captured bytes) -> Option<Hit>`. Called by the capture
//! loop and by tests and fuzzers; it never panics, allocates nothing, and
//! knows nothing of doors or time.

use std::net::IpAddr;

use etherparse::{EtherType, NetSlice, SlicedPacket, TransportSlice};

use crate::core::knock::Transport;

/// TCP flag bits as they sit in the TCP header's flags byte.
pub mod tcp_flags {
    pub const FIN: u8 = 0x01;
    pub const SYN: u8 = 0x02;
    pub const RST: u8 = 0x04;
    pub const PSH: u8 = 0x08;
    pub const ACK: u8 = 0x10;
    pub const URG: u8 = 0x20;
}

/// The link-layer framing of captured bytes (libpcap DLT/LINKTYPE values).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkType {
    /// DLT_EN10MB (1): Ethernet, also Linux `lo`.
    Ethernet,
    /// DLT_LINUX_SLL (113): Linux "cooked" capture v1, used by `-i any`.
    LinuxSll,
    /// DLT_LINUX_SLL2 (276): Linux cooked capture v2.
    LinuxSll2,
    /// DLT_RAW (12/14, LINKTYPE 101): a bare IPv4 or IPv6 packet (tun, WireGuard).
    Raw,
    /// DLT_NULL (0) / DLT_LOOP (108): BSD loopback, a 4-byte address family first.
    Null,
    Loop,
    /// LINKTYPE_IPV4 (228) / LINKTYPE_IPV6 (229).
    Ipv4,
    Ipv6,
}

/// One TCP segment or UDP datagram that could be a knock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hit {
    /// The sender: the knocker (IPv4-mapped IPv6 addresses made IPv4).
    pub src: IpAddr,
    /// Where it was sent: a door with a `target` only counts knocks to it.
    pub dst: IpAddr,
    /// Whether `dst` is one of this host's own addresses: a door without a
    /// `target` counts only such knocks. The parser cannot know and says
    /// `true`; a live server sets it from the addresses it follows.
    pub to_host: bool,
    /// TCP or UDP: the only packets that can be knocks on a port.
    pub transport: Transport,
    /// Destination port.
    pub port: u16,
    /// The TCP flags byte (see [`tcp_flags`]); 0 for UDP.
    pub flags: u8,
}

impl LinkType {
    /// The link type libpcap reports for a capture, or `None` for one we cannot read.
    pub fn from_dlt(dlt: i32) -> Option<LinkType> {
        Some(match dlt {
            1 => LinkType::Ethernet,
            113 => LinkType::LinuxSll,
            276 => LinkType::LinuxSll2,
            // DLT_RAW is 12 on most systems, 14 on OpenBSD; savefiles say 101.
            12 | 14 | 101 => LinkType::Raw,
            0 => LinkType::Null,
            108 => LinkType::Loop,
            228 => LinkType::Ipv4,
            229 => LinkType::Ipv6,
            _ => return None,
        })
    }

    /// The LINKTYPE value to write into a savefile of this framing.
    pub fn dlt(self) -> i32 {
        match self {
            LinkType::Ethernet => 1,
            LinkType::LinuxSll => 113,
            LinkType::LinuxSll2 => 276,
            LinkType::Raw => 101,
            LinkType::Null => 0,
            LinkType::Loop => 108,
            LinkType::Ipv4 => 228,
            LinkType::Ipv6 => 229,
        }
    }
}

/// The TCP segment or UDP datagram in `frame`, if it holds a whole one.
///
/// Fragments, truncated headers, non-IP and non-TCP/UDP traffic give `None`.
pub fn parse(link: LinkType, frame: &[u8]) -> Option<Hit> {
    if let Some(hit) = plain_ipv4(link, frame) {
        return Some(hit);
    }
    sliced(link, frame)
}

/// [`parse`] without its IPv4 shortcut: etherparse alone. Public for the
/// fuzz target, which checks that both answer the same on any bytes.
#[doc(hidden)]
pub fn parse_general(link: LinkType, frame: &[u8]) -> Option<Hit> {
    sliced(link, frame)
}

/// The common case read directly, a third of etherparse's work: IPv4 without
/// options or fragmentation, TCP or UDP whose lengths agree, on Ethernet
/// without VLAN tags, Linux SLL/SLL2 or raw IP. `None` means "not this
/// case", never "not a knock": the general parser then decides. A property
/// test checks that both agree wherever this one answers.
fn plain_ipv4(link: LinkType, frame: &[u8]) -> Option<Hit> {
    const IPV4: [u8; 2] = [0x08, 0x00];
    let ip = match link {
        LinkType::Ethernet if frame.get(12..14)? == IPV4 => &frame[14..],
        LinkType::LinuxSll if frame.get(14..16)? == IPV4 => &frame[16..],
        LinkType::LinuxSll2 if frame.get(0..2)? == IPV4 => frame.get(20..)?,
        LinkType::Raw | LinkType::Ipv4 => frame,
        _ => return None,
    };
    let header: &[u8; 20] = ip.first_chunk()?;
    let total = usize::from(u16::from_be_bytes([header[2], header[3]]));
    // Version 4, no options; no More Fragments flag and no offset.
    if header[0] != 0x45 || total > ip.len() || header[6] & 0x3f != 0 || header[7] != 0 {
        return None;
    }
    let payload = ip.get(20..total)?;
    let src = IpAddr::from(<[u8; 4]>::try_from(&header[12..16]).ok()?);
    let dst = IpAddr::from(<[u8; 4]>::try_from(&header[16..20]).ok()?);
    let port = |at: usize| {
        payload
            .get(at..at + 2)
            .map(|b| u16::from_be_bytes([b[0], b[1]]))
    };
    match header[9] {
        6 => {
            let offset = usize::from(*payload.get(12)? >> 4) * 4;
            if offset < 20 || offset > payload.len() {
                return None;
            }
            Some(Hit {
                src,
                dst,
                transport: Transport::Tcp,
                port: port(2)?,
                flags: payload[13],
                to_host: true,
            })
        }
        17 if usize::from(port(4)?) == payload.len() && payload.len() >= 8 => Some(Hit {
            src,
            dst,
            transport: Transport::Udp,
            port: port(2)?,
            flags: 0,
            to_host: true,
        }),
        _ => None,
    }
}

/// Everything else, through etherparse.
fn sliced(link: LinkType, frame: &[u8]) -> Option<Hit> {
    let packet = match link {
        LinkType::Ethernet => SlicedPacket::from_ethernet(frame),
        // SLL is read by hand: etherparse's `from_linux_sll` refuses every
        // hardware type but Ethernet, and `-i any` also sees `lo` (772) and
        // tun/WireGuard (0xFFFE) packets, which carry a plain ethertype too.
        LinkType::LinuxSll => {
            let (header, packet) = frame.split_first_chunk::<16>()?;
            let protocol = u16::from_be_bytes([header[14], header[15]]);
            SlicedPacket::from_ether_type(EtherType(protocol), packet)
        }
        LinkType::LinuxSll2 => {
            let (header, packet) = frame.split_first_chunk::<20>()?;
            let protocol = u16::from_be_bytes([header[0], header[1]]);
            SlicedPacket::from_ether_type(EtherType(protocol), packet)
        }
        LinkType::Raw => SlicedPacket::from_ip(frame),
        LinkType::Null => {
            // "Host byte order" is the capturing host's, which need not be
            // ours when reading a savefile, so either order is accepted.
            let (family, packet) = frame.split_first_chunk::<4>()?;
            let ether_type = address_family(u32::from_le_bytes(*family))
                .or_else(|| address_family(u32::from_be_bytes(*family)))?;
            SlicedPacket::from_ether_type(ether_type, packet)
        }
        LinkType::Loop => {
            let (family, packet) = frame.split_first_chunk::<4>()?;
            let ether_type = address_family(u32::from_be_bytes(*family))?;
            SlicedPacket::from_ether_type(ether_type, packet)
        }
        // Going through the ethertype makes an IPv6 packet on an IPv4 link
        // (or the reverse) an error rather than a hit.
        LinkType::Ipv4 => SlicedPacket::from_ether_type(EtherType::IPV4, frame),
        LinkType::Ipv6 => SlicedPacket::from_ether_type(EtherType::IPV6, frame),
    }
    .ok()?;
    hit(&packet)
}

/// The ethertype for a BSD loopback address family. AF_INET6 differs between
/// systems: 10 on Linux, 24 on NetBSD/OpenBSD, 28 on FreeBSD, 30 on macOS.
fn address_family(family: u32) -> Option<EtherType> {
    match family {
        2 => Some(EtherType::IPV4),
        10 | 24 | 28 | 30 => Some(EtherType::IPV6),
        _ => None,
    }
}

fn hit(packet: &SlicedPacket<'_>) -> Option<Hit> {
    let (src, dst) = match packet.net.as_ref()? {
        NetSlice::Ipv4(ip) => {
            let header = ip.header();
            (
                IpAddr::V4(header.source_addr()),
                IpAddr::V4(header.destination_addr()),
            )
        }
        // ::ffff:a.b.c.d is an IPv4 host written the IPv6 way (dual-stack
        // sockets, SIIT translators); doors and address lists know it by its
        // IPv4 address, so the same knocker must not count as two sources.
        NetSlice::Ipv6(ip) => {
            let header = ip.header();
            (
                IpAddr::V6(header.source_addr()).to_canonical(),
                IpAddr::V6(header.destination_addr()).to_canonical(),
            )
        }
        NetSlice::Arp(_) => return None,
    };
    // etherparse leaves `transport` empty for a fragment (its payload is not
    // a whole segment) and fails on a cut-off transport header, so neither
    // reaches this point.
    let (transport, port, flags) = match packet.transport.as_ref()? {
        TransportSlice::Tcp(tcp) => (
            Transport::Tcp,
            tcp.destination_port(),
            *tcp.header_slice().get(13)?,
        ),
        TransportSlice::Udp(udp) => (Transport::Udp, udp.destination_port(), 0),
        TransportSlice::Icmpv4(_) | TransportSlice::Icmpv6(_) | TransportSlice::Igmp(_) => {
            return None;
        }
    };
    Some(Hit {
        src,
        dst,
        transport,
        port,
        flags,
        to_host: true,
    })
}

#[cfg(test)]
mod tests {
    use std::net::{Ipv4Addr, Ipv6Addr};

    use etherparse::{ArpHardwareId, ArpOperation, ArpPacket, PacketBuilder, TcpHeader, VlanId};
    use proptest::prelude::*;

    use super::tcp_flags::{ACK, FIN, PSH, RST, SYN, URG};
    use super::*;

    const ALL: [LinkType; 8] = [
        LinkType::Ethernet,
        LinkType::LinuxSll,
        LinkType::LinuxSll2,
        LinkType::Raw,
        LinkType::Null,
        LinkType::Loop,
        LinkType::Ipv4,
        LinkType::Ipv6,
    ];
    const SRC4: [u8; 4] = [192, 0, 2, 7];
    const DST4: [u8; 4] = [198, 51, 100, 1];
    const SRC6: [u8; 16] = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 7];
    const DST6: [u8; 16] = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
    const MAC_A: [u8; 6] = [0x02, 0, 0, 0, 0, 1];
    const MAC_B: [u8; 6] = [0x02, 0, 0, 0, 0, 2];

    /// Ethernet, IPv4 192.0.2.7 -> 198.51.100.1, TCP 40000 -> 7000 SYN, written
    /// out by hand so the parser is not only checked against etherparse's builder.
    const HAND_WRITTEN_SYN: [u8; 54] = [
        // Ethernet: destination, source, ethertype IPv4
        0x02, 0, 0, 0, 0, 1, 0x02, 0, 0, 0, 0, 2, 0x08, 0x00,
        // IPv4: version 4 + IHL 5, TOS, total length 40, id, DF, TTL 64, TCP, checksum
        0x45, 0x00, 0x00, 0x28, 0x12, 0x34, 0x40, 0x00, 0x40, 0x06, 0x00, 0x00, 192, 0, 2, 7, 198,
        51, 100, 1,
        // TCP: 40000 -> 7000, seq, ack, data offset 5, SYN, window, checksum, urgent
        0x9c, 0x40, 0x1b, 0x58, 0, 0, 0, 1, 0, 0, 0, 0, 0x50, 0x02, 0xff, 0xff, 0, 0, 0, 0,
    ];

    fn hit(
        src: impl Into<IpAddr>,
        dst: impl Into<IpAddr>,
        transport: Transport,
        port: u16,
        flags: u8,
    ) -> Hit {
        Hit {
            src: src.into(),
            dst: dst.into(),
            transport,
            port,
            flags,
            to_host: true,
        }
    }

    /// A TCP header carrying exactly `flags` as its flags byte.
    fn tcp_header(src_port: u16, dst_port: u16, flags: u8) -> TcpHeader {
        let mut tcp = TcpHeader::new(src_port, dst_port, 1, 0xffff);
        tcp.fin = flags & FIN != 0;
        tcp.syn = flags & SYN != 0;
        tcp.rst = flags & RST != 0;
        tcp.psh = flags & PSH != 0;
        tcp.ack = flags & ACK != 0;
        tcp.urg = flags & URG != 0;
        tcp.ece = flags & 0x40 != 0;
        tcp.cwr = flags & 0x80 != 0;
        tcp
    }

    fn ipv4_tcp(port: u16, flags: u8) -> Vec<u8> {
        let mut packet = Vec::new();
        PacketBuilder::ipv4(SRC4, DST4, 64)
            .tcp_header(tcp_header(40000, port, flags))
            .write(&mut packet, &[])
            .unwrap();
        packet
    }

    fn ipv4_udp(port: u16) -> Vec<u8> {
        let mut packet = Vec::new();
        PacketBuilder::ipv4(SRC4, DST4, 64)
            .udp(40000, port)
            .write(&mut packet, b"knock")
            .unwrap();
        packet
    }

    fn ipv6_udp(port: u16) -> Vec<u8> {
        let mut packet = Vec::new();
        PacketBuilder::ipv6(SRC6, DST6, 64)
            .udp(40000, port)
            .write(&mut packet, b"knock")
            .unwrap();
        packet
    }

    fn tcp_bytes(port: u16, flags: u8) -> Vec<u8> {
        let mut tcp = vec![0x9c, 0x40];
        tcp.extend(port.to_be_bytes());
        tcp.extend([0, 0, 0, 1, 0, 0, 0, 0, 0x50, flags, 0xff, 0xff, 0, 0, 0, 0]);
        tcp
    }

    /// An IPv6 packet from SRC6 to DST6 whose first header after the fixed one is `next`.
    fn ipv6_by_hand(next: u8, rest: &[u8]) -> Vec<u8> {
        let mut packet = vec![0x60, 0, 0, 0];
        packet.extend(u16::try_from(rest.len()).unwrap().to_be_bytes());
        packet.extend([next, 64]);
        packet.extend(SRC6);
        packet.extend(DST6);
        packet.extend(rest);
        packet
    }

    /// `ip` behind the link header `link` puts in front of it.
    fn framed(link: LinkType, ip: &[u8]) -> Vec<u8> {
        let v6 = ip.first().is_some_and(|b| b >> 4 == 6);
        let ether_type = if v6 { [0x86, 0xdd] } else { [0x08, 0x00] };
        let mut frame = match link {
            LinkType::Ethernet => [&MAC_B[..], &MAC_A, &ether_type].concat(),
            // Sent to us, ARPHRD_LOOPBACK (772): `lo` as seen by `-i any`.
            LinkType::LinuxSll => [&[0, 0, 0x03, 0x04, 0, 6][..], &[0; 8], &ether_type].concat(),
            // Interface 3, ARPHRD_NONE (a tun or WireGuard device), no address.
            LinkType::LinuxSll2 => [
                &ether_type[..],
                &[0, 0, 0, 0, 0, 3, 0xff, 0xfe, 0, 0],
                &[0; 8],
            ]
            .concat(),
            LinkType::Raw | LinkType::Ipv4 | LinkType::Ipv6 => Vec::new(),
            // Linux AF values in a little-endian host's order.
            LinkType::Null => vec![if v6 { 10 } else { 2 }, 0, 0, 0],
            // OpenBSD's AF_INET6 in network order.
            LinkType::Loop => vec![0, 0, 0, if v6 { 24 } else { 2 }],
        };
        frame.extend_from_slice(ip);
        frame
    }

    #[test]
    fn dlt_values_map_both_ways() {
        for link in ALL {
            assert_eq!(LinkType::from_dlt(link.dlt()), Some(link));
        }
        assert_eq!(LinkType::from_dlt(12), Some(LinkType::Raw));
        assert_eq!(LinkType::from_dlt(14), Some(LinkType::Raw));
        assert_eq!(LinkType::Raw.dlt(), 101);
        assert_eq!(LinkType::from_dlt(105), None, "802.11 is not read");
    }

    #[test]
    fn a_hand_written_ethernet_syn_is_read_with_or_without_padding() {
        let expected = Some(hit(SRC4, DST4, Transport::Tcp, 7000, SYN));
        assert_eq!(parse(LinkType::Ethernet, &HAND_WRITTEN_SYN), expected);
        let padded = [&HAND_WRITTEN_SYN[..], &[0; 6]].concat();
        assert_eq!(parse(LinkType::Ethernet, &padded), expected);
    }

    #[test]
    fn every_link_type_carries_an_ipv4_syn() {
        let ip = ipv4_tcp(7000, SYN);
        for link in ALL.into_iter().filter(|&l| l != LinkType::Ipv6) {
            let expected = hit(SRC4, DST4, Transport::Tcp, 7000, SYN);
            assert_eq!(parse(link, &framed(link, &ip)), Some(expected), "{link:?}");
        }
    }

    #[test]
    fn every_link_type_carries_an_ipv6_udp_datagram() {
        let ip = ipv6_udp(8000);
        for link in ALL.into_iter().filter(|&l| l != LinkType::Ipv4) {
            let expected = hit(SRC6, DST6, Transport::Udp, 8000, 0);
            assert_eq!(parse(link, &framed(link, &ip)), Some(expected), "{link:?}");
        }
    }

    #[test]
    fn a_packet_of_the_other_ip_version_on_a_single_version_link_is_refused() {
        assert_eq!(parse(LinkType::Ipv4, &ipv6_udp(8000)), None);
        assert_eq!(parse(LinkType::Ipv6, &ipv4_tcp(7000, SYN)), None);
    }

    #[test]
    fn null_reads_the_family_in_either_byte_order_and_loop_only_in_network_order() {
        let v4 = ipv4_tcp(7000, SYN);
        let v6 = ipv6_udp(8000);
        for family in [[2, 0, 0, 0], [0, 0, 0, 2]] {
            let frame = [&family[..], &v4].concat();
            assert!(parse(LinkType::Null, &frame).is_some(), "{family:?}");
        }
        for af in [10, 24, 28, 30] {
            for family in [[af, 0, 0, 0], [0, 0, 0, af]] {
                let frame = [&family[..], &v6].concat();
                assert!(parse(LinkType::Null, &frame).is_some(), "{family:?}");
            }
        }
        assert_eq!(
            parse(LinkType::Loop, &[&[2, 0, 0, 0][..], &v4].concat()),
            None
        );
        assert_eq!(
            parse(LinkType::Null, &[&[7, 0, 0, 0][..], &v4].concat()),
            None
        );
    }

    #[test]
    fn vlan_and_qinq_tags_are_looked_through() {
        let mut single = Vec::new();
        PacketBuilder::ethernet2(MAC_A, MAC_B)
            .single_vlan(VlanId::try_new(42).unwrap())
            .ipv4(SRC4, DST4, 64)
            .tcp_header(tcp_header(40000, 7000, SYN))
            .write(&mut single, &[])
            .unwrap();
        assert_eq!(single[12..14], [0x81, 0x00]);
        let expected = hit(SRC4, DST4, Transport::Tcp, 7000, SYN);
        assert_eq!(parse(LinkType::Ethernet, &single), Some(expected));

        let mut double = Vec::new();
        PacketBuilder::ethernet2(MAC_A, MAC_B)
            .double_vlan(VlanId::try_new(100).unwrap(), VlanId::try_new(42).unwrap())
            .ipv6(SRC6, DST6, 64)
            .udp(40000, 8000)
            .write(&mut double, b"knock")
            .unwrap();
        assert_eq!(double[12..14], [0x88, 0xa8]);
        assert_eq!(double[16..18], [0x81, 0x00]);
        let expected = hit(SRC6, DST6, Transport::Udp, 8000, 0);
        assert_eq!(parse(LinkType::Ethernet, &double), Some(expected));
    }

    #[test]
    fn ipv6_behind_extension_headers_is_found() {
        let exts = [
            43, 0, 1, 4, 0, 0, 0, 0, // hop-by-hop, PadN, next: routing
            60, 0, 0, 0, 0, 0, 0,
            0, // routing type 0, no segments left, next: destination options
            6, 0, 1, 4, 0, 0, 0, 0, // destination options, PadN, next: TCP
        ];
        let packet = ipv6_by_hand(0, &[&exts[..], &tcp_bytes(7000, SYN)].concat());
        let expected = hit(SRC6, DST6, Transport::Tcp, 7000, SYN);
        assert_eq!(parse(LinkType::Raw, &packet), Some(expected));
    }

    #[test]
    fn a_fragment_is_not_a_knock() {
        let whole = ipv4_tcp(7000, SYN);
        assert!(parse(LinkType::Raw, &whole).is_some());
        // Bytes 6..8: flags and fragment offset (in 8-byte units).
        for flags_and_offset in [[0x20, 0x00], [0x00, 0x03], [0x20, 0x03]] {
            let mut fragment = whole.clone();
            fragment[6..8].copy_from_slice(&flags_and_offset);
            assert_eq!(
                parse(LinkType::Raw, &fragment),
                None,
                "{flags_and_offset:?}"
            );
        }

        // IPv6 fragment header: next TCP, reserved, offset << 3 | M, id.
        for offset_and_more in [[0x00, 0x01], [0x00, 0x08], [0x00, 0x09]] {
            let header = [&[6, 0][..], &offset_and_more, &[0, 0, 0, 42]].concat();
            let packet = ipv6_by_hand(44, &[header, tcp_bytes(7000, SYN)].concat());
            assert_eq!(parse(LinkType::Raw, &packet), None, "{offset_and_more:?}");
        }
    }

    #[test]
    fn an_ipv6_atomic_fragment_is_a_whole_packet() {
        // Offset 0 and no more fragments (RFC 6946): the receiver treats it as
        // the complete datagram, so the door sees a real knock.
        let packet = ipv6_by_hand(
            44,
            &[&[6, 0, 0, 0, 0, 0, 0, 42][..], &tcp_bytes(7000, SYN)].concat(),
        );
        let expected = hit(SRC6, DST6, Transport::Tcp, 7000, SYN);
        assert_eq!(parse(LinkType::Raw, &packet), Some(expected));
    }

    #[test]
    fn a_truncated_frame_is_not_a_knock() {
        let ip = ipv4_tcp(7000, SYN);
        for link in ALL.into_iter().filter(|&l| l != LinkType::Ipv6) {
            let frame = framed(link, &ip);
            assert!(parse(link, &frame).is_some(), "{link:?}");
            // The segment ends with its TCP header, so every shorter prefix cuts it.
            for len in 0..frame.len() {
                assert_eq!(parse(link, &frame[..len]), None, "{link:?} cut to {len}");
            }
        }
        for len in 0..HAND_WRITTEN_SYN.len() {
            assert_eq!(parse(LinkType::Ethernet, &HAND_WRITTEN_SYN[..len]), None);
        }
    }

    #[test]
    fn arp_and_icmp_are_not_knocks() {
        let mut arp = Vec::new();
        let request = ArpPacket::new(
            ArpHardwareId::ETHERNET,
            EtherType::IPV4,
            ArpOperation::REQUEST,
            &MAC_A,
            &SRC4,
            &[0; 6],
            &DST4,
        )
        .unwrap();
        PacketBuilder::ethernet2(MAC_A, [0xff; 6])
            .arp(request)
            .write(&mut arp)
            .unwrap();
        assert_eq!(parse(LinkType::Ethernet, &arp), None);

        let mut ping = Vec::new();
        PacketBuilder::ethernet2(MAC_A, MAC_B)
            .ipv4(SRC4, DST4, 64)
            .icmpv4_echo_request(1, 1)
            .write(&mut ping, b"ping")
            .unwrap();
        assert_eq!(parse(LinkType::Ethernet, &ping), None);

        let mut ping6 = Vec::new();
        PacketBuilder::ipv6(SRC6, DST6, 64)
            .icmpv6_echo_request(1, 1)
            .write(&mut ping6, b"ping")
            .unwrap();
        assert_eq!(parse(LinkType::Raw, &ping6), None);
    }

    #[test]
    fn the_tcp_flags_byte_is_reproduced_exactly() {
        // 0x40 and 0x80 are ECE and CWR, which knockd's flag lists can also name.
        for flags in [SYN | ACK, FIN | PSH | URG, RST, 0, 0x40 | 0x80 | SYN, 0xff] {
            let hit = parse(LinkType::Raw, &ipv4_tcp(7000, flags)).unwrap();
            assert_eq!(hit.flags, flags, "{flags:#04x}");
        }
    }

    #[test]
    fn ipv4_mapped_ipv6_addresses_come_back_as_ipv4() {
        let mapped = |v4: [u8; 4]| Ipv4Addr::from(v4).to_ipv6_mapped().octets();
        let mut packet = Vec::new();
        PacketBuilder::ipv6(mapped(SRC4), mapped(DST4), 64)
            .tcp_header(tcp_header(40000, 7000, SYN))
            .write(&mut packet, &[])
            .unwrap();
        let hit = parse(LinkType::Raw, &packet).unwrap();
        assert_eq!((hit.src, hit.dst), (IpAddr::from(SRC4), IpAddr::from(DST4)));
    }

    fn address_pair() -> impl Strategy<Value = (IpAddr, IpAddr)> {
        prop_oneof![
            any::<([u8; 4], [u8; 4])>().prop_map(|(s, d)| (s.into(), d.into())),
            any::<([u8; 16], [u8; 16])>().prop_map(|(s, d)| (s.into(), d.into())),
            // Mapped addresses are rare among random ones; make sure they come up.
            any::<([u8; 4], [u8; 4])>().prop_map(|(s, d)| {
                let (s, d) = (Ipv4Addr::from(s), Ipv4Addr::from(d));
                (s.to_ipv6_mapped().into(), d.to_ipv6_mapped().into())
            }),
        ]
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..2000)) {
            for link in ALL {
                let _ = parse(link, &bytes);
            }
        }

        #[test]
        fn a_valid_frame_with_bytes_changed_never_panics(
            link in prop::sample::select(&ALL[..]),
            changes in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
        ) {
            let ip = if link == LinkType::Ipv6 { ipv6_udp(8000) } else { ipv4_tcp(7000, SYN) };
            let mut frame = framed(link, &ip);
            for (at, byte) in changes {
                let at = at.index(frame.len());
                frame[at] = byte;
            }
            let _ = parse(link, &frame);
        }

        #[test]
        fn the_ipv4_shortcut_agrees_with_etherparse(
            link in prop::sample::select(&ALL[..]),
            udp: bool,
            changes in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..6),
            cut in any::<prop::sample::Index>(),
        ) {
            let ip = if udp { ipv4_udp(8000) } else { ipv4_tcp(7000, SYN) };
            let mut frame = framed(link, &ip);
            for (at, byte) in changes {
                let at = at.index(frame.len());
                frame[at] = byte;
            }
            frame.truncate(cut.index(frame.len() + 1));
            if let Some(fast) = plain_ipv4(link, &frame) {
                prop_assert_eq!(Some(fast), sliced(link, &frame));
            }
        }

        #[test]
        fn a_built_ethernet_frame_parses_back_to_what_was_sent(
            (src, dst) in address_pair(),
            src_port: u16,
            dst_port: u16,
            flags: u8,
            udp: bool,
            payload in prop::collection::vec(any::<u8>(), 0..64),
        ) {
            let builder = PacketBuilder::ethernet2(MAC_A, MAC_B);
            let builder = match (src, dst) {
                (IpAddr::V4(s), IpAddr::V4(d)) => builder.ipv4(s.octets(), d.octets(), 64),
                (IpAddr::V6(s), IpAddr::V6(d)) => builder.ipv6(s.octets(), d.octets(), 64),
                _ => unreachable!("address_pair yields one family"),
            };
            let mut frame = Vec::new();
            let (transport, flags) = if udp {
                builder.udp(src_port, dst_port).write(&mut frame, &payload).unwrap();
                (Transport::Udp, 0)
            } else {
                let tcp = tcp_header(src_port, dst_port, flags);
                builder.tcp_header(tcp).write(&mut frame, &payload).unwrap();
                (Transport::Tcp, flags)
            };
            let expected = hit(src.to_canonical(), dst.to_canonical(), transport, dst_port, flags);
            prop_assert_eq!(parse(LinkType::Ethernet, &frame), Some(expected));
        }
    }

    #[test]
    fn ipv6_addresses_that_are_not_mapped_stay_ipv6() {
        // ::192.0.2.7 (the old "compatible" form) is a different address.
        let compatible = Ipv6Addr::from(u128::from(u32::from_be_bytes(SRC4))).octets();
        let mut packet = Vec::new();
        PacketBuilder::ipv6(compatible, DST6, 64)
            .udp(40000, 8000)
            .write(&mut packet, &[])
            .unwrap();
        let hit = parse(LinkType::Raw, &packet).unwrap();
        assert_eq!(hit.src, IpAddr::from(compatible));
    }
}
