//! This host's own addresses, followed live: a knock counts only when it is
//! addressed to one of them (or to a door's `target`). A router forwarding
//! for its LAN, or a neighbour entry pointing a foreign address at our MAC,
//! puts packets for other hosts on our interfaces; the C knockd's filter
//! (`dst host <local address>`) ignores them, and so does knockr.
//!
//! The set comes from the kernel over rtnetlink: one dump (`RTM_GETADDR`)
//! at start, then the address events (`RTM_NEWADDR`, `RTM_DELADDR`) of the
//! IPv4 and IPv6 address groups, so a DHCP, PPPoE or VPN address that comes
//! or goes after start counts (or stops counting) at once. Every loopback
//! address counts as our own (the kernel routes all of 127/8 to `lo`).
//!
//! The message parsing ([`parse`]) is pure; the sockets are Linux's.

use std::collections::HashSet;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::core::netlink::{self, NLM_F_REQUEST, NLMSG_DONE, NLMSG_ERROR};

/// What changed in the host's addresses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Change {
    /// An address was added (or is there, in a dump).
    Added(IpAddr),
    /// An address was removed.
    Removed(IpAddr),
    /// Events were lost (the socket's buffer overflowed): here is the whole
    /// set again.
    Everything(HashSet<IpAddr>),
}

/// The host's own addresses as the server keeps them.
#[derive(Debug, Clone, Default)]
pub(crate) struct Own(HashSet<IpAddr>);

impl Own {
    pub(crate) fn new(addresses: HashSet<IpAddr>) -> Own {
        Own(addresses)
    }

    /// Whether a packet to `dst` is addressed to this host.
    pub(crate) fn contains(&self, dst: IpAddr) -> bool {
        let dst = dst.to_canonical();
        dst.is_loopback() || self.0.contains(&dst)
    }

    pub(crate) fn apply(&mut self, change: Change) {
        match change {
            Change::Added(address) => {
                self.0.insert(address);
            }
            Change::Removed(address) => {
                self.0.remove(&address);
            }
            Change::Everything(all) => self.0 = all,
        }
    }

    /// The addresses, sorted, for the log.
    pub(crate) fn describe(&self) -> String {
        let mut all: Vec<&IpAddr> = self.0.iter().collect();
        all.sort();
        all.iter()
            .map(|a| a.to_string())
            .collect::<Vec<_>>()
            .join(", ")
    }
}

// rtnetlink's layout (linux/rtnetlink.h, linux/if_addr.h); the framing is
// `core::netlink`'s.
const IFADDRMSG_LEN: usize = 8;
const RTM_NEWADDR: u16 = 20;
const RTM_DELADDR: u16 = 21;
const RTM_GETADDR: u16 = 22;
const IFA_ADDRESS: u16 = 1;
const IFA_LOCAL: u16 = 2;
const NLM_F_DUMP: u16 = 0x300;
const RTMGRP_IPV4_IFADDR: u32 = 0x10;
const RTMGRP_IPV6_IFADDR: u32 = 0x100;

/// One parsed netlink message of a buffer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Message {
    /// An address message: added (`RTM_NEWADDR`) or removed.
    Address { added: bool, address: IpAddr },
    /// The end of a dump.
    Done,
    /// The kernel refused the request (errno).
    Error(i32),
    /// Anything else, or an address message without a usable address.
    Other,
}

/// The messages in `buf`, as the kernel packs them. Stops at the first
/// malformed one: lengths come from the kernel, but are checked all the same.
pub(crate) fn parse(buf: &[u8]) -> Vec<Message> {
    netlink::messages(buf)
        .map(|message| match message.kind {
            NLMSG_DONE => Message::Done,
            NLMSG_ERROR => message.error().map_or(Message::Other, Message::Error),
            RTM_NEWADDR | RTM_DELADDR => match address_of(message.payload) {
                Some(address) => Message::Address {
                    added: message.kind == RTM_NEWADDR,
                    address,
                },
                None => Message::Other,
            },
            _ => Message::Other,
        })
        .collect()
}

/// The address of an `ifaddrmsg` body: `IFA_LOCAL` when present (on a
/// point-to-point link `IFA_ADDRESS` is the peer), else `IFA_ADDRESS`.
fn address_of(body: &[u8]) -> Option<IpAddr> {
    let family = i32::from(*body.first()?);
    let (mut local, mut address) = (None, None);
    for (kind, data) in netlink::attrs(body.get(IFADDRMSG_LEN..)?) {
        let ip = match (family, data.len()) {
            (libc::AF_INET, 4) => Some(IpAddr::V4(Ipv4Addr::from(<[u8; 4]>::try_from(data).ok()?))),
            (libc::AF_INET6, 16) => {
                Some(IpAddr::V6(Ipv6Addr::from(<[u8; 16]>::try_from(data).ok()?)))
            }
            _ => None,
        };
        match kind {
            IFA_LOCAL => local = ip,
            IFA_ADDRESS => address = ip,
            _ => {}
        }
    }
    local.or(address).map(|a| a.to_canonical())
}

/// A netlink route socket, closed on drop (and on exec).
struct Socket(std::os::fd::OwnedFd);

impl Socket {
    /// A route socket subscribed to `groups` (0: none, for a dump), whose
    /// reads give up after `timeout` so a watcher can notice it should stop.
    fn open(groups: u32, timeout: std::time::Duration) -> io::Result<Socket> {
        use std::os::fd::FromRawFd as _;
        // SAFETY: plain system calls; the descriptor is owned right away.
        let fd = unsafe {
            libc::socket(
                libc::AF_NETLINK,
                libc::SOCK_RAW | libc::SOCK_CLOEXEC,
                libc::NETLINK_ROUTE,
            )
        };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `fd` is a new descriptor nobody else owns.
        let socket = Socket(unsafe { std::os::fd::OwnedFd::from_raw_fd(fd) });
        // SAFETY: an all-zero sockaddr_nl is valid; the kernel picks the port id.
        let mut addr: libc::sockaddr_nl = unsafe { std::mem::zeroed() };
        addr.nl_family = libc::AF_NETLINK as libc::sa_family_t;
        addr.nl_groups = groups;
        let tv = libc::timeval {
            tv_sec: timeout.as_secs() as libc::time_t,
            tv_usec: timeout.subsec_micros() as libc::suseconds_t,
        };
        // A larger buffer: a burst of events (a VPN bringing up many) is not lost.
        let buffer: libc::c_int = 1 << 20;
        // SAFETY: pointers to live locals of the sizes given.
        let ok = unsafe {
            libc::bind(
                socket.fd(),
                (&raw const addr).cast(),
                std::mem::size_of::<libc::sockaddr_nl>() as libc::socklen_t,
            ) == 0
                && libc::setsockopt(
                    socket.fd(),
                    libc::SOL_SOCKET,
                    libc::SO_RCVTIMEO,
                    (&raw const tv).cast(),
                    std::mem::size_of::<libc::timeval>() as libc::socklen_t,
                ) == 0
                && libc::setsockopt(
                    socket.fd(),
                    libc::SOL_SOCKET,
                    libc::SO_RCVBUF,
                    (&raw const buffer).cast(),
                    std::mem::size_of::<libc::c_int>() as libc::socklen_t,
                ) == 0
        };
        if !ok {
            return Err(io::Error::last_os_error());
        }
        Ok(socket)
    }

    fn fd(&self) -> libc::c_int {
        std::os::fd::AsRawFd::as_raw_fd(&self.0)
    }

    /// One datagram into `buf`: its length.
    fn receive(&self, buf: &mut [u8]) -> io::Result<usize> {
        // SAFETY: `buf` is valid for `buf.len()` bytes.
        let n = unsafe { libc::recv(self.fd(), buf.as_mut_ptr().cast(), buf.len(), 0) };
        if n < 0 {
            Err(io::Error::last_os_error())
        } else {
            Ok(n as usize)
        }
    }

    /// Asks for every address of every family.
    fn request_dump(&self) -> io::Result<()> {
        let mut w = netlink::Writer::default();
        w.begin(RTM_GETADDR, NLM_F_REQUEST | NLM_F_DUMP, 1);
        // ifa_family AF_UNSPEC (0): both families.
        w.header(&[0; IFADDRMSG_LEN]);
        w.end();
        let request = w.into_bytes();
        // SAFETY: `request` is valid for its length.
        let n = unsafe { libc::send(self.fd(), request.as_ptr().cast(), request.len(), 0) };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }
}

/// How long a watcher's read waits before looking whether it should stop.
const POLL: std::time::Duration = std::time::Duration::from_millis(500);

/// Every address the host has now.
pub(crate) fn dump() -> io::Result<HashSet<IpAddr>> {
    let socket = Socket::open(0, std::time::Duration::from_secs(5))?;
    socket.request_dump()?;
    let mut all = HashSet::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = socket.receive(&mut buf)?;
        for message in parse(&buf[..n]) {
            match message {
                Message::Address { address, .. } => {
                    all.insert(address);
                }
                Message::Done => return Ok(all),
                Message::Error(errno) if errno != 0 => {
                    return Err(io::Error::from_raw_os_error(-errno));
                }
                Message::Error(_) | Message::Other => {}
            }
        }
    }
}

/// Follows the host's addresses: the set now, and a thread that calls
/// `each` with every change until `stop` is set. Subscribed before the
/// dump, so no change between the two is missed.
pub(crate) fn follow(
    stop: Arc<AtomicBool>,
    mut each: impl FnMut(Change) -> bool + Send + 'static,
) -> io::Result<(HashSet<IpAddr>, std::thread::JoinHandle<()>)> {
    let events = Socket::open(RTMGRP_IPV4_IFADDR | RTMGRP_IPV6_IFADDR, POLL)?;
    let now = dump()?;
    let thread = std::thread::Builder::new()
        .name("addresses".into())
        .spawn(move || {
            let mut buf = vec![0u8; 64 * 1024];
            while !stop.load(Ordering::Relaxed) {
                let change = match events.receive(&mut buf) {
                    Ok(n) => parse(&buf[..n])
                        .into_iter()
                        .filter_map(|m| match m {
                            Message::Address {
                                added: true,
                                address,
                            } => Some(Change::Added(address)),
                            Message::Address {
                                added: false,
                                address,
                            } => Some(Change::Removed(address)),
                            _ => None,
                        })
                        .collect(),
                    Err(err)
                        if matches!(
                            err.kind(),
                            io::ErrorKind::WouldBlock
                                | io::ErrorKind::TimedOut
                                | io::ErrorKind::Interrupted
                        ) =>
                    {
                        continue;
                    }
                    // ENOBUFS: events were lost; the whole set again.
                    Err(_) => match dump() {
                        Ok(all) => vec![Change::Everything(all)],
                        Err(_) => {
                            std::thread::sleep(POLL);
                            continue;
                        }
                    },
                };
                for change in change {
                    if !each(change) {
                        return;
                    }
                }
            }
        })?;
    Ok((now, thread))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::netlink::{HEADER_LEN as NLMSG_HDRLEN, align};

    /// A netlink message of `kind` with an ifaddrmsg of `family` and the
    /// attributes given.
    fn message(kind: u16, family: u8, attributes: &[(u16, &[u8])]) -> Vec<u8> {
        let mut body = vec![family, 24, 0, 0, 2, 0, 0, 0];
        for (kind, data) in attributes {
            let len = 4 + data.len();
            body.extend_from_slice(&(len as u16).to_ne_bytes());
            body.extend_from_slice(&kind.to_ne_bytes());
            body.extend_from_slice(data);
            body.resize(align(body.len()), 0);
        }
        let mut out = Vec::new();
        out.extend_from_slice(&((NLMSG_HDRLEN + body.len()) as u32).to_ne_bytes());
        out.extend_from_slice(&kind.to_ne_bytes());
        out.extend_from_slice(&[0; 10]);
        out.extend_from_slice(&body);
        out
    }

    #[test]
    fn address_messages_give_the_local_address_and_a_dump_ends_with_done() {
        let v4 = libc::AF_INET as u8;
        let v6 = libc::AF_INET6 as u8;
        let mut buf = message(
            RTM_NEWADDR,
            v4,
            &[(IFA_ADDRESS, &[10, 0, 0, 9]), (IFA_LOCAL, &[10, 0, 0, 2])],
        );
        let six: [u8; 16] = "2001:db8::2".parse::<Ipv6Addr>().unwrap().octets();
        buf.extend(message(RTM_DELADDR, v6, &[(IFA_ADDRESS, &six)]));
        buf.extend(message(RTM_NEWADDR, v4, &[(8, b"eth0\0")]));
        let mut done = message(NLMSG_DONE, 0, &[]);
        done.truncate(NLMSG_HDRLEN + 4);
        done[0..4].copy_from_slice(&((NLMSG_HDRLEN + 4) as u32).to_ne_bytes());
        buf.extend(done);
        assert_eq!(
            parse(&buf),
            [
                Message::Address {
                    added: true,
                    address: "10.0.0.2".parse().unwrap()
                },
                Message::Address {
                    added: false,
                    address: "2001:db8::2".parse().unwrap()
                },
                Message::Other,
                Message::Done,
            ]
        );
    }

    #[test]
    fn a_truncated_or_lying_message_stops_the_parse() {
        let mut buf = message(
            RTM_NEWADDR,
            libc::AF_INET as u8,
            &[(IFA_LOCAL, &[10, 0, 0, 2])],
        );
        buf[0..4].copy_from_slice(&1000u32.to_ne_bytes());
        assert!(parse(&buf).is_empty());
        assert!(parse(&buf[..10]).is_empty());
        // An attribute longer than its message yields no address.
        let mut bad = message(
            RTM_NEWADDR,
            libc::AF_INET as u8,
            &[(IFA_LOCAL, &[10, 0, 0, 2])],
        );
        bad[NLMSG_HDRLEN + IFADDRMSG_LEN] = 200;
        assert_eq!(parse(&bad), [Message::Other]);
    }

    #[test]
    fn own_addresses_follow_changes_and_loopback_is_always_ours() {
        let mut own = Own::default();
        let a: IpAddr = "10.0.0.2".parse().unwrap();
        assert!(!own.contains(a));
        assert!(own.contains("127.3.4.5".parse().unwrap()));
        assert!(own.contains("::1".parse().unwrap()));
        own.apply(Change::Added(a));
        assert!(own.contains(a));
        assert!(own.contains("::ffff:10.0.0.2".parse().unwrap()));
        own.apply(Change::Removed(a));
        assert!(!own.contains(a));
        own.apply(Change::Everything([a].into()));
        assert_eq!(own.describe(), "10.0.0.2");
    }

    #[test]
    fn the_kernel_dump_holds_a_loopback_address() {
        // Every Linux network namespace has lo with 127.0.0.1 (when up).
        let all = dump().unwrap();
        assert!(all.contains(&"127.0.0.1".parse().unwrap()), "{all:?}");
    }
}
