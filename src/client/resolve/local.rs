//! What getaddrinfo asks the kernel before it sorts a name's addresses: the
//! source address towards each destination (a connected UDP socket; nothing
//! is sent) and the machine's interface addresses with their prefix lengths
//! and flags (an `RTM_GETADDR` netlink dump, as glibc's `__check_pf` makes).
//! It answers questions about this machine only and never sends a packet
//! off it.

use std::io::Read as _;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, UdpSocket};
use std::time::Duration;

use super::sort::Source;
use crate::core::netlink;

/// The source address the kernel would use to reach `dest`, if it has a route.
/// Connecting a UDP socket only consults the routing table; nothing is sent.
pub(crate) fn route_source(dest: IpAddr) -> Option<IpAddr> {
    let bind: SocketAddr = if dest.is_ipv4() {
        ([0, 0, 0, 0], 0).into()
    } else {
        (Ipv6Addr::UNSPECIFIED, 0).into()
    };
    let socket = UdpSocket::bind(bind).ok()?;
    socket.connect((dest, 9)).ok()?;
    socket.local_addr().ok().map(|a| a.ip())
}

/// One interface address, as the netlink dump lists it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct InterfaceAddress {
    pub(crate) addr: IpAddr,
    pub(crate) prefix_len: u8,
    /// `ifa_flags`: only the low byte, as glibc reads it.
    pub(crate) flags: u8,
}

const IFA_F_OPTIMISTIC: u8 = 0x04;
const IFA_F_HOMEADDRESS: u8 = 0x10;
const IFA_F_DEPRECATED: u8 = 0x20;

/// The machine's addresses as glibc keeps them for the sort. glibc keeps
/// the list only when the machine has an IPv6 address other than ::1, so on
/// an IPv4-only machine every prefix length is unknown (0) and rule 9 barely
/// acts (`getent ahosts` shows it so); the same is done here.
#[derive(Debug, Clone, Default)]
pub(crate) struct Interfaces {
    addresses: Vec<InterfaceAddress>,
}

impl Interfaces {
    /// The kernel's list, read once per run; empty when netlink cannot be
    /// read, as glibc then sorts without it.
    pub(crate) fn read() -> Interfaces {
        Interfaces::kept(dump().unwrap_or_default())
    }

    /// The list glibc keeps out of `all`.
    pub(crate) fn kept(all: Vec<InterfaceAddress>) -> Interfaces {
        let seen_ipv6 = all
            .iter()
            .any(|a| matches!(a.addr, IpAddr::V6(v6) if !v6.is_loopback()));
        Interfaces {
            addresses: if seen_ipv6 { all } else { Vec::new() },
        }
    }

    /// What the sort knows about the source towards `dest`.
    pub(crate) fn source(&self, dest: IpAddr) -> Option<Source> {
        let addr = route_source(dest)?;
        // glibc looks loopback sources up as 127.0.0.1, the address lo holds.
        let key = match addr {
            IpAddr::V4(v4) if v4.is_loopback() => IpAddr::V4(Ipv4Addr::LOCALHOST),
            other => other,
        };
        let known = self.addresses.iter().find(|a| a.addr == key);
        let flags = known.map_or(0, |a| a.flags);
        Some(Source {
            addr,
            prefix_len: known.map_or(0, |a| a.prefix_len),
            deprecated: flags & (IFA_F_DEPRECATED | IFA_F_OPTIMISTIC) != 0,
            home: flags & IFA_F_HOMEADDRESS != 0,
        })
    }
}

const AF_INET: u8 = 2;
const AF_INET6: u8 = 10;
const AF_NETLINK: i32 = 16;
const NETLINK_ROUTE: i32 = 0;
const RTM_NEWADDR: u16 = 20;
const RTM_GETADDR: u16 = 22;
const NLM_F_DUMP: u16 = 0x300;
const IFA_ADDRESS: u16 = 1;
const IFA_LOCAL: u16 = 2;
/// Messages read before giving up on a dump that never ends.
const MAX_READS: usize = 1024;

/// Every address of every interface, from one netlink dump.
fn dump() -> std::io::Result<Vec<InterfaceAddress>> {
    use socket2::{Domain, Protocol, Socket, Type};
    let socket = Socket::new(
        Domain::from(AF_NETLINK),
        Type::RAW,
        Some(Protocol::from(NETLINK_ROUTE)),
    )?;
    socket.set_read_timeout(Some(Duration::from_secs(1)))?;
    let seq: u32 = 1;
    // rtgenmsg: one byte, any family (padded to 4).
    let mut w = netlink::Writer::default();
    w.begin(RTM_GETADDR, netlink::NLM_F_REQUEST | NLM_F_DUMP, seq);
    w.header(&[0]);
    w.end();
    let request = w.into_bytes();
    // Unbound and unconnected, a netlink socket sends to the kernel.
    socket.send(&request)?;
    let mut addresses = Vec::new();
    let mut buf = vec![0u8; 32 * 1024];
    for _ in 0..MAX_READS {
        let len = (&socket).read(&mut buf)?;
        if parse(&buf[..len], seq, &mut addresses) {
            return Ok(addresses);
        }
    }
    Err(std::io::Error::other("the interface list never ended"))
}

/// Adds the addresses of one netlink read to `out`; true at the dump's end.
fn parse(data: &[u8], seq: u32, out: &mut Vec<InterfaceAddress>) -> bool {
    let mut whole = 0;
    for message in netlink::messages(data) {
        whole += netlink::align(netlink::HEADER_LEN + message.payload.len());
        if message.seq != seq {
            continue;
        }
        match message.kind {
            netlink::NLMSG_DONE | netlink::NLMSG_ERROR => return true,
            RTM_NEWADDR if message.payload.len() >= 8 => {
                let body = message.payload;
                let (family, prefix_len, flags) = (body[0], body[1], body[2]);
                let (mut address, mut local) = (None, None);
                for (kind, value) in netlink::attrs(&body[8..]) {
                    match kind {
                        IFA_ADDRESS => address = ip(family, value),
                        IFA_LOCAL => local = ip(family, value),
                        _ => {}
                    }
                }
                // glibc takes IFA_ADDRESS first (on point-to-point links, the peer).
                if let Some(addr) = address.or(local) {
                    out.push(InterfaceAddress {
                        addr,
                        prefix_len,
                        flags,
                    });
                }
            }
            _ => {}
        }
    }
    // A message whose length does not fit what was read ends the dump.
    whole < data.len() && data.len() - whole >= netlink::HEADER_LEN
}

fn ip(family: u8, value: &[u8]) -> Option<IpAddr> {
    match family {
        AF_INET => <[u8; 4]>::try_from(value).ok().map(IpAddr::from),
        AF_INET6 => <[u8; 16]>::try_from(value).ok().map(IpAddr::from),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::netlink::{NLMSG_DONE, align};

    /// One RTM_NEWADDR message as the kernel writes it.
    fn message(seq: u32, family: u8, prefix_len: u8, flags: u8, attrs: &[(u16, &[u8])]) -> Vec<u8> {
        let mut body = vec![family, prefix_len, flags, 0, 1, 0, 0, 0];
        for (kind, value) in attrs {
            let len = 4 + value.len();
            body.extend_from_slice(&(len as u16).to_ne_bytes());
            body.extend_from_slice(&kind.to_ne_bytes());
            body.extend_from_slice(value);
            body.resize(align(body.len()), 0);
        }
        let mut out = Vec::new();
        out.extend_from_slice(&((16 + body.len()) as u32).to_ne_bytes());
        out.extend_from_slice(&RTM_NEWADDR.to_ne_bytes());
        out.extend_from_slice(&0u16.to_ne_bytes());
        out.extend_from_slice(&seq.to_ne_bytes());
        out.extend_from_slice(&0u32.to_ne_bytes());
        out.extend(body);
        out
    }

    #[test]
    fn a_dump_gives_each_address_its_prefix_length_and_flags() {
        let v6: [u8; 16] = "fd00:9::2".parse::<Ipv6Addr>().unwrap().octets();
        let mut data = message(
            7,
            AF_INET,
            24,
            0,
            &[(IFA_LOCAL, &[10, 9, 0, 2]), (IFA_ADDRESS, &[10, 9, 0, 2])],
        );
        data.extend(message(
            7,
            AF_INET6,
            64,
            IFA_F_DEPRECATED,
            &[(IFA_ADDRESS, &v6)],
        ));
        data.extend(message(8, AF_INET, 8, 0, &[(IFA_ADDRESS, &[127, 0, 0, 1])]));
        let mut found = Vec::new();
        assert!(!parse(&data, 7, &mut found), "no end yet");
        assert_eq!(
            found,
            [
                InterfaceAddress {
                    addr: "10.9.0.2".parse().unwrap(),
                    prefix_len: 24,
                    flags: 0
                },
                InterfaceAddress {
                    addr: "fd00:9::2".parse().unwrap(),
                    prefix_len: 64,
                    flags: IFA_F_DEPRECATED
                },
            ],
            "another request's message is not ours"
        );
        let mut done = 16u32.to_ne_bytes().to_vec();
        done.extend_from_slice(&NLMSG_DONE.to_ne_bytes());
        done.extend_from_slice(&[0, 0]);
        done.extend_from_slice(&7u32.to_ne_bytes());
        done.extend_from_slice(&[0; 4]);
        assert!(parse(&done, 7, &mut found));
        assert!(
            parse(
                &[1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
                7,
                &mut found
            ),
            "a broken message ends it"
        );
    }

    #[test]
    fn without_ipv6_glibc_keeps_no_list() {
        let v4 = InterfaceAddress {
            addr: "10.9.0.2".parse().unwrap(),
            prefix_len: 24,
            flags: 0,
        };
        let lo6 = InterfaceAddress {
            addr: "::1".parse().unwrap(),
            prefix_len: 128,
            flags: 0,
        };
        assert!(Interfaces::kept(vec![v4, lo6]).addresses.is_empty());
        let ll = InterfaceAddress {
            addr: "fe80::1".parse().unwrap(),
            ..lo6
        };
        assert_eq!(Interfaces::kept(vec![v4, ll]).addresses, [v4, ll]);
    }

    #[test]
    fn this_machine_lists_its_loopback_address() {
        let all = dump().expect("netlink answers");
        assert!(
            all.iter()
                .any(|a| a.addr == IpAddr::V4(Ipv4Addr::LOCALHOST) && a.prefix_len == 8),
            "{all:?}"
        );
    }
}
